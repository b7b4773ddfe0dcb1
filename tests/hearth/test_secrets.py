"""Secrets at rest: the key file's creation and permissions, sealing, rotation and tampering."""

from __future__ import annotations

import os
import stat

import pytest
from cryptography.fernet import Fernet

from hearth.secrets import SecretBox, SecretError, load_or_create_key, mask


def test_key_file_is_created_once_with_mode_0600(tmp_path):
    path = tmp_path / "nested" / "dir" / "secret.key"
    old = os.umask(0o022)
    try:
        key = load_or_create_key(path)
    finally:
        os.umask(old)
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    Fernet(key)  # a valid Fernet key
    assert load_or_create_key(path) == key, "the existing key is reused"


def test_a_key_file_others_can_read_is_refused(tmp_path):
    path = tmp_path / "secret.key"
    load_or_create_key(path)
    path.chmod(0o640)
    with pytest.raises(SecretError, match="chmod 600"):
        load_or_create_key(path)
    path.chmod(0o600)
    (tmp_path / "garbage.key").write_bytes(b"not a key")
    (tmp_path / "garbage.key").chmod(0o600)
    with pytest.raises(SecretError, match="Fernet"):
        load_or_create_key(tmp_path / "garbage.key")


def test_seal_and_open(tmp_path):
    box = SecretBox([load_or_create_key(tmp_path / "k")])
    token = box.seal("s3cret-PassW0rd")
    assert "s3cret" not in token and isinstance(token, str)
    assert box.open(token) == "s3cret-PassW0rd"
    assert box.seal("s3cret-PassW0rd") != token, "each seal has its own IV"
    assert "s3cret" not in repr(box) and mask("s3cret-PassW0rd") == "***"


def test_wrong_key_and_tampered_token_are_typed_errors():
    box = SecretBox([Fernet.generate_key()])
    token = box.seal("s3cret-PassW0rd")
    with pytest.raises(SecretError) as failure:
        SecretBox([Fernet.generate_key()]).open(token)
    assert "s3cret" not in str(failure.value)
    tampered = token[:-6] + ("A" if token[-6] != "A" else "B") + token[-5:]
    with pytest.raises(SecretError):
        box.open(tampered)
    with pytest.raises(SecretError):
        box.open("not even base64!")
    with pytest.raises(SecretError):
        SecretBox([])
    with pytest.raises(SecretError):
        SecretBox([b"short"])


def test_rotation_first_key_seals_all_keys_open():
    old_key, new_key = Fernet.generate_key(), Fernet.generate_key()
    old_token = SecretBox([old_key]).seal("s3cret-PassW0rd")
    rotated_box = SecretBox([new_key, old_key])
    assert rotated_box.open(old_token) == "s3cret-PassW0rd", "old tokens still open"
    new_token = rotated_box.seal("other")
    assert SecretBox([new_key]).open(new_token) == "other", "new tokens use the first key"
    with pytest.raises(SecretError):
        SecretBox([old_key]).open(new_token)
    resealed = rotated_box.rotate(old_token)
    assert SecretBox([new_key]).open(resealed) == "s3cret-PassW0rd", "re-sealed with the new key"
