"""Partner side: a raw extract in; an identifier package and an encrypted attribute package out."""

from linkage.encode.extract import encode_extract
from linkage.encode.manifest import EncodedManifest, read_manifest

__all__ = ["EncodedManifest", "encode_extract", "read_manifest"]
