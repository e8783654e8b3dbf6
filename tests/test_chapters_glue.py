"""No number that a chapter's cells print is typed into its prose: such numbers are glued from the cell (myst-nb
`glue`), so they cannot drift when the data or the models change.

On every built chapter page, the numbers with a decimal point that the cells print (text and tables, not figures'
data) are compared with those in the prose (paragraphs and list items, without glued values, math or code). A
number in both is a typed copy of a cell's output, unless it is listed in SOURCED below: a number the prose quotes
from a cited source or a definition, which a cell also happens to print.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

NUM = re.compile(r"(?<![\w.])[-\u2212]?\d+\.\d+(?![\w.])")

# chapter -> {number: why the prose may type it}
SOURCED: dict[str, dict[str, str]] = {
    "03-production": {"55.8": "Peng et al. 2023's measured speed-up, quoted with its citation",
                      "3.5": "the name 'GPT-3.5'"},
    "02-scale-of-llms": {"3.1": "the name 'Llama 3.1', not a measurement"},
    "05-scaling-laws": {"1.5": "Kaplan et al. fitted models of up to 1.5 billion parameters (cited)",
                        "3.1": "the name 'Llama 3.1'"},
    "06-efficient-attention": {"1.5": "the theoretical slope 3/2 of the sqrt(n) pattern, a definition"},
    "08-prompt-engineering": {"0.7": "the sampling temperature the chapter sets, a parameter"},
    "10-what-scale-enables": {"11.9": "Brown et al. 2020, Table H.1 (cited), also printed by the table cell",
                              "55.5": "Brown et al. 2020, Table H.1 (cited), also printed by the table cell"},
    "11-model-landscape": {"2.0": "'Apache 2.0', a licence name",
                           "0.5": "QLoRA's scale overhead of 0.5 bits per weight (Dettmers et al. 2023, cited)"},
    "12-whats-next": {"0.01": "the Switch Transformer's auxiliary-loss coefficient (Fedus et al. 2022, cited)",
                      "1.3": "about 1.3 tokens per English word, a sourced rule of thumb"},
}


def _numbers(page: Path) -> tuple[set[str], list[str]]:
    from bs4 import BeautifulSoup

    soup = BeautifulSoup(page.read_text(), "html.parser")
    main = soup.find("main") or soup
    printed: set[str] = set()
    for out in main.select("div.cell_output"):
        for junk in out.select("script, style, div.w7-plotly, .plotly-graph-div"):
            junk.decompose()
        printed |= set(NUM.findall(out.get_text(" ")))
    prose: list[str] = []
    for cell in main.select("div.cell"):
        cell.decompose()
    for node in main.select("p, li"):
        for junk in node.select("span.pasted-text, span.math, code, .math"):
            junk.decompose()
        prose.append(node.get_text(" "))
    return printed, prose


def typed_copies(page: Path) -> list[str]:
    """'number: sentence' for each number of the page's prose that one of its cells prints and SOURCED allows not."""
    printed, prose = _numbers(page)
    allowed = SOURCED.get(page.stem, {})
    found = []
    for text in prose:
        for n in NUM.findall(text):
            if n in printed and n not in allowed:
                i = text.find(n)
                found.append(f"{n}: ...{' '.join(text[max(0, i - 80):i + 40].split())}...")
    return found


@pytest.mark.browser
def test_prose_numbers_that_cells_print_are_glued(built_site: Path):
    pages = sorted((built_site / "chapters").glob("*.html"))
    assert len(pages) >= 13, f"expected the 13 chapters in {built_site / 'chapters'}, found {len(pages)}"
    problems = {p.stem: typed_copies(p) for p in pages}
    problems = {k: v for k, v in problems.items() if v}
    assert not problems, ("numbers typed into the prose that a cell prints (glue them with myst_nb.glue, or list "
                          "them in SOURCED with the reason):\n" + "\n".join(
                              f"  {k}: {x}" for k, v in problems.items() for x in v))


def test_the_check_finds_a_typed_number(tmp_path):
    """A page whose prose repeats a printed 0.41 is caught; the same number glued, or only in a figure, is not."""
    page = tmp_path / "99-demo.html"
    page.write_text(
        '<main><div class="cell"><div class="cell_output"><pre>accuracy 0.41</pre>'
        '<div class="w7-plotly"><script>{"y": [0.77]}</script></div></div></div>'
        '<p>The model scores 0.41 here.</p><p>Glued: <span class="pasted-text">0.41</span>.</p>'
        '<p>The figure shows 0.77.</p></main>')
    found = typed_copies(page)
    assert len(found) == 1 and found[0].startswith("0.41:"), found
