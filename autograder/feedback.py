"""Feedback that teaches without telling, and the graders' rubric.

Graders (the formgrader shows the autograded notebook): before each hand-graded answer a markdown cell with the
mark scheme of that answer, taken from the solution notebook's BEGIN/END MARK SCHEME region (`add_rubric`).

Students (`feedback_notebook`, rendered with the template in templates/w7feedback/):
- every autograded test cell says passed or failed and its points;
- a failure on a VISIBLE line of the test cell shows the line and the error ("AssertionError: expected ...");
  a failure inside the hidden block says only "hidden tests of <grade id> (<part title>) failed". Which one is
  decided by IPython's traceback frame of the test cell itself ("Cell In[N], line L", N = the cell's execution
  count), mapped onto the cell's hidden region; any frame of the cell inside the hidden block counts as hidden;
- a test cell with a hidden block shows no source of it and no output at all (a student function could print
  the hidden inputs);
- mark schemes, rubric cells and hidden test source are removed; every remaining output is searched for the
  text of hidden tests, solutions and mark schemes (lines of the source notebook that the student version does
  not contain) and removed where found (a student function can read earlier cells' source from IPython's line
  cache and print it);
- hand-graded answers that are not graded yet say so instead of "0 / 2".

Offline (`offline_html`): plotly.js and MathJax 3 are inlined into each html file (nbgrader's release_feedback
and fetch_feedback copy only the `<notebook>.html` files, so a shared assets folder would never reach the
student), from the site's copies in site_assets/vendor (MathJax's fonts as data URLs); each only when the page
needs it.
"""

from __future__ import annotations

import base64
import functools
import html as _html
import re
from pathlib import Path

import nbformat
from nbformat.notebooknode import NotebookNode

from .compare import MIME as RECORD_MIME
from .markers import HIDDEN, MARK_SCHEME, SOLUTION, between, drop, regions
from .settings import REPO

RUBRIC = "w7_rubric"  # metadata key of the graders' rubric cells
RESULT = "w7_result"  # metadata key of a test cell's result, read by the template
PENDING = "w7_pending"  # metadata key: a hand-graded cell not graded yet
TEMPLATES = Path(__file__).resolve().parent / "templates"
VENDOR = REPO / "site_assets" / "vendor"
ANSI = re.compile(r"\x1b\[[0-9;]*[A-Za-z]")
FRAME = re.compile(r"Cell In\s*\[(\d+)\],\s*line (\d+)")
REMOVED = "(output removed from this feedback: it contained text of hidden tests, the solution or the mark scheme)"


def _nbg(cell) -> dict:
    return cell.get("metadata", {}).get("nbgrader", {}) or {}


def is_test(cell) -> bool:
    m = _nbg(cell)
    return cell.cell_type == "code" and bool(m.get("grade")) and not m.get("solution")


def is_hand_graded(cell) -> bool:
    m = _nbg(cell)
    return bool(m.get("grade")) and bool(m.get("solution"))


# -- graders: the rubric ------------------------------------------------------------------------------------------
def mark_schemes(source_dir: Path) -> dict[str, dict[str, str]]:
    """notebook id -> grade id -> mark scheme text, for every hand-graded cell of the solution notebooks."""
    from .source import source_notebooks

    out: dict[str, dict[str, str]] = {}
    for stem, nb in source_notebooks(Path(source_dir)).items():
        for c in nb.cells:
            if is_hand_graded(c) and MARK_SCHEME[0] in c.source:
                out.setdefault(stem, {})[_nbg(c)["grade_id"]] = between(c.source, MARK_SCHEME).strip()
    return out


def add_rubric(nb: NotebookNode, schemes: dict[str, str]) -> NotebookNode:
    """Put a locked markdown cell with its mark scheme before each hand-graded cell (graders only: feedback removes
    it). Idempotent."""
    cells = [c for c in nb.cells if RUBRIC not in c.get("metadata", {})]
    out = []
    for c in cells:
        gid = _nbg(c).get("grade_id")
        if is_hand_graded(c) and gid in schemes:
            pts = _nbg(c).get("points", 0)
            text = (f"**Mark scheme for `{gid}` ({pts:g} point{'s' if pts != 1 else ''}), graders only** "
                    f"(from the solution notebook; never shown to students)\n\n{schemes[gid]}")
            cell = nbformat.v4.new_markdown_cell(text, metadata={RUBRIC: gid, "editable": False, "deletable": False})
            if nb.get("nbformat_minor", 5) < 5:
                cell.pop("id", None)
            out.append(cell)
        out.append(c)
    nb.cells = out
    return nb


