"""What importing costs: ``import trio_gossip`` resolves its public names on
first use (PEP 562), and ``python -m trio_gossip A`` imports what a running
peer uses, not the client, the page, the hooks or the in-memory network."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from ports import free_udp_ports

import trio_gossip

TIMEOUT = 30.0  # seconds one fresh interpreter may take

#: Modules a plain running peer never needs: asking a peer (--info, --find,
#: --watch), the embedding API and its view of members, the in-memory network,
#: hooks, the web page, --version's metadata, the cluster key's AES-GCM.
NOT_FOR_A_PEER = frozenset(
    {
        "trio_gossip.api",
        "trio_gossip.hooks",
        "trio_gossip.info",
        "trio_gossip.members",
        "trio_gossip.memory",
        "trio_gossip.render",
        "trio_gossip.watch",
        "trio_gossip.web",
        "importlib.metadata",
        "cryptography",
        "hypercorn",
        "starlette",
    }
)


def declared() -> dict[str, str]:
    """Each public name and the module it comes from, as the ``if TYPE_CHECKING:``
    imports of ``__init__.py`` (what mypy and IDEs see) say."""
    tree = ast.parse(Path(trio_gossip.__file__).read_text(encoding="utf-8"))
    block = next(
        node
        for node in tree.body
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING"
    )
    owners = {}
    for node in block.body:
        assert isinstance(node, ast.ImportFrom), ast.unparse(node)
        assert node.level == 1 and node.module is not None, ast.unparse(node)
        for alias in node.names:
            assert alias.asname is None, ast.unparse(node)
            owners[alias.name] = f"trio_gossip.{node.module}"
    return owners


def modules_after(code: str) -> dict[str, Any]:
    """Run ``code`` in a fresh interpreter; it prints a JSON object, to which
    this adds ``modules``: every module imported by then."""
    script = "\n".join(
        ["import json, sys", code, "print(json.dumps({**out, 'modules': sorted(sys.modules)}))"]
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        timeout=TIMEOUT,
        check=True,
    )
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def ours(modules: list[str]) -> list[str]:
    return [m for m in modules if m == "trio_gossip" or m.startswith("trio_gossip.")]


def test_all_lists_each_name_once_and_only_the_declared_ones() -> None:
    assert len(trio_gossip.__all__) == len(set(trio_gossip.__all__))
    assert set(trio_gossip.__all__) == set(declared())


@pytest.mark.parametrize(("name", "module"), sorted(declared().items()))
def test_each_public_name_is_its_modules_object(name: str, module: str) -> None:
    assert getattr(trio_gossip, name) is getattr(importlib.import_module(module), name)


def test_a_star_import_gives_every_public_name() -> None:
    namespace: dict[str, object] = {}
    exec("from trio_gossip import *", namespace)
    assert set(namespace) - {"__builtins__"} == set(trio_gossip.__all__)


def test_an_unknown_name_is_an_attribute_error() -> None:
    with pytest.raises(AttributeError, match="has no attribute 'no_such_name'"):
        _ = trio_gossip.no_such_name  # type: ignore[attr-defined]
    assert not hasattr(trio_gossip, "open_peers")


def test_importing_the_package_imports_none_of_its_modules() -> None:
    out = modules_after("import trio_gossip\nout = {'dir': dir(trio_gossip)}")
    assert ours(out["modules"]) == ["trio_gossip"]
    # dir() lists the names without importing them.
    assert set(trio_gossip.__all__) <= set(out["dir"])
    assert "__version__" in out["dir"]


def test_a_name_imports_its_module_and_what_that_needs_only() -> None:
    out = modules_after("import trio_gossip\ntrio_gossip.Entry\nout = {}")
    assert ours(out["modules"]) == ["trio_gossip", "trio_gossip.state"]
    out = modules_after("import trio_gossip\ntrio_gossip.Peer\nout = {}")
    assert "trio_gossip.peer" in out["modules"]
    for client_only in ("info", "render", "watch", "memory", "api"):
        assert f"trio_gossip.{client_only}" not in out["modules"]


def test_the_command_line_imports_what_a_peer_runs_only() -> None:
    out = modules_after("import trio_gossip.cli\nout = {}")  # what __main__ imports
    modules = set(out["modules"])
    assert {"trio_gossip.cli", "trio_gossip.peer", "trio_gossip.udp"} <= modules
    assert not NOT_FOR_A_PEER & modules


@pytest.mark.slow
@pytest.mark.parametrize(
    ("args", "hooks"), [([], False), (["--on-change", "true"], True)], ids=["plain", "on-change"]
)
def test_a_started_peer_has_imported_what_it_runs_only(
    tmp_path: Path, args: list[str], hooks: bool
) -> None:
    ports = free_udp_ports(2)  # B is not running: A idles alone
    config = {
        "peers": {
            name: {"host": "127.0.0.1", "port": port, "folder": name}
            for name, port in zip("AB", ports, strict=True)
        }
    }
    (tmp_path / "config.json").write_text(json.dumps(config))
    # The peer's own log line says when it has started: then SIGTERM, its usual stop.
    code = f"""
import logging, os, signal
from trio_gossip import cli

class Started(logging.Handler):
    def emit(self, record):
        if " started on " in record.getMessage():
            os.kill(os.getpid(), signal.SIGTERM)

logging.getLogger("trio_gossip").addHandler(Started())
config = {str(tmp_path / "config.json")!r}
out = {{"status": cli.main(["A", "--config", config, *{args!r}])}}
"""
    out = modules_after(code)
    assert out["status"] == 0
    modules = set(out["modules"])
    assert {"trio_gossip.node", "trio_gossip.scanner", "trio_gossip.udp"} <= modules
    assert ("trio_gossip.hooks" in modules) == hooks
    assert not (NOT_FOR_A_PEER - {"trio_gossip.hooks"}) & modules
