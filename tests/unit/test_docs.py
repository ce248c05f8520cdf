"""The docs hold: every relative link and anchor in README.md and docs/*.md resolves, and
docs/settings.md lists exactly the settings the code reads and the Bicep sets.
(Cited file paths are checked by tests/unit/test_architecture.py, rule 4.)"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[2]
DOCS = REPO_ROOT / "docs"
PAGES = [REPO_ROOT / "README.md", *sorted(DOCS.glob("*.md"))]
SETTINGS_PAGE = DOCS / "settings.md"

# --- links and anchors -------------------------------------------------------------------------

LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
FENCE = re.compile(r"^(```|~~~)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")


def github_anchor(heading: str) -> str:
    """GitHub's anchor of a heading: markup dropped, lowercase, punctuation dropped (but `-` and
    `_`), each space a `-`. `## Function keys: rotate` -> `function-keys-rotate`."""
    text = re.sub(r"\[([^\]]*)\]\([^)]*\)", r"\1", heading)  # a link keeps its text
    text = text.replace("`", "").replace("*", "").lower()
    text = re.sub(r"[^\w\- ]", "", text)
    return text.replace(" ", "-")


def prose_lines(text: str) -> list[str]:
    """The lines outside fenced code blocks (a `# comment` in a shell block is no heading)."""
    lines, fenced = [], False
    for line in text.splitlines():
        if FENCE.match(line.strip()):
            fenced = not fenced
            continue
        if not fenced:
            lines.append(line)
    return lines


def anchors(path: Path) -> set[str]:
    """Every heading's anchor in a Markdown file; a repeated heading gets `-1`, `-2`, ..."""
    found: set[str] = set()
    seen: dict[str, int] = {}
    for line in prose_lines(path.read_text(encoding="utf-8")):
        match = HEADING.match(line)
        if not match:
            continue
        anchor = github_anchor(match.group(2))
        count = seen.get(anchor, 0)
        seen[anchor] = count + 1
        found.add(anchor if count == 0 else f"{anchor}-{count}")
    return found


def link_breaks(page: Path, root: Path = REPO_ROOT) -> list[str]:
    """'page: [target] why' for each relative link of `page` that does not resolve."""
    breaks = []
    for line in prose_lines(page.read_text(encoding="utf-8")):
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
                continue
            file_part, _, fragment = target.partition("#")
            linked = (page.parent / file_part).resolve() if file_part else page
            rel = page.relative_to(root).as_posix()
            if not linked.exists():
                breaks.append(f"{rel}: [{target}] no such file")
            elif fragment and linked.suffix == ".md" and fragment not in anchors(linked):
                breaks.append(f"{rel}: [{target}] no such heading in {linked.name}")
    return breaks


def test_the_anchor_rule_is_githubs() -> None:
    assert github_anchor("Moving from SIGNL4's guide") == "moving-from-signl4s-guide"
    assert github_anchor("Function keys: rotate") == "function-keys-rotate"
    assert github_anchor("What it costs at rest (approximate, 2025)") == (
        "what-it-costs-at-rest-approximate-2025"
    )
    assert github_anchor("`RELAY_ROUTES` rules") == "relay_routes-rules"


def test_a_broken_link_or_anchor_is_found(tmp_path: Path) -> None:
    (tmp_path / "docs").mkdir()
    (tmp_path / "docs" / "a.md").write_text("# A page\n\n## Two words\n", encoding="utf-8")
    page = tmp_path / "README.md"
    page.write_text(
        "[ok](docs/a.md#two-words) [self](#top) [gone](docs/b.md) [bad](docs/a.md#three)\n"
        "[web](https://example.com/x#y)\n```\n[in code](docs/none.md)\n```\n# Top\n",
        encoding="utf-8",
    )
    assert link_breaks(page, tmp_path) == [
        "README.md: [docs/b.md] no such file",
        "README.md: [docs/a.md#three] no such heading in a.md",
    ]


