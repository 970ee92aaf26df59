"""The config file: every mistake is one ``ConfigError`` line naming the file and key."""

from __future__ import annotations

import base64
import json
import socket
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from trio_gossip.codec import BadDatagram
from trio_gossip.config import (
    Config,
    ConfigError,
    Intervals,
    PeerConfig,
    load_config,
    min_reap_rounds,
    parse_config,
    resolve_hosts,
)
from trio_gossip.keyring import Keyring

BUNDLED = Path(__file__).resolve().parent.parent / "config.json"


def good() -> dict[str, Any]:
    return {
        "peers": {
            "A": {"host": "127.0.0.1", "port": 9101, "folder": "folders/A"},
            "B": {"host": "127.0.0.1", "port": 9102},
        },
        "intervals": {"scan": 2, "push": 0.5, "relay": 1, "reap": 60},
        "max_datagram": 4000,
    }


def error(raw: Any) -> str:
    with pytest.raises(ConfigError) as info:
        parse_config(json.dumps(raw))
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith("config.json: ")
    return message


def test_a_good_config() -> None:
    config = parse_config(json.dumps(good()), "here.json", Path("/srv/gossip"))
    assert config.peers == {
        "A": PeerConfig("127.0.0.1", 9101, "folders/A"),
        "B": PeerConfig("127.0.0.1", 9102, None),
    }
    assert config.intervals == Intervals(scan=2.0, push=0.5, relay=1.0, reap=60.0)
    assert config.max_datagram == 4000
    assert config.address("B") == ("127.0.0.1", 9102)
    assert config.folder("A") == Path("/srv/gossip/folders/A")
    assert config.folder("B") is None


def test_defaults() -> None:
    raw = good()
    del raw["intervals"], raw["max_datagram"]
    config = parse_config(json.dumps(raw))
    assert (config.intervals.scan, config.intervals.reap) == (30.0, 300.0)
    assert (config.intervals.push, config.intervals.relay) == (1.0, 1.0)
    assert config.max_datagram == 8192
    partial = parse_config(json.dumps({**raw, "intervals": {"reap": 6}}))
    assert partial.intervals == Intervals(scan=30.0, push=1.0, relay=1.0, reap=6.0)


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (
            lambda c: c["peers"]["B"].update(port="x"),
            'config.json: peers.B.port: expected an integer, got "x"',
        ),
        (
            lambda c: c["peers"]["B"].update(port=True),
            "config.json: peers.B.port: expected an integer, got true",
        ),
        (
            lambda c: c["peers"]["B"].update(port=9102.0),
            "config.json: peers.B.port: expected an integer, got 9102.0",
        ),
        (
            lambda c: c["peers"]["B"].update(host=3),
            "config.json: peers.B.host: expected a string, got 3",
        ),
        (
            lambda c: c["peers"]["A"].update(folder=["a"]),
            'config.json: peers.A.folder: expected a string, got ["a"]',
        ),
        (
            lambda c: c["peers"]["B"].pop("host"),
            "config.json: peers.B.host: missing",
        ),
        (
            lambda c: c["peers"].update(C="x"),
            'config.json: peers.C: expected an object, got "x"',
        ),
        (lambda c: c.pop("peers"), "config.json: peers: missing"),
        (lambda c: c.update(peers=[]), "config.json: peers: expected an object, got []"),
        (
            lambda c: c["peers"].pop("B"),
            "config.json: peers: at least two peers are needed to gossip",
        ),
        (
            lambda c: c["peers"]["B"].update(port=0),
            "config.json: peers.B.port: expected a port from 1 to 65535, got 0",
        ),
        (
            lambda c: c["peers"]["B"].update(port=65536),
            "config.json: peers.B.port: expected a port from 1 to 65535, got 65536",
        ),
        (
            lambda c: c["peers"]["B"].update(host=""),
            'config.json: peers.B.host: expected a host name or address, got ""',
        ),
        (
            lambda c: c.update(intervals=[]),
            "config.json: intervals: expected an object, got []",
        ),
        (
            lambda c: c.update(max_datagram="big"),
            'config.json: max_datagram: expected an integer, got "big"',
        ),
    ],
)
def test_wrong_types_and_values(change: Any, expected: str) -> None:
    raw = good()
    change(raw)
    assert error(raw) == expected


