"""benchmarks/gpu_layer.py: a layer written by ``--save`` rebuilds the experiment's own problem elsewhere, and a
run prints and records every device's points (the torch code on the CPU standing in for a GPU)."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import frontier  # noqa: E402
import gpu_layer  # noqa: E402  (imported, not skipped: a broken import fails here)


def test_a_saved_layer_rebuilds_the_experiments_problem(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(sys, "argv", ["gpu_layer.py", "--datasets", "digits", "--save", str(tmp_path)])
    gpu_layer.main()
    saved = gpu_layer.load(tmp_path / "digits.npz")
    assert saved["x"].dtype == np.float32 and saved["x"].shape == (1024, 64) and saved["w"].shape[1] == 64
    rebuilt = gpu_layer.problems(saved, [4, 2])
    direct = frontier.first_layer("digits", [4, 2], None, 0)
    for bits in (4, 2):
        a, b = rebuilt[bits], direct[bits]
        assert a.num_neurons == b.num_neurons and a.num_coordinates == b.num_coordinates
        np.testing.assert_allclose(a.hessian, b.hessian, rtol=1e-6, atol=1e-9)
        ea = frontier.timed(a, "gptq", None, 0)[0].errors
        eb = frontier.timed(b, "gptq", None, 0)[0].errors
        np.testing.assert_allclose(ea, eb, rtol=1e-6, atol=1e-12)

    json_path = tmp_path / "points.json"
    monkeypatch.setattr(sys, "argv", ["gpu_layer.py", "--datasets", "digits", "--load", str(tmp_path), "--bits", "2",
                                      "--devices", "cpu,torch-cpu", "--efforts", "", "--limits", "5",
                                      "--repeats", "1", "--json", str(json_path)])
    gpu_layer.main()  # unbounded efforts left out: digits' small layer anneals 256 sweeps, slow on torch-cpu
    points = json.loads(json_path.read_text())
    assert [(p["point"], p["device"]) for p in points] == [
        ("gptq", "cpu"), ("default under 5x GPTQ", "cpu"), ("default under 5x GPTQ", "torch-cpu")]
    assert all(len(p["runs"]) == 3 for p in points[1:])  # a limited point: the median of three runs at least
    assert all(np.isfinite(p["error"]) and p["error"] > 0 and p["seconds"] > 0 for p in points)
    out = capsys.readouterr().out
    assert "CUDA device:" in out and "above best" in out and "torch-cpu" in out
    missing = tmp_path / "elsewhere"
    monkeypatch.setattr(sys, "argv", ["gpu_layer.py", "--datasets", "digits", "--load", str(missing)])
    try:
        gpu_layer.main()
    except SystemExit as exc:
        assert "--load" in str(exc) and "--save" in str(exc)
    else:
        raise AssertionError("a missing layer file must stop the run with a message")


def test_no_repeats_is_refused_before_any_work(monkeypatch, capsys):
    """``--repeats 0`` ran GPTQ and the warm-up, then stopped on ``min()`` of no runs (a traceback)."""
    def started(*args, **kwargs):
        raise AssertionError("the run started; --repeats 0 must be refused first")

    monkeypatch.setattr(gpu_layer, "layer_arrays", started)
    monkeypatch.setattr(sys, "argv", ["gpu_layer.py", "--datasets", "digits", "--devices", "cpu", "--repeats", "0"])
    try:
        gpu_layer.main()
    except SystemExit:
        pass
    else:
        raise AssertionError("--repeats 0 must stop the run with a message")
    assert "--repeats" in capsys.readouterr().err


def test_a_limit_it_cannot_use_is_refused_before_the_layers(monkeypatch, capsys):
    """``--limits 0,-1`` ran GPTQ, printed each limit's InvalidArgumentError (time_limit=0.0 must be a finite number
    of seconds > 0) as the device's failure and ended with status 0 and a table of GPTQ alone."""
    from bench_cli import refused_first

    for limits in ("0", "5,-1", "nan", "x"):
        err = refused_first(monkeypatch, capsys, gpu_layer, "layer_arrays", ["gpu_layer.py", "--limits", limits])
        assert "--limits" in err and "> 0" in err
    assert gpu_layer.gptq_times("5,10") == [5.0, 10.0] and gpu_layer.gptq_times("") == []
