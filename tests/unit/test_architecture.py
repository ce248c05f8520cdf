"""The rules of the house, read from the source: imports point inward (domain <- delivery <- entry),
only the ledger writes table rows, functions stay short, every module says what it holds, and every
path the code and docs cite exists. Each rule has a KNOWN_OFFENDERS list that can only shrink."""

from __future__ import annotations

import ast
import io
import re
import tokenize
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = REPO_ROOT / "shared"
SOURCES = sorted(SHARED.rglob("*.py"))

# --- rule 1: imports point inward ------------------------------------------------------------

# The base modules every layer may use; they import no layer themselves.
BASE = (
    "shared.settings",
    "shared.setting_json",
    "shared.errors",
    "shared.redaction",
    "shared.timing",
)
PACKAGE = "shared"  # `from shared import TIMING, __version__`: the package itself (exact match)
ANY = "shared."  # every module of ours

# Layer -> the modules of ours it may import (a prefix allows its sub-modules).
ALLOWED: dict[str, tuple[str, ...]] = {
    "base": (*BASE, PACKAGE),
    "domain": (*BASE, PACKAGE, "shared.domain"),
    # The ports' types only: which store and which clients stand behind them is entry's choice.
    "delivery": (
        *BASE,
        PACKAGE,
        "shared.domain",
        "shared.delivery",
        "shared.adapters.store",
        "shared.adapters.sender",
        "shared.adapters.ticket_source",
    ),
    "adapters": (*BASE, PACKAGE, "shared.domain", "shared.adapters"),
    # The composition root wires ledger + adapters + clients; it never needs an operator command.
    "entry": (
        *BASE,
        PACKAGE,
        "shared.domain",
        "shared.delivery",
        "shared.adapters",
        "shared.entry",
    ),
    "ops": (PACKAGE, ANY),  # operator commands may use anything
    "cli": (PACKAGE, ANY),  # shared/__main__.py, the operator CLI over ops
}

KNOWN_IMPORT_OFFENDERS: dict[tuple[str, str], str] = {
}

# Imports across the layers that are the design, not debt. Settings reads RELAY_ROUTES into the
# domain's routing model (Routes, parse_routes): the model belongs with the rules it describes,
# and routing imports only setting_json, so the base never reaches back into anything that
# imports it.
BY_DESIGN: dict[tuple[str, str], str] = {
    ("shared/settings.py", "shared.domain.routing"): "settings read RELAY_ROUTES as routing's model",
}


@dataclass(frozen=True)
class Import:
    path: str  # repository path of the importing file
    line: int
    target: str  # the module of ours it names


def module_of(path: Path, root: Path = REPO_ROOT) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _is_module(dotted: str) -> bool:
    base = REPO_ROOT.joinpath(*dotted.split("."))
    return base.with_suffix(".py").is_file() or (base / "__init__.py").is_file()


def _targets(node: ast.AST, package: str) -> list[str]:
    """The modules an import statement names: `from a import b` names a.b when b is a module."""
    if isinstance(node, ast.Import):
        return [alias.name for alias in node.names]
    if not isinstance(node, ast.ImportFrom):
        return []
    if node.level:  # relative: resolve against the importing package
        anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
        module = ".".join([*anchor, *([node.module] if node.module else [])])
    else:
        module = node.module or ""
    subs = [f"{module}.{a.name}" for a in node.names if _is_module(f"{module}.{a.name}")]
    return subs if len(subs) == len(node.names) else [module, *subs]


def imports_of(path: Path, root: Path = REPO_ROOT) -> Iterator[Import]:
    """Every import of ours in a file, at any depth (imports inside functions too)."""
    rel = path.relative_to(root).as_posix()
    module = module_of(path, root)
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        for target in _targets(node, package):
            if target == "shared" or target.startswith("shared."):
                yield Import(rel, node.lineno, target)


def layer_of(module: str) -> str:
    """`shared.<layer>.x` -> layer; the top-level modules are the base; __main__ is the CLI."""
    parts = module.split(".")
    if module == "shared.__main__":
        return "cli"
    if len(parts) > 2 or (len(parts) == 2 and _is_module(module) and (SHARED / parts[1]).is_dir()):
        return parts[1]
    return "base"


