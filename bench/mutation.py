"""Mutation testing of the relay's core (issue #11): which rules could break with no test noticing?

One command from the repository root (a clean clone with Python 3.11 is enough):

    python3 bench/mutation.py                      # every module in MODULES, one at a time
    python3 bench/mutation.py shared/domain/policy.py     # only these
    python3 bench/mutation.py --show-survivors     # also print each survivor's diff

Without mutmut in the running interpreter it creates `.venv-mutation` (requirements-dev.txt and
requirements-mutation.txt) and runs itself there. It copies the code to
`bench/results/mutation/work` (git-ignored), lets mutmut (pinned in requirements-mutation.txt)
write its mutants there, runs every mutant of one module before the next, then prints a table:

    module, generated, killed, survived, equivalent, score = killed / (generated - equivalent)

with the surviving mutants' names (and diffs with --show-survivors), and writes the same figures
to `bench/results/mutation/latest.json`. Exit code 1 when a module scores below --min-score.

How each mutant runs:
- in a fresh process: mutmut's fork server (`process_isolation = "forkserver"`) has imported
  only third-party libraries (`PRELOAD`), never our code, and forks one child per mutant. The
  child imports `shared` and the tests itself, so no object cached by an earlier test run (an
  HTTP session, a Retry class, an lru_cache) can hide a mutant;
- against the unit tier only: `UNIT_TESTS` with `-m "not azurite"` (tests/conftest.py marks
  every test that needs Azurite); no Node, no subprocess; each mutant runs only the tests that
  called its function in mutmut's first (traced) run;
- with a CPU-time limit (mutmut's: CPU seconds, `TIMEOUT_*`, twenty times the tests' own time
  and more), so a mutant counted as a timeout loops for real instead of meeting a busy machine.
  mutmut also stops a mutant after half that limit in wall-clock seconds, which a paused or
  crowded machine can reach: a mutant that timed out runs once more before it counts.
  mutmut also files exit code 255 under "timeout", but that one is no limit: the test run itself
  broke (pytest exit 4: conftest or a test module raised while being imported, e.g. a mutant of a
  function that settings.py calls at import). Such a mutant is listed apart; a test module that
  calls the code under test at import time turns a kill by a test into one by a crash, so keep
  those calls inside the tests.

`bench/mutation_equivalent.toml` lists the reviewed equivalent mutants (each with its reason);
they are matched by function and mutated line, not by mutmut's number, so an entry survives an
unrelated change, and one that no longer matches a survivor is reported as stale.
Not part of CI's default run: it takes minutes of CPU.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import tomllib

REPO = Path(__file__).resolve().parent.parent
VENV = REPO / ".venv-mutation"
REQUIREMENTS = ("requirements-dev.txt", "requirements-mutation.txt")
WORK = REPO / "bench" / "results" / "mutation" / "work"
REPORT = REPO / "bench" / "results" / "mutation" / "latest.json"
EQUIVALENTS = Path(__file__).resolve().parent / "mutation_equivalent.toml"
MUTMUT_VERSION = "3.8.1"


@dataclass(frozen=True)
class Module:
    """A file to mutate; `functions` narrows it to these functions (None: all of it), a method
    named as `Class.method`."""

    path: str
    functions: tuple[str, ...] | None = None

    @property
    def dotted(self) -> str:
        return self.path.removesuffix(".py").replace("/", ".")

    def _prefixes(self) -> list[str]:
        """mutmut's names: x_<function>__mutmut_<n>, xǁ<Class>ǁ<method>__mutmut_<n>."""
        names = [name.split(".", 1) for name in self.functions or ()]
        return [
            f"{self.dotted}.xǁ{name[0]}ǁ{name[1]}__mutmut_"
            if len(name) == 2
            else f"{self.dotted}.x_{name[0]}__mutmut_"
            for name in names
        ]

    def globs(self) -> list[str]:
        if self.functions is None:
            return [f"{self.dotted}.*"]
        return [f"{prefix}*" for prefix in self._prefixes()]

    def selects(self, mutant: str) -> bool:
        if self.functions is None:
            return mutant.startswith(self.dotted + ".")
        return any(mutant.startswith(prefix) for prefix in self._prefixes())


