"""benchmarks/tight_regimes.py: each regime is forced as asked (the runs say which path they took), the fixed costs
left are read at the decision, the crossover is interpolated where the medians' difference changes sign, and a
layer that takes no population stops the run with a message."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("numba")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import tight_regimes  # noqa: E402  (imported, not skipped: a broken import fails here)


def _layer_file(folder: Path, name: str, inputs: int, neurons: int = 8, samples: int = 300) -> None:
    """A layer as ``gpu_layer.py --save`` writes it: calibration inputs, weights, bias (smooth inputs: a wide,
    rank-deficient ``H`` as CIFAR-10's)."""
    rng = np.random.default_rng(0)
    x = np.cumsum(rng.normal(size=(samples, inputs)), axis=1)
    x = (x / x.std()).astype(np.float32)
    w = (rng.normal(size=(neurons, inputs)) / np.sqrt(inputs)).astype(np.float32)
    np.savez(folder / f"{name}.npz", x=x, w=w, b=np.zeros(neurons, np.float32), name=np.array("fc1"))


def test_crossover_is_interpolated_where_the_tight_path_stops_winning():
    rows = [{"left": 10.0, "tight": 12.0, "population": 15.0}, {"left": 20.0, "tight": 13.0, "population": 14.0},
            {"left": 30.0, "tight": 14.0, "population": 12.0}, {"left": 40.0, "tight": 15.0, "population": 16.0}]
    assert tight_regimes.crossover(rows) == pytest.approx(20.0 + 10.0 * 1.0 / 3.0)  # -1 at 20, +2 at 30
    assert tight_regimes.crossover(rows[:2]) is None  # the tight path wins throughout


def test_each_regime_is_forced_and_the_table_printed(tmp_path, monkeypatch, capsys):
    _layer_file(tmp_path, "wide", 1100)
    out = tmp_path / "rows.json"
    monkeypatch.setattr(sys, "argv", ["tight_regimes.py", "--dataset", "wide", "--load", str(tmp_path), "--bits", "2",
                                      "--limits", "30,8", "--repeats", "1", "--gptq-runs", "1", "--json", str(out)])
    tight_regimes.main()
    rows = json.loads(out.read_text())
    assert [r["limit"] for r in rows] == [8.0, 30.0]  # sorted
    for row in rows:
        assert row["left"] > 0 and row["threshold"] > 0 and row["reference"] > 0
        for regime in ("population", "tight"):
            (error, seconds, left, took), = row["runs"][regime]
            assert took == regime and error >= row["reference"] and seconds > 0 and left > 0
    text = capsys.readouterr().out
    assert "crossover:" in text and "threshold in force" in text and "costs left" in text
    assert "took the" not in text  # no run took another path than the one forced


def test_a_layer_without_a_population_stops_with_a_message(tmp_path, monkeypatch):
    _layer_file(tmp_path, "narrow", 200)
    monkeypatch.setattr(sys, "argv", ["tight_regimes.py", "--dataset", "narrow", "--load", str(tmp_path), "--bits", "4",
                                      "--limits", "5", "--repeats", "1", "--gptq-runs", "1"])
    with pytest.raises(SystemExit, match="no population"):
        tight_regimes.main()
    monkeypatch.setattr(sys, "argv", ["tight_regimes.py", "--load", str(tmp_path), "--limits", "0"])
    with pytest.raises(SystemExit):
        tight_regimes.main()  # --limits above 0 (argparse's error)


@pytest.mark.parametrize("reference, message", [
    ("0.5", "JSON object of bit widths"), ('{"2": 0}', "each > 0"), ('{"2": "x"}', "each > 0"),
    ('{"4": 1.0}', "not among this run's bit widths")])
def test_a_reference_it_cannot_use_is_refused_before_the_layer(monkeypatch, capsys, reference, message):
    """``--reference`` was read by json.loads alone: a bare number ran every limit and ended in 'AttributeError:
    'float' object has no attribute 'get'', ``{"2": 0}`` printed the lowest error here as 'above the reference
    given', and a bit width not run was dropped silently ('above the lowest here')."""
    from bench_cli import refused_first

    err = refused_first(monkeypatch, capsys, tight_regimes, "first_layer",
                        ["tight_regimes.py", "--bits", "2", "--reference", reference])
    assert "--reference" in err and message in err
