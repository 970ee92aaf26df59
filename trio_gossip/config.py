"""The cluster's configuration: ``config.json``, read strictly.

Every mistake becomes one :class:`ConfigError` whose message names the file,
the key and the problem, e.g. ``config.json: peers.B.port: expected an integer,
got "x"``. Messages about the cluster key (``keys``, ``key_file``) never
quote what they refuse: it may be a key.
"""

from __future__ import annotations

import functools
import ipaddress
import json
import math
import re
import socket
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Final

import attrs
import cattrs
from cattrs.gen import make_dict_structure_fn, override
from cattrs.preconf.json import make_converter

from .codec import unique_keys
from .keyring import Keyring, parse_key
from .limits import MAX_DATAGRAM, MAX_NAME, MIN_DATAGRAM

__all__ = [
    "Config",
    "ConfigError",
    "Intervals",
    "PeerConfig",
    "http_problem",
    "load_config",
    "min_reap_rounds",
    "parse_config",
    "parse_http",
    "resolve_hosts",
]

DEFAULT_MAX_DATAGRAM: Final = 8_192
MIN_MAX_DATAGRAM: Final = MIN_DATAGRAM
_NAME = re.compile(rf"[A-Za-z0-9_.-]{{1,{MAX_NAME}}}")


class ConfigError(Exception):
    """A configuration that cannot be used; the message is one line for the user."""


@attrs.frozen
class PeerConfig:
    """Where one peer listens, and the folder it shares (``None``: a new random one)."""

    host: str
    port: int
    folder: str | None = None


@attrs.frozen
class Intervals:
    """Seconds: how often to rescan, push and relay, and when to reap a silent peer."""

    scan: float = 30.0
    push: float = 1.0
    relay: float = 1.0
    reap: float = 300.0


@attrs.frozen
class Config:
    """A whole cluster: every peer by name, the intervals, the datagram limit
    and the cluster key."""

    peers: Mapping[str, PeerConfig]
    intervals: Intervals = Intervals()
    max_datagram: int = DEFAULT_MAX_DATAGRAM
    #: Watch each folder for changes and rescan at once (``scan`` stays as the safety net).
    watch: bool = True
    #: A shell command run for each event, with the event as JSON on its stdin.
    on_change: str | None = None
    #: The directory relative folders (and ``key_file``) resolve against.
    base: Path = attrs.field(default=Path("."), eq=False)
    #: From the file's ``keys`` or ``key_file``; empty: datagrams travel in clear.
    keyring: Keyring = attrs.field(factory=Keyring)
    #: Where a peer serves its web page (host, port), from ``http``; ``None``: nowhere.
    http: tuple[str, int] | None = None
    #: With a cluster key, serve the page on an address that is not loopback anyway.
    http_public: bool = False

    def address(self, name: str) -> tuple[str, int]:
        return self.addresses[name]

    @functools.cached_property
    def addresses(self) -> Mapping[str, tuple[str, int]]:
        """Each peer's (host, port) by name, made once: the peers of one
        process (``--all``) share it instead of a copy per peer."""
        return {name: (peer.host, peer.port) for name, peer in self.peers.items()}

    @functools.cached_property
    def by_address(self) -> Mapping[tuple[str, int], str]:
        """Each peer's name by its (host, port), made once like :attr:`addresses`."""
        return {address: name for name, address in self.addresses.items()}

    def folder(self, name: str) -> Path | None:
        folder = self.peers[name].folder
        return None if folder is None else self.base / folder


def _describe(value: Any) -> str:
    return json.dumps(value)[:40]


def _strict(kind: type, label: str) -> Any:
    def hook(value: Any, _: Any) -> Any:
        if type(value) is not kind:
            raise ValueError(f"expected {label}, got {_describe(value)}")
        return value

    return hook


def _seconds(value: Any, _: Any) -> float:
    if type(value) not in (int, float) or not math.isfinite(value) or value <= 0:
        raise ValueError(f"expected a positive number of seconds, got {_describe(value)}")
    return float(value)


def _mapping(value: Any, _: Any) -> Mapping[str, PeerConfig]:
    if type(value) is not dict:
        raise ValueError(f"expected an object, got {_describe(value)}")
    return {name: _converter.structure(peer, PeerConfig) for name, peer in value.items()}


_converter = make_converter(forbid_extra_keys=True)


