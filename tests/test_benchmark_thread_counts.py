"""The benchmarks' pinned thread counts (``_threads.pinned``, torch's too) are counts >= 1, refused when the option is
read: ``0`` ended in a traceback (RuntimeError: set_num_threads expects a positive integer), after the layer or
model was built in most scripts."""

from __future__ import annotations

import importlib
import sys
from pathlib import Path

import pytest

from bench_cli import refused_first

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))

CASES = [("formulation", "--threads", "prepare"), ("digits_optimum", "--threads", "run"),
         ("objective", "--threads", "run"), ("gpu_layer", "--blas-threads", "layer_arrays"),
         ("tight_regimes", "--blas-threads", "first_layer"), ("time_limits", "--blas-threads", "first_layer"),
         ("warm_beam", "--blas-threads", "first_layer"), ("gptq_speed", "--blas-threads", "first_layer"),
         ("partners_speed", "--blas-threads", "first_layer")]


@pytest.mark.parametrize("name, option, first_step", CASES)
def test_no_threads_is_refused(monkeypatch, capsys, name, option, first_step):
    script = importlib.import_module(name)  # imported, not skipped: a broken import fails here
    err = refused_first(monkeypatch, capsys, script, first_step, [f"{name}.py", option, "0"])
    assert option in err and ">= 1" in err


LAYER_SA_THREADS = [("frontier", "first_layer"), ("time_limits", "first_layer"), ("warm_beam", "first_layer"),
                    ("partners_speed", "first_layer"), ("beam_tail", "first_layer"), ("gpu_layer", "layer_arrays")]


@pytest.mark.parametrize("name, first_step", LAYER_SA_THREADS)
def test_no_layer_sa_threads_is_refused(monkeypatch, capsys, name, first_step):
    """``--threads 0`` (layer-sa's num_threads) was taken: time_limits.py, partners_speed.py and beam_tail.py
    ended in a traceback (InvalidArgumentError: num_threads=0 must be an integer >= 1) after building the layer
    and timing GPTQ, and gpu_layer.py printed that error for every layer-sa point and ended with status 0 and a
    table of GPTQ alone."""
    script = importlib.import_module(name)
    err = refused_first(monkeypatch, capsys, script, first_step, [f"{name}.py", "--threads", "0"])
    assert "--threads" in err and ">= 1" in err
