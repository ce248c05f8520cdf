"""bench/mutation.py's own logic, without running mutmut: the work folder is reset between
modules (a module's run must not see what the previous one left, the cause of the full run
stopping at shared/redaction.py), and a failed clean run names its failing tests."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import tomllib

from bench import mutation

# pytest -q -rfE's short summary, as pytest 8 prints it (an id may hold " - " in its brackets).
PYTEST_TAIL = """\
E     - x
E     + c - d
=========================== short test summary info ============================
FAILED tests/unit/test_redaction.py::test_param[a b] - AssertionError: no such value
FAILED tests/unit/test_redaction.py::test_param[c - d] - AssertionError: no such value
ERROR tests/unit/test_signl4.py::test_err - RuntimeError: fixture broke
FAILED tests/unit/test_halo.py::test_bare
ERROR tests/unit/test_policy.py - ImportError: cannot import name 'x'
2 failed, 1 passed, 1 error in 0.72s
"""


def test_failing_tests_reads_pytest_short_summary() -> None:
    assert mutation.failing_tests(PYTEST_TAIL) == [
        "tests/unit/test_redaction.py::test_param[a b]",
        "tests/unit/test_redaction.py::test_param[c - d]",
        "tests/unit/test_signl4.py::test_err",
        "tests/unit/test_halo.py::test_bare",
        "tests/unit/test_policy.py",
    ]


def test_failing_tests_ignores_everything_but_the_summary_lines() -> None:
    output = "FAILED\nERROR \nE   FAILED tests/x.py::t - no\n3 passed in 0.1s\nFAILEDX y\n"
    assert mutation.failing_tests(output) == []


def test_clean_tests_are_those_that_called_the_modules_functions() -> None:
    stats = {
        "tests_by_mangled_function_name": {
            "shared.redaction.x_scrub": ["tests/unit/test_redaction.py::test_a", "t::shared"],
            "shared.redaction.xǁRedactSecretsǁfilter": ["tests/unit/test_redaction.py::test_b"],
            "shared.settings.x__parse_list": ["tests/unit/test_settings.py::test_c", "t::shared"],
        }
    }
    redaction = mutation.Module("shared/redaction.py")
    assert mutation.clean_tests(stats, redaction.globs()) == [
        "t::shared",
        "tests/unit/test_redaction.py::test_a",
        "tests/unit/test_redaction.py::test_b",
    ]
    # A module narrowed to functions globs mutant names (`…filter__mutmut_*`), which match no
    # traced function name: like mutmut, no tests, so the rerun takes the whole selection.
    only_filter = mutation.Module("shared/redaction.py", ("RedactSecrets.filter",))
    assert mutation.clean_tests(stats, only_filter.globs()) == []
    assert mutation.clean_tests({}, redaction.globs()) == []


def test_mutmut_settings_mutate_only_the_module_under_test() -> None:
    settings = tomllib.loads(mutation.mutmut_settings([mutation.Module("shared/redaction.py")]))
    section = settings["tool"]["mutmut"]
    assert section["only_mutate"] == ["shared/redaction.py"]
    assert section["process_isolation"] == "forkserver"
    assert section["pytest_add_cli_args_test_selection"][-2:] == ["-m", "not azurite"]


def _fake_repo(root: Path) -> Path:
    """The smallest tree prepare_work copies: shared/, tests/ and ALSO_COPY."""
    for name in ["shared", "tests"]:
        (root / name).mkdir(parents=True)
        (root / name / "__init__.py").write_text("")
    (root / "tests" / ".hypothesis").mkdir()
    for name in mutation.ALSO_COPY:
        if "." in name:
            (root / name).write_text("{}")
        else:
            (root / name).mkdir()
    (root / "pyproject.toml").write_text('[project]\nname = "relay"\n')
    return root


def test_prepare_work_leaves_nothing_of_the_previous_module(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    repo = _fake_repo(tmp_path / "repo")
    work = tmp_path / "work"
    mutation.prepare_work([mutation.Module("shared/settings.py")], work=work, repo=repo)
    # What a module's run leaves: mutants, verdicts, traced stats, Hypothesis examples, a stray
    # file from a killed test; and the previous run's collect() left the process inside.
    leftovers = [
        work / "mutants" / "shared" / "settings.py.meta",
        work / "mutants" / "mutmut-stats.json",
        work / "mutants" / ".hypothesis" / "examples" / "0f" / "1",
        work / "mutants" / "stray.json",
    ]
    for path in leftovers:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps({"exit_code_by_key": {}}))
    monkeypatch.chdir(work / "mutants")

    mutation.prepare_work([mutation.Module("shared/redaction.py")], work=work, repo=repo)

    assert not (work / "mutants").exists()
    assert [path for path in leftovers if path.exists()] == []
    assert not (work / "tests" / ".hypothesis").exists()
    section = tomllib.loads((work / "pyproject.toml").read_text())["tool"]["mutmut"]
    assert section["only_mutate"] == ["shared/redaction.py"]
    assert (work / "preload_modules.txt").read_text().split() == mutation.PRELOAD
    assert Path.cwd() == repo