def _object_first(cls: type) -> Any:
    """attrs classes: say "expected an object" before cattrs looks for keys."""
    # ``Config.base`` is where the file was, and ``Config.keyring`` is built from
    # ``keys`` or ``key_file`` (see ``_keyring``): neither is a key in the file.
    # ``http`` is read by hand too (``parse_http``): a port or a string.
    omit: dict[str, Any] = (
        {k: override(omit=True) for k in ("base", "keyring", "http")} if cls is Config else {}
    )
    inner: Any = make_dict_structure_fn(cls, _converter, _cattrs_forbid_extra_keys=True, **omit)

    def hook(value: Any, _: Any) -> Any:
        if type(value) is not dict:
            raise ValueError(f"expected an object, got {_describe(value)}")
        return inner(value, cls)

    return hook


_converter.register_structure_hook_factory(attrs.has, _object_first)
_converter.register_structure_hook(int, _strict(int, "an integer"))
_converter.register_structure_hook(str, _strict(str, "a string"))
_converter.register_structure_hook(bool, _strict(bool, "true or false"))
_converter.register_structure_hook(float, _seconds)


def _path(exc: BaseException) -> tuple[str, str]:
    """The dotted path and message of the first error inside a cattrs error."""
    path: list[str] = []
    while isinstance(exc, cattrs.BaseValidationError):
        inner = exc.exceptions[0]
        for note in getattr(inner, "__notes__", []):
            if note.startswith("Structuring class") and "@ attribute " in note:
                path.append(note.rsplit("@ attribute ", 1)[1])
                break
            if "@ key " in note:
                path.append(note.rsplit("@ key ", 1)[1])
                break
        exc = inner
    if isinstance(exc, cattrs.ForbiddenExtraKeysError):
        return ".".join(path), f"unknown key {sorted(exc.extra_fields)[0]!r}"
    if isinstance(exc, KeyError):
        return ".".join(path), "missing"
    return ".".join(path), str(exc)


def parse_config(text: str, where: str = "config.json", base: Path = Path(".")) -> Config:
    """A :class:`Config` from JSON text, or :class:`ConfigError` naming ``where``."""

    def fail(path: str, message: str) -> ConfigError:
        return ConfigError(f"{where}: {path}: {message}" if path else f"{where}: {message}")

    try:
        raw = json.loads(text, object_pairs_hook=unique_keys)
    except ValueError as exc:
        raise fail("", f"invalid JSON: {exc}") from None
    if type(raw) is not dict:
        raise fail("", f"expected an object, got {_describe(raw)}")
    # ``keys`` and ``key_file`` are read by hand: cattrs's messages quote what they refuse.
    key_source = {k: raw.pop(k) for k in _KEY_SOURCES if k in raw}
    http = raw.pop("http", None)
    if "peers" in raw:
        # Per-peer errors name the peer: structure them one by one.
        peers = raw["peers"]
        if type(peers) is not dict:
            raise fail("peers", f"expected an object, got {_describe(peers)}")
        for name, peer in peers.items():
            try:
                _converter.structure(peer, PeerConfig)
            except Exception as exc:  # noqa: BLE001 -- reduced to one line below
                where_in, message = _path(exc)
                sub = f"peers.{name}" + (f".{where_in}" if where_in else "")
                raise fail(sub, message) from None
    try:
        config = _converter.structure(raw, Config)
    except Exception as exc:  # noqa: BLE001 -- reduced to one line below
        raise fail(*_path(exc)) from None
    config = attrs.evolve(config, base=base)
    _validate(config, fail)
    config = attrs.evolve(config, keyring=_keyring(key_source, base, fail))
    if http is not None:
        try:
            address = parse_http(http)
        except ValueError as exc:
            raise fail("http", str(exc)) from None
        config = attrs.evolve(config, http=address)
        problem = http_problem(config, address[0])
        if problem:
            raise fail("http", problem)
    return config


def parse_http(value: object) -> tuple[str, int]:
    """Where to serve the web page: a port (on loopback), or ``"[HOST:]PORT"``
    (``"8080"``, ``"0.0.0.0:8080"``, ``"[::1]:8080"``); port 0 is any free
    port. :class:`ValueError` with a one-line message otherwise."""
    expected = 'expected a port or "HOST:PORT"'
    if type(value) is int:
        host, port = "127.0.0.1", value
    elif type(value) is str:
        host, _, digits = value.rpartition(":")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
        elif ":" in host:  # an IPv6 address goes in brackets, as in a URL
            raise ValueError(f"{expected}, got {_describe(value)}: write [{host}]:{digits}")
        if not digits.isascii() or not digits.isdigit() or (":" in value and not host):
            raise ValueError(f"{expected}, got {_describe(value)}")
        host, port = host or "127.0.0.1", int(digits)
    else:
        raise ValueError(f"{expected}, got {_describe(value)}")
    if not 0 <= port < 65536:
        raise ValueError(f"expected a port from 0 to 65535, got {port}")
    return host, port


