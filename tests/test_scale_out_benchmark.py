"""benchmarks/scale_out.py: a count that cannot give a figure is refused before the MNIST model is loaded."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

from bench_cli import refused_first

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import scale_out  # noqa: E402  (imported, not skipped: a broken import fails here)


@pytest.mark.parametrize("option", ["--neurons", "--threads"])
def test_no_neurons_or_threads_is_refused(monkeypatch, capsys, option):
    """``--neurons 0`` loaded the model, started and warmed up the pools, then ended in a traceback (ValueError:
    range() arg 3 must not be zero, in the solve loop's batches); ``--threads 0`` pinned nothing
    (threadpoolctl's limit 0 leaves every pool as it is) and printed 0 threads."""
    err = refused_first(monkeypatch, capsys, scale_out, "prepare", ["scale_out.py", option, "0"])
    assert option in err and ">= 1" in err
