"""The entry layer (shared/entry/) is the composition root and its handlers: short functions,
few positional parameters, and the only layer that climbs back into nothing. function_app.py
only wires triggers to it. Read from the source (AST): nothing is imported or run."""

from __future__ import annotations

import ast
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[3]
ENTRY = REPO_ROOT / "shared" / "entry"
WIRED = sorted([REPO_ROOT / "function_app.py", *ENTRY.glob("*.py")])
MAX_LINES = 60
MAX_POSITIONAL = 4


def _functions(path: Path) -> Iterator[ast.FunctionDef | ast.AsyncFunctionDef]:
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            yield node


def _imports(path: Path) -> set[str]:
    """Every absolute module an import statement names, lazy imports included."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names |= {node.module, *(f"{node.module}.{alias.name}" for alias in node.names)}
    return names


@pytest.mark.parametrize("path", WIRED, ids=lambda p: str(p.relative_to(REPO_ROOT)))
def test_every_function_is_short_with_at_most_four_positional_parameters(path: Path) -> None:
    too_long, too_many = [], []
    for function in _functions(path):
        lines = (function.end_lineno or function.lineno) - function.lineno + 1
        if lines > MAX_LINES:
            too_long.append(f"{function.name}: {lines} lines")
        positional = [*function.args.posonlyargs, *function.args.args]
        names = [arg.arg for arg in positional if arg.arg not in ("self", "cls")]
        if len(names) > MAX_POSITIONAL:
            too_many.append(f"{function.name}: {', '.join(names)}")
    assert (too_long, too_many) == ([], [])


def test_the_old_catch_all_module_is_gone_and_nobody_imports_it() -> None:
    assert not (ENTRY / "relay.py").exists() and not (ENTRY / "heartbeat.py").exists()
    sources = [REPO_ROOT / "function_app.py", *(REPO_ROOT / "shared").rglob("*.py")]
    sources += [*(REPO_ROOT / "tests").rglob("*.py"), *(REPO_ROOT / "bench").rglob("*.py")]
    sources += [*(REPO_ROOT / "devhost").rglob("*.py")]
    gone = ("shared.entry.relay", "shared.entry.heartbeat")
    importers = [
        str(path.relative_to(REPO_ROOT))
        for path in sources
        if any(name.startswith(gone) for name in _imports(path))
    ]
    assert importers == []


@pytest.mark.parametrize("layer", ["domain", "delivery"])
def test_inner_layers_never_import_the_entry_layer(layer: str) -> None:
    """Following a Halo body goes entry -> domain -> delivery -> adapters and never back."""
    climbing = {
        str(path.relative_to(REPO_ROOT)): sorted(
            name for name in _imports(path) if name.startswith("shared.entry")
        )
        for path in (REPO_ROOT / "shared" / layer).rglob("*.py")
    }
    assert {path: names for path, names in climbing.items() if names} == {}


def test_the_entry_layer_imports_no_operator_command() -> None:
    """ops may use entry (preview reads the request limits); entry never loads ops."""
    offenders = {
        str(path.relative_to(REPO_ROOT)): sorted(
            name for name in _imports(path) if name.startswith(("shared.ops", "shared.__main__"))
        )
        for path in ENTRY.glob("*.py")
    }
    assert {path: names for path, names in offenders.items() if names} == {}


def test_function_app_only_wires_the_entry_layer() -> None:
    """The app names its handlers in shared.entry and the queue names; the rest of shared/
    (domain, delivery, adapters) is reached only through the entry layer."""
    ours = {name for name in _imports(REPO_ROOT / "function_app.py") if name.startswith("shared")}
    outside = {
        name
        for name in ours
        if not name.startswith("shared.entry")
        and not name.startswith("shared.delivery.outbox")
        and name != "shared.delivery"
    }
    assert outside == set()
