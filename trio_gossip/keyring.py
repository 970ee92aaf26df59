"""The cluster key: every datagram sealed with AES-GCM, as memberlist's keyring does.

A keyring holds one or more keys. The first seals what we send; every key is
tried on what arrives, so a running cluster rotates its key without downtime:
add the new key everywhere, make it first everywhere, remove the old one.

A sealed datagram is ``0x01 | nonce (12 bytes) | AES-GCM ciphertext and tag``,
with the leading version byte as associated data and a fresh random nonce per
datagram. Nothing in a datagram that fails to open is read.
"""

from __future__ import annotations

import base64
import binascii
import os
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Final

import attrs

from .codec import BadDatagram
from .limits import SEAL_OVERHEAD

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["KEY_SIZES", "OVERHEAD", "Keyring", "generate_key", "parse_key"]

_VERSION: Final = b"\x01"
_NONCE: Final = 12
_TAG: Final = 16
#: Bytes a sealed datagram has beyond its plaintext.
OVERHEAD: Final = len(_VERSION) + _NONCE + _TAG
assert OVERHEAD == SEAL_OVERHEAD  # the wire format's limits reserve exactly this
#: Key sizes AES-GCM takes, in bytes (AES-128, AES-192, AES-256).
KEY_SIZES: Final = (16, 24, 32)


def parse_key(text: str) -> bytes:
    """A key from its base64 text; ``ValueError`` with a message for the user.

    Strict: standard base64 with its padding, nothing but surrounding
    whitespace, and written the one way ``b64encode`` writes it (so one key
    has one text). The message never quotes the text: it may be a key.
    """
    text = text.strip()
    try:
        key = base64.b64decode(text, validate=True)
    except (binascii.Error, ValueError):
        raise ValueError("expected a base64-encoded key") from None
    if base64.b64encode(key).decode("ascii") != text:  # "AAAA====", unused low bits
        raise ValueError("expected a base64-encoded key")
    if len(key) not in KEY_SIZES:
        raise ValueError(f"expected a key of 16, 24 or 32 bytes, got {len(key)}")
    return key


def generate_key() -> str:
    """A new random 32-byte key, base64-encoded (``trio-gossip --keygen``)."""
    return base64.b64encode(os.urandom(32)).decode()


@attrs.frozen
class Keyring:
    """Keys that open datagrams; the first also seals them. Empty: no encryption."""

    # Never in a repr: a Config, and so its keyring, may end up in a log or a test report.
    keys: tuple[bytes, ...] = attrs.field(default=(), repr=lambda keys: f"<{len(keys)} key(s)>")
    _ciphers: tuple[AESGCM, ...] = attrs.field(init=False, eq=False, repr=False)

    def __attrs_post_init__(self) -> None:
        # The AEAD library (8.9 MiB resident) is imported only by a cluster with a key.
        ciphers: tuple[Any, ...] = ()
        if self.keys:
            from cryptography.hazmat.primitives.ciphers.aead import AESGCM

            ciphers = tuple(AESGCM(k) for k in self.keys)
        object.__setattr__(self, "_ciphers", ciphers)

    @classmethod
    def from_texts(cls, texts: Sequence[str]) -> Keyring:
        """A keyring from base64 texts, the sending key first (see :func:`parse_key`)."""
        return cls(tuple(parse_key(t) for t in texts))

    @property
    def overhead(self) -> int:
        """Bytes sealing adds to a datagram."""
        return OVERHEAD if self.keys else 0

    def seal(self, plaintext: bytes) -> bytes:
        if not self._ciphers:
            return plaintext
        nonce = os.urandom(_NONCE)
        return _VERSION + nonce + self._ciphers[0].encrypt(nonce, plaintext, _VERSION)

    def open_untrusted(self, data: bytes) -> bytes:
        """The plaintext of a sealed datagram; :class:`BadDatagram` if no key opens it."""
        if not self._ciphers:
            return data
        if len(data) < OVERHEAD or data[:1] != _VERSION:
            raise BadDatagram("not sealed")
        from cryptography.exceptions import InvalidTag  # imported already, with AESGCM

        nonce, sealed = data[1 : 1 + _NONCE], data[1 + _NONCE :]
        for cipher in self._ciphers:
            try:
                return cipher.decrypt(nonce, sealed, _VERSION)
            except InvalidTag:
                continue
        raise BadDatagram("wrong key")