# -- students: what a test cell's failure may say -----------------------------------------------------------------
def part_titles(nb: NotebookNode) -> dict[str, str]:
    """grade id of each test cell -> the nearest heading above it (e.g. "Part 2: squares (3 points)")."""
    out, title = {}, ""
    for c in nb.cells:
        if c.cell_type == "markdown":
            for ln in c.source.splitlines():
                if ln.lstrip().startswith("#"):
                    title = ln.strip().lstrip("#").strip()
                    break
        elif is_test(c):
            out[_nbg(c)["grade_id"]] = title
    return out


def classify(cell: NotebookNode) -> dict:
    """passed / failed of one executed test cell; for a failure: "visible" (line, code, message), "hidden" or
    "autograder" (a message of the grader itself: not run, time limit, integrity)."""
    errors = [o for o in cell.get("outputs", []) if o.get("output_type") == "error"]
    if not errors:
        return {"status": "passed"}
    err = errors[0]
    ename, evalue = str(err.get("ename", "Error")), str(err.get("evalue", ""))
    if ename == "AutograderMismatch":  # compare.py: the recorded results differ from the solution's
        if "case '" not in evalue:  # only hidden cases: say which part, nothing else
            return {"status": "failed", "kind": "hidden"}
        return {"status": "failed", "kind": "visible", "line": None, "code": "",
                "message": ("results differ from the solution's: " + evalue)[:2000]}
    if ename.startswith("Autograder"):
        return {"status": "failed", "kind": "autograder", "message": f"{ename}: {evalue}"}
    lines, hidden = regions(cell.source, HIDDEN)
    tb = ANSI.sub("", "\n".join(err.get("traceback", [])))
    n = cell.get("execution_count")
    own = [int(ln) for num, ln in FRAME.findall(tb) if n is not None and int(num) == n]
    if any(ln in hidden for ln in own) or (not own and hidden):
        return {"status": "failed", "kind": "hidden"}
    line = own[0] if own else None
    code = lines[line - 1].strip() if line and 0 < line <= len(lines) else ""
    msg = f"{ename}: {evalue}" if evalue else ename
    return {"status": "failed", "kind": "visible", "line": line, "code": code, "message": msg[:2000]}


# -- students: the feedback notebook ------------------------------------------------------------------------------
def secret_lines(source_nb: NotebookNode, release_nb: NotebookNode | None) -> set[str]:
    """Lines only instructors have: hidden tests, solutions, mark schemes (whitespace collapsed, >= 16 chars),
    minus every line the student version also holds, whole or inside a longer line (a solution line that the
    student's own docstring quotes, `2. demos = task.shots(shots, seed=seed) (the same ...)`, is no secret: finding
    it in a feedback page would withhold every student's feedback)."""
    def norm(s: str) -> str:
        return " ".join(s.split())

    public: set[str] = set()
    public_text = ""
    if release_nb is not None:
        for c in release_nb.cells:
            public |= {norm(ln) for ln in c.source.splitlines()}
        public_text = "\n".join(sorted(public))
    out = set()
    for c in source_nb.cells:
        for kind in (HIDDEN, MARK_SCHEME, SOLUTION):
            if kind[0] in c.source:
                for ln in between(c.source, kind).splitlines():
                    t = norm(ln)
                    if len(t) >= 16 and t not in public and t not in public_text:
                        out.add(t)
    return out


def own_lines(secrets: set[str], nb: NotebookNode) -> set[str]:
    """The secret lines that are not secret for this student: those their own answer cells hold (a correct answer
    often is the solution's line, `previous = current`; finding it in their feedback is no leak, and flagging it
    withheld the feedback of every student who got a part right). Only answer cells count: nbgrader puts the
    instructor's version of every test cell (hidden tests included) back into the autograded notebook."""
    own = "\n".join(" ".join(c.source.split()) for c in nb.cells
                     if _nbg(c).get("solution") and RUBRIC not in c.get("metadata", {}))
    return {t for t in secrets if t in own}


def _output_text(o) -> str:
    parts = [str(o.get("text", "")), str(o.get("ename", "")), str(o.get("evalue", ""))]
    parts += [ANSI.sub("", str(t)) for t in o.get("traceback", [])]
    for v in (o.get("data") or {}).values():
        parts.append(v if isinstance(v, str) else str(v))
    return " ".join(" ".join(parts).split())


