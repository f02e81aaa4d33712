"""Ed25519 keys, key ids, domain-separated signatures and encrypted key files.

Every signature TradeLedger makes covers ``DOMAIN || message`` where DOMAIN
is a fixed prefix naming the protocol version and what is signed
(specs/protocol.md#signing-domains). A transaction signature therefore never
verifies as a checkpoint signature, a request signature or an attestation.
"""

from __future__ import annotations

import enum
import json
import os
import stat
from dataclasses import dataclass
from pathlib import Path

import nacl.bindings
import nacl.exceptions
import nacl.public
import nacl.pwhash
import nacl.secret
import nacl.signing
import nacl.utils

from ledger.errors import LedgerError, MalformedRecord, VerificationError
from ledger.hashing import parse_hex, sha256

PUBLIC_KEY_SIZE = 32
SIGNATURE_SIZE = 64
KEY_ID_SIZE = 16


class Domain(bytes, enum.Enum):
    """Signing domains: ``tradeledger/v1/<what>`` followed by one zero byte."""

    TX = b"tradeledger/v1/tx\x00"
    CHECKPOINT = b"tradeledger/v1/checkpoint\x00"
    REQUEST = b"tradeledger/v1/request\x00"
    ATTESTATION = b"tradeledger/v1/attestation\x00"
    SESSION = b"tradeledger/v1/session\x00"


def key_id(public_key: bytes) -> str:
    """The key id: the first 16 bytes of SHA-256 of the raw public key, in hex."""
    if len(public_key) != PUBLIC_KEY_SIZE:
        raise MalformedRecord(
            f"an Ed25519 public key has 32 bytes, got {len(public_key)}",
            field="public_key",
            rule="length",
        )
    return sha256(public_key)[:KEY_ID_SIZE].hex()


def parse_public_key(value: object, *, field: str = "public_key") -> bytes:
    return parse_hex(value, field=field, size=PUBLIC_KEY_SIZE)


def verify(public_key: bytes, domain: Domain, message: bytes, signature: bytes) -> None:
    """Check an Ed25519 signature over ``domain || message``; raise if it fails."""
    if len(signature) != SIGNATURE_SIZE:
        raise VerificationError(
            f"signature has {len(signature)} bytes, want 64", code="bad_signature"
        )
    try:
        nacl.bindings.crypto_sign_open(signature + domain.value + message, public_key)
    except (nacl.exceptions.BadSignatureError, nacl.exceptions.ValueError) as exc:
        raise VerificationError(
            f"{domain.name.lower()} signature by key {key_id(public_key)} does not verify",
            code="bad_signature",
        ) from exc


def is_valid(public_key: bytes, domain: Domain, message: bytes, signature: bytes) -> bool:
    """Non-raising form, for diagnostics and batch checks."""
    try:
        verify(public_key, domain, message, signature)
    except VerificationError:
        return False
    return True


@dataclass(frozen=True, repr=False)
class SigningKey:
    """An Ed25519 private key. ``repr`` shows only the key id."""

    seed: bytes

    def __post_init__(self) -> None:
        if len(self.seed) != 32:
            raise MalformedRecord("an Ed25519 seed has 32 bytes", field="seed", rule="length")
        object.__setattr__(self, "_key", nacl.signing.SigningKey(self.seed))

    @classmethod
    def generate(cls) -> SigningKey:
        return cls(nacl.utils.random(32))

    @property
    def public_key(self) -> bytes:
        return bytes(self._nacl.verify_key)

    @property
    def public_key_hex(self) -> str:
        return self.public_key.hex()

    @property
    def key_id(self) -> str:
        return key_id(self.public_key)

    @property
    def _nacl(self) -> nacl.signing.SigningKey:
        key: nacl.signing.SigningKey = self.__dict__["_key"]
        return key

    def sign(self, domain: Domain, message: bytes) -> bytes:
        """Sign ``domain || message``; returns the 64-byte signature."""
        return self._nacl.sign(domain.value + message).signature

    def __repr__(self) -> str:
        return f"SigningKey(key_id={self.key_id!r})"


# Key files ---------------------------------------------------------------
#
# A key file is JSON: the public key in clear, the secret sealed with
# XSalsa20-Poly1305 (NaCl secretbox) under a key derived from the passphrase
# by scrypt. Written with mode 0600. Signing keys and encryption keys share
# the sealing and differ in their ``version`` and in what is sealed
# (specs/protocol.md#keys-and-key-ids).

KEYFILE_VERSION = "tradeledger-key/1"
ENCRYPTION_KEYFILE_VERSION = "tradeledger-encryption-key/1"
_SCRYPT_OPS = nacl.pwhash.scrypt.OPSLIMIT_INTERACTIVE
_SCRYPT_MEM = nacl.pwhash.scrypt.MEMLIMIT_INTERACTIVE


class KeyFileError(LedgerError):
    default_code = "key_file"


def _box_key(passphrase: str, salt: bytes, opslimit: int, memlimit: int) -> bytes:
    key: bytes = nacl.pwhash.scrypt.kdf(nacl.secret.SecretBox.KEY_SIZE,
                                        passphrase.encode("utf-8"), salt,
                                        opslimit=opslimit, memlimit=memlimit)
    return key


