"""benchmarks/beam_schedule.py: options it cannot use are refused before the layer is built (``--repeats 0``
stopped on an unset score after the first schedule's beam, ``--threads 0`` ran every core's threads and printed
0, a schedule ``8:x`` failed with a bare ValueError)."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import beam_schedule  # noqa: E402  (imported, not skipped: a broken import fails here)
from bench_cli import refused_first  # noqa: E402


@pytest.mark.parametrize("extra, message", [
    (["--repeats", "0", "8"], "--repeats must be >= 1"),
    (["--threads", "0", "8"], "--threads must be >= 1"),
    (["--neurons", "-1", "8"], "--neurons must be >= 0"),
    (["8:x"], "give K (a constant width"),
    (["0"], "give K (a constant width"),
    (["64:0"], "growth G > 0"),
])
def test_an_option_it_cannot_use_is_refused_first(monkeypatch, capsys, extra, message):
    argv = ["beam_schedule.py", "--dataset", "digits", "--bits", "2", *extra]
    assert message in refused_first(monkeypatch, capsys, beam_schedule, "first_layer", argv)


def test_a_schedule_is_its_width_and_growth():
    assert beam_schedule.schedule("384:64") == ("384:64", 384, 64.0)
    assert beam_schedule.schedule("64") == ("64", 64, 1.0)
