"""benchmarks/time_limits.py: with ``--gptq-seconds`` every limit is that unit times the limit in every round (the
same seconds in every invocation), the JSON and the table say where the unit came from, and a layer name that the
run does not measure is refused with a message."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

pytest.importorskip("numba")
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import time_limits  # noqa: E402  (imported, not skipped: a broken import fails here)
from bench_cli import refused_first  # noqa: E402


def _argv(tmp_path: Path, *extra: str) -> list[str]:
    return ["time_limits.py", "--datasets", "digits", "--bits", "2", "--repeats", "2", "--gptq-runs", "1",
            "--default-limits", "3", "--thorough-limits", "4", "--out", str(tmp_path), *extra]


@pytest.mark.parametrize("fixed", [True, False])
def test_the_limits_take_the_given_unit_in_every_round(tmp_path, monkeypatch, capsys, fixed):
    asked: list[float] = []
    real = time_limits.run

    def recorded(problem, method, seed, threads, **options):
        if "time_limit" in options:
            asked.append(options["time_limit"])
        elif method == "qubo":  # the unbounded points as fast ones: what is checked here is the limits' unit
            options = {**options, "effort": "fast"}
        return real(problem, method, seed, threads, **options)

    monkeypatch.setattr(time_limits, "run", recorded)
    monkeypatch.setattr(sys, "argv", _argv(tmp_path, *(["--gptq-seconds", '{"digits2": 0.05}'] if fixed else [])))
    time_limits.main()
    record = json.loads((tmp_path / "time_limits_digits_int2.json").read_text())
    assert len(asked) == 4  # two rounds of one default and one thorough limit
    if fixed:
        assert asked == pytest.approx([0.15, 0.2, 0.15, 0.2])
        assert record["gptq_seconds"] == 0.05 and record["gptq_from"] == "--gptq-seconds"
        assert all(p["gptq_seconds"] == 0.05 for p in record["points"])
    else:  # the run's own GPTQ time, its best so far at each round
        assert record["gptq_from"] == "best of this run" and 0 < record["gptq_seconds"] < 0.05
        assert asked[2] <= asked[0] and asked[3] <= asked[1]
    table = (tmp_path / "time_limits.md").read_text()
    assert ("(--gptq-seconds)" in table) is fixed
    assert "the unit: 0.050 s" in capsys.readouterr().out or not fixed


@pytest.mark.parametrize("option, value, message", [
    ("--gptq-seconds", '{"digits4": 0.1}', "--gptq-seconds names digits4"),
    ("--reference", '{"mnist2": 1.0}', "--reference names mnist2"),
    ("--gptq-seconds", '{"digits2": 0}', "each > 0"),
    ("--gptq-seconds", "digits2=0.1", "is not JSON"),
    # a reference of 0 printed every error "inf %"; a string, or a bare number, failed only after the whole run
    ("--reference", '{"digits2": 0}', "argument --reference: "),
    ("--reference", '{"digits2": "0.17"}', "best-known total energies, each > 0"),
    ("--reference", "0.17", "give a JSON object of layer names"),
])
def test_a_unit_or_reference_the_run_cannot_use_is_refused(tmp_path, monkeypatch, capsys, option, value, message):
    assert message in refused_first(monkeypatch, capsys, time_limits, "pinned", _argv(tmp_path, option, value))
