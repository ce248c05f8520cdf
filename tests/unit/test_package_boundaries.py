"""What Azure deploys (function_app.py and shared/) stands alone; the local host (devhost/) is a
dev tool beside it, not shipped, with no import cycle; so is testkit/, the parts tests/ and bench/
share, which depends on neither of them. The layers inside shared/ (domain, delivery, adapters,
entry, ops) are tests/unit/test_architecture.py's."""

from __future__ import annotations

import ast
import re
from collections.abc import Iterable
from importlib.metadata import packages_distributions
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
DEPLOYED_SOURCES = sorted([REPO_ROOT / "function_app.py", *(REPO_ROOT / "shared").rglob("*.py")])
# Never importable in Azure whatever the requirements say: not deployed (.funcignore).
NOT_DEPLOYED = {"devhost", "tests", "bench", "testkit"}


def _dist_key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _requirement_names(path: Path) -> set[str]:
    """Distribution names a requirements file lists, following `-r other.txt`."""
    names: set[str] = set()
    for raw in path.read_text(encoding="utf-8").splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if line.startswith("-r"):
            names |= _requirement_names(path.parent / line[2:].strip())
            continue
        match = re.match(r"[A-Za-z0-9][A-Za-z0-9._-]*", line)
        if match:
            names.add(_dist_key(match.group(0)))
    return names


def dev_only_modules() -> dict[str, str]:
    """Import name -> the dev-only distribution (in requirements-dev.txt, not requirements.txt)
    that provides it. An `azure-*` distribution shares the `azure` namespace with runtime ones,
    so it is known by its dotted name (azure-storage-queue -> azure.storage.queue)."""
    runtime = _requirement_names(REPO_ROOT / "requirements.txt")
    dev_only = _requirement_names(REPO_ROOT / "requirements-dev.txt") - runtime
    modules: dict[str, str] = {}
    for top, dists in packages_distributions().items():
        keys = {_dist_key(dist) for dist in dists}
        if keys & dev_only and not keys & runtime and top != "azure":
            modules[top] = sorted(keys & dev_only)[0]
    for dist in dev_only:
        if dist.startswith("azure-"):
            modules[dist.replace("-", ".")] = dist
    return modules


def imported_modules(source: str) -> set[str]:
    """Every absolute module an import statement names, at any depth (lazy imports too)."""
    names: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
            names |= {f"{node.module}.{alias.name}" for alias in node.names}
    return names


def forbidden_imports(source: str, forbidden: Iterable[str]) -> set[str]:
    banned = set(forbidden)
    return {
        name
        for name in imported_modules(source)
        if any(name == ban or name.startswith(ban + ".") for ban in banned)
    }


def test_the_dev_only_list_knows_the_test_tools() -> None:
    modules = dev_only_modules()
    assert {"pytest", "pytest_httpserver"} <= set(modules)
    assert "azure" not in modules  # azure.functions, azure.data.tables are runtime
    # The queue SDK was dev-only (the local host's queue runner) until /api/health read the
    # queues' approximate counts with it (shared/entry/health.py, lazily): now it is runtime.
    assert "azure.storage.queue" not in modules
    assert "azure-storage-queue" in _requirement_names(REPO_ROOT / "requirements.txt")
    assert "pydantic" not in modules and "urllib3" not in modules


def test_the_check_catches_direct_lazy_and_from_imports() -> None:
    forbidden = set(dev_only_modules()) | NOT_DEPLOYED | {"azure.storage.queue"}
    source = (
        "import azure.functions as func\n"
        "from shared.redaction import log_safe\n"
        "from azure.storage.queue import QueueClient\n"
        "def later():\n"
        "    import devhost.http_host\n"
        "    from azure.storage import queue\n"
        "from . import sibling\n"
    )
    assert forbidden_imports(source, forbidden) == {
        "azure.storage.queue",
        "azure.storage.queue.QueueClient",
        "devhost.http_host",
    }


def test_deployed_code_imports_nothing_dev_only() -> None:
    forbidden = set(dev_only_modules()) | NOT_DEPLOYED
    assert (REPO_ROOT / "function_app.py") in DEPLOYED_SOURCES
    assert len(DEPLOYED_SOURCES) > 5
    found = {
        str(path.relative_to(REPO_ROOT)): sorted(hits)
        for path in DEPLOYED_SOURCES
        if (hits := forbidden_imports(path.read_text(encoding="utf-8"), forbidden))
    }
    assert found == {}


def test_funcignore_keeps_the_local_host_and_the_dev_files_out_of_the_package() -> None:
    entries = {
        line.strip()
        for line in (REPO_ROOT / ".funcignore").read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.startswith("#")
    }
    assert {"devhost/", "tests/", "bench/", "testkit/", "requirements-dev.txt"} <= entries
    assert not {"shared/", "function_app.py", "host.json", "requirements.txt"} & entries


