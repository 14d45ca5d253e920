"""``sweep``'s summary tables (``qannealq.sweep_report``) on hand-made cells."""

from __future__ import annotations

from qannealq.sweep_report import CellResult, summary_markdown


def _cell(method: str, seed: int, error: float) -> CellResult:
    return CellResult("digits", "paper", method, "", 4, seed, 0, "float", "tensor", "sign", 64, 0.9 + seed / 100,
                      0.95, error)


def test_a_cell_of_fewer_seeds_says_so_in_both_tables():
    """A (method, bits) finished on fewer seeds than the others said ``(n=1)`` in the accuracy table only; its
    layer error, a mean over another sample of seeds, looked comparable with the others'."""
    cells = [_cell("rtn", 0, 2.0), _cell("rtn", 1, 4.0), _cell("gptq", 0, 1.0)]
    text = summary_markdown(cells, {"preset": "paper", "methods": ["rtn", "gptq"]})
    accuracy, error = (line for line in text.splitlines() if line.startswith("| int4 |"))
    assert accuracy == "| int4 | 0.9050 ± 0.0071 | 0.9000 (n=1) |"
    assert error == "| int4 | 3 ± 1.4 | 1 (n=1) |"