@pytest.mark.parametrize(
    ("change", "expected"),
    [
        (lambda c: c.update(extra=1), "config.json: unknown key 'extra'"),
        (lambda c: c.update(interval={}), "config.json: unknown key 'interval'"),
        (
            lambda c: c["intervals"].update(gossip=1),
            "config.json: intervals: unknown key 'gossip'",
        ),
        (
            lambda c: c["peers"]["B"].update(folders="x"),
            "config.json: peers.B: unknown key 'folders'",
        ),
    ],
)
def test_unknown_keys(change: Any, expected: str) -> None:
    raw = good()
    change(raw)
    assert error(raw) == expected


@pytest.mark.parametrize("key", ["scan", "push", "relay", "reap"])
@pytest.mark.parametrize(
    ("value", "shown"),
    [(0, "0"), (-1, "-1"), (-0.5, "-0.5"), (True, "true"), (False, "false"), ("5", '"5"')],
)
def test_intervals_are_positive_numbers(key: str, value: Any, shown: str) -> None:
    raw = good()
    raw["intervals"][key] = value
    assert error(raw) == (
        f"config.json: intervals.{key}: expected a positive number of seconds, got {shown}"
    )


@pytest.mark.parametrize("text", ["NaN", "Infinity", "-Infinity"])
def test_intervals_are_finite(text: str) -> None:
    raw = json.dumps(good()).replace('"reap": 60', f'"reap": {text}')
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    assert str(info.value) == (
        f"config.json: intervals.reap: expected a positive number of seconds, got {text}"
    )


def test_min_reap_rounds_grow_with_log2_of_the_peers() -> None:
    assert [min_reap_rounds(n) for n in (2, 3, 4, 5, 10, 100, 1000, 1024, 1025)] == [
        6,
        7,
        7,
        8,
        9,
        12,
        15,
        15,
        16,
    ]


def cluster(size: int, push: float, reap: float) -> dict[str, Any]:
    """The good config with ``size`` peers and these intervals."""
    peers = {f"p{i}": {"host": "127.0.0.1", "port": 9000 + i} for i in range(size)}
    return {"peers": peers, "intervals": {"push": push, "reap": reap}}


@pytest.mark.parametrize(
    ("size", "push", "reap", "least"),
    [
        (2, 1, 5.99, "6 push intervals (6 s) with 2 peers, got 5.99 s"),
        (2, 10, 1, "6 push intervals (60 s) with 2 peers, got 1 s"),  # push and reap swapped
        (3, 0.1, 0.6, "7 push intervals (0.7 s) with 3 peers, got 0.6 s"),
        (100, 1, 11, "12 push intervals (12 s) with 100 peers, got 11 s"),
        (1000, 30, 300, "15 push intervals (450 s) with 1000 peers, got 300 s"),
    ],
)
def test_reap_leaves_room_for_the_heartbeats(
    size: int, push: float, reap: float, least: str
) -> None:
    assert error(cluster(size, push, reap)) == (
        f"config.json: intervals.reap: expected at least {least}: a live peer's heartbeat"
        " needs a few push rounds to reach every peer, and a shorter reap reaps live peers"
    )


@pytest.mark.parametrize(
    ("size", "push", "reap"),
    [(2, 1, 6), (2, 0.1, 0.6), (3, 0.1, 0.7), (100, 1, 12), (1000, 30, 450), (1000, 1, 300)],
)
def test_reap_at_the_least_is_allowed(size: int, push: float, reap: float) -> None:
    # 6 * 0.1 and 7 * 0.1 are a hair above 0.6 and 0.7 in floating point: still allowed.
    assert parse_config(json.dumps(cluster(size, push, reap))).intervals.reap == reap


def test_relay_does_not_bound_reap() -> None:
    # The relayer carries news, not heartbeats: a relay longer than reap is slow, not wrong.
    raw = cluster(2, 1, 6)
    raw["intervals"]["relay"] = 600
    assert parse_config(json.dumps(raw)).intervals.relay == 600


