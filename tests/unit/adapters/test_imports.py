"""The adapters layer (shared/adapters/) depends inward only: it imports nothing of delivery,
entry or ops, not even lazily, and no other module's private names. Its two remote clients
share one HTTP module (shared/adapters/http.py): neither defines a retry policy of its own."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.unit.test_package_boundaries import REPO_ROOT, forbidden_imports

ADAPTERS = sorted((REPO_ROOT / "shared" / "adapters").glob("*.py"))
OUTER_LAYERS = {"shared.delivery", "shared.entry", "shared.ops"}


@pytest.mark.parametrize("path", ADAPTERS, ids=lambda path: path.name)
def test_an_adapter_imports_no_outer_layer(path: Path) -> None:
    assert forbidden_imports(path.read_text(encoding="utf-8"), OUTER_LAYERS) == set()


@pytest.mark.parametrize("path", ADAPTERS, ids=lambda path: path.name)
def test_an_adapter_imports_no_private_name_of_another_module(path: Path) -> None:
    private = {
        f"{node.module}.{alias.name}"
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8")))
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("shared")
        for alias in node.names
        if alias.name.startswith("_")
    }
    assert private == set()


@pytest.mark.parametrize("client", ["signl4.py", "halo.py"])
def test_both_remote_clients_use_the_one_http_module(client: str) -> None:
    source = (REPO_ROOT / "shared" / "adapters" / client).read_text(encoding="utf-8")
    assert forbidden_imports(source, {"shared.adapters.http"})  # it uses the shared module
    assert forbidden_imports(source, {"urllib3", "requests.adapters"}) == set()
    assert "Retry" not in {
        base.id
        for node in ast.walk(ast.parse(source))
        if isinstance(node, ast.ClassDef)
        for base in node.bases
        if isinstance(base, ast.Name)
    }
