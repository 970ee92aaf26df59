"""The cluster key: sealing and opening datagrams, and rotating keys without downtime."""

from __future__ import annotations

import base64
import itertools

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_gossip.codec import BadDatagram, encode
from trio_gossip.keyring import KEY_SIZES, OVERHEAD, Keyring, generate_key, parse_key
from trio_gossip.messages import InfoRequest

OLD = bytes(range(32))
NEW = bytes(range(100, 132))
OTHER = bytes(range(200, 232))
MESSAGE = encode(InfoRequest(12345, ()))


def reason(keyring: Keyring, data: bytes) -> str:
    """Why ``keyring`` refuses ``data`` (it must refuse it)."""
    with pytest.raises(BadDatagram) as info:
        keyring.open_untrusted(data)
    return info.value.reason


def interoperate(a: Keyring, b: Keyring) -> bool:
    """Each opens what the other seals."""
    try:
        return b.open_untrusted(a.seal(MESSAGE)) == a.open_untrusted(b.seal(MESSAGE)) == MESSAGE
    except BadDatagram:
        return False


# -- one keyring ---------------------------------------------------------------------


@pytest.mark.parametrize("size", KEY_SIZES)
def test_seal_and_open_round_trip(size: int) -> None:
    keyring = Keyring((bytes(size),))
    for plaintext in (b"", b"x", MESSAGE, bytes(range(256)) * 40):
        sealed = keyring.seal(plaintext)
        assert len(sealed) == len(plaintext) + OVERHEAD == len(plaintext) + keyring.overhead
        assert sealed[:1] == b"\x01"  # the format's version byte
        if len(plaintext) >= 16:  # shorter ones may turn up in random bytes by chance
            assert plaintext not in sealed
        assert keyring.open_untrusted(sealed) == plaintext


@given(st.binary(max_size=2000))
def test_any_plaintext_round_trips(plaintext: bytes) -> None:
    keyring = Keyring((OLD,))
    assert keyring.open_untrusted(keyring.seal(plaintext)) == plaintext


def test_every_seal_has_a_fresh_nonce() -> None:
    keyring = Keyring((OLD,))
    sealed = [keyring.seal(MESSAGE) for _ in range(100)]
    assert len(set(sealed)) == 100  # the same plaintext, never the same datagram
    assert len({s[1:13] for s in sealed}) == 100  # because the 12-byte nonce differs
    assert all(keyring.open_untrusted(s) == MESSAGE for s in sealed)


def test_a_tampered_byte_is_refused() -> None:
    keyring = Keyring((OLD,))
    sealed = keyring.seal(MESSAGE)
    # Every byte after the version: nonce, ciphertext and tag are all authenticated.
    for index, bit in itertools.product(range(1, len(sealed)), (0x01, 0x80)):
        tampered = bytearray(sealed)
        tampered[index] ^= bit
        assert reason(keyring, bytes(tampered)) == "wrong key", index
    assert reason(keyring, b"\x02" + sealed[1:]) == "not sealed"  # an unknown format version


def test_truncated_and_extended_datagrams_are_refused() -> None:
    keyring = Keyring((OLD,))
    sealed = keyring.seal(MESSAGE)
    assert reason(keyring, sealed[:-1]) == "wrong key"
    assert reason(keyring, sealed + b"\x00") == "wrong key"
    assert reason(keyring, sealed[:OVERHEAD]) == "wrong key"  # the length of an empty one
    for length in range(OVERHEAD):
        assert reason(keyring, sealed[:length]) == "not sealed"


def test_the_wrong_key_is_refused() -> None:
    sealed = Keyring((OLD,)).seal(MESSAGE)
    assert reason(Keyring((OTHER,)), sealed) == "wrong key"
    assert reason(Keyring((OTHER, NEW)), sealed) == "wrong key"
    # A key of another size (AES-128 against AES-256) fails the same way.
    assert reason(Keyring((OLD[:16],)), sealed) == "wrong key"


def test_plaintext_into_a_keyed_keyring_is_refused() -> None:
    keyring = Keyring((OLD,))
    assert reason(keyring, MESSAGE) == "not sealed"  # a peer without the key, or an attacker
    assert reason(keyring, b"") == "not sealed"
    # Plaintext that happens to start with the version byte still fails to open.
    assert reason(keyring, b"\x01" + MESSAGE) == "wrong key"


@given(st.binary(max_size=200))
def test_any_bytes_open_or_raise_bad_datagram(data: bytes) -> None:
    try:
        Keyring((OLD, NEW)).open_untrusted(data)
    except BadDatagram as exc:
        assert exc.reason in {"not sealed", "wrong key"}
    else:
        raise AssertionError("random bytes opened")  # a forgery of a 128-bit tag