# The core, one module per line: extend this list (e.g. with the delivery core) as it grows.
MODULES: list[Module] = [
    Module("shared/errors.py"),
    Module("shared/domain/signl4_params.py"),
    Module("shared/settings.py"),
    Module("shared/redaction.py"),
    Module("shared/domain/html_text.py"),
    Module("shared/domain/policy.py"),
    Module("shared/domain/halo.py"),
    # SIGNL4's vocabulary and payload (pure; the HTTP client is shared/adapters/signl4.py).
    Module(
        "shared/domain/alert.py",
        (
            "_bounded",
            "_clean_char",
            "clean_text",
            "encoded_size",
            "fit_payload",
            "_size_bound",
            "_trim_order",
            "_text_cost",
            "_char_cost",
            "_fit_text",
            "build_payload",
            "_clean",
            "_as_text",
        ),
    ),
    # The delivery core (pure per-ticket state machine) and the outbox's message models.
    Module("shared/delivery/conversation.py"),
    Module("shared/delivery/outbox.py"),
    # Routing and the two-way write-back (pure): RELAY_ROUTES, SIGNL4's outbound webhook, the
    # planner and its Halo API bodies.
    Module("shared/domain/routing.py"),
    Module("shared/domain/notification.py"),
    Module("shared/domain/writeback.py"),
    # The HTTP edges' pure parts (issue #11): answers, retry waits, signing, wire formats; not
    # the Session plumbing (shells over requests' pool, covered by the loopback tests).
    Module(
        "shared/adapters/signl4.py",
        (
            "webhook_url",
            "_RetryBudgetSpent.__init__",
            "_budgeted_retry_class",  # BudgetedRetry: Retry-After, X-RateLimit-Reset, budget
            "budgeted_retry",
            "request_timeout",
            "describe_request_failure",
            "read_answer",
            "_cause",
            "_describe_failure",
            "_event_id",
            "_signl4_error",
            "_secrets",
        ),
    ),
    Module(
        "shared/adapters/table_rest.py",
        (
            "TableAccount.__repr__",
            "parse_connection_string",
            "http_date",
            "string_to_sign",
            "shared_key",
            "odata_string",
            "key_literal",
            "entity_path",
            "_iso",
            "to_wire",
            "parse_datetime",
            "from_wire",
            "single_request",
            "batch_body",
            "batch_results",
            "describe_status",
            "_url_path",
        ),
    ),
    Module(
        "shared/adapters/halo.py",
        (
            "HaloClient.__init__",
            "HaloClient._answer",
            "HaloClient._halo_error",
            "fresh_for",
            "_json",
            "_action_id",
        ),
    ),
]

# The unit tier: the tests that mirror the core's modules. They need no Azurite (a test there that
# does is deselected by its marker), no Node and no subprocess. Not the route tests (they pass
# through the HTTP client's retries: seconds per mutant) nor the fuzz tests (seconds per run, and
# they pin no rule): a rule of the core is pinned by the core's own tests.
UNIT_TESTS = [
    "tests/unit/domain/test_halo_json.py",
    "tests/unit/domain/test_halo_event.py",
    "tests/unit/domain/test_html_text.py",
    "tests/unit/domain/test_policy.py",
    "tests/unit/test_settings.py",
    "tests/unit/test_redaction.py",
    "tests/unit/domain/test_signl4_params.py",
    "tests/unit/domain/test_alert.py",
    "tests/unit/test_errors.py",
    "tests/unit/delivery/test_conversation.py",
    "tests/unit/delivery/test_outbox.py",
    "tests/unit/domain/test_routing.py",
    "tests/unit/domain/test_two_way_units.py",
    "tests/unit/domain/test_notification.py",
    "tests/unit/domain/test_writeback.py",
    "tests/unit/adapters/test_signl4.py",
    "tests/unit/adapters/test_table_rest.py",
    "tests/unit/adapters/test_halo.py",
]
# What the work copy needs besides shared/ and tests/.
ALSO_COPY = [
    "README.md",  # tests/unit/test_errors.py checks its error table
    "devhost",
    "testkit",
    "function_app.py",
    "host.json",
    "requirements.txt",
    "local.settings.sample.json",
]
# Third-party modules the fork server imports once (never `shared`, `devhost` or the tests).
PRELOAD = [
    "pydantic",
    "pydantic_core",
    "requests",
    "urllib3",
    "werkzeug",
    "pytest_httpserver",
    "azure.functions",
]
# mutmut's limit per mutant: 2 x TIMEOUT_MULTIPLIER x (its tests' own duration + TIMEOUT_CONSTANT)
# CPU seconds, and half that in wall-clock seconds. About 80 CPU seconds for tests that take one:
# a mutant over it loops (or went quadratic on the 10,000-character HTML tests), whatever the
# machine's load.
TIMEOUT_MULTIPLIER = 10.0
TIMEOUT_CONSTANT = 3.0
MAX_CHILDREN = 2  # the machine has 2 cores, shared
# mutmut's child exits -1 (255) when its test runner raised: pytest's exit 4 ("found no
# collectors" for a test id whose module failed to import). mutmut files it under "timeout".
BROKEN_RUN = 255
# SIGXCPU (as a signal, an exit status, a shell's 128 + 24) and mutmut's own timeout code. The
# signal comes from the CPU limit, or from mutmut's wall-clock limit (half the CPU one), which
# also fires when the run is stopped for a while (a paused process group, a busy machine): so a
# mutant that timed out runs once more before it counts, and one that loops times out again.
TIMEOUT_CODES = frozenset({-24, 24, 152, 36})