def test_an_empty_folder_is_refused() -> None:
    raw = good()
    raw["peers"]["A"]["folder"] = ""
    assert error(raw) == 'config.json: peers.A.folder: expected a path, got ""'
    raw["peers"]["A"]["folder"] = "."  # the config's own directory, on purpose
    assert parse_config(json.dumps(raw), base=Path("/srv")).folder("A") == Path("/srv")


WILDCARD = "a wildcard address: every datagram from it would come from another address"


@pytest.mark.parametrize(
    ("host", "kind"),
    [
        ("0.0.0.0", "a wildcard address"),
        ("0", "a wildcard address"),
        ("0.0", "a wildcard address"),
        ("0x0", "a wildcard address"),
        ("000.000.000.000", "a wildcard address"),
        ("::", "a wildcard address"),
        ("::0", "a wildcard address"),
        ("0::", "a wildcard address"),
        ("0:0:0:0:0:0:0:0", "a wildcard address"),
        ("::%lo", "a wildcard address"),
        ("::ffff:0.0.0.0", "a wildcard address"),
        ("224.0.0.1", "a multicast address"),
        ("239.255.255.250", "a multicast address"),
        ("ff02::1", "a multicast address"),
        ("::ffff:224.0.0.1", "a multicast address"),
        ("255.255.255.255", "the broadcast address"),
        ("0xffffffff", "the broadcast address"),
    ],
)
def test_hosts_no_datagram_can_come_from(host: str, kind: str) -> None:
    raw = good()
    raw["peers"]["B"]["host"] = host
    assert error(raw) == (
        f'config.json: peers.B.host: expected an address the others can send to, got "{host}",'
        f" {kind}: every datagram from it would come from another address"
    )


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "::1",
        "10.0.0.255",
        "192.168.1.0",
        "127.1",
        "0.0.0.0 x",
        "zero",
        "::ffff:1.2.3.4",
    ],
)
def test_hosts_that_can_be_sent_to(host: str) -> None:
    raw = good()
    raw["peers"]["B"]["host"] = host
    assert parse_config(json.dumps(raw)).peers["B"].host == host


def test_a_name_that_resolves_to_a_wildcard(monkeypatch: pytest.MonkeyPatch) -> None:
    # As a hosts file line "0.0.0.0 blocked.example" would have it.
    real = socket.getaddrinfo

    def lookup(host: str, *args: Any, **kwargs: Any) -> Any:
        return real("0.0.0.0" if host == "blocked.example" else host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", lookup)
    raw = good()
    raw["peers"]["B"]["host"] = "blocked.example"
    with pytest.raises(ConfigError) as info:
        resolve_hosts(parse_config(json.dumps(raw)), "c.json")
    assert str(info.value) == (
        "c.json: peers.B.host: expected an address the others can send to,"
        f' got "blocked.example" (0.0.0.0), {WILDCARD}'
    )


@pytest.mark.parametrize(
    ("first", "second"),
    [
        ("127.0.0.1", "127.0.0.1"),
        ("::1", "0:0:0:0:0:0:0:1"),
        ("Gossip.Example", "gossip.example"),
    ],
)
def test_two_peers_on_one_address(first: str, second: str) -> None:
    raw = good()
    raw["peers"]["A"].update(host=first, port=9000)
    raw["peers"]["B"].update(host=second, port=9000)
    assert error(raw) == f"config.json: peers.B: same address as peer A ({second}:9000)"


def test_same_host_other_port_is_fine() -> None:
    raw = good()
    raw["peers"]["A"].update(host="::1", port=9000)
    raw["peers"]["B"].update(host="0::1", port=9001)
    assert parse_config(json.dumps(raw)).address("B") == ("0::1", 9001)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (1199, "expected 1200 to 65507 bytes, got 1199"),
        (65508, "expected 1200 to 65507 bytes, got 65508"),
        (0, "expected 1200 to 65507 bytes, got 0"),
        (-8192, "expected 1200 to 65507 bytes, got -8192"),
        (True, "expected an integer, got true"),
        (8192.0, "expected an integer, got 8192.0"),
    ],
)
def test_max_datagram_out_of_range(value: Any, expected: str) -> None:
    raw = {**good(), "max_datagram": value}
    assert error(raw) == f"config.json: max_datagram: {expected}"