def _write_sealed(path: Path | str, document: dict[str, object], secret: bytes,
                  passphrase: str, sealed_member: str) -> None:
    """Seal ``secret`` under ``passphrase`` into ``document`` and write it with mode 0600."""
    salt = nacl.utils.random(nacl.pwhash.scrypt.SALTBYTES)
    sealed = nacl.secret.SecretBox(_box_key(passphrase, salt, _SCRYPT_OPS, _SCRYPT_MEM)
                                   ).encrypt(secret)
    document = {
        **document,
        "kdf": {"name": "scrypt", "salt": salt.hex(), "opslimit": _SCRYPT_OPS,
                "memlimit": _SCRYPT_MEM},
        "cipher": "xsalsa20-poly1305",
        sealed_member: sealed.hex(),
    }
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(target, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, stat.S_IRUSR | stat.S_IWUSR)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        json.dump(document, fh, indent=2)
        fh.write("\n")
    os.chmod(target, stat.S_IRUSR | stat.S_IWUSR)


def _read_document(path: Path | str, version: str) -> dict[str, object]:
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise KeyFileError(f"cannot read key file {path}: {exc}") from exc
    if not isinstance(document, dict) or document.get("version") != version:
        raise KeyFileError(f"{path} is not a {version} key file")
    return document


def _open_sealed(path: Path | str, document: dict[str, object], passphrase: str,
                 sealed_member: str) -> bytes:
    """The secret sealed in ``document``; a wrong passphrase raises :class:`KeyFileError`."""
    try:
        kdf = document["kdf"]
        assert isinstance(kdf, dict)
        box_key = _box_key(passphrase, bytes.fromhex(kdf["salt"]), int(kdf["opslimit"]),
                           int(kdf["memlimit"]))
        sealed = bytes.fromhex(str(document[sealed_member]))
    except (KeyError, TypeError, ValueError, AssertionError) as exc:
        raise KeyFileError(f"{path}: damaged key file ({exc})") from exc
    try:
        secret: bytes = nacl.secret.SecretBox(box_key).decrypt(sealed)
    except nacl.exceptions.CryptoError as exc:
        raise KeyFileError(f"wrong passphrase for {path}", code="bad_passphrase") from exc
    return secret


def save_key(path: Path | str, key: SigningKey, passphrase: str, *, label: str = "") -> None:
    """Write ``key`` encrypted under ``passphrase`` to ``path`` with mode 0600."""
    _write_sealed(path, {"version": KEYFILE_VERSION, "label": label, "key_id": key.key_id,
                         "public_key": key.public_key_hex},
                  key.seed, passphrase, "sealed_seed")


def read_key_info(path: Path | str) -> dict[str, object]:
    """The public part of a key file, without the passphrase."""
    document = _read_document(path, KEYFILE_VERSION)
    return {k: document[k] for k in ("label", "key_id", "public_key") if k in document}


def load_key(path: Path | str, passphrase: str) -> SigningKey:
    """Read and decrypt a key file; a wrong passphrase raises :class:`KeyFileError`."""
    document = _read_document(path, KEYFILE_VERSION)
    key = SigningKey(_open_sealed(path, document, passphrase, "sealed_seed"))
    if key.public_key_hex != document.get("public_key"):
        raise KeyFileError(f"{path}: sealed seed does not match the public key")
    return key


# Encryption keys ---------------------------------------------------------
#
# Each organisation has one X25519 key pair for the sealed details of trade
# records (specs/trade.md#confidential-details). The public key is the
# organisation's ``encryption_key`` in genesis; the secret stays with the
# organisation, in a key file like the signing keys'.


@dataclass(frozen=True, repr=False)
class EncryptionKey:
    """An X25519 secret key for opening sealed boxes. ``repr`` shows the public key only."""

    secret: bytes

    def __post_init__(self) -> None:
        if len(self.secret) != nacl.public.PrivateKey.SIZE:
            raise MalformedRecord("an X25519 secret key has 32 bytes", field="secret",
                                  rule="length")
        object.__setattr__(self, "_key", nacl.public.PrivateKey(self.secret))

    @classmethod
    def generate(cls) -> EncryptionKey:
        return cls(bytes(nacl.public.PrivateKey.generate()))

    @property
    def private_key(self) -> nacl.public.PrivateKey:
        key: nacl.public.PrivateKey = self.__dict__["_key"]
        return key

    @property
    def public_key(self) -> bytes:
        return bytes(self.private_key.public_key)

    @property
    def public_key_hex(self) -> str:
        return self.public_key.hex()

    def __repr__(self) -> str:
        return f"EncryptionKey(public_key={self.public_key_hex[:16]}...)"


def save_encryption_key(path: Path | str, key: EncryptionKey, passphrase: str, *,
                        label: str = "") -> None:
    """Write an encryption key sealed under ``passphrase`` to ``path`` with mode 0600."""
    _write_sealed(path, {"version": ENCRYPTION_KEYFILE_VERSION, "label": label,
                         "algorithm": "x25519", "public_key": key.public_key_hex},
                  key.secret, passphrase, "sealed_secret")


def load_encryption_key(path: Path | str, passphrase: str) -> EncryptionKey:
    """Read and decrypt an encryption key file; errors are :class:`KeyFileError`."""
    document = _read_document(path, ENCRYPTION_KEYFILE_VERSION)
    key = EncryptionKey(_open_sealed(path, document, passphrase, "sealed_secret"))
    if key.public_key_hex != document.get("public_key"):
        raise KeyFileError(f"{path}: sealed secret does not match the public key")
    return key
