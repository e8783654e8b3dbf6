"""The executor nbgrader's autograde runs submissions with: output caps, and stderr that does not cost points."""

from __future__ import annotations

import typing as t

from nbformat.notebooknode import NotebookNode
from traitlets import Integer

from nbgrader.preprocessors import Execute, NbGraderPreprocessor
from nbgrader import utils

TRUNCATED = "\n[autograder: output truncated at {n} bytes]\n"


class GuardedExecute(Execute):
    """nbgrader's Execute with a cap on the output bytes kept per cell (a print loop cannot fill the grader's
    memory or the gradebook)."""

    max_output_bytes = Integer(200_000, help="text and data bytes kept per cell").tag(config=True)

    def output(self, outs: list[NotebookNode], msg: dict[str, t.Any], display_id: str | None,
               cell_index: int) -> NotebookNode | None:
        used = self._output_used.get(cell_index, 0) if hasattr(self, "_output_used") else 0
        if not hasattr(self, "_output_used"):
            self._output_used = {}
        content = msg.get("content", {})
        size = len(str(content.get("text", ""))) + sum(len(str(v)) for v in content.get("data", {}).values())
        if msg.get("msg_type") == "error":
            return super().output(outs, msg, display_id, cell_index)
        if used >= self.max_output_bytes:
            return None
        self._output_used[cell_index] = used + size
        if used + size > self.max_output_bytes:
            keep = max(self.max_output_bytes - used, 0)
            name = content.get("name", "stdout") if msg.get("msg_type") == "stream" else "stdout"
            text = str(content.get("text", ""))[:keep] + TRUNCATED.format(n=self.max_output_bytes)
            out = NotebookNode(output_type="stream", name=name, text=text)
            outs.append(out)
            return out
        return super().output(outs, msg, display_id, cell_index)


class StderrCounts(NbGraderPreprocessor):
    """nbgrader gives 0 to a test cell that wrote anything to stderr, so a correct answer that merely triggers a
    warning loses its points. For autograded test cells, keep stderr text as ordinary output (marked) so that only
    an error (a failed assert, an exception, a timeout) costs the points."""

    def preprocess_cell(self, cell: NotebookNode, resources: dict, index: int):
        if cell.cell_type == "code" and utils.is_grade(cell) and not utils.is_solution(cell):
            for out in cell.get("outputs", []):
                if out.get("output_type") == "stream" and out.get("name") == "stderr":
                    out["name"] = "stdout"
                    out["text"] = "[stderr] " + out.get("text", "")
        return cell, resources