def is_loopback(host: str) -> bool:
    """Whether ``host`` is a loopback address (or ``localhost``): reachable
    from this machine only."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False  # a host name: it may well resolve to a public address


def http_problem(config: Config, host: str) -> str | None:
    """Why ``config`` may not serve the web page on ``host``, or ``None``."""
    if config.keyring.keys and not config.http_public and not is_loopback(host):
        return (
            f"{host} is not a loopback address: with a cluster key the page, "
            'which shows every file name, is served there only with "http_public": true'
        )
    return None


_KEY_SOURCES: Final = ("keys", "key_file")


def _kind(value: Any) -> str:
    """A JSON value's type, never the value: a misplaced value may be a key."""
    if value is None or type(value) is bool:
        return json.dumps(value)
    names = {str: "a string", int: "a number", float: "a number", list: "a list"}
    return names.get(type(value), "an object")


def _keyring(source: Mapping[str, Any], base: Path, fail: Any) -> Keyring:
    """The keyring of ``keys`` or ``key_file``; empty if neither is given."""
    if len(source) > 1:
        raise fail("", "give keys or key_file, not both")
    if "keys" in source:
        texts = source["keys"]
        if type(texts) is not list:
            raise fail("keys", f"expected a list of base64 keys, got {_kind(texts)}")
        if not texts:
            # Surely a mistake: leaving ``keys`` out is how to send in clear.
            raise fail("keys", "expected at least one key")
        numbered = [(f"keys[{i}]", text) for i, text in enumerate(texts)]
    elif "key_file" in source:
        path = _key_file_path(source["key_file"], base, fail)
        numbered = [(f"key_file: {path}: line {n}", t) for n, t in _key_lines(path, fail)]
        if not numbered:
            raise fail("key_file", f"{path}: no keys in it")
    else:
        return Keyring()
    keys = []
    for label, text in numbered:
        if type(text) is not str:
            raise fail(label, f"expected a string, got {_kind(text)}")
        try:
            keys.append(parse_key(text))
        except ValueError as exc:
            raise fail(label, str(exc)) from None
    return Keyring(tuple(keys))


def _key_file_path(name: Any, base: Path, fail: Any) -> Path:
    if type(name) is not str:
        raise fail("key_file", f"expected a string, got {_kind(name)}")
    if not name:
        raise fail("key_file", 'expected a path, got ""')
    return base / name  # an absolute name stays as it is