def test_an_empty_keyring_passes_everything_through() -> None:
    keyring = Keyring()
    assert keyring.overhead == 0
    assert keyring.seal(MESSAGE) == MESSAGE
    assert keyring.open_untrusted(MESSAGE) == MESSAGE
    sealed = Keyring((OLD,)).seal(MESSAGE)
    assert keyring.open_untrusted(sealed) == sealed  # not opened: handed on as it came


# -- several keys, and rotation ------------------------------------------------------


def test_new_then_old_opens_both_and_seals_with_new() -> None:
    keyring = Keyring((NEW, OLD))
    assert keyring.open_untrusted(Keyring((OLD,)).seal(MESSAGE)) == MESSAGE
    assert keyring.open_untrusted(Keyring((NEW,)).seal(MESSAGE)) == MESSAGE
    sealed = keyring.seal(MESSAGE)
    assert Keyring((NEW,)).open_untrusted(sealed) == MESSAGE
    assert reason(Keyring((OLD,)), sealed) == "wrong key"


# The keyring every peer has at each stage of the procedure in docs/security.md.
STAGES = [
    Keyring((OLD,)),  # before
    Keyring((OLD, NEW)),  # 1. install: the new key added second everywhere
    Keyring((NEW, OLD)),  # 2. use: the new key made first everywhere
    Keyring((NEW,)),  # 3. remove: the old key dropped everywhere
]


@pytest.mark.parametrize("step", [1, 2, 3])
def test_peers_one_step_apart_interoperate(step: int) -> None:
    assert interoperate(STAGES[step - 1], STAGES[step])


def test_the_rotation_procedure_never_splits_a_cluster() -> None:
    # Five peers, each restarted in turn with the next stage's keyring: at every
    # moment, every pair of peers opens what the other seals.
    cluster = [STAGES[0]] * 5
    moments = 0
    for stage in STAGES[1:]:
        for peer in range(len(cluster)):
            cluster[peer] = stage
            for a, b in itertools.combinations(cluster, 2):
                assert interoperate(a, b)
            moments += 1
    assert cluster == [STAGES[-1]] * 5
    assert moments == 15


def test_skipping_a_step_splits_the_cluster() -> None:
    # Why three steps: a peer with only the old key cannot open what a peer
    # already sending with the new one seals, and the other way round.
    assert not interoperate(Keyring((OLD,)), Keyring((NEW, OLD)))
    assert not interoperate(Keyring((OLD, NEW)), Keyring((NEW,)))
    assert not interoperate(Keyring((OLD,)), Keyring((NEW,)))
    # The half that does work: [new, old] still opens what old-only peers send.
    assert Keyring((NEW, OLD)).open_untrusted(Keyring((OLD,)).seal(MESSAGE)) == MESSAGE


# -- keys as text --------------------------------------------------------------------


@pytest.mark.parametrize("size", KEY_SIZES)
def test_parse_key(size: int) -> None:
    key = bytes(range(size))
    text = base64.b64encode(key).decode()
    assert parse_key(text) == key
    assert parse_key(f"  {text}\n") == key  # surrounding whitespace, as in a file
    assert Keyring.from_texts([text, generate_key()]).keys[0] == key


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("", "expected a key of 16, 24 or 32 bytes, got 0"),
        (base64.b64encode(bytes(10)).decode(), "expected a key of 16, 24 or 32 bytes, got 10"),
        (base64.b64encode(bytes(31)).decode(), "expected a key of 16, 24 or 32 bytes, got 31"),
        (base64.b64encode(bytes(64)).decode(), "expected a key of 16, 24 or 32 bytes, got 64"),
        ("not base64!", "expected a base64-encoded key"),
        (base64.b64encode(bytes(32)).decode().rstrip("="), "expected a base64-encoded key"),
        (base64.urlsafe_b64encode(b"\xff" * 32).decode(), "expected a base64-encoded key"),
        ("AAAA AAAA AAAA AAAA AAAA AA==", "expected a base64-encoded key"),
        ("AAAAAAAAAAAAAAAAAAAAAB==", "expected a base64-encoded key"),  # unused bits set
        ("AAAAAAAAAAAAAAAAAAAAAA====", "expected a base64-encoded key"),  # extra padding
        ("clé" * 8, "expected a base64-encoded key"),
    ],
)
def test_parse_key_refuses(text: str, message: str) -> None:
    with pytest.raises(ValueError, match=r"^expected") as info:
        parse_key(text)
    assert str(info.value) == message


def test_generate_key() -> None:
    keys = {generate_key() for _ in range(20)}
    assert len(keys) == 20
    for text in keys:
        assert len(base64.b64decode(text, validate=True)) == 32
        assert parse_key(text) == base64.b64decode(text)


def test_a_keyring_never_shows_its_keys() -> None:
    keyring = Keyring((OLD, NEW))
    for shown in (repr(keyring), str(keyring)):
        assert shown == "Keyring(keys=<2 key(s)>)"
        assert repr(OLD)[2:12] not in shown
    assert Keyring((OLD,)) == Keyring.from_texts([base64.b64encode(OLD).decode()])
