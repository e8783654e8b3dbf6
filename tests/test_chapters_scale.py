"""Check the chapters on what scale buys (01-05, 07, 08, 13) for the issue's structural requirements.

Executing the chapters is the book build's job (tools/build_book.py); these checks are static and fast: every
citation key exists in references.bib, each chapter ends with two or three self-check questions hidden in dropdowns,
chapters 04 to 07 have an ipywidgets explorer, and no chapter pastes in a number that the data tables own.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
CHAPTERS = ["01-overview", "02-scale-of-llms", "03-production", "04-emergence", "05-scaling-laws", "07-few-shot",
            "08-prompt-engineering", "13-takeaways"]
BIB_KEYS = set(re.findall(r"@\w+\{([^,]+),", (ROOT / "references.bib").read_text()))


def text(name: str) -> str:
    path = ROOT / "chapters" / f"{name}.md"
    if not path.exists():
        pytest.fail(f"chapter {path} is missing")
    return path.read_text()


@pytest.mark.parametrize("name", CHAPTERS)
def test_citations_resolve(name):
    """Check that every {cite:p}`a,b` key in the chapter is defined in references.bib."""
    keys = {k.strip() for group in re.findall(r"\{cite:[pt]\}`([^`]+)`", text(name)) for k in group.split(",")}
    assert keys, f"{name} cites nothing"
    assert keys <= BIB_KEYS, f"{name}: keys missing from references.bib: {sorted(keys - BIB_KEYS)}"


@pytest.mark.parametrize("name", CHAPTERS)
def test_ends_with_hidden_self_check(name):
    """Check for a final 'Check yourself' section with 2-3 dropdown admonitions and nothing after them."""
    body = text(name)
    assert "## Check yourself" in body, name
    tail = body.split("## Check yourself", 1)[1]
    assert "\n## " not in tail, f"{name}: a section follows the self-check"
    n = len(re.findall(r"```\{admonition\}.*\n:class: dropdown", tail))
    assert 2 <= n <= 3, f"{name}: {n} hidden self-check questions, want 2 or 3"


@pytest.mark.parametrize("name", ["04-emergence", "05-scaling-laws", "07-few-shot"])
def test_has_ipywidgets_explorer(name):
    """Check that the chapter builds an ipywidgets control inside a code cell."""
    cells = re.findall(r"```\{code-cell\}[^\n]*\n(.*?)```", text(name), flags=re.S)
    assert any("widgets." in c and ".observe(" in c for c in cells), name


def test_gpt3_compute_is_recomputed_not_pasted():
    """Check that the scaling-laws chapter computes GPT-3's compute with week7.scaling, and quotes the slide."""
    body = text("05-scaling-laws")
    assert "scaling.training_flops(175e9, 300e9)" in body and "3.14 \\times 10^{23}" in body
