"""Partner side: turn a raw extract into an encoded extract (tokens, payload, rejects, manifest)."""

from linkage.encode.extract import encode_extract
from linkage.encode.manifest import EncodedManifest, read_manifest

__all__ = ["EncodedManifest", "encode_extract", "read_manifest"]
