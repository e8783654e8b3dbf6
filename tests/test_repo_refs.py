"""The repository refers only to files it has: no notes, plans or folders that live outside it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Files some working copies had next to the repository, never in it; what the course needs of them is in docs/.
OUTSIDE = re.compile(r"\b(?:NOTES|EXERCISES|DESIGN)\.md\b|\.\./shared\b")
# A check that student notebooks do not leak such a path names it on purpose.
ALLOWED = re.compile(r"for bad in \(")


def _tracked() -> list[Path]:
    out = subprocess.run(["git", "ls-files", "-z"], cwd=ROOT, capture_output=True, text=True, check=True).stdout
    return [ROOT / p for p in out.split("\0") if p]


def find_outside_refs(files: list[Path], root: Path = ROOT) -> list[str]:
    hits = []
    for path in files:
        try:
            text = path.read_text(encoding="utf-8")
        except (UnicodeDecodeError, FileNotFoundError, IsADirectoryError):
            continue
        for n, line in enumerate(text.splitlines(), 1):
            if OUTSIDE.search(line) and not ALLOWED.search(line):
                hits.append(f"{path.relative_to(root)}:{n}: {line.strip()[:120]}")
    return hits


def test_no_reference_to_files_outside_the_repository():
    """Check that no tracked file names NOTES.md, EXERCISES.md, DESIGN.md or ../shared (say it in docs/)."""
    hits = find_outside_refs([p for p in _tracked() if p != Path(__file__).resolve()])
    assert not hits, "references to files the repository does not have:\n" + "\n".join(hits)


def test_the_scan_finds_a_reference(tmp_path):
    """Check that the scan reports a line naming one of those files, with its place."""
    probe = tmp_path / "probe.md"
    probe.write_text("fine\nsee EXER" "CISES.md for the budget\nfor bad in ('../sha" "red',)\n")
    assert find_outside_refs([probe], root=tmp_path) == ["probe.md:2: see EXER" "CISES.md for the budget"]