@pytest.mark.parametrize("value", [1200, 65507])
def test_max_datagram_bounds_are_allowed(value: int) -> None:
    assert parse_config(json.dumps({**good(), "max_datagram": value})).max_datagram == value


@pytest.mark.parametrize("name", ["bad name", "", "x" * 65, "pèer", "a/b", "a:b"])
def test_bad_peer_names(name: str) -> None:
    raw = good()
    raw["peers"][name] = {"host": "127.0.0.1", "port": 9200}
    assert error(raw) == (
        f"config.json: peers.{name}: a peer's name is 1 to 64 of the characters A-Z a-z 0-9 _ . -"
    )


@pytest.mark.parametrize("name", ["x" * 64, "a.b-c_D9", "-", "."])
def test_good_peer_names(name: str) -> None:
    raw = good()
    raw["peers"][name] = {"host": "127.0.0.1", "port": 9200}
    assert name in parse_config(json.dumps(raw)).peers


@pytest.mark.parametrize("raw", ["[]", "3", "null", '"peers"'])
def test_not_an_object(raw: str) -> None:
    with pytest.raises(ConfigError) as info:
        parse_config(raw)
    assert str(info.value) == f"config.json: expected an object, got {raw}"


def test_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "nope.json"
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f"{path}: no such file"


def test_invalid_json(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"peers": {"A": }', encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert message.startswith(f"{path}: invalid JSON: Expecting value: line 1 column 17")
    assert "\n" not in message


def test_a_key_twice(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_text('{"peers": {"A": {"host": "127.0.0.1", "port": 1, "port": 2}}}')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f'{path}: invalid JSON: the key "port" twice'


def test_unreadable_file(tmp_path: Path) -> None:
    path = tmp_path / "config.json"
    path.write_bytes(b'{"peers": "\xff"}')
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value).startswith(f"{path}: cannot read: ")
    with pytest.raises(ConfigError) as info:
        load_config(tmp_path)  # a directory
    assert str(info.value).startswith(f"{tmp_path}: cannot read: ")


def test_errors_name_the_file(tmp_path: Path) -> None:
    path = tmp_path / "cluster.json"
    raw = good()
    raw["peers"]["B"]["port"] = "x"
    path.write_text(json.dumps(raw), encoding="utf-8")
    with pytest.raises(ConfigError) as info:
        load_config(path)
    assert str(info.value) == f'{path}: peers.B.port: expected an integer, got "x"'


def test_relative_folders_resolve_against_the_config_file(tmp_path: Path) -> None:
    raw = good()
    raw["peers"]["B"]["folder"] = str(tmp_path / "absolute")
    path = tmp_path / "etc" / "config.json"
    path.parent.mkdir()
    path.write_text(json.dumps(raw), encoding="utf-8")
    config = load_config(path)
    assert config.folder("A") == tmp_path / "etc" / "folders" / "A"
    assert config.folder("B") == tmp_path / "absolute"


def test_the_bundled_config_loads() -> None:
    config = load_config(BUNDLED)
    assert isinstance(config, Config)
    assert sorted(config.peers) == ["A", "B", "C"]
    assert config.folder("A") == BUNDLED.parent / "folders" / "A"
    assert config.intervals.scan == 2.0


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=6),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=6), inner),
    max_leaves=10,
)


@st.composite
def damaged_configs(draw: st.DrawFn) -> dict[str, Any]:
    """The good config with one value (anywhere) replaced by any JSON value."""
    raw = good()
    holder: dict[str, Any] = raw
    while True:
        key = draw(st.sampled_from(sorted(holder)))
        if type(holder[key]) is not dict or draw(st.booleans()):
            break
        holder = holder[key]
    holder[key] = draw(json_values)
    return raw


@given(damaged_configs())
def test_any_damage_is_a_config_or_one_config_error(raw: dict[str, Any]) -> None:
    try:
        parse_config(json.dumps(raw))
    except ConfigError as exc:
        message = str(exc)
        assert message.startswith("config.json: ")
        assert "\n" not in message


