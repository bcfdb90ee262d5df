"""The docs stay true to the code: the CLI reference (docs/cli.md) is what scripts/cli_reference.py writes from
the parsers, every option of every command is in it, every ``--flag`` a page names exists (in ``bench``, in a
script of scripts/, or in the short list of other tools' flags below), and the methods tables in README.md and
docs/methods/index.md list every registered method with the T5-Base count ``bench params`` computes."""

from __future__ import annotations

import re
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO / "scripts"))

import cli_reference  # noqa: E402

from bench.cli import build_parser  # noqa: E402

# Flags of other tools that the docs name, each with its tool: not bench's, and allowed for that reason only.
OTHER_TOOLS = {
    "--check": "ruff format --check; scripts/cli_reference.py --check",
    "--dist": "pytest-xdist",
    "--durations": "pytest",
    "--strict-markers": "pytest",
    "--help": "every command",
    "--latest": ".ci/run",
    "--logdir": "tensorboard",
    "--no-deps": "pip",
    "--strict": "mkdocs build",
}
FLAG = re.compile(r"(?<![\w-])--[a-z][a-z0-9_-]*")


def _pages() -> list[Path]:
    pages = [REPO / "README.md", REPO / "CONTRIBUTING.md", *sorted((REPO / "docs").rglob("*.md"))]
    return [p for p in pages if "docs/results/" not in p.as_posix()]  # generated full report


def _script_flags() -> set[str]:
    found: set[str] = set()
    for script in (REPO / "scripts").glob("*.py"):
        found |= set(re.findall(r"add_argument\(\s*\"(--[a-z][a-z0-9_-]*)\"", script.read_text()))
    return found


def test_cli_reference_is_current():
    expected = cli_reference.render()
    actual = (REPO / "docs" / "cli.md").read_text()
    assert actual == expected, "docs/cli.md is stale: run python scripts/cli_reference.py"


def test_every_option_is_in_the_reference():
    page = (REPO / "docs" / "cli.md").read_text()
    missing = [o for o in cli_reference.options(build_parser()) if f"`{o}`" not in page]
    assert missing == []


def test_every_documented_flag_exists():
    known = set(cli_reference.options(build_parser())) | _script_flags() | set(OTHER_TOOLS)
    unknown = {}
    for page in _pages():
        quotes_official_code = (
            page.parent.name == "methods"
        )  # a method page quotes its official scripts' flags
        for flag in FLAG.findall(page.read_text()):
            if "_" in flag and quotes_official_code:
                continue  # ptbench's own options use hyphens; underscores are the official scripts' (argparse)
            if flag not in known:
                unknown.setdefault(flag, []).append(page.relative_to(REPO).as_posix())
    assert unknown == {}, f"flags no parser has: {unknown}"


def _table_rows(text: str) -> dict[str, int]:
    """``{method: T5-Base count}`` from the tables headed ``| method |`` (first cell the method in backticks, count the first
    cell that is a number with thousands separators)."""
    rows, inside = {}, False
    for line in text.splitlines():
        if line.startswith("| method |"):
            inside = True
        elif not line.startswith("|"):
            inside = False
        if not inside:
            continue
        name = re.match(r"\|\s*\[?`([a-z_]+)`", line)
        count = re.search(r"\|\s*([\d,]{3,})( \(stage 1\))?\s*\|", line)
        if name and count:
            rows[name.group(1)] = int(count.group(1).replace(",", ""))
    return rows


@pytest.fixture(scope="module")
def t5_base_counts() -> dict[str, int]:
    """What ``bench params --model t5-base --methods all`` prints as trainable, per method."""
    import torch

    from bench.backbones.load import meta_backbone
    from bench.run.assemble import attach_method
    from methods.registry import build_config, list_methods

    counts = {}
    for name in list_methods():
        backbone = meta_backbone("t5-base", 256)
        with torch.device("meta"):
            counts[name] = attach_method(backbone, name, build_config(name)).counts().trainable_params
    return counts


@pytest.mark.parametrize("page", ["README.md", "docs/methods/index.md"])
def test_methods_table_lists_every_method_with_its_count(page, t5_base_counts):
    rows = _table_rows((REPO / page).read_text())
    assert sorted(rows) == sorted(t5_base_counts), f"{page}: methods table and registry differ"
    wrong = {m: (rows[m], c) for m, c in t5_base_counts.items() if rows[m] != c}
    assert wrong == {}, f"{page}: (documented, computed) counts differ"


def test_method_counts_in_prose_match_the_registry():
    """Pages that say how many methods there are say the registry's number."""
    from methods.registry import list_methods

    words = {12: "twelve", 16: "sixteen", 17: "seventeen", 18: "eighteen", 19: "nineteen", 20: "twenty"}
    n = len(list_methods())
    wrong = []
    for page in _pages():
        for m in re.finditer(r"\b(\d+|[a-z]+teen|twenty) (registered )?methods\b", page.read_text()):
            said = m.group(1)
            value = int(said) if said.isdigit() else {v: k for k, v in words.items()}.get(said)
            if value is not None and value >= 12 and value != n:
                wrong.append(f"{page.relative_to(REPO)}: {m.group(0)!r}")
    assert wrong == [], f"the registry has {n} methods"


DIARY = re.compile(r"\b(sessions?|the issue|the lead|helpers?|this machine|now|currently)\b", re.I)


def test_reference_prose_is_not_a_diary():
    """Pages say what is true; they do not speak of sessions, issues, leads, helpers, "this machine" or "now"
    (dated measurement logs live beside their records under results/, outside the site)."""
    hits = []
    for page in [*_pages(), *sorted((REPO / "docs" / "results").glob("*.md"))]:
        for number, line in enumerate(page.read_text().splitlines(), 1):
            if "github.com" in line or "huggingface/peft issue" in line:
                continue
            found = DIARY.search(line)
            if found:
                hits.append(f"{page.relative_to(REPO)}:{number}: {found.group(0)!r}")
    assert hits == []


def test_quick_recipe_is_short_and_readme_fits():
    words = len((REPO / "docs" / "quick-recipe.md").read_text().split())
    assert words < 1500, f"docs/quick-recipe.md has {words} words (its history belongs in results/)"
    readme = (REPO / "README.md").read_text()
    assert len(readme.splitlines()) <= 150
    # The two set-up commands and the test command that CI relies on are still there, and still true.
    setup = "pip install torch==2.13.0 && pip install -e . -c requirements.lock && bench run "
    assert readme.count(setup) == 2 and (REPO / "requirements.lock").is_file()
    assert "\nbash .ci/run\n" in readme and (REPO / ".ci" / "run").is_file()
    assert "torch==2.13.0" in (REPO / ".ci" / "install.sh").read_text()
