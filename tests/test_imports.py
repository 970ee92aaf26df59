"""What importing costs: ``import trio_gossip`` resolves its public names on
first use (PEP 562), so a process imports only the modules it uses."""

from __future__ import annotations

import ast
import importlib
import json
import subprocess
import sys
from pathlib import Path

import pytest

import trio_gossip

TIMEOUT = 30.0  # seconds one fresh interpreter may take


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


def modules_after(code: str) -> dict[str, list[str]]:
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
    result: dict[str, list[str]] = json.loads(done.stdout)
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