# --- the tool's own environment ---


def _ensure_mutmut() -> None:
    """Re-run this script in .venv-mutation unless mutmut is importable here."""
    try:
        import mutmut

        if mutmut.__version__ == MUTMUT_VERSION:
            return
    except ImportError:
        pass
    python = VENV / "bin" / "python"
    if Path(sys.executable).resolve() == python.resolve() and os.environ.get("_MUTATION_REEXEC"):
        sys.exit(f"mutmut {MUTMUT_VERSION} is not installed in {VENV}")
    if not python.exists():
        print(f"mutation: creating {VENV.name}", file=sys.stderr)
        subprocess.run([sys.executable, "-m", "venv", str(VENV)], check=True)
    stamp = VENV / ".requirements.sha256"
    digest = hashlib.sha256(b"".join((REPO / name).read_bytes() for name in REQUIREMENTS))
    if not stamp.exists() or stamp.read_text() != digest.hexdigest():
        print(f"mutation: installing {', '.join(REQUIREMENTS)} into {VENV.name}", file=sys.stderr)
        pip = [str(python), "-m", "pip", "install", "--quiet", "--disable-pip-version-check"]
        subprocess.run([*pip, *(arg for name in REQUIREMENTS for arg in ("-r", name))], check=True)
        stamp.write_text(digest.hexdigest())
    os.environ["_MUTATION_REEXEC"] = "1"
    os.execv(str(python), [str(python), str(Path(__file__).resolve()), *sys.argv[1:]])


# --- the work copy ---


def _toml_list(items: list[str]) -> str:
    return "[" + ", ".join(json.dumps(item) for item in items) + "]"


def prepare_work(modules: list[Module]) -> None:
    """A fresh copy of the code with mutmut's settings in its pyproject.toml."""
    if WORK.exists():
        shutil.rmtree(WORK)
    WORK.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", "local.settings.json")
    for name in ["shared", "tests", *ALSO_COPY]:
        source = REPO / name
        if source.is_dir():
            shutil.copytree(source, WORK / name, ignore=ignore)
        else:
            shutil.copy2(source, WORK / name)
    (WORK / "preload_modules.txt").write_text("\n".join(PRELOAD) + "\n")
    settings = f"""
[tool.mutmut]
source_paths = ["shared/"]
only_mutate = {_toml_list([module.path for module in modules])}
also_copy = {_toml_list([*ALSO_COPY, "preload_modules.txt"])}
pytest_add_cli_args_test_selection = {_toml_list([*UNIT_TESTS, "-m", "not azurite"])}
pytest_add_cli_args = ["-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning"]
process_isolation = "forkserver"
forkserver_warmup = "import"
preload_modules_file = "preload_modules.txt"
timeout_multiplier = {TIMEOUT_MULTIPLIER}
timeout_constant = {TIMEOUT_CONSTANT}
use_git_change_detection = false
"""
    pyproject = (REPO / "pyproject.toml").read_text() + settings
    (WORK / "pyproject.toml").write_text(pyproject)


