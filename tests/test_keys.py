import os
import stat

import pytest

from linkage import keys
from linkage.errors import KeyFileError


def test_keygen_writes_owner_read_only_and_refuses_overwrite(tmp_path):
    path = tmp_path / "k.key"
    key = keys.generate_key()
    keys.write_key_file(path, key)
    mode = stat.S_IMODE(os.stat(path).st_mode)
    assert mode == 0o400
    assert keys.read_key_file(path) == key
    with pytest.raises(KeyFileError, match="refusing to overwrite"):
        keys.write_key_file(path, keys.generate_key())
    assert keys.read_key_file(path) == key


def test_generated_keys_are_256_bit_and_distinct():
    a, b = keys.generate_key(), keys.generate_key()
    assert len(a) == 32 and a != b


def test_kcv_is_stable_per_key_and_differs_between_keys():
    a, b = keys.generate_key(), keys.generate_key()
    assert keys.key_check_value(a) == keys.key_check_value(a)
    assert keys.key_check_value(a) != keys.key_check_value(b)
    assert len(keys.key_check_value(a)) == 12
    assert a.hex()[:12] not in keys.key_check_value(a)


@pytest.mark.parametrize("content, message", [
    ("", "not a linkage key file"),
    ("linkage-key-v1\nabcd\n", "too short"),
    ("linkage-key-v1\nzz" + "0" * 62 + "\n", "not valid hexadecimal"),
    ("something else\n" + "00" * 32 + "\n", "not a linkage key file"),
])
def test_bad_key_files_are_refused(tmp_path, content, message):
    path = tmp_path / "bad.key"
    path.write_text(content)
    with pytest.raises(KeyFileError, match=message):
        keys.read_key_file(path)


def test_missing_key_file(tmp_path):
    with pytest.raises(KeyFileError, match="not found"):
        keys.read_key_file(tmp_path / "nope.key")


def test_subkeys_are_scoped_by_project_field_and_purpose():
    k = keys.generate_key()
    base = keys.derive_subkey(k, "p1", "surname", "exact")
    assert base == keys.derive_subkey(k, "p1", "surname", "exact")
    assert base != keys.derive_subkey(k, "p2", "surname", "exact")
    assert base != keys.derive_subkey(k, "p1", "given_name", "exact")
    assert base != keys.derive_subkey(k, "p1", "surname", "phonetic")


def test_record_id_is_stable_and_keyed():
    k1, k2 = keys.generate_key(), keys.generate_key()
    rid = keys.record_id(k1, "p", "police", "N0000001")
    assert rid == keys.record_id(k1, "p", "police", "N0000001")
    assert rid != keys.record_id(k2, "p", "police", "N0000001")
    assert rid != keys.record_id(k1, "p", "education", "N0000001")
    assert len(rid) == 32 and "N0000001" not in rid
