"""Mutation testing of the relay's core (issue #11): which rules could break with no test noticing?

One command from the repository root (a clean clone with Python 3.11 is enough):

    python3 bench/mutation.py                      # every module in MODULES, one at a time
    python3 bench/mutation.py shared/domain/policy.py     # only these
    python3 bench/mutation.py --show-survivors     # also print each survivor's diff

Without mutmut in the running interpreter it creates `.venv-mutation` (requirements-dev.txt and
requirements-mutation.txt) and runs itself there. For every module it copies the code afresh to
`bench/results/mutation/work` (git-ignored; nothing of the previous module's run is left there:
mutants, mutmut's stats and verdicts, stray files), lets mutmut (pinned in
requirements-mutation.txt) write that module's mutants there and runs them all, keeping mutmut's
output in `bench/results/mutation/logs`. When mutmut's clean run of the tests fails, the script
reruns those tests and prints the failing ones with pytest's output. Then it prints a table:

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
import fnmatch
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
LOGS = REPO / "bench" / "results" / "mutation" / "logs"  # kept across modules (WORK is not)
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
    # Escalation and event-only payloads (issue 22): the page plan, what a payload lacks and
    # the event completed from Halo's ticket, and the brief cache of ticket reads.
    Module("shared/domain/page.py"),
    Module("shared/domain/full_ticket.py"),
    Module("shared/delivery/ticket_reads.py"),
    # The HTTP edges' pure parts (issue #11): answers, retry waits, signing, wire formats; not
    # the Session plumbing (shells over requests' pool, covered by the loopback tests).
    Module(
        "shared/adapters/http.py",
        (
            "RetryBudgetSpent.__init__",
            "_budgeted_retry_class",  # BudgetedRetry: Retry-After, X-RateLimit-Reset, budget
            "budgeted_retry",
            "request_timeout",
            "describe_request_failure",
            "_cause",
            "_describe_failure",
        ),
    ),
    Module(
        "shared/adapters/signl4.py",
        (
            "webhook_url",
            "read_answer",
            "_event_id",
            "_signl4_error",
            "_secrets",
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
    "tests/unit/test_settings_notices.py",  # redaction's userinfo rules (issue 18 item 7)
    "tests/unit/test_settings_bounds.py",  # settings' size and depth bounds (issue 18 item 6)
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
    "tests/unit/adapters/test_halo.py",
    # Escalation, downgrades and event-only payloads (issue 22): the pure plan, the merge, the
    # cache, and the HTTP route over MemoryStore with the loopback SIGNL4 and Halo.
    "tests/unit/domain/test_page.py",
    "tests/unit/domain/test_full_ticket.py",
    "tests/unit/delivery/test_ticket_reads.py",
    "tests/unit/delivery/test_escalation_delivery.py",
    "tests/unit/delivery/test_full_ticket_delivery.py",
    "tests/unit/delivery/test_prior_after.py",
    "tests/unit/ops/test_preview_previous.py",
]
# What the work copy needs besides shared/ and tests/.
ALSO_COPY = [
    "docs",  # tests/unit/test_errors.py and test_fuzz.py read the error table of docs/answers.md
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


def mutmut_settings(modules: list[Module]) -> str:
    """mutmut's section of the work copy's pyproject.toml: only `modules` get mutated."""
    return f"""
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


