"""End to end: `qannealq run` on digits writes the results files; bad arguments exit with a clear error."""

from __future__ import annotations

import csv
import json

import pytest

from qannealq.cli import main
from qannealq.report import CSV_COLUMNS


@pytest.fixture(autouse=True)
def _cache(tmp_path_factory, monkeypatch):
    monkeypatch.setenv("QANNEALQ_CACHE", str(tmp_path_factory.getbasetemp() / "cache"))


def test_run_on_digits_writes_results(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["run", "--dataset", "digits", "--bits", "4,2", "--methods", "rtn,gptq,qubo", "--backend", "sa",
                 "--out", str(out)])
    assert code == 0
    printed = capsys.readouterr().out
    assert "float test accuracy" in printed and str(out) in printed
    with open(out / "results.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert tuple(rows[0]) == CSV_COLUMNS
    assert {(r["method"], int(r["bits"])) for r in rows} == {(m, b) for m in ("rtn", "gptq", "qubo") for b in (4, 2)}
    assert all(r["dataset"] == "digits" for r in rows)
    assert {r["backend"] for r in rows if r["method"] == "qubo"} == {"sa"}
    err = {(r["method"], int(r["bits"])): float(r["layer_error"]) for r in rows}
    for bits in (4, 2):
        assert err[("gptq", bits)] < 0.5 * err[("rtn", bits)]
        assert err[("qubo", bits)] < 0.5 * err[("rtn", bits)]
    assert all(0.0 <= float(r["accuracy"]) <= 1.0 for r in rows)
    payload = json.loads((out / "results.json").read_text())
    assert payload["settings"]["dataset"] == "digits"
    first = payload["results"][0]
    assert [l["name"] for l in first["layers"]] == ["0", "2"]
    assert [l["neurons"] for l in first["layers"]] == [32, 10]
    assert 0 < first["layers"][0]["variables"] < 32 * 65  # dead border pixels and clipped weights are fixed
    assert sum(l["error"] for l in first["layers"]) == pytest.approx(first["layer_error"])
    assert (out / "accuracy_vs_bits.png").stat().st_size > 1000


def test_run_without_out_creates_a_folder_under_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--bits", "3", "--methods", "rtn"]) == 0
    folders = list((tmp_path / "runs").iterdir())
    assert len(folders) == 1 and (folders[0] / "results.csv").is_file()
    assert str(folders[0].relative_to(tmp_path)) in capsys.readouterr().out


@pytest.mark.parametrize("argv, message", [
    (["run", "--bits", "4,9", "--methods", "rtn"], "bits=9"),
    (["run", "--methods", "rtn,magic"], "--methods: 'magic'"),
    (["run", "--methods", "qubo", "--backend", "nope"], "backend='nope' is unknown"),
    (["run", "--methods", "qubo", "--warm-start", "best"], "--warm-start='best'"),
    (["run", "--dataset", "mnist", "--data-dir", "/nonexistent", "--methods", "rtn"], "not found"),
])
def test_bad_arguments_exit_with_a_clear_message(argv, message, tmp_path, capsys):
    assert main([*argv, "--out", str(tmp_path / "x")]) == 2
    assert message in capsys.readouterr().err


def test_backends_command_lists_sa_and_exact(capsys):
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    assert "sa" in out and "exact" in out and "ready" in out