def _key_lines(path: Path, fail: Any) -> list[tuple[int, str]]:
    """Numbered key lines of a key file: blank lines and ``#`` comments left out."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise fail("key_file", f"{path}: no such file") from None
    except UnicodeDecodeError:
        raise fail("key_file", f"{path}: cannot read: not UTF-8 text") from None
    except OSError as exc:
        raise fail("key_file", f"{path}: cannot read: {exc.strerror or exc}") from None
    lines = [(n, line.strip()) for n, line in enumerate(text.splitlines(), 1)]
    return [(n, line) for n, line in lines if line and not line.startswith("#")]


def _validate(config: Config, fail: Any) -> None:
    if len(config.peers) < 2:
        raise fail("peers", "at least two peers are needed to gossip")
    for name, peer in config.peers.items():
        if not _NAME.fullmatch(name):
            raise fail(
                f"peers.{name}",
                f"a peer's name is 1 to {MAX_NAME} of the characters A-Z a-z 0-9 _ . -",
            )
        if not 0 < peer.port < 65536:
            raise fail(f"peers.{name}.port", f"expected a port from 1 to 65535, got {peer.port}")
        if not peer.host:
            raise fail(f"peers.{name}.host", 'expected a host name or address, got ""')
        kind = _not_a_destination(_literal_address(peer.host))
        if kind:
            raise fail(f"peers.{name}.host", _unreachable(_describe(peer.host), kind))
        if peer.folder == "":
            # Not the config's directory by accident: "." says so on purpose.
            raise fail(f"peers.{name}.folder", 'expected a path, got ""')
    _distinct(config, _normal_host, fail)
    if not MIN_MAX_DATAGRAM <= config.max_datagram <= MAX_DATAGRAM:
        raise fail(
            "max_datagram",
            f"expected {MIN_MAX_DATAGRAM} to {MAX_DATAGRAM} bytes, got {config.max_datagram}",
        )
    _check_reap(config, fail)


def min_reap_rounds(peers: int) -> int:
    """The fewest push intervals ``reap`` may be, in a cluster of ``peers``.

    A live peer's heartbeat reaches every other peer in about log2 N push
    rounds: in simulations of 2 to 100 peers the stalest it got anywhere was
    under log2 N + 1.5 rounds without loss, under log2 N + 4.5 with a fifth
    of the datagrams lost. A shorter ``reap`` reaps live peers over and over (see
    ``docs/configuration.md``).
    """
    return math.ceil(math.log2(peers)) + 5


def _check_reap(config: Config, fail: Any) -> None:
    intervals = config.intervals
    rounds = min_reap_rounds(len(config.peers))
    least = rounds * intervals.push
    # ``math.isclose``: 0.9 s is nine pushes of 0.1 s, though 9 * 0.1 > 0.9.
    if intervals.reap < least and not math.isclose(intervals.reap, least):
        raise fail(
            "intervals.reap",
            f"expected at least {rounds} push intervals ({least:g} s) with"
            f" {len(config.peers)} peers, got {intervals.reap:g} s: a live peer's heartbeat"
            " needs a few push rounds to reach every peer, and a shorter reap reaps live peers",
        )


def _literal_address(host: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """The address ``host`` spells, if it is one, in any spelling the system
    takes (``0`` and ``0x0`` are 0.0.0.0 to ``getaddrinfo``); ``None`` for a name."""
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        pass
    # inet_aton's old forms, and only them: it also takes "0.0.0.0 junk", a name.
    if _OLD_IPV4.fullmatch(host):
        try:
            return ipaddress.IPv4Address(socket.inet_aton(host))
        except OSError:
            pass
    return None


_OLD_IPV4 = re.compile(r"[0-9A-Fa-fXx.]+")


def _not_a_destination(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address | None,
) -> str:
    """What kind of address ``address`` is if no datagram can come from it
    (a wildcard, multicast or broadcast address); ``""`` if it is fine."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped  # ::ffff:0.0.0.0 binds as 0.0.0.0 does
    if address is None:
        return ""
    if address.is_unspecified:
        return "a wildcard address"
    if address.is_multicast:
        return "a multicast address"
    if address == ipaddress.IPv4Address("255.255.255.255"):
        return "the broadcast address"
    return ""


def _unreachable(shown: str, kind: str) -> str:
    return (
        f"expected an address the others can send to, got {shown}, {kind}:"
        " every datagram from it would come from another address"
    )


def _distinct(config: Config, normal: Callable[[str], str], fail: Any) -> None:
    seen: dict[tuple[str, int], str] = {}
    for name, peer in config.peers.items():
        address = (normal(peer.host), peer.port)
        if address in seen:
            where = f"{peer.host}:{peer.port}"
            raise fail(f"peers.{name}", f"same address as peer {seen[address]} ({where})")
        seen[address] = name


def resolve_hosts(config: Config, where: str = "config.json") -> Config:
    """The config with every host name resolved to an address, so that a
    datagram's source can be matched to its peer. Blocking (DNS)."""

    def fail(path: str, message: str) -> ConfigError:
        return ConfigError(f"{where}: {path}: {message}")

    peers = {}
    for name, peer in config.peers.items():
        try:
            info = socket.getaddrinfo(peer.host, peer.port, type=socket.SOCK_DGRAM)
        except OSError as exc:
            raise fail(f"peers.{name}.host", f"cannot resolve {peer.host!r}: {exc}") from None
        address = str(info[0][4][0])
        # A name can stand for a wildcard too (a hosts file's "0.0.0.0 name").
        kind = _not_a_destination(_literal_address(address))
        if kind:
            shown = f"{_describe(peer.host)} ({address})"
            raise fail(f"peers.{name}.host", _unreachable(shown, kind))
        peers[name] = attrs.evolve(peer, host=address)
    resolved = attrs.evolve(config, peers=peers)
    _distinct(resolved, str, fail)  # "localhost" and "127.0.0.1" are one address
    return resolved


def _normal_host(host: str) -> str:
    try:
        return str(ipaddress.ip_address(host))
    except ValueError:
        return host.lower()


def load_config(path: Path) -> Config:
    """Read and check the config file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError(f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{path}: cannot read: {exc}") from None
    return parse_config(text, str(path), path.parent)