def allows(layer: str, target: str) -> bool:
    """Whether `layer` may import `target`: an entry allows itself and its sub-modules."""
    for prefix in ALLOWED[layer]:
        if target == prefix or (prefix != PACKAGE and target.startswith(prefix.rstrip(".") + ".")):
            return True
    return False


def import_violations(paths: list[Path], root: Path = REPO_ROOT) -> dict[tuple[str, str], str]:
    """(file, imported module) -> "file:line imports module (layer may not)" for each break."""
    found: dict[tuple[str, str], str] = {}
    for path in paths:
        layer = layer_of(module_of(path, root))
        for imp in imports_of(path, root):
            if not allows(layer, imp.target):
                key = (imp.path, imp.target)
                found.setdefault(
                    key, f"{imp.path}:{imp.line} imports {imp.target} ({layer} may not)"
                )
    return found


def test_every_module_has_a_layer_in_the_table() -> None:
    layers = {layer_of(module_of(path)) for path in SOURCES}
    assert layers == set(ALLOWED), layers
    assert layer_of("shared.settings") == "base" and layer_of("shared.domain") == "domain"
    assert layer_of("shared.ops.halo_setup") == "ops" and layer_of("shared.__main__") == "cli"


def _probe(root: Path, rel: str, text: str) -> Path:
    """A module written under a scratch repository root, never into the real shared/."""
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_imports_are_read_at_any_depth_and_resolved_to_modules(tmp_path: Path) -> None:
    probe = _probe(
        tmp_path,
        "shared/domain/probe.py",
        "from shared.domain import alert as signl4\n"
        "from shared import TIMING\n"
        "import json\n"
        "def later():\n"
        "    from shared.adapters.signl4 import send_event\n"
        "    from . import policy\n",
    )
    found = sorted((imp.line, imp.target) for imp in imports_of(probe, tmp_path))
    assert found == [
        (1, "shared.domain.alert"),
        (2, "shared"),
        (5, "shared.adapters.signl4"),
        (6, "shared.domain.policy"),
    ]


def test_the_table_says_who_may_import_what() -> None:
    assert allows("domain", "shared.settings") and allows("domain", "shared")
    assert not allows("domain", "shared.delivery.ledger")
    assert not allows("domain", "shared.adapters.store")
    assert allows("delivery", "shared.adapters.store")
    assert allows("delivery", "shared.adapters.ticket_source")
    assert not allows("delivery", "shared.adapters.halo")
    assert not allows("delivery", "shared.adapters.table_sdk")
    assert not allows("delivery", "shared.entry.timers") and not allows("delivery", "shared.ops")
    assert not allows("adapters", "shared.delivery.ledger")
    assert not allows("adapters", "shared.entry.health")
    assert allows("entry", "shared.delivery.ledger") and allows("entry", "shared.adapters.halo")
    assert not allows("entry", "shared.ops.check")
    assert allows("ops", "shared.entry.health") and allows("cli", "shared.ops.check")
    assert not allows("base", "shared.domain.routing")
    # Only the composition root (and operator commands) may hold ledger and clients together.
    wiring = {
        layer
        for layer in ALLOWED
        if allows(layer, "shared.delivery.ledger") and allows(layer, "shared.adapters.signl4")
    }
    assert wiring == {"entry", "ops", "cli"}


def test_imports_point_inward() -> None:
    found = import_violations(SOURCES)
    allowed = {**KNOWN_IMPORT_OFFENDERS, **BY_DESIGN}
    new = [message for key, message in sorted(found.items()) if key not in allowed]
    assert new == [], "\n".join(new)


def test_a_violation_names_file_line_and_import(tmp_path: Path) -> None:
    """The message a newcomer reads: which file, which line, which import, which layer."""
    text = '"""Probe."""\n\n\ndef f():\n    from shared.entry import timers\n'
    probe = _probe(tmp_path, "shared/domain/probe.py", text)
    assert list(import_violations([probe], tmp_path).values()) == [
        "shared/domain/probe.py:5 imports shared.entry.timers (domain may not)"
    ]


# --- rule 1b: only the ledger (and the stores) touch table rows ------------------------------

