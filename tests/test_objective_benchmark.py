"""benchmarks/objective.py: the README's commands (``--out runs/objective/objective.jsonl``, then ``--summary`` on it)
work from a fresh checkout, and a summary of a file that is not there is refused, not a traceback."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import objective  # noqa: E402  (benchmarks/objective.py: imported, so that a broken import fails here)


def test_a_results_file_in_a_new_folder_is_written(tmp_path, monkeypatch):
    """``--out runs/objective/objective.jsonl`` raised FileNotFoundError where runs/objective/ did not exist."""
    out = tmp_path / "runs" / "objective" / "objective.jsonl"
    row = {"dataset": "digits", "calibration": "float", "bits": 2, "method": "rtn", "seed": 0, "objective": "preact",
           "inactive_weight": None, "accuracy": 0.8, "error": 1.0, "seconds": 0.1}

    def run(args):
        with args.out.open("a") as fh:
            fh.write(objective.json.dumps(row) + "\n")

    monkeypatch.setattr(objective, "run", run)
    monkeypatch.setattr(sys, "argv", ["objective.py", "--threads", "1", "--out", str(out)])
    objective.main()
    assert out.is_file()


def test_a_summary_of_a_missing_file_is_refused(tmp_path, monkeypatch, capsys):
    missing = tmp_path / "objective.jsonl"
    monkeypatch.setattr(sys, "argv", ["objective.py", "--summary", "--out", str(missing)])
    with pytest.raises(SystemExit) as exc:
        objective.main()
    assert exc.value.code == 2
    assert "--summary" in capsys.readouterr().err and not missing.exists()
