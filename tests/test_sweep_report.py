"""``sweep``'s summary tables (``qannealq.sweep_report``) on hand-made cells."""

from __future__ import annotations

from dataclasses import replace

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


def test_an_interrupted_sweep_shows_the_cells_it_has_not_finished():
    """Interrupted in seed 0's first qubo cell (of --methods rtn,gptq,qubo --bits 4,2 --seeds 2), summary.md showed
    rtn and gptq at int4 alone under 'one seed, so no spread': the qubo column, the int2 row and the second seed
    were dropped without a word, and the table read as a finished sweep."""
    cells = [_cell("rtn", 0, 2.0), _cell("gptq", 0, 1.0)]
    settings = {"preset": "paper", "methods": ["rtn", "gptq", "qubo:layer-sa"], "bits": [4, 2], "seeds": 2}
    text = summary_markdown(cells, settings)
    rows = [line for line in text.splitlines() if line.startswith("| int")]
    assert rows == ["| int4 | 0.9000 (n=1) | 0.9000 (n=1) | — |", "| int2 | — | — | — |",
                    "| int4 | 2 (n=1) | 1 (n=1) | — |", "| int2 | — | — | — |"]
    assert "**Unfinished**: 2 of 12 cells finished, 10 to go" in text and "one seed, so no spread" not in text
    assert "qubo:layer-sa accuracy" in text and "mean seconds per cell: rtn 0, gptq 0\n" in text
    finished = [_cell(m, s, 1.0) for m in ("rtn", "gptq", "qubo:layer-sa") for s in (0, 1)]
    finished += [replace(c, bits=2) for c in finished]
    assert "Unfinished" not in summary_markdown(finished, settings)


def test_the_unfinished_line_counts_the_cells_left():
    """One cell done of 8 read "**Unfinished**: 1 of 8 cells": one cell unfinished, where 7 were."""
    settings = {"preset": "paper", "methods": ["rtn", "gptq"], "bits": [4, 2], "seeds": 2}
    line = next(line for line in summary_markdown([_cell("rtn", 0, 2.0)], settings).splitlines()
                if line.startswith("**Unfinished**"))
    assert line.startswith("**Unfinished**: 1 of 8 cells finished, 7 to go (")


def test_mean_seconds_per_cell_is_over_the_cells():
    """The 'mean seconds per cell' was the mean of each bit width's mean: with int4 on two seeds (1 s, 3 s) and
    int2 on one (8 s) it read 5, where the three cells took 4 s on average."""
    cells = [replace(_cell("rtn", 0, 1.0), seconds=1.0), replace(_cell("rtn", 1, 1.0), seconds=3.0),
             replace(_cell("rtn", 0, 1.0), bits=2, seconds=8.0)]
    text = summary_markdown(cells, {"preset": "paper", "methods": ["rtn"], "bits": [4, 2], "seeds": 2})
    assert text.rstrip().endswith("mean seconds per cell: rtn 4")


def test_a_cell_that_failed_on_every_seed_reads_failed_not_unreached():
    """Under --keep-going a (method, bits) whose every seed failed showed '—', as a cell not reached yet."""
    from qannealq.sweep_report import FailedCell

    settings = {"preset": "paper", "methods": ["rtn", "gptq"], "bits": [4], "seeds": 1}
    lost = [FailedCell("digits", "gptq", 4, 0, "BackendError: down")]
    text = summary_markdown([_cell("rtn", 0, 2.0)], settings, failed=lost)
    assert [line for line in text.splitlines() if line.startswith("| int4")] == \
        ["| int4 | 0.9000 | failed |", "| int4 | 2 | failed |"]
    assert "1 of 2 cells finished, 1 to go (1 failed; `qannealq sweep --resume` computes it again); failed: gptq " \
           "int4 seed 0: BackendError: down" in text
    assert "failed: gptq int4 seed 0: BackendError: down" in summary_markdown([], settings, failed=lost)