def test_base_is_not_a_key() -> None:
    # Config.base is where the file was read from; the file cannot set it.
    assert error({**good(), "base": "/etc"}) == "config.json: unknown key 'base'"


def test_resolved_hosts_must_still_be_distinct() -> None:
    raw = good()
    raw["peers"]["A"]["host"] = "localhost"
    raw["peers"]["B"] = {"host": "127.0.0.1", "port": 9101}
    config = parse_config(json.dumps(raw))  # different names: the file itself is fine
    with pytest.raises(ConfigError) as info:
        resolve_hosts(config, "c.json")
    assert str(info.value) == "c.json: peers.B: same address as peer A (127.0.0.1:9101)"


def test_resolving_names_the_file_and_the_host() -> None:
    raw = good()
    raw["peers"]["B"]["host"] = "no-such-host.invalid"
    with pytest.raises(ConfigError) as info:
        resolve_hosts(parse_config(json.dumps(raw)), "c.json")
    assert str(info.value).startswith("c.json: peers.B.host: cannot resolve 'no-such-host.invalid'")


# -- the cluster key: keys and key_file -----------------------------------------------

KEY_A = base64.b64encode(bytes(range(32))).decode()
KEY_B = base64.b64encode(bytes(range(16))).decode()
KEY_C = base64.b64encode(bytes(range(24))).decode()
SIZE = "expected a key of 16, 24 or 32 bytes, got"


def zeros(size: int) -> str:
    """A key of ``size`` zero bytes, as base64."""
    return base64.b64encode(bytes(size)).decode()


def test_no_key_means_an_empty_keyring() -> None:
    config = parse_config(json.dumps(good()))
    assert config.keyring == Keyring()
    assert config.keyring.overhead == 0


def test_keys() -> None:
    config = parse_config(json.dumps({**good(), "keys": [KEY_A, KEY_B, KEY_C]}))
    assert config.keyring.keys == (bytes(range(32)), bytes(range(16)), bytes(range(24)))
    # The first key seals: the other keys cannot open it, the first alone can.
    sealed = config.keyring.seal(b"hello")
    assert Keyring((bytes(range(32)),)).open_untrusted(sealed) == b"hello"
    with pytest.raises(BadDatagram):
        Keyring((bytes(range(16)),)).open_untrusted(sealed)


def test_key_file_resolves_against_the_config_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "etc" / "secret").mkdir(parents=True)
    (tmp_path / "etc" / "secret" / "cluster.keys").write_text(f"{KEY_B}\n{KEY_A}\n")
    path = tmp_path / "etc" / "config.json"
    path.write_text(json.dumps({**good(), "key_file": "secret/cluster.keys"}))
    (tmp_path / "elsewhere").mkdir()
    monkeypatch.chdir(tmp_path / "elsewhere")
    assert load_config(path).keyring.keys == (bytes(range(16)), bytes(range(32)))
    # Relative to the config file also when the config file is given relatively.
    monkeypatch.chdir(tmp_path)
    assert load_config(Path("etc/config.json")).keyring.keys[0] == bytes(range(16))
    # An absolute key_file is used as it is.
    absolute = {**good(), "key_file": str(tmp_path / "etc" / "secret" / "cluster.keys")}
    assert parse_config(json.dumps(absolute)).keyring.keys[1] == bytes(range(32))


def test_key_file_comments_blank_lines_and_spaces(tmp_path: Path) -> None:
    (tmp_path / "keys").write_text(
        f"# the cluster key: first one sends\r\n\n   \n  {KEY_C}  \r\n# old, going away\n{KEY_A}"
    )
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**good(), "key_file": "keys"}))
    assert load_config(path).keyring.keys == (bytes(range(24)), bytes(range(32)))


def key_error(tmp_path: Path, **keys: Any) -> str:
    """The one-line error of a config with ``keys``, read from a file in ``tmp_path``."""
    path = tmp_path / "config.json"
    path.write_text(json.dumps({**good(), **keys}))
    with pytest.raises(ConfigError) as info:
        load_config(path)
    message = str(info.value)
    assert "\n" not in message
    assert message.startswith(f"{path}: ")
    return message[len(f"{path}: ") :]