STORE_CALL = re.compile(r"\.store\.(commit|read)\(")
ROW_WRITERS = ("shared/delivery/ledger.py", "shared/adapters/")
KNOWN_STORE_OFFENDERS: dict[str, str] = {
}


def store_calls(paths: list[Path], root: Path = REPO_ROOT) -> dict[str, list[str]]:
    """File -> "file:line: code" for every `.store.commit(`/`.store.read(` outside the ledger."""
    found: dict[str, list[str]] = {}
    for path in paths:
        rel = path.relative_to(root).as_posix()
        if rel.startswith(ROW_WRITERS):
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), 1):
            if STORE_CALL.search(line):
                found.setdefault(rel, []).append(f"{rel}:{number}: {line.strip()}")
    return found


def test_only_the_ledger_reads_and_writes_table_rows() -> None:
    found = store_calls(SOURCES)
    new = [
        hit
        for rel, hits in sorted(found.items())
        if rel not in KNOWN_STORE_OFFENDERS
        for hit in hits
    ]
    assert new == [], "\n".join(new)


def test_a_row_written_outside_the_ledger_is_named(tmp_path: Path) -> None:
    text = "def f(ledger, key):\n    return ledger.store.read(key)\n"
    outside = _probe(tmp_path, "shared/delivery/probe.py", text)
    inside = _probe(tmp_path, "shared/delivery/ledger.py", text)
    adapter = _probe(tmp_path, "shared/adapters/probe.py", text)
    assert store_calls([outside, inside, adapter], tmp_path) == {
        "shared/delivery/probe.py": ["shared/delivery/probe.py:2: return ledger.store.read(key)"]
    }


# --- rule 2: functions stay short -------------------------------------------------------------

MAX_LINES = 60
MAX_POSITIONAL = 4
KNOWN_FUNCTION_OFFENDERS: dict[str, str] = {
}


def functions(tree: ast.AST) -> Iterator[tuple[str, ast.FunctionDef | ast.AsyncFunctionDef]]:
    """(qualified name, node) of every function, nested and in classes: `Ledger.add`, `f.inner`."""
    stack: list[tuple[ast.AST, str]] = [(tree, "")]
    while stack:
        node, prefix = stack.pop()
        for child in ast.iter_child_nodes(node):
            named = isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
            if isinstance(child, ast.FunctionDef | ast.AsyncFunctionDef):
                yield prefix + child.name, child
            stack.append((child, f"{prefix}{child.name}." if named else prefix))


def _positional(node: ast.FunctionDef | ast.AsyncFunctionDef) -> int:
    names = [arg.arg for arg in (*node.args.posonlyargs, *node.args.args)]
    return len(names) - (1 if names[:1] in (["self"], ["cls"]) else 0)


def function_breaks(paths: list[Path], root: Path = REPO_ROOT) -> dict[str, str]:
    """Key `file::Class.function` -> what is wrong with it (over 60 lines, over 4 positional)."""
    found: dict[str, str] = {}
    for path in paths:
        rel = path.relative_to(root).as_posix()
        for name, node in functions(ast.parse(path.read_text(encoding="utf-8"))):
            lines = (node.end_lineno or node.lineno) - node.lineno + 1
            positional = _positional(node)
            wrong = [f"{lines} lines"] * (lines > MAX_LINES)
            wrong += [f"{positional} positional parameters"] * (positional > MAX_POSITIONAL)
            if wrong:
                found[f"{rel}::{name}"] = f"{rel}:{node.lineno} {name}: " + ", ".join(wrong)
    return found


def test_functions_are_at_most_60_lines_and_4_positional_parameters() -> None:
    found = function_breaks(SOURCES)
    new = [message for key, message in sorted(found.items()) if key not in KNOWN_FUNCTION_OFFENDERS]
    assert new == [], "\n".join(new)