def prepare_work(modules: list[Module], *, work: Path = WORK, repo: Path = REPO) -> None:
    """A fresh copy of the code with mutmut's settings in its pyproject.toml.

    Called before every module: whatever the previous module's run left in the folder (mutmut's
    `mutants/` tree with its trampolined copies, `mutmut-stats.json`, the `.meta` verdicts,
    Hypothesis's example database, files a killed mutant's test left behind) goes with it, so
    each module runs exactly as it would alone."""
    if Path.cwd().resolve().is_relative_to(work.resolve()):
        os.chdir(repo)  # collect() works inside the folder about to go
    if work.exists():
        shutil.rmtree(work)
    work.mkdir(parents=True)
    ignore = shutil.ignore_patterns("__pycache__", "*.pyc", ".hypothesis", "local.settings.json")
    for name in ["shared", "tests", *ALSO_COPY]:
        source = repo / name
        if source.is_dir():
            shutil.copytree(source, work / name, ignore=ignore)
        else:
            shutil.copy2(source, work / name)
    (work / "preload_modules.txt").write_text("\n".join(PRELOAD) + "\n")
    pyproject = (repo / "pyproject.toml").read_text() + mutmut_settings(modules)
    (work / "pyproject.toml").write_text(pyproject)


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
    """One `mutmut run`; its output goes to a log under LOGS. On failure, exit with its tail and,
    when the clean run of the tests failed, the failing tests with pytest's own output (mutmut
    runs that in a forked child whose output it never shows)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SIGNL4_", "RELAY_", "HALO_"))}
    env["PYTHONHASHSEED"] = "0"
    command = [str(Path(sys.executable).parent / "mutmut"), "run", "--max-children"]
    command += [str(MAX_CHILDREN), *names]
    done = subprocess.run(
        command, cwd=WORK, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    LOGS.mkdir(parents=True, exist_ok=True)
    log = LOGS / f"mutmut-{module.dotted}{suffix}.log"
    log.write_bytes(done.stdout)
    if done.returncode == 0:
        return
    output = done.stdout.decode("utf-8", "replace")
    message = f"mutmut failed on {module.path} (exit {done.returncode}; log {log}):\n"
    message += output[-3000:]
    if CLEAN_RUN_FAILED in output:
        message += "\n" + explain_clean_failure(module, env)
    sys.exit(message)


CLEAN_RUN_FAILED = "Failed to run clean test"


def clean_tests(stats: dict, globs: list[str]) -> list[str]:
    """The tests mutmut's clean run uses for `globs`: those its traced run saw calling one of
    the matched functions (mutmut-stats.json's tests_by_mangled_function_name), sorted; none
    (mutmut then runs the whole selection) when no function name matches."""
    by_function = stats.get("tests_by_mangled_function_name", {})
    return sorted(
        {
            test
            for function, tests in by_function.items()
            if any(fnmatch.fnmatchcase(function, pattern) for pattern in globs)
            for test in tests
        }
    )


def failing_tests(pytest_output: str) -> list[str]:
    """The test ids of pytest's short summary (`FAILED id - reason`, `ERROR id - reason`); an id
    may hold " - " itself inside its parameters' brackets."""
    failing = []
    for line in pytest_output.splitlines():
        kind, _, rest = line.partition(" ")
        if kind in ("FAILED", "ERROR") and rest.strip():
            failing.append(_test_id(rest))
    return failing


def _test_id(summary: str) -> str:
    """`id - reason` -> id: the first " - " outside square brackets ends it."""
    depth = 0
    for index, char in enumerate(summary):
        depth += {"[": 1, "]": -1}.get(char, 0)
        if depth == 0 and summary.startswith(" - ", index):
            return summary[:index]
    return summary.strip()


def explain_clean_failure(module: Module, env: dict[str, str]) -> str:
    """Rerun mutmut's clean run (no mutant active, the same tests, in mutants/) and say which
    tests failed, with pytest's tail."""
    mutants = WORK / "mutants"
    try:
        stats = json.loads((mutants / "mutmut-stats.json").read_text())
    except (OSError, ValueError) as error:
        return f"clean run: no mutmut-stats.json to rerun it from ({error.__class__.__name__})"
    tests = clean_tests(stats, module.globs()) or [*UNIT_TESTS, "-m", "not azurite"]
    command = [sys.executable, "-m", "pytest", "--rootdir=.", "--tb=short", "-x", "-q", "-rfE"]
    command += ["-p", "no:randomly", "-p", "no:cacheprovider", "-W", "ignore::DeprecationWarning"]
    rerun_env = {**env, "MUTANT_UNDER_TEST": "", "PY_IGNORE_IMPORTMISMATCH": "1"}
    done = subprocess.run(
        [*command, *tests], cwd=mutants, env=rerun_env, capture_output=True, text=True
    )
    output = done.stdout + done.stderr
    failing = failing_tests(output) or ["(none named: see the output)"]
    return (
        f"clean run of {len(tests)} tests (pytest exit {done.returncode}) failed at:\n  "
        + "\n  ".join(failing)
        + f"\npytest's output (tail):\n{output[-4000:]}"
    )


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
    results: list[ModuleResult] = []
    survivors: dict[str, str] = {}
    used: set[int] = set()
    for module in chosen:
        prepare_work([module])  # a fresh folder: nothing of the previous module's run is left
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