@pytest.mark.parametrize("page", PAGES, ids=lambda p: p.relative_to(REPO_ROOT).as_posix())
def test_every_relative_link_and_anchor_resolves(page: Path) -> None:
    assert link_breaks(page) == []


def test_the_readme_fits_on_a_page_and_links_every_doc() -> None:
    readme = (REPO_ROOT / "README.md").read_text(encoding="utf-8")
    assert len(readme.splitlines()) <= 150
    linked = {target.partition("#")[0] for target in LINK.findall(readme)}
    missing = [p.name for p in sorted(DOCS.glob("*.md")) if f"docs/{p.name}" not in linked]
    assert missing == [], f"README.md's index does not link {missing}"


def test_every_doc_page_starts_with_what_it_answers() -> None:
    for page in sorted(DOCS.glob("*.md")):
        lines = page.read_text(encoding="utf-8").splitlines()
        assert lines[0].startswith("# "), page.name
        assert lines[1] == "" and lines[2] and not lines[2].startswith(("#", "|", "```")), (
            f"{page.name}: a title, then one or two lines saying what the page answers"
        )


# --- settings.md against the code and the Bicep ------------------------------------------------

CODE = [REPO_ROOT / "function_app.py", *sorted((REPO_ROOT / "shared").rglob("*.py"))]
CODE += sorted((REPO_ROOT / "devhost").rglob("*.py"))
# Object keys in a Bicep appSettings dictionary, or `name: 'X'` in an appSettings array. Bicep's
# own names are camelCase (parameters) or lower case (resources); app settings are not.
_NAME = r"((?:[A-Z][A-Z0-9]*_)+[A-Z0-9]+|AzureWebJobs\w+)"
BICEP_SETTING = re.compile(rf"^\s*{_NAME}\s*:|\bname:\s*'{_NAME}'", re.M)
SETTING_NAME = re.compile(r"`((?:[A-Z][A-Z0-9]*_)+[A-Z0-9]*(?:<NAME>)?|AzureWebJobs\w+)`")


def _environ_reads(tree: ast.AST) -> set[str]:
    """Literal names read by `environ.get("X")`, `os.getenv("X")` or `environ["X"]`."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and node.args and isinstance(node.args[0], ast.Constant):
            func = ast.unparse(node.func)
            if func.endswith(("environ.get", "getenv")):
                found.add(str(node.args[0].value))
        elif (
            isinstance(node, ast.Subscript)
            and isinstance(node.slice, ast.Constant)
            and ast.unparse(node.value).endswith("environ")
        ):
            found.add(str(node.slice.value))
    return found


def _prefixes_and_bindings(tree: ast.AST) -> set[str]:
    """`X_PREFIX = "SIGNL4_TEAM_SECRET_"` -> `SIGNL4_TEAM_SECRET_<NAME>` (a family of settings),
    and `%NAME%` binding expressions the Functions host resolves from the app settings."""
    found: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Assign) and isinstance(node.value, ast.Constant):
            names = [t.id for t in node.targets if isinstance(t, ast.Name)]
            family = f"{node.value.value}<NAME>"
            if any(n.endswith("_PREFIX") for n in names) and SETTING_NAME.fullmatch(f"`{family}`"):
                found.add(family)
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            found.update(re.findall(r"^%(\w+)%$", node.value))
    return found


def settings_the_code_reads() -> set[str]:
    """RelaySettings' aliases, plus literal environment reads anywhere in the code."""
    from shared.settings import RelaySettings

    names = {field.alias for field in RelaySettings.model_fields.values() if field.alias}
    for path in CODE:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        names |= _environ_reads(tree) | _prefixes_and_bindings(tree)
    return names


def settings_the_bicep_sets() -> set[str]:
    """App setting names in every .bicep file under infra/ (main.bicep and its modules)."""
    names: set[str] = set()
    for path in sorted((REPO_ROOT / "infra").rglob("*.bicep")):
        for key, named in BICEP_SETTING.findall(path.read_text(encoding="utf-8")):
            names.add(key or named)
    return names


