"""The hostile corpus (issues 10 and 15): hostile or damaged submissions score at most what their answers earn, are
graded or flagged with a reason, and never stop the batch; honest submissions, unusual ones included, score exactly
their points. One batch grades them all (real nbgrader, sandboxed).

Since issue 15 no check runs in the student's kernel: test cells record their results (week7.checks.record) and the
grader compares them with the solution's in its own process (autograder/compare.py). The attacks below were aimed
at the in-kernel guard of the earlier design (each rebuilt against this one): patched libraries, builtins and
classes, fake objects, hooks, threads, forged and oversized records. Each must gain nothing. Exercise 04's own
attacks (its attention yardstick, its memory meter, gradients) are in tests/test_exercise_04_hostile.py."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import nbformat
import pytest

from autograder.api import grade
from autograder.sandbox import SandboxUnavailable, check
from autograder.settings import Settings

pytestmark = [pytest.mark.nbgrader, pytest.mark.slow]  # one batch of 33 submissions: 2-4 min

FIX = Path(__file__).resolve().parent / "fixtures" / "autograder"
COURSE = FIX / "course"
RELEASE = COURSE / "exercises" / "00-demo" / "demo.ipynb"
ADD_OK = "def add(a, b):\n    return int(a) + int(b)"
SQ_OK = "def squares(n):\n    if n < 0:\n        raise ValueError(n)\n    return np.arange(n, dtype=np.int64) ** 2"
ADD_WRONG = "def add(a, b):\n    return int(a) - int(b)"
SQ_WRONG = "def squares(n):\n    return np.arange(n, dtype=np.int64)"
SECRET = "w7-test-secret-93125"

# code that reaches for what a sandboxed kernel must not reach; `squares` is correct only when nothing succeeded
LEAKS = r'''
import os, socket, glob
leaks = []
def _try(name, fn):
    try:
        fn()
        leaks.append(name)
    except Exception:
        pass
_try("solutions", lambda: open("{repo}/tests/fixtures/autograder/course/solutions/00-demo/demo.ipynb").read())
_try("repo", lambda: os.listdir("{repo}/autograder") or 1 / 0)
_try("write-repo", lambda: open("{repo}/tests/fixtures/autograder/HACKED", "w").write("x"))
_try("other-submissions", lambda: (glob.glob("/tmp/w7grade-*") + glob.glob("/tmp/w7tpl-*") +
                                  glob.glob("/tmp/pytest-of-*"))[0])
_try("environ", lambda: os.environ["W7_TEST_SECRET"])
_try("network", lambda: socket.create_connection(("1.1.1.1", 53), timeout=2))
_try("loopback-grader", lambda: socket.create_connection(("127.0.0.1", 22), timeout=1))
_try("root", lambda: os.getuid() == 0 or 1 / 0)
print("leaks:", leaks)
def squares(n):
    if leaks:
        raise AssertionError("reached: " + ", ".join(leaks))
    if n < 0:
        raise ValueError(n)
    return np.arange(n, dtype=np.int64) ** 2
'''


def _nb(add: str, squares: str) -> nbformat.NotebookNode:
    nb = nbformat.read(RELEASE, as_version=4)
    for c in nb.cells:
        gid = c.metadata.get("nbgrader", {}).get("grade_id")
        if gid == "demo-add":
            c.source = add
        elif gid == "demo-squares":
            c.source = squares
    return nb


def _cell(nb, gid):
    return next(i for i, c in enumerate(nb.cells) if c.metadata.get("nbgrader", {}).get("grade_id") == gid)


def _write(tmp: Path, name: str, nb) -> Path:
    p = tmp / f"{name}.ipynb"
    nbformat.write(nb, p)
    return p


def _submissions(tmp: Path) -> dict[str, tuple[Path, float, str | None]]:
    """name -> (submission, expected total, expected flag (a regex) or None).

    A negative total -t means "at most t" (what the honest version of the same answers earns): hostile code may
    break the kernel badly enough to lose more."""
    repo = str(Path(__file__).resolve().parents[1])
    s: dict[str, tuple[Path, float, str | None]] = {}
    s["honest"] = (_write(tmp, "honest", _nb(ADD_OK, SQ_OK)), 5.0, None)
    s["honest_wrong"] = (_write(tmp, "honest_wrong", _nb(ADD_WRONG, SQ_WRONG)), 0.0, None)
    # monkeypatching a library the visible asserts use: squares is wrong, np.asarray made to "fix" it
    s["patch_numpy"] = (_write(tmp, "patch_numpy", _nb(ADD_OK, SQ_WRONG + "\n_real = np.asarray\n"
                                                       "np.asarray = lambda x, *a, **k: _real([0, 1, 4, 9])")),
                        2.0, None)
    # an object that claims to equal anything (an int subclass: recorded as the int it holds)
    s["always_equal"] = (_write(tmp, "always_equal", _nb(
        "class Eq(int):\n    def __eq__(self, other):\n        return True\n    __hash__ = int.__hash__\n"
        "def add(a, b):\n    return Eq(0)", SQ_OK)), 3.0, None)
    # an object that is no number at all, with int shadowed so that `type(x) is int` holds
    s["shadow_int"] = (_write(tmp, "shadow_int", _nb(
        "class Fake:\n    def __eq__(self, other):\n        return True\n    __hash__ = object.__hash__\n"
        "int = Fake\ndef add(a, b):\n    return Fake()", SQ_OK)), 3.0, None)
    # type shadowed in the notebook namespace so that the exact-type assert accepts a str
    s["shadow_type"] = (_write(tmp, "shadow_type", _nb(
        "type = lambda *a: __builtins__.int if len(a) == 1 else __builtins__.type(*a)\n"
        "def add(a, b):\n    return str(a + b)", SQ_OK)), -3.0, None)
    # an IPython hook that deletes every assert from the cells that follow
    s["ast_hook"] = (_write(tmp, "ast_hook", _nb(
        "import ast\nclass NoAsserts(ast.NodeTransformer):\n    def visit_Assert(self, node):\n"
        "        return ast.Pass()\nget_ipython().ast_transformers.append(NoAsserts())\n" + ADD_WRONG, SQ_WRONG)),
        0.0, None)
    # builtins patched so the exact-type check passes
    s["patch_builtins"] = (_write(tmp, "patch_builtins", _nb(
        "import builtins\n_t = builtins.type\nbuiltins.type = lambda *a: int if len(a) == 1 else _t(*a)\n"
        "def add(a, b):\n    return str(a + b)", SQ_OK)), -3.0, None)
    # numpy's real class dictionary reached through the garbage collector: ndarray.tolist made to lie
    s["class_dict"] = (_write(tmp, "class_dict", _nb(ADD_OK, SQ_WRONG + "\nimport ctypes, gc\n"
        "_d = gc.get_referents(np.ndarray.__dict__)[0]\n_d['tolist'] = lambda self: [0, 1, 4, 9]\n"
        "ctypes.pythonapi.PyType_Modified(ctypes.py_object(np.ndarray))")), 2.0, None)
    # a patch compiled under numpy's own file name (invisible to a check of where a function comes from)
    s["numpy_filename"] = (_write(tmp, "numpy_filename", _nb(ADD_OK, SQ_WRONG + "\n"
        "exec(compile('def asarray(x, *a, **k):\\n    return _np_real([0, 1, 4, 9])', np.__file__, 'exec'), "
        "ns := {'_np_real': np.asarray})\nnp.asarray = ns['asarray']")), 2.0, None)
    # record() itself replaced: forged values for the visible case, nothing for the hidden ones
    s["replace_record"] = (_write(tmp, "replace_record", _nb(ADD_OK, SQ_WRONG + "\nimport week7.checks as _c\n"
        "_real = _c.record\n_c.record = lambda case, v, **k: _real(case, np.array([0, 1, 4, 9]) "
        "if case == 'squares(4)' else v, **k)")), 2.0, None)
    # a custom __import__ that hands the test cell a fake week7.checks whose record() emits nothing
    s["import_hook"] = (_write(tmp, "import_hook", _nb(ADD_WRONG + "\nimport builtins, types\n"
        "_imp = builtins.__import__\n_fake = types.SimpleNamespace(record=lambda *a, **k: None, "
        "raised=lambda *a, **k: '')\n"
        "def _hook(name, *a, **k):\n    return _fake if name == 'week7.checks' else _imp(name, *a, **k)\n"
        "builtins.__import__ = _hook", SQ_OK)), -3.0, None)
    # forged records printed by the student's function before the test cell's own: a conflict, flagged
    s["forged_records"] = (_write(tmp, "forged_records", _nb(ADD_OK,
        "from IPython.display import display\nimport base64\n"
        "_MIME = 'application/vnd.week7.record.v1+json'\n"
        "def _forge(case, arr):\n    display({_MIME: {'case': case, 'value': {'t': 'array', 'kind': 'ndarray', "
        "'dtype': 'int64', 'shape': [len(arr)], 'b64': base64.b64encode(np.asarray(arr, dtype='<i8').tobytes())"
        ".decode()}, 'rtol': 1e9, 'atol': 1e9}}, raw=True)\n"
        "def squares(n):\n    _forge('squares(4)', [0, 1, 4, 9])\n    return np.arange(max(n, 0), dtype=np.int64)")),
        2.0, "recorded twice with different values")
    # a malformed record beside correct answers: no points lost, the forgery flagged
    s["bad_record"] = (_write(tmp, "bad_record", _nb(ADD_OK, SQ_OK.replace("    return", "    from IPython.display "
        "import display\n    display({'application/vnd.week7.record.v1+json': {'case': 'h1', 'value': {'t': "
        "'array', 'kind': 'ndarray', 'dtype': 'object', 'shape': [1], 'b64': 'AAAA'}}}, raw=True)\n    return"))),
        5.0, "unreadable record")
    # a record far over the budget: the rest of the cell's records are dropped, squares loses its points
    s["huge_record"] = (_write(tmp, "huge_record", _nb(ADD_OK, SQ_OK + "\nfrom week7.checks import record as _r\n"
        "_sq = squares\ndef squares(n):\n    _r('junk', np.zeros(3 * 2**20))\n    return _sq(n)")),
        2.0, "records over")
    # a thread that keeps putting the right visible answer into the test cell's variable `out`
    s["thread_swap"] = (_write(tmp, "thread_swap", _nb(ADD_OK, SQ_WRONG + "\nimport threading, time\n"
        "def _swap():\n    while True:\n        g = get_ipython().user_ns\n"
        "        if 'out' in g and isinstance(g['out'], np.ndarray) and len(g['out']) == 4:\n"
        "            g['out'] = np.array([0, 1, 4, 9])\n        time.sleep(0.0005)\n"
        "threading.Thread(target=_swap, daemon=True).start()")), -2.0, None)
    # a trace function; an error hook that hides errors
    s["settrace"] = (_write(tmp, "settrace", _nb(
        "import sys\nsys.settrace(lambda *a: None)\n" + ADD_OK, SQ_OK)), 5.0, None)
    s["excepthook"] = (_write(tmp, "excepthook", _nb(
        "get_ipython().showtraceback = lambda *a, **k: None\n"
        "get_ipython().set_custom_exc((Exception,), lambda *a, **k: None)\n" + ADD_WRONG, SQ_WRONG)),
        0.0, None)
    # honest answers that do unusual things: walk the garbage collector, print anything (record-like text too),
    # read the test cell's source from IPython's line cache, write to stderr: every point kept, no flag
    s["honest_unusual"] = (_write(tmp, "honest_unusual", _nb(
        "import gc, linecache, sys\n"
        "def add(a: int, b: int) -> int:\n    gc.get_objects()\n"
        "    print('W7RECORD {\"case\": \"add(2, 3)\"} application/vnd.week7.record.v1+json ' * 3)\n"
        "    print(sum(len(v[2]) for k, v in list(linecache.cache.items()) if k.startswith('<ipython')), "
        "file=sys.stderr)\n    return int(a) + int(b)", SQ_OK)), 5.0, None)
    # the notebook's own copy of a test cell rewritten to pass: nbgrader restores the locked test
    nb = _nb(ADD_WRONG, SQ_OK)
    nb.cells[_cell(nb, "demo-add-tests")].source = "pass"
    s["edited_test"] = (_write(tmp, "edited_test", nb), 3.0, None)
    # a copy-pasted graded cell (duplicate grade id): nbgrader alone aborts the whole batch
    nb = _nb(ADD_OK, SQ_OK)
    dup = json.loads(json.dumps(nb.cells[_cell(nb, "demo-add")]))
    nb.cells.insert(_cell(nb, "demo-squares"), nbformat.from_dict(dup))
    s["duplicate_id"] = (_write(tmp, "duplicate_id", nb), 5.0, "duplicate grade id 'demo-add'")
    # a deleted test cell: put back from the source, so the (wrong) answer is still tested
    nb = _nb(ADD_OK, SQ_WRONG)
    del nb.cells[_cell(nb, "demo-squares-tests")]
    s["deleted_test"] = (_write(tmp, "deleted_test", nb), 2.0, "'demo-squares-tests' deleted")
    # points and flags edited in the metadata
    nb = _nb(ADD_OK, SQ_WRONG)
    nb.cells[_cell(nb, "demo-add-tests")].metadata["nbgrader"]["points"] = 100
    nb.cells[_cell(nb, "demo-squares-tests")].metadata["nbgrader"]["grade"] = False
    s["edited_points"] = (_write(tmp, "edited_points", nb), 2.0, "metadata changed")
    # another kernel
    nb = _nb(ADD_OK, SQ_OK)
    nb.metadata["kernelspec"] = {"name": "ir", "display_name": "R", "language": "R"}
    s["wrong_kernel"] = (_write(tmp, "wrong_kernel", nb), 5.0, "kernel 'ir' replaced")
    # corrupt JSON
    bad = tmp / "corrupt.ipynb"
    bad.write_text(RELEASE.read_text()[:700])
    s["corrupt"] = (bad, 0.0, "corrupt JSON")
    # a folder without the notebook, and a folder with a module that would shadow numpy
    (tmp / "missing").mkdir()
    (tmp / "missing" / "notes.txt").write_text("forgot the notebook")
    s["missing"] = (tmp / "missing", 0.0, "notebook missing")
    (tmp / "shadow").mkdir()
    nbformat.write(_nb(ADD_OK, SQ_OK), tmp / "shadow" / "demo.ipynb")
    (tmp / "shadow" / "numpy.py").write_text("raise SystemExit('shadowed')\n")
    s["shadow"] = (tmp / "shadow", 5.0, "extra file ignored: numpy.py")
    # reaching outside the submission: sources, other submissions, the repo, secrets, network, privileges
    s["escape"] = (_write(tmp, "escape", _nb(ADD_OK, LEAKS.replace("{repo}", repo))), 5.0, None)
    # resources: an interrupt-ignoring loop (killed; earlier parts keep their points), a process left running,
    # huge output
    s["spin"] = (_write(tmp, "spin", _nb(ADD_OK, "import time\nwhile True:\n    try:\n        time.sleep(0.05)\n"
                                                  "    except KeyboardInterrupt:\n        pass")),
                 2.0, "time limit")
    s["orphan_and_flood"] = (_write(tmp, "orphan_and_flood", _nb(
        "import subprocess\nsubprocess.Popen(['sleep', '987654'])\nprint('x' * 10_000_000)\n" + ADD_OK, SQ_OK)),
        5.0, "output truncated")
    s["memory"] = (_write(tmp, "memory", _nb(ADD_OK, "blob = bytearray(16 * 2**30)\n" + SQ_OK)), 2.0, None)
    return s


@pytest.fixture(scope="module")
def graded(tmp_path_factory):
    try:
        check("auto")
    except SandboxUnavailable as e:
        pytest.fail(f"the sandbox does not work on this machine: {e}")
    tmp = tmp_path_factory.mktemp("hostile")
    subs = _submissions(tmp)
    settings = Settings()
    settings.cell_timeout_s = 20  # the spin fixture waits this long; the figure cell needs a few s under load
    settings.course_root = COURSE
    os.environ["W7_TEST_SECRET"] = SECRET
    try:
        res = grade("00-demo", {k: v[0] for k, v in subs.items()}, workers=2, settings=settings)
    finally:
        os.environ.pop("W7_TEST_SECRET", None)
    return subs, res


CASES = ["honest", "honest_wrong", "patch_numpy", "always_equal", "shadow_int", "shadow_type", "ast_hook",
         "patch_builtins", "class_dict", "numpy_filename", "replace_record", "import_hook", "forged_records",
         "bad_record", "huge_record", "thread_swap", "settrace", "excepthook", "honest_unusual", "edited_test", "duplicate_id", "deleted_test", "edited_points", "wrong_kernel", "corrupt",
         "missing", "shadow", "escape", "spin", "orphan_and_flood", "memory"]


# honest answers, the unusual ones included: every point and no flag
HONEST = {"honest", "honest_wrong", "honest_unusual", "escape", "always_equal", "edited_test"}
# settrace keeps every point too; under load its trace function can push the figure cell over the time limit (flagged)


@pytest.mark.parametrize("name", CASES)
def test_threat_scores_what_its_answers_earn(graded, name):
    subs, res = graded
    _, total, flag = subs[name]
    r = res[name]
    if total >= 0:
        assert r.total == total, f"{name}: {r.total} != {total}; {r.by_grade_id}; flags {r.flags}"
    else:
        assert r.total <= -total, f"{name}: {r.total} > {-total}; {r.by_grade_id}; flags {r.flags}"
    assert r.max_total == 5.0
    if flag is None and name in HONEST:
        assert not r.flags, f"{name}: unexpected flags {r.flags}"
    elif flag is None:  # hostile: graded, or flagged with a reason
        assert r.status in ("graded", "flagged") and all(f.strip() for f in r.flags), (name, r.status, r.flags)
    else:
        assert any(re.search(flag, f) for f in r.flags), f"{name}: no flag matching {flag!r} in {r.flags}"
        assert r.status in ("flagged", "failed")


def test_nothing_escaped_the_sandbox(graded):
    assert not (FIX / "HACKED").exists()
    out = subprocess.run(["pgrep", "-f", "sleep 987654"], capture_output=True, text=True)
    assert out.stdout.strip() == "", "a process started by a submission is still running"


def test_the_same_escape_unsandboxed_does_reach_out(tmp_path):
    """The escape fixture can fail: without the sandbox it reaches the sources and the grader's secrets."""
    subs = {"escape": _submissions(tmp_path)["escape"][0]}
    settings = Settings()
    settings.sandbox = "none"
    settings.course_root = COURSE
    os.environ["W7_TEST_SECRET"] = SECRET
    try:
        r = grade("00-demo", subs, workers=1, settings=settings)["escape"]
    finally:
        os.environ.pop("W7_TEST_SECRET", None)
        (FIX / "HACKED").unlink(missing_ok=True)
    assert r.by_grade_id["demo-squares-tests"][0] == 0.0 and "unsandboxed" in " ".join(r.flags)