def test_keys_and_key_file_together(tmp_path: Path) -> None:
    (tmp_path / "keys").write_text(KEY_A)
    assert key_error(tmp_path, keys=[KEY_A], key_file="keys") == "give keys or key_file, not both"


@pytest.mark.parametrize(
    ("keys", "expected"),
    [
        ([KEY_A, zeros(10)], f"keys[1]: {SIZE} 10"),
        ([zeros(33)], f"keys[0]: {SIZE} 33"),
        ([KEY_A, "not base64!"], "keys[1]: expected a base64-encoded key"),
        ([KEY_A[:-1]], "keys[0]: expected a base64-encoded key"),  # padding lost in a copy
        ([KEY_A, KEY_B, ""], f"keys[2]: {SIZE} 0"),
        ([3], "keys[0]: expected a string, got a number"),
        ([[KEY_A]], "keys[0]: expected a string, got a list"),
        ([None], "keys[0]: expected a string, got null"),
        ([], "keys: expected at least one key"),
        (KEY_A, "keys: expected a list of base64 keys, got a string"),  # brackets forgotten
        ({"k": KEY_A}, "keys: expected a list of base64 keys, got an object"),
        (True, "keys: expected a list of base64 keys, got true"),
    ],
)
def test_bad_keys(tmp_path: Path, keys: Any, expected: str) -> None:
    message = key_error(tmp_path, keys=keys)
    assert message == expected
    assert KEY_A[:12] not in message  # never the key itself


def test_a_missing_key_file(tmp_path: Path) -> None:
    message = key_error(tmp_path, key_file="nope.keys")
    assert message == f"key_file: {tmp_path / 'nope.keys'}: no such file"


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (f"# cluster key\n\n{KEY_A}\nnot-base64\n", "line 4: expected a base64-encoded key"),
        (f"{zeros(20)}\n", f"line 1: {SIZE} 20"),
        (f"{KEY_A} {KEY_B}\n", "line 1: expected a base64-encoded key"),  # one key a line
        ("", "no keys in it"),
        ("# only a comment\n\n", "no keys in it"),
    ],
)
def test_bad_key_files(tmp_path: Path, text: str, expected: str) -> None:
    (tmp_path / "keys").write_text(text)
    message = key_error(tmp_path, key_file="keys")
    assert message == f"key_file: {tmp_path / 'keys'}: {expected}"
    assert KEY_A[:12] not in message


def test_unreadable_key_files(tmp_path: Path) -> None:
    (tmp_path / "dir").mkdir()
    assert key_error(tmp_path, key_file="dir") == (
        f"key_file: {tmp_path / 'dir'}: cannot read: Is a directory"
    )
    (tmp_path / "binary").write_bytes(b"\xff" + bytes(31))
    assert key_error(tmp_path, key_file="binary") == (
        f"key_file: {tmp_path / 'binary'}: cannot read: not UTF-8 text"
    )


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (3, "expected a string, got a number"),
        ("", 'expected a path, got ""'),
        ([], "expected a string, got a list"),
    ],
)
def test_key_file_is_a_path(tmp_path: Path, value: Any, expected: str) -> None:
    assert key_error(tmp_path, key_file=value) == f"key_file: {expected}"


def test_keyring_is_not_a_key() -> None:
    # Config.keyring is built from keys or key_file; the file cannot set it itself.
    assert error({**good(), "keyring": [KEY_A]}) == "config.json: unknown key 'keyring'"
    assert error({**good(), "key": KEY_A}) == "config.json: unknown key 'key'"


base64_texts = st.text(
    alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/=",
    min_size=12,
    max_size=60,
)


@given(st.lists(base64_texts | st.sampled_from([KEY_A, KEY_B]), max_size=4))
def test_key_material_never_shows(texts: list[str]) -> None:
    # Whatever the keys, good or bad: neither an error nor the config's repr quotes them.
    try:
        shown = repr(parse_config(json.dumps({**good(), "keys": texts})))
    except ConfigError as exc:
        shown = str(exc)
    for text in texts:
        assert text not in shown
