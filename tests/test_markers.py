"""autograder/markers.py, the one reader of nbgrader's region markers (solution, hidden tests, mark scheme)."""

from __future__ import annotations

from autograder import markers as M

TEST_CELL = '''"""Check that f doubles."""
assert f(2) == 4, "f(2)"
### BEGIN HIDDEN TESTS
assert f(3) == 6
### END HIDDEN TESTS
print("done")'''

ANSWER = '''def f(x):
    """Double x."""
    ### BEGIN SOLUTION
    return 2 * x
    ### END SOLUTION'''

WRITTEN = '''YOUR ANSWER HERE
=== BEGIN MARK SCHEME ===
1 point: says why.
=== END MARK SCHEME ==='''


def test_visible_and_hidden_parts():
    """Check that the visible part keeps the code around the hidden region and the hidden part is its inside."""
    assert M.visible(TEST_CELL) == '"""Check that f doubles."""\nassert f(2) == 4, "f(2)"\nprint("done")'
    assert M.hidden(TEST_CELL) == "assert f(3) == 6"
    assert M.regions(TEST_CELL, M.HIDDEN)[1] == {3, 4, 5}


def test_answer_drops_only_the_marker_lines():
    """Check that an answer cell's code keeps its signature, docstring and body, without the two marker lines."""
    assert M.answer(ANSWER) == 'def f(x):\n    """Double x."""\n    return 2 * x'


def test_placeholder_and_outside():
    """Check that drop puts an indented placeholder where a region was, and outside lists what is left."""
    assert M.drop(ANSWER, M.SOLUTION, "# YOUR CODE HERE").splitlines()[-1] == "    # YOUR CODE HERE"
    assert M.between(WRITTEN, M.MARK_SCHEME) == "1 point: says why."
    assert M.outside(WRITTEN, M.SOLUTION, M.MARK_SCHEME) == ["YOUR ANSWER HERE"]
    assert M.outside(ANSWER, M.SOLUTION) == ["def f(x):", '"""Double x."""']


def test_unbalanced_markers_are_reported():
    """Check that a region never closed, an END alone and a region opened twice are each named with a line."""
    assert M.problems(TEST_CELL) == [] and M.problems(ANSWER) == []
    assert M.problems("### BEGIN HIDDEN TESTS\nassert x") == ["line 1: BEGIN HIDDEN TESTS never ends"]
    assert M.problems("x = 1\n### END SOLUTION") == ["line 2: END SOLUTION without BEGIN SOLUTION"]
    assert M.problems("### BEGIN SOLUTION\n### BEGIN SOLUTION\n### END SOLUTION") == [
        "line 2: BEGIN SOLUTION inside the region opened at line 1"]
    assert set(M.MARKERS) >= {"BEGIN SOLUTION", "END HIDDEN TESTS", "BEGIN MARK SCHEME"}