def test_the_function_rule_counts_lines_and_positional_parameters_not_self(
    tmp_path: Path,
) -> None:
    body = "\n".join(["    x = 1"] * 59)
    text = (
        f"def fits(a, b, c, d, *, e, f):\n{body}\n"
        f"def long(a):\n{body}\n    return x\n"
        "class K:\n    def method(self, a, b, c, d): ...\n    def wide(self, a, b, c, d, e): ...\n"
    )
    probe = _probe(tmp_path, "shared/probe.py", text)
    assert function_breaks([probe], tmp_path) == {
        "shared/probe.py::long": "shared/probe.py:61 long: 61 lines",
        "shared/probe.py::K.wide": "shared/probe.py:124 K.wide: 5 positional parameters",
    }


# --- rule 3: every module says what it holds, in at most 8 lines ------------------------------

MAX_DOC_LINES = 8
TREE = re.compile(r"^\s+\S|[├└│─]")  # errors.py's exception tree: indented lines, box characters
KNOWN_DOCSTRING_OFFENDERS: dict[str, str] = {
}


def docstring_lines(path: Path, *, errors_tree: bool = False) -> int | None:
    """How many lines the module docstring takes; None when there is none. shared/errors.py may
    draw its exception tree: the tree's lines (indented, or box-drawn) don't count."""
    doc = ast.get_docstring(ast.parse(path.read_text(encoding="utf-8")))
    if doc is None or not doc.strip():
        return None
    lines = doc.strip().splitlines()
    if errors_tree or path == SHARED / "errors.py":
        lines = [line for line in lines if not TREE.search(line)]
    return len(lines)


def docstring_breaks(paths: list[Path]) -> dict[str, str]:
    found: dict[str, str] = {}
    for path in paths:
        rel = path.relative_to(REPO_ROOT).as_posix()
        count = docstring_lines(path)
        if count is None:
            found[rel] = f"{rel}: no module docstring (say what it holds and why)"
        elif count > MAX_DOC_LINES:
            found[rel] = f"{rel}: module docstring of {count} lines (at most {MAX_DOC_LINES})"
    return found


def test_every_module_has_a_docstring_of_at_most_8_lines() -> None:
    found = docstring_breaks(SOURCES)
    new = [
        message for key, message in sorted(found.items()) if key not in KNOWN_DOCSTRING_OFFENDERS
    ]
    assert new == [], "\n".join(new)


def test_only_the_errors_tree_is_exempt_from_the_count(tmp_path: Path) -> None:
    tree = '"""The catalogue.\n\nRelayError\n    InvalidJson\n    ├ Unauthorized\n"""\n'
    probe = _probe(tmp_path, "shared/probe.py", tree)
    assert docstring_lines(probe) == 5
    assert docstring_lines(probe, errors_tree=True) == 3
    assert docstring_breaks([SHARED / "errors.py"]) == {}


# --- rule 4: every path the code and docs cite exists -----------------------------------------

CITED = re.compile(
    r"(?<![\w./\-])((?:shared|tests|testkit|bench|infra|docs|devhost)/[\w./\-*<>{}]*)"
)
GENERATED = ("bench/results/",)  # written by the bench at run time, git-ignored
KNOWN_CITATION_OFFENDERS: dict[tuple[str, str], str] = {}


def _cited_sources() -> list[Path]:
    code = [REPO_ROOT / "function_app.py"]
    for folder in ("shared", "tests", "testkit", "bench", "devhost", "infra"):
        code += sorted((REPO_ROOT / folder).rglob("*.py"))
    docs = [REPO_ROOT / "README.md", REPO_ROOT / "bench" / "README.md"]
    return [*code, *docs, *sorted((REPO_ROOT / "docs").glob("*.md"))]


def _comments_and_docstrings(path: Path) -> Iterator[tuple[int, str]]:
    """(line, text) of what a .py file says to its reader; all of a Markdown file."""
    text = path.read_text(encoding="utf-8")
    if path.suffix != ".py":
        yield from enumerate(text.splitlines(), 1)
        return
    for token in tokenize.generate_tokens(io.StringIO(text).readline):
        if token.type == tokenize.COMMENT:
            yield token.start[0], token.string
    for node in ast.walk(ast.parse(text)):
        if isinstance(node, ast.Module | ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef):
            first = node.body[0] if node.body else None
            if (
                isinstance(first, ast.Expr)
                and isinstance(first.value, ast.Constant)
                and isinstance(first.value.value, str)
            ):
                for offset, line in enumerate(first.value.value.splitlines()):
                    yield first.lineno + offset, line


