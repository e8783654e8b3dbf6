"""nbgrader's region markers in a cell's source, read in one place.

A region runs from the line holding its BEGIN marker to the line holding its END marker (both included), as
nbgrader reads them (``### BEGIN SOLUTION``, ``### BEGIN HIDDEN TESTS``; mark schemes in markdown cells are
written ``=== BEGIN MARK SCHEME ===``: the marker is found anywhere in its line).
"""

from __future__ import annotations

SOLUTION = ("BEGIN SOLUTION", "END SOLUTION")
HIDDEN = ("BEGIN HIDDEN TESTS", "END HIDDEN TESTS")
MARK_SCHEME = ("BEGIN MARK SCHEME", "END MARK SCHEME")
KINDS = (SOLUTION, HIDDEN, MARK_SCHEME)
MARKERS = tuple(m for kind in KINDS for m in kind)  # text a student version must never hold


def regions(source: str, kind: tuple[str, str]) -> tuple[list[str], set[int]]:
    """Lines of ``source`` and the 1-based numbers of those inside ``kind``'s regions (marker lines included)."""
    begin, end = kind
    lines = source.split("\n")
    inside, out = False, set()
    for i, line in enumerate(lines, 1):
        if begin in line:
            inside = True
        if inside:
            out.add(i)
        if end in line:
            inside = False
    return lines, out


def between(source: str, kind: tuple[str, str]) -> str:
    """The text inside ``kind``'s regions, marker lines left out."""
    lines, region = regions(source, kind)
    begin, end = kind
    return "\n".join(ln for i, ln in enumerate(lines, 1) if i in region and begin not in ln and end not in ln)


def drop(source: str, kind: tuple[str, str], placeholder: str | None = None) -> str:
    """``source`` without ``kind``'s regions; ``placeholder`` (indented like the region) stands in for each."""
    lines, region = regions(source, kind)
    keep, put = [], False
    for i, ln in enumerate(lines, 1):
        if i in region:
            if placeholder is not None and not put:
                keep.append(ln[: len(ln) - len(ln.lstrip())] + placeholder)
                put = True
            continue
        put = False
        keep.append(ln)
    return "\n".join(keep).strip("\n") if placeholder is None else "\n".join(keep)


def visible(source: str) -> str:
    """A test cell's code without its hidden tests (what the student version shows)."""
    return drop(source, HIDDEN)


def hidden(source: str) -> str:
    """A test cell's hidden tests, marker lines left out."""
    return between(source, HIDDEN)


def answer(source: str) -> str:
    """An answer cell's code as a student would write it: the solution with its marker lines left out."""
    return "\n".join(ln for ln in source.splitlines() if ln.strip().lstrip("#").strip() not in SOLUTION)


def outside(source: str, *kinds: tuple[str, str]) -> list[str]:
    """The non-empty lines (stripped) of ``source`` outside every region of ``kinds``."""
    lines = source.split("\n")
    inner: set[int] = set()
    for kind in kinds:
        inner |= regions(source, kind)[1]
    return [ln.strip() for i, ln in enumerate(lines, 1) if i not in inner and ln.strip()]


def problems(source: str) -> list[str]:
    """Unbalanced markers: a BEGIN without its END, an END without its BEGIN, a region opened twice."""
    out = []
    for begin, end in KINDS:
        open_at = None
        for i, line in enumerate(source.split("\n"), 1):
            if begin in line:
                if open_at is not None:
                    out.append(f"line {i}: {begin} inside the region opened at line {open_at}")
                open_at = i
            elif end in line:
                if open_at is None:
                    out.append(f"line {i}: {end} without {begin}")
                open_at = None
        if open_at is not None:
            out.append(f"line {open_at}: {begin} never ends")
    return out