def test_testkit_is_shared_by_tests_and_bench_and_imports_neither() -> None:
    sources = sorted((REPO_ROOT / "testkit").glob("*.py"))
    assert {path.stem for path in sources} >= {"signl4_fake", "halo_fake", "azurite"}
    found = {
        path.name: sorted(hits)
        for path in sources
        if (hits := forbidden_imports(path.read_text(encoding="utf-8"), {"tests", "bench"}))
    }
    assert found == {}
    users = {
        "tests/conftest.py": "testkit.signl4_fake",
        "tests/integration/conftest.py": "testkit.azurite",
    }
    for user, module in users.items():
        assert module in imported_modules((REPO_ROOT / user).read_text(encoding="utf-8")), user
    # The bench has no copy of its own: it imports the launcher and runs the fake's module.
    bench = {
        path.name: path.read_text(encoding="utf-8") for path in (REPO_ROOT / "bench").glob("*.py")
    }
    assert "signl4_fake.py" not in bench
    assert any("testkit.azurite" in imported_modules(text) for text in bench.values())
    assert any('"testkit.signl4_fake"' in text for text in bench.values())
    assert any("testkit.halo_fake" in imported_modules(text) for text in bench.values())
    assert not [name for name, text in bench.items() if "BaseHTTPRequestHandler" in text]
    assert not [name for name, text in bench.items() if "--inMemoryPersistence" in text]


def test_devhost_has_no_import_cycle() -> None:
    package = REPO_ROOT / "devhost"
    modules = {path.stem for path in package.glob("*.py") if path.stem != "__init__"}
    assert {"http_host", "queues", "functions", "config", "serve", "__main__"} <= modules
    graph = {
        module: {
            name.split(".")[1]
            for name in imported_modules((package / f"{module}.py").read_text(encoding="utf-8"))
            if name.startswith("devhost.") and name.split(".")[1] in modules
        }
        - {module}
        for module in modules
    }
    assert "functions" in graph["queues"] and "functions" in graph["http_host"]
    order: list[str] = []
    remaining = dict(graph)
    while remaining:  # Kahn: peel modules whose imports are all placed
        ready = sorted(m for m, deps in remaining.items() if deps <= set(order))
        assert ready, f"import cycle among {sorted(remaining)}: {remaining}"
        order += ready
        for module in ready:
            del remaining[module]


def runtime_imports(source: str) -> set[str]:
    """The absolute modules a module imports when it is imported: top-level statements only,
    outside `if TYPE_CHECKING:` blocks (lazy imports inside functions are not counted)."""
    names: set[str] = set()
    for node in ast.parse(source).body:
        if isinstance(node, ast.If) and ast.unparse(node.test) == "TYPE_CHECKING":
            continue
        if isinstance(node, ast.Import):
            names |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.add(node.module)
    return names


def test_runtime_imports_reads_top_level_only() -> None:
    source = (
        "import json\n"
        "from shared.domain.halo import parse_event\n"
        "if TYPE_CHECKING:\n"
        "    from shared.domain.policy import Decision\n"
        "def later():\n"
        "    import requests\n"
    )
    assert runtime_imports(source) == {"json", "shared.domain.halo"}


def test_the_signl4_payload_is_pure_and_apart_from_the_client() -> None:
    """shared/domain/alert.py (SIGNL4's vocabulary and the payload) needs no other module of ours at
    import, so shared/domain/halo.py can take AlertStatus from it without a cycle, and nothing of the
    HTTP client; shared/adapters/signl4.py posts and builds no payload."""
    vocabulary = (REPO_ROOT / "shared" / "domain" / "alert.py").read_text(encoding="utf-8")
    standard = {"__future__", "json", "re", "collections.abc", "enum", "typing"}
    assert runtime_imports(vocabulary) <= standard
    assert not forbidden_imports(vocabulary, {"requests", "urllib3", "shared.adapters.signl4"})
    client = (REPO_ROOT / "shared" / "adapters" / "signl4.py").read_text(encoding="utf-8")
    assert "def build_payload" not in client and "def send_event" in client
    assert "shared.domain.halo" not in imported_modules(client)
    assert "shared.domain.policy" not in imported_modules(client)


def test_alert_status_is_imported_from_the_signl4_vocabulary_everywhere() -> None:
    """AlertStatus is SIGNL4's X-S4-Status: defined in shared/domain/alert.py, imported from there,
    and not re-exported by the Halo model."""
    sources = [
        REPO_ROOT / "function_app.py",
        *(
            path
            for folder in ("shared", "tests", "bench", "devhost")
            for path in (REPO_ROOT / folder).rglob("*.py")
        ),
    ]
    elsewhere = {
        f"{path.relative_to(REPO_ROOT)}: from {node.module}"
        for path in sources
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom)
        and any(alias.name == "AlertStatus" for alias in node.names)
        and node.module != "shared.domain.alert"
    }
    assert elsewhere == set()
    defined = {
        path.relative_to(REPO_ROOT / "shared").as_posix()
        for path in (REPO_ROOT / "shared").rglob("*.py")
        if "class AlertStatus(" in path.read_text(encoding="utf-8")
    }
    assert defined == {"domain/alert.py"}
