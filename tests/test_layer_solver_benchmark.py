"""benchmarks/layer_solver.py times every run on a fresh copy of the problem: a run on the same problem reuses the
products and errors an earlier run cached on it (``LayerProblem``'s cached properties), which flattered the
repeats' best time and left those products out of the traced peak memory."""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from helpers import layer_problem

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import layer_solver  # noqa: E402  (benchmarks/layer_solver.py)


def test_every_timed_and_traced_run_starts_without_an_earlier_runs_cached_products(monkeypatch):
    _, problem = layer_problem(0, 6, 3, 2)
    seen = []
    real = layer_solver.quantize_layer

    def spy(p, method, **kwargs):
        seen.append(sorted(k for k in ("linear", "offsets", "dead", "base_values") if k in vars(p)))
        return real(p, method, **kwargs)

    monkeypatch.setattr(layer_solver, "quantize_layer", spy)
    run = layer_solver.measure(problem, "gptq-restricted", 3, 0)
    assert seen == [[]] * 4  # three timed runs and the traced one
    assert np.isclose(run.error, problem.errors(run.values).sum())


def test_partners_speed_times_each_end_to_end_run_without_an_earlier_runs_cached_products(monkeypatch):
    """benchmarks/partners_speed.py: its warm-up and every timed run (GPTQ, before, now) ran on one problem, so
    each timed run found the products the warm-up had cached."""
    import partners_speed

    _, problem = layer_problem(0, 6, 3, 2)
    seen = []
    real = partners_speed.quantize_layer

    def spy(p, method, **kwargs):
        seen.append(bool({"_remembered", "weight_products", "dead"} & set(vars(p))))
        return real(p, method, **kwargs)

    monkeypatch.setattr(partners_speed, "quantize_layer", spy)
    monkeypatch.setattr(partners_speed, "first_layer", lambda dataset, bits, data_dir, seed: {2: problem})
    monkeypatch.setattr(sys, "argv", ["partners_speed.py", "--repeats", "2", "--blas-threads", "1", "--threads", "1"])
    partners_speed.main()
    assert len(seen) == 7 and not any(seen)  # the warm-up and two rounds of three


def test_cuda_without_a_cuda_device_is_refused_before_the_model(monkeypatch, capsys):
    """``--device cuda`` on a machine without CUDA loaded the MNIST model and then ended in a traceback
    (BackendUnavailableError from the kernel's warm-up); it is refused first, with the library's reason."""
    import pytest
    import torch

    from bench_cli import refused_first

    if torch.cuda.is_available():
        pytest.skip("a CUDA device is there: --device cuda runs")
    err = refused_first(monkeypatch, capsys, layer_solver, "bench", ["layer_solver.py", "--device", "cuda"])
    assert "--device cuda" in err and "no CUDA device" in err


def test_no_repeats_or_threads_is_refused_before_the_model(monkeypatch, capsys):
    """``--repeats 0`` loaded the MNIST model, warmed the kernel up and ended in a traceback (AttributeError:
    'NoneType' object has no attribute 'error', no timed run); ``--threads 0``, in torch.set_num_threads."""
    from bench_cli import refused_first

    for option in ("--repeats", "--threads"):
        err = refused_first(monkeypatch, capsys, layer_solver, "bench", ["layer_solver.py", option, "0"])
        assert option in err and ">= 1" in err


def test_gptq_speed_times_gptq_s_whole_call_without_an_earlier_calls_cached_products(monkeypatch):
    """benchmarks/gptq_speed.py: its warm-up and every timed whole GPTQ call ran on the layer's one problem, so
    each timed call found the products and errors the warm-up cached (MNIST's layer 0.10 s against 0.20 s on a
    fresh copy, which put the whole call below its factor and steps alone)."""
    import gptq_speed

    _, problem = layer_problem(0, 6, 3, 2)
    seen = []
    real = gptq_speed.quantize_layer

    def spy(p, method, **kwargs):
        seen.append(bool({"_remembered", "weight_products", "linear", "offsets"} & set(vars(p))))
        return real(p, method, **kwargs)

    monkeypatch.setattr(gptq_speed, "quantize_layer", spy)
    monkeypatch.setattr(gptq_speed, "first_layer", lambda dataset, bits, data_dir, seed: {2: problem})
    monkeypatch.setattr(sys, "argv", ["gptq_speed.py", "--repeats", "2", "--blas-threads", "1"])
    gptq_speed.main()
    assert len(seen) == 3 and not any(seen)  # the warm-up and two timed calls
