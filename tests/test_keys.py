"""Keys, key ids, domain separation and encrypted key files."""

from __future__ import annotations

import stat

import pytest

from ledger.errors import VerificationError
from ledger.keys import (
    Domain,
    KeyFileError,
    SigningKey,
    is_valid,
    key_id,
    load_key,
    read_key_info,
    save_key,
    verify,
)

SEED = bytes(range(32))


def test_key_id_is_the_first_16_bytes_of_sha256_of_the_public_key() -> None:
    import hashlib

    key = SigningKey(SEED)
    assert key.key_id == hashlib.sha256(key.public_key).digest()[:16].hex()
    assert key_id(key.public_key) == key.key_id
    assert "seed" not in repr(key) and key.key_id in repr(key)


def test_signature_verifies_only_in_its_own_domain() -> None:
    key = SigningKey(SEED)
    message = b"\x11" * 32
    sig = key.sign(Domain.TX, message)
    verify(key.public_key, Domain.TX, message, sig)
    for other in Domain:
        if other is not Domain.TX:
            assert not is_valid(key.public_key, other, message, sig)
    with pytest.raises(VerificationError):
        verify(key.public_key, Domain.CHECKPOINT, message, sig)


def test_flipped_bits_and_wrong_lengths_are_rejected() -> None:
    key = SigningKey(SEED)
    message = b"invoice"
    sig = bytearray(key.sign(Domain.TX, message))
    sig[5] ^= 0x01
    assert not is_valid(key.public_key, Domain.TX, message, bytes(sig))
    assert not is_valid(key.public_key, Domain.TX, message, bytes(sig[:63]))
    assert not is_valid(key.public_key, Domain.TX, message + b"!", key.sign(Domain.TX, message))


def test_domains_are_distinct_and_versioned() -> None:
    prefixes = [d.value for d in Domain]
    assert len(set(prefixes)) == len(prefixes)
    for prefix in prefixes:
        assert prefix.startswith(b"tradeledger/v1/") and prefix.endswith(b"\x00")


def test_key_file_round_trip_is_encrypted_and_private(tmp_path) -> None:  # type: ignore[no-untyped-def]
    key = SigningKey.generate()
    path = tmp_path / "keys" / "admin.key"
    save_key(path, key, "correct horse", label="platform admin")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    text = path.read_text()
    assert key.seed.hex() not in text
    assert read_key_info(path)["key_id"] == key.key_id
    assert load_key(path, "correct horse").seed == key.seed
    with pytest.raises(KeyFileError) as info:
        load_key(path, "wrong")
    assert info.value.code == "bad_passphrase"


def test_unreadable_key_file_is_a_clear_error(tmp_path) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "nonsense.key"
    path.write_text("{}")
    with pytest.raises(KeyFileError):
        read_key_info(path)