def feedback_notebook(nb: NotebookNode, *, secrets: set[str], titles: dict[str, str],
                      pending: set[str]) -> NotebookNode:
    """The student's feedback version of an autograded notebook (see the module docstring)."""
    out = []
    for c in nb.cells:
        meta = c.get("metadata", {})
        if RUBRIC in meta:
            continue
        if MARK_SCHEME[0] in c.source:
            c.source = drop(c.source, MARK_SCHEME)
        gid = _nbg(c).get("grade_id")
        if is_test(c):
            res = classify(c)
            res["part"] = titles.get(gid, "")
            meta[RESULT] = res
            if HIDDEN[0] in c.source:
                c.source = drop(c.source, HIDDEN, "# (hidden tests: not shown)")
                c.outputs = []
            else:
                c.outputs = [o for o in c.get("outputs", []) if o.get("output_type") != "error"]
        if gid in pending and _nbg(c).get("grade"):
            meta[PENDING] = True
        if c.cell_type == "code":
            kept = []
            for o in c.get("outputs", []):
                if RECORD_MIME in (o.get("data") or {}):  # results for the grader (compare.py), not for people
                    continue
                text = _output_text(o)
                if any(s in text for s in secrets):
                    kept.append(nbformat.v4.new_output("stream", name="stdout", text=REMOVED + "\n"))
                else:
                    kept.append(o)
            c.outputs = kept
        out.append(c)
    nb.cells = out
    return nb


def leaks(html: str, secrets: set[str]) -> list[str]:
    """Secret lines found in a rendered feedback page (whitespace collapsed; html entities decoded)."""
    text = " ".join(_html.unescape(re.sub(r"<[^>]+>", " ", html)).split())
    raw = " ".join(_html.unescape(html).split())
    return sorted(s for s in secrets if s in text or s in raw)


# -- offline assets -----------------------------------------------------------------------------------------------
def _script(js: str) -> str:
    return "<script>" + js.replace("</script", "<\\/script").replace("<!--", "<\\!--") + "</script>"


@functools.lru_cache(maxsize=1)
def _plotly_js() -> str:
    p = VENDOR / "plotly.min.js"
    if not p.is_file():
        import plotly

        p = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
    return p.read_text(encoding="utf-8")


@functools.lru_cache(maxsize=1)
def _mathjax_js() -> str | None:
    """MathJax 3 (TeX input, CommonHTML output, every TeX extension) with its fonts as data URLs."""
    mj = VENDOR / "mathjax"
    js_path, fonts = mj / "tex-chtml-full.js", mj / "output" / "chtml" / "fonts" / "woff-v2"
    if not js_path.is_file() or not fonts.is_dir():
        return None
    js = js_path.read_text(encoding="utf-8")

    def font(m: re.Match) -> str:
        f = fonts / m.group(1)
        return 'url("data:font/woff;base64,' + base64.b64encode(f.read_bytes()).decode() + '")'

    js = re.sub(r'url\("%%URL%%/([A-Za-z0-9_-]+\.woff)"\)', font, js)
    return js


MATHJAX_CONFIG = """window.MathJax = {
  tex: {inlineMath: [['$', '$'], ['\\\\(', '\\\\)']], displayMath: [['$$', '$$'], ['\\\\[', '\\\\]']],
        processEscapes: true, processEnvironments: true},
  options: {menuOptions: {settings: {assistiveMml: false}}},
  startup: {typeset: true}
};"""
MARKER = "<!-- w7-offline-assets -->"
_MATH = re.compile(r"\$[^$\n]+\$|\\\(|\\\[|\\begin\{")


def offline_html(page: str) -> tuple[str, list[str]]:
    """Insert plotly.js and MathJax where the page needs them (at the template's marker); returns the page and
    warnings (a missing asset)."""
    warnings: list[str] = []
    body = page.split("<body", 1)[-1]
    head = []
    if "Plotly.newPlot" in body or "w7-plotly" in body:
        head.append(_script(_plotly_js()))
    if _MATH.search(re.sub(r"<(pre|code)[^>]*>.*?</\1>", "", body, flags=re.S)):
        mj = _mathjax_js()
        if mj is None:
            warnings.append(f"MathJax not found in {VENDOR / 'mathjax'} (run `make vendor`): feedback shows math "
                            "as TeX source")
        else:
            head.append(_script(MATHJAX_CONFIG))
            head.append(_script(mj))
    if MARKER not in page:
        raise RuntimeError("feedback template without the offline-assets marker")
    page = page.replace(MARKER, "\n".join(head), 1)
    return page, warnings


def external_scripts(page: str) -> list[str]:
    """Every <script src=...> or <link href=...> that would load over the network."""
    return re.findall(r"<(?:script|link)[^>]+(?:src|href)\s*=\s*[\"']?((?:https?:)?//[^\"' >]+)", page, flags=re.I)