def documented(section: str) -> set[str]:
    """Setting names in the first cell of each table row under `## <section>` (or, for "", the
    tables before the first `##`) of docs/settings.md."""
    names: set[str] = set()
    current = ""
    for line in prose_lines(SETTINGS_PAGE.read_text(encoding="utf-8")):
        if line.startswith("## "):
            current = line[3:].strip()
        elif current == section and line.startswith("| `"):
            names |= set(SETTING_NAME.findall(line.split("|")[1]))
    return names


PLATFORM = "Platform settings"


def test_the_readers_find_what_they_look_for() -> None:
    code, bicep = settings_the_code_reads(), settings_the_bicep_sets()
    assert {"RELAY_TIMING", "AzureWebJobsStorage", "SIGNL4_TEAM_SECRET_<NAME>"} <= code
    assert {"SIGNL4_TEAM_SECRET", "RELAY_HEARTBEAT_SCHEDULE"} <= bicep
    assert {"APPLICATIONINSIGHTS_CONNECTION_STRING", "AzureWebJobsStorage__credential"} <= bicep
    assert "relayledger" not in bicep and "signl4TeamSecret" not in bicep
    assert "HALO_WEBHOOK_PASSWORD" in documented("")  # a row naming two settings
    assert "FUNCTIONS_WORKER_RUNTIME" in documented(PLATFORM)


def test_every_setting_read_or_deployed_is_documented() -> None:
    relay = documented("")
    platform = documented(PLATFORM)
    assert sorted(settings_the_code_reads() - relay) == [], "read by the code, not in the table"
    assert sorted(settings_the_bicep_sets() - relay - platform) == [], (
        "set by infra/**/*.bicep, in neither table of docs/settings.md"
    )


def test_every_documented_setting_is_read_or_deployed() -> None:
    relay, platform = documented(""), documented(PLATFORM)
    assert sorted(relay - settings_the_code_reads()) == [], (
        "documented, but the code never reads it"
    )
    assert not relay & platform, "a platform setting is one the code does not read"
    assert sorted(platform - settings_the_bicep_sets() - {"FUNCTIONS_WORKER_RUNTIME"}) == []
    sample = (REPO_ROOT / "local.settings.sample.json").read_text(encoding="utf-8")
    assert '"FUNCTIONS_WORKER_RUNTIME"' in sample


# --- the package tree in docs/architecture.md is the package ------------------------------------

TREE_LINE = re.compile(r"^(?P<indent> *)(?P<name>[\w./]+)(?:\s{2,}.*)?$")


def tree_modules(page: str) -> set[str]:
    """The `shared/...` modules the architecture page's tree lists: each entry under its folder
    by indentation (two spaces a level); a folder ends with `/`, continuation lines are blank
    in the name column."""
    block = page.split("## The package tree", 1)[1].split("```", 2)[1]
    listed: set[str] = set()
    folders: list[tuple[int, str]] = []
    for line in block.splitlines():
        match = TREE_LINE.match(line)
        if not match or not line.strip():
            continue
        indent, name = len(match["indent"]), match["name"]
        folders = [(depth, folder) for depth, folder in folders if depth < indent]
        path = "".join(folder for _, folder in folders) + name
        if name.endswith("/"):
            folders.append((indent, name))
        elif path.startswith("shared/") and path.endswith(".py"):
            listed.add(path)
    return listed


def test_the_package_tree_lists_exactly_the_modules() -> None:
    """A module added, moved or removed without its line in docs/architecture.md fails here."""
    page = (DOCS / "architecture.md").read_text(encoding="utf-8")
    actual = {
        path.relative_to(REPO_ROOT).as_posix()
        for path in (REPO_ROOT / "shared").rglob("*.py")
        if not (path.name == "__init__.py" and path.parent.name != "shared")
    }
    listed = tree_modules(page)
    assert sorted(actual - listed) == [], "modules missing from the tree"
    assert sorted(listed - actual) == [], "the tree lists modules that do not exist"