def cited_exists(cited: str) -> bool:
    """A path exists; `shared/domain/alert.clean_text` cites a name the module defines."""
    if (REPO_ROOT / cited).exists() or cited.startswith(GENERATED):
        return True
    module, _, name = cited.rpartition(".")
    source = REPO_ROOT / f"{module}.py"
    if not name or not source.is_file():
        return False
    return bool(
        re.search(
            rf"^(def|class) {re.escape(name)}\b|^{re.escape(name)} =",
            source.read_text(encoding="utf-8"),
            re.M,
        )
    )


def citation_breaks(paths: list[Path], root: Path = REPO_ROOT) -> dict[tuple[str, str], str]:
    """(file, cited path) -> "file:line cites path, which does not exist" for each break."""
    found: dict[tuple[str, str], str] = {}
    for path in paths:
        rel = path.relative_to(root).as_posix()
        for number, text in _comments_and_docstrings(path):
            for match in CITED.finditer(text):
                cited = match.group(1).rstrip(".,:")
                if re.search(r"[*<>{}]", cited) or cited_exists(cited):
                    continue
                found.setdefault(
                    (rel, cited), f"{rel}:{number} cites {cited}, which does not exist"
                )
    return found


def test_every_cited_path_exists() -> None:
    found = citation_breaks(_cited_sources())
    new = [message for key, message in sorted(found.items()) if key not in KNOWN_CITATION_OFFENDERS]
    assert new == [], "\n".join(new)


def test_a_wrong_citation_is_named_with_its_line(tmp_path: Path) -> None:
    gone = "tests/" + "no_such_test.py"
    text = (
        f'"""Checked by {gone}; see shared/domain/alert.clean_text and shared/domain/alert.nope."""\n'
        "x = 'docs/nowhere.md'  # bench/results/latest.json is written later; testkit/contracts/*.json\n"
    )
    probe = _probe(tmp_path, "shared/probe.py", text)
    assert sorted(citation_breaks([probe], tmp_path).values()) == [
        "shared/probe.py:1 cites shared/domain/alert.nope, which does not exist",
        f"shared/probe.py:1 cites {gone}, which does not exist",
    ]


# --- the allowlists can only shrink -----------------------------------------------------------


def _stale() -> list[str]:
    imports = import_violations(SOURCES)
    stores = store_calls(SOURCES)
    functions = function_breaks(SOURCES)
    docs = docstring_breaks(SOURCES)
    citations = citation_breaks(_cited_sources())
    stale = [f"KNOWN_IMPORT_OFFENDERS {k}" for k in KNOWN_IMPORT_OFFENDERS if k not in imports]
    stale += [f"BY_DESIGN {k}" for k in BY_DESIGN if k not in imports]
    stale += [f"KNOWN_STORE_OFFENDERS {k}" for k in KNOWN_STORE_OFFENDERS if k not in stores]
    stale += [
        f"KNOWN_FUNCTION_OFFENDERS {k}" for k in KNOWN_FUNCTION_OFFENDERS if k not in functions
    ]
    stale += [f"KNOWN_DOCSTRING_OFFENDERS {k}" for k in KNOWN_DOCSTRING_OFFENDERS if k not in docs]
    stale += [
        f"KNOWN_CITATION_OFFENDERS {k}" for k in KNOWN_CITATION_OFFENDERS if k not in citations
    ]
    return stale


def test_a_known_offender_that_no_longer_offends_is_removed() -> None:
    """Fixed? Then remove it from KNOWN_OFFENDERS: the lists only shrink."""
    stale = _stale()
    assert stale == [], "fixed, remove it from KNOWN_OFFENDERS: " + "; ".join(stale)


@pytest.mark.parametrize(
    "known",
    [
        KNOWN_IMPORT_OFFENDERS,
        KNOWN_STORE_OFFENDERS,
        KNOWN_FUNCTION_OFFENDERS,
        KNOWN_DOCSTRING_OFFENDERS,
        KNOWN_CITATION_OFFENDERS,
    ],
)
def test_every_known_offender_gives_its_reason(known: dict) -> None:
    assert all(isinstance(reason, str) and reason for reason in known.values())
