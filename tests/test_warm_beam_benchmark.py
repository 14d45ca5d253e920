"""benchmarks/warm_beam.py: options it cannot use are refused before any layer is built."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import warm_beam  # noqa: E402  (imported, not skipped: a broken import fails here)
from bench_cli import refused_first  # noqa: E402


def _refused(monkeypatch, capsys, *argv: str) -> str:
    return refused_first(monkeypatch, capsys, warm_beam, "first_layer",
                         ["warm_beam.py", "--datasets", "digits", "--bits", "2", *argv])


def test_no_seeds_is_refused(monkeypatch, capsys, tmp_path):
    """``--seeds 0`` ran every point on no seed and printed each row's errors and time as ``nan``."""
    assert "--seeds" in _refused(monkeypatch, capsys, "--seeds", "0", "--frontier", str(tmp_path))


def test_a_missing_frontier_run_is_refused_with_what_to_run(monkeypatch, capsys, tmp_path):
    """Without ``benchmarks/frontier.py``'s JSON of a layer the script built the layer, timed GPTQ on it and then
    stopped on a FileNotFoundError (``runs/frontier`` by default, which a fresh clone lacks)."""
    (tmp_path / "frontier_digits_int4.json").write_text("{}")
    err = _refused(monkeypatch, capsys, "--bits", "4,2", "--frontier", str(tmp_path))
    assert "digits int2" in err and "digits int4" not in err and "benchmarks/frontier.py" in err