def run_mutmut(module: Module) -> float:
    """Every mutant of one module, and once more those that timed out; returns the wall-clock
    seconds it took."""
    started = time.monotonic()
    print(f"mutation: {module.path}: mutmut run", file=sys.stderr, flush=True)
    _mutmut(module, module.globs(), "")
    again = _timed_out(module)
    if again:
        print(
            f"mutation: {module.path}: {len(again)} timed out; running them once more",
            file=sys.stderr,
            flush=True,
        )
        _mutmut(module, again, "-again")
    return time.monotonic() - started


def _mutmut(module: Module, names: list[str], suffix: str) -> None:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNL4_", "RELAY_", "HALO_"))}
    env["PYTHONHASHSEED"] = "0"
    command = [str(Path(sys.executable).parent / "mutmut"), "run", "--max-children"]
    command += [str(MAX_CHILDREN), *names]
    done = subprocess.run(
        command, cwd=WORK, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    log = WORK / f"mutmut-{module.dotted}{suffix}.log"
    log.write_bytes(done.stdout)
    if done.returncode != 0:
        tail = done.stdout.decode("utf-8", "replace")[-3000:]
        sys.exit(f"mutmut failed on {module.path} (exit {done.returncode}; log {log}):\n{tail}")


def _timed_out(module: Module) -> list[str]:
    """The module's mutants mutmut stopped by SIGXCPU (or its own timeout code)."""
    meta = json.loads((WORK / "mutants" / (module.path + ".meta")).read_text())
    return sorted(
        name
        for name, code in meta["exit_code_by_key"].items()
        if module.selects(name) and code in TIMEOUT_CODES
    )


# --- results ---


@dataclass
class ModuleResult:
    module: str
    generated: int = 0
    killed: int = 0
    timeouts: list[str] = field(default_factory=list)
    broke_collection: list[str] = field(default_factory=list)
    survived: list[str] = field(default_factory=list)
    equivalent: list[str] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def score(self) -> float:
        counted = self.generated - len(self.equivalent)
        return 100.0 * self.killed / counted if counted else 100.0


def _mutated_lines(diff: str) -> tuple[str, str]:
    """The removed and the added lines of a mutant's diff, stripped and joined."""
    lines = [line for line in diff.splitlines() if not line.startswith(("---", "+++", "@@"))]
    removed = " / ".join(line[1:].strip() for line in lines if line.startswith("-"))
    added = " / ".join(line[1:].strip() for line in lines if line.startswith("+"))
    return removed, added


def _function_of(mutant: str) -> str:
    return mutant.rsplit("__mutmut_", 1)[0]


def load_equivalents() -> list[dict[str, str]]:
    entries = tomllib.loads(EQUIVALENTS.read_text())["equivalent"]
    for entry in entries:
        missing = {"module", "function", "removed", "added", "reason"} - entry.keys()
        if missing:
            sys.exit(f"{EQUIVALENTS.name}: an entry lacks {sorted(missing)}: {entry}")
    return entries


def collect(
    module: Module, equivalents: list[dict[str, str]], used: set[int]
) -> tuple[ModuleResult, dict[str, str]]:
    """Read mutmut's verdicts for one module; survivors matching a reviewed equivalent count so."""
    os.chdir(WORK)
    from mutmut.mutation.diff_apply import get_diff_for_mutant
    from mutmut.stats import status_by_exit_code

    meta = json.loads((WORK / "mutants" / (module.path + ".meta")).read_text())
    result = ModuleResult(module.path)
    diffs: dict[str, str] = {}
    for mutant, exit_code in sorted(meta["exit_code_by_key"].items()):
        if not module.selects(mutant):
            continue
        result.generated += 1
        status = status_by_exit_code[exit_code]
        if exit_code == BROKEN_RUN:  # an import failed: caught, if not always by a test
            result.killed += 1
            result.broke_collection.append(mutant)
            continue
        if status == "killed":
            result.killed += 1
            continue
        if status in ("timeout", "segfault"):  # CPU-time limit: the mutant loops
            result.killed += 1
            result.timeouts.append(mutant)
            continue
        diff = get_diff_for_mutant(mutant, path=Path(module.path))
        diffs[mutant] = diff
        removed, added = _mutated_lines(diff)
        for index, entry in enumerate(equivalents):
            if entry["module"] == module.path and (_function_of(mutant), removed, added) == (
                f"{module.dotted}.{entry['function']}",
                entry["removed"],
                entry["added"],
            ):
                result.equivalent.append(mutant)
                used.add(index)
                break
        else:
            result.survived.append(mutant if status == "survived" else f"{mutant} ({status})")
    return result, diffs


def print_table(results: list[ModuleResult], equivalents: list[dict[str, str]]) -> None:
    header = f"{'module':<24} {'generated':>9} {'killed':>7} {'survived':>8} {'equivalent':>10} {'score':>7} {'time':>7}"
    print(header)
    print("-" * len(header))
    for r in results:
        print(
            f"{r.module:<24} {r.generated:>9} {r.killed:>7} {len(r.survived):>8} "
            f"{len(r.equivalent):>10} {r.score:>6.1f}% {r.seconds:>6.0f}s"
        )
    total = ModuleResult("total")
    for r in results:
        total.generated += r.generated
        total.killed += r.killed
        total.survived += r.survived
        total.equivalent += r.equivalent
        total.seconds += r.seconds
    print("-" * len(header))
    print(
        f"{'total':<24} {total.generated:>9} {total.killed:>7} {len(total.survived):>8} "
        f"{len(total.equivalent):>10} {total.score:>6.1f}% {total.seconds:>6.0f}s"
    )
    for r in results:
        if r.timeouts:
            print(f"\n{r.module}: killed by the CPU-time limit: {', '.join(r.timeouts)}")
        if r.broke_collection:
            print(
                f"\n{r.module}: killed by an import error (pytest exit 4, not a CPU limit: "
                f"the code's own import-time calls, or a test module's, which belong in a test): "
                f"{', '.join(r.broke_collection)}"
            )
        if r.equivalent:
            print(f"\n{r.module}: equivalent (see {EQUIVALENTS.name}):")
            for mutant in r.equivalent:
                print(f"  {mutant}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("modules", nargs="*", help="module paths (default: all of MODULES)")
    parser.add_argument("--show-survivors", action="store_true", help="print each survivor's diff")
    parser.add_argument("--min-score", type=float, default=90.0, help="exit 1 below this (%%)")
    args = parser.parse_args()
    _ensure_mutmut()

    chosen = [m for m in MODULES if not args.modules or m.path in args.modules]
    unknown = set(args.modules) - {m.path for m in chosen}
    if unknown:
        parser.error(f"not in MODULES: {', '.join(sorted(unknown))}")
    equivalents = load_equivalents()
    started = time.monotonic()
    prepare_work(chosen)
    results: list[ModuleResult] = []
    survivors: dict[str, str] = {}
    used: set[int] = set()
    for module in chosen:
        seconds = run_mutmut(module)
        result, diffs = collect(module, equivalents, used)
        result.seconds = seconds
        results.append(result)
        survivors.update({m: diffs[m.split(" ")[0]] for m in result.survived})
        print(
            f"mutation: {module.path}: {result.generated} mutants, {len(result.survived)} "
            f"survived, {result.score:.1f}% in {seconds:.0f}s",
            file=sys.stderr,
            flush=True,
        )

    print()
    print_table(results, equivalents)
    if survivors:
        print(f"\nsurvivors ({len(survivors)}):")
        for mutant, diff in survivors.items():
            removed, added = _mutated_lines(diff)
            print(f"  {mutant}")
            if args.show_survivors:
                print(f"      - {removed}\n      + {added}")
    paths = {m.path for m in chosen}
    for index, entry in enumerate(equivalents):
        if index not in used and entry["module"] in paths:
            print(
                f"\nstale entry in {EQUIVALENTS.name} (matches no survivor): "
                f"{entry['module']} {entry['function']}: {entry['added']}"
            )
    print(f"\nrun time: {time.monotonic() - started:.0f}s")
    REPORT.write_text(
        json.dumps(
            {
                "tool": f"mutmut {MUTMUT_VERSION}",
                "modules": [
                    {
                        "module": r.module,
                        "generated": r.generated,
                        "killed": r.killed,
                        "survived": r.survived,
                        "equivalent": r.equivalent,
                        "timeouts": r.timeouts,
                        "broke_collection": r.broke_collection,
                        "score": round(r.score, 1),
                        "seconds": round(r.seconds),
                    }
                    for r in results
                ],
            },
            indent=2,
        )
    )
    return 0 if all(r.score >= args.min_score for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
