"""``qannealq sweep`` on digits: presets, files and columns, and a run killed by a real signal then resumed
giving the same table as an uninterrupted run without recomputing finished cells."""

from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import pytest

from qannealq.cli import main
from qannealq.config import ModelConfig
from qannealq.errors import InvalidArgumentError
from qannealq.store import settings_diff
from qannealq.sweep import PRESETS, SweepConfig, parse_method, sweep
from qannealq.sweep_report import CSV_COLUMNS

ROOT = Path(__file__).resolve().parents[1]
ARGS = ["--dataset", "digits", "--bits", "4,2", "--seeds", "2", "--methods", "rtn,gptq,qubo",
        "--sampler-option", "num_reads=8", "--sampler-option", "num_sweeps=32"]
COMPARED = [c for c in CSV_COLUMNS if c != "seconds"]


def _table(out: Path) -> list[dict]:
    """sweep.csv without the timing column (everything else must be identical)."""
    with open(out / "sweep.csv") as fh:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(fh)]


def test_presets_are_spelled_out_and_explicit_options_win():
    paper = SweepConfig.from_preset("paper")
    assert (paper.calibration, paper.granularity, paper.int1, paper.backend, paper.warm_start) == \
        ("float", "tensor", "paper", "sa", None)
    assert paper.sampler_options == {"num_reads": 1} and paper.labels() == ["rtn", "gptq", "qubo:sa"]
    best = SweepConfig.from_preset("best", int1="paper", sampler_options={"num_reads": 4})
    assert (best.calibration, best.granularity, best.int1, best.backend) == ("sequential", "best", "paper", "layer-sa")
    settings = best.stored_settings()
    assert settings["preset"] == "best" and "sequential calibration" in settings["preset_means"]
    assert best.sampler_options == {"num_reads": 4} and "sampler_options" in settings and "out" not in settings
    assert "1 read" in PRESETS["paper"].description
    assert parse_method("qubo:exact", "sa") == ("qubo", "exact") and parse_method("gptq", "sa") == ("gptq", "")
    with pytest.raises(InvalidArgumentError, match="only qubo takes a backend"):
        parse_method("rtn:sa", "sa")
    with pytest.raises(InvalidArgumentError, match="--methods"):
        SweepConfig(methods=("qubo", "adaround"))
    with pytest.raises(InvalidArgumentError, match="--seeds"):
        SweepConfig(seeds=0)


def test_bad_backend_option_fails_before_any_training(tmp_path, capsys):
    code = main(["sweep", *ARGS, "--sampler-option", "no_such_option=1", "--out", str(tmp_path / "s")])
    assert code == 2 and "no_such_option" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_best_preset_keeps_the_lower_error_grid_and_writes_files(tmp_path):
    config = SweepConfig.from_preset("best", model=ModelConfig(dataset="digits", num_calibration=256),
                                     bits=(2,), methods=("rtn", "qubo"), seeds=1, out=tmp_path / "b",
                                     sampler_options={"num_reads": 2, "num_sweeps": 8})
    summary = sweep(config)
    for cell in summary.cells:
        assert set(cell.candidates) == {"tensor", "channel"}
        assert cell.layer_error == min(cell.candidates.values())
        assert cell.granularity == min(cell.candidates, key=cell.candidates.get)
        assert cell.calibration == "sequential" and cell.num_calibration == 256
    payload = json.loads((tmp_path / "b" / "sweep.json").read_text())
    assert payload["settings"]["preset"] == "best" and payload["aggregates"][0]["n"] == 1
    assert (tmp_path / "b" / "sweep.png").stat().st_size > 10_000


def test_killed_by_a_signal_and_resumed_equals_an_uninterrupted_sweep(tmp_path):
    killed, whole = tmp_path / "killed", tmp_path / "whole"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    code = "import sys; from qannealq.cli import main; sys.exit(main(sys.argv[1:]))"
    proc = subprocess.Popen([sys.executable, "-c", code, "sweep", *ARGS, "--out", str(killed)], cwd=ROOT, env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    units = killed / "units"

    def stored():  # a cell being written (or killed while written) has a hidden temporary file: the store ignores it
        return {p.name: (p.stat().st_mtime_ns, p.stat().st_ino) for p in units.glob("*.json")
                if not p.name.startswith(".")}
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None and len(stored()) < 2:
        time.sleep(0.01)
    proc.send_signal(signal.SIGKILL)  # a crash: no handler runs, the running cell is lost
    proc.wait()
    finished = stored()
    assert 2 <= len(finished) < 12, "the sweep was not interrupted mid-way"

    assert main(["sweep", "--resume", str(killed)]) == 0  # the stored options: none repeated
    after = stored()
    assert all(after[name] == stamp for name, stamp in finished.items())  # finished cells not recomputed
    assert len(after) == 12

    assert main(["sweep", *ARGS, "--out", str(whole)]) == 0
    resumed = _table(killed)
    assert resumed == _table(whole) and len(resumed) == 12
    assert list(resumed[0]) == [*COMPARED, "layer_error_0", "layer_error_2"]
    assert {(r["method"], r["bits"], r["seed"]) for r in resumed} == {
        (m, b, s) for m in ("rtn", "gptq", "qubo:layer-sa") for b in ("4", "2") for s in ("0", "1")}
    for name in ("sweep.json", "summary.md", "sweep.png"):
        assert (killed / name).is_file()
    text = (killed / "summary.md").read_text()
    assert "| int4 |" in text and "± " in text and "seeds [0, 1]" in text


def test_resume_takes_the_stored_options_and_refuses_different_ones(tmp_path, capsys):
    out = tmp_path / "s"
    args = ["--dataset", "digits", "--input-size", "4", "--bits", "2", "--seeds", "1", "--methods", "rtn,qubo",
            "--preset", "paper", "--sampler-option", "num_reads=2", "--sampler-option", "num_sweeps=8"]
    assert main(["sweep", *args, "--out", str(out)]) == 0
    stored = json.loads((out / "store.json").read_text())["settings"]
    capsys.readouterr()
    assert main(["sweep", "--resume", str(out)]) == 0  # nothing left to compute, same settings
    shown = capsys.readouterr()
    assert "2 finished cell(s) kept" in shown.out + shown.err
    assert json.loads((out / "store.json").read_text())["settings"] == stored
    config = SweepConfig.from_stored(stored, out)
    assert settings_diff(config.stored_settings(), stored) == [] and config.sampler_options == {"num_reads": 2, "num_sweeps": 8}
    assert main(["sweep", "--resume", str(out), "--seeds", "3", "--sampler-option", "num_reads=2"]) == 2
    err = capsys.readouterr().err
    assert "seeds: 1 -> 3" in err and "num_reads" not in err  # the repeated equal option is no difference
    assert main(["sweep", "--resume", str(out), "--sampler-option", "num_reads=3"]) == 2
    assert "(sampler_options.num_reads: 2 -> 3)" in capsys.readouterr().err  # as given, not "'2'" (a stored repr)
    assert main(["sweep", "--resume", str(tmp_path / "none")]) == 2
    assert "no store.json" in capsys.readouterr().err
    meta = json.loads((out / "store.json").read_text())  # a folder stored when the preset was worded otherwise
    meta["settings"]["preset_means"] = "the paper's set-up, in older words"
    (out / "store.json").write_text(json.dumps(meta))
    assert main(["sweep", "--resume", str(out)]) == 0  # the words are not a setting: the resume goes on
    assert json.loads((out / "store.json").read_text())["settings"]["preset_means"] == "the paper's set-up, in older words"


def test_relu_aware_sweep_records_its_objective_and_equals_quantize_model(tmp_path):
    from qannealq.experiment import prepare
    from qannealq.pipeline import quantize_model

    out = tmp_path / "r"
    args = ["--dataset", "digits", "--input-size", "4", "--bits", "1", "--seeds", "1", "--methods", "gptq,qubo",
            "--calibration", "sequential", "--objective", "relu-aware", "--inactive-weight", "0.25",
            "--sampler-option", "num_reads=2", "--sampler-option", "num_sweeps=8"]
    assert main(["sweep", *args, "--out", str(out)]) == 0
    settings = json.loads((out / "store.json").read_text())["settings"]
    assert (settings["objective"], settings["inactive_weight"]) == ("relu-aware", 0.25)
    cells = {r["method"]: r for r in _table(out)}
    exp = prepare(dataset="digits", input_size=4)
    direct = quantize_model(exp.model, exp.calibration, 1, "gptq", calibration="sequential", seed=0,
                            objective="relu-aware", inactive_weight=0.25)
    assert float(cells["gptq"]["layer_error"]) == pytest.approx(direct.layer_error, rel=1e-9)
    plain = SweepConfig(model=ModelConfig(dataset="digits", input_size=4)).stored_settings()
    assert "objective" not in plain  # preact sweeps store what they stored before the option existed
    with pytest.raises(InvalidArgumentError, match="--inactive-weight applies to --objective relu-aware"):
        SweepConfig(inactive_weight=0.5)  # preact takes no inactive weight


def test_one_seed_shows_values_without_a_spread(tmp_path):
    """With one seed every cell read "± 0.0000", a spread of one value."""
    assert main(["sweep", "--dataset", "digits", "--input-size", "4", "--bits", "4", "--methods", "rtn", "--seeds", "1",
                 "--out", str(tmp_path / "one")]) == 0
    one = (tmp_path / "one" / "summary.md").read_text()
    assert "±" not in one and "one seed, so no spread" in one and "| int4 | 0." in one
    assert main(["sweep", "--dataset", "digits", "--input-size", "4", "--bits", "4", "--methods", "rtn", "--seeds", "2",
                 "--out", str(tmp_path / "two")]) == 0
    assert "mean ± std over seeds" in (tmp_path / "two" / "summary.md").read_text()


def test_a_cell_takes_the_model_s_own_seconds_not_its_warm_ups(tmp_path, monkeypatch):
    """A cell's seconds were the wall time around ``quantize_model``, the first loading (in a fresh checkout the
    compiling) of its kernels included, which the model's own ``seconds`` leaves out as ``run``'s table does: a
    digits sweep of a fresh clone gave its first layer-sa cell 65 s and the next 3.7 s ("mean seconds per cell"
    34 s)."""
    import qannealq.sweep as sweep_module

    real = sweep_module.quantize_model
    monkeypatch.setattr(sweep_module, "quantize_model", lambda *a, **k: replace(real(*a, **k), seconds=123.25))
    out = tmp_path / "s"
    assert main(["sweep", "--dataset", "digits", "--input-size", "4", "--bits", "4", "--methods", "rtn", "--seeds", "1",
                 "--out", str(out)]) == 0
    (cell,) = json.loads((out / "sweep.json").read_text())["cells"]
    assert cell["seconds"] == 123.25


def test_summary_names_the_settings_that_override_the_preset(tmp_path):
    """``--preset paper --calibration sequential --granularity channel --int1 sign``: summary.md said only the
    preset's words, 'float calibration; per-tensor max-scale grid; int1 = {-max|w|, 0}', of cells computed
    otherwise (sweep.csv had them right)."""
    args = ["sweep", "--dataset", "digits", "--input-size", "4", "--bits", "1", "--methods", "rtn", "--seeds", "1",
            "--preset", "paper"]
    assert main([*args, "--calibration", "sequential", "--granularity", "channel", "--int1", "sign",
                 "--out", str(tmp_path / "o")]) == 0
    text = (tmp_path / "o" / "summary.md").read_text()
    assert "no warm start; overridden here: calibration sequential, granularity channel, int1 sign); " in text
    assert main([*args, "--out", str(tmp_path / "p")]) == 0
    assert "overridden" not in (tmp_path / "p" / "summary.md").read_text()
    from qannealq.sweep import _departures

    relu = SweepConfig.from_preset("best", methods=("qubo",), objective="relu-aware", inactive_weight=0.25,
                                   warm_start="none", sampler_options={"num_reads": 2})
    assert _departures(relu) == ["warm start none", "sampler options num_reads=2",
                           "objective relu-aware (inactive weight 0.25)"]


def test_an_option_given_to_a_backend_reaches_it_under_its_alias():
    """``--methods qubo:neal --sampler-option sa:num_sweeps=10`` was refused ('sa' is not one of --methods
    qubo:neal), while ``qubo:sa,qubo:neal`` was refused as one backend twice: an alias is its backend."""
    for method, key in (("qubo:neal", "sa"), ("qubo:sa", "neal")):
        config = SweepConfig(methods=(method,), sampler_options={f"{key}:num_sweeps": 10})
        assert config.options_for(method.partition(":")[2]) == {"num_sweeps": 10}
    with pytest.raises(InvalidArgumentError, match="--sampler-option=sa:seed,neal:seed names sa:seed more than once"):
        SweepConfig(methods=("qubo:sa",), sampler_options={"sa:seed": 1, "neal:seed": 2})


def test_an_option_given_as_backend_key_goes_to_that_qubo_backend_alone(tmp_path, monkeypatch):
    """``--methods qubo:sa,qubo:layer-sa --effort fast`` was refused for ``sa``, and no option could reach one
    backend alone: an option given without a backend goes to those that take it (``effort`` to ``layer-sa``),
    and ``--sampler-option layer-sa:num_reads=2`` to that one alone (as ``compare``'s ``BACKEND:KEY``)."""
    import qannealq.sweep
    from qannealq.backends import get_sampler

    config = SweepConfig(methods=("rtn", "qubo:sa", "qubo:layer-sa"), bits=(2,), seeds=1,
                         model=ModelConfig(input_size=4),
                         sampler_options={"num_reads": 3, "effort": "fast", "layer-sa:num_reads": 2})
    assert config.qubo_backends() == ["sa", "layer-sa"]
    assert config.options_for("sa", get_sampler("sa")) == {"num_reads": 3}
    assert config.options_for("layer-sa", get_sampler("layer-sa")) == {"num_reads": 2, "effort": "fast"}
    seen = {}
    real = qannealq.sweep.quantize_model

    def spy(model, data, bits, method, sampler=None, *args, **kwargs):
        seen[type(sampler).__name__ if sampler is not None else method] = {
            k: kwargs[k] for k in ("num_reads", "effort") if k in kwargs}
        return real(model, data, bits, method, sampler, *args, **kwargs)

    monkeypatch.setattr(qannealq.sweep, "quantize_model", spy)
    sweep(replace(config, out=tmp_path / "s"))
    assert seen.pop("rtn") == {}
    assert sorted(seen.values(), key=len) == [{"num_reads": 3}, {"num_reads": 2, "effort": "fast"}]


@pytest.mark.parametrize("argv, message", [
    (["--methods", "qubo:sa,qubo:layer-sa", "--sampler-option", "num_redas=3"],
     "--sampler-option num_redas: none of the qubo backends of --methods qubo:sa,qubo:layer-sa (sa, layer-sa) "
     "takes this option"),
    (["--methods", "qubo:sa", "--effort", "fast"],
     "--sampler-option effort (or --effort): backend 'sa' does not take this option"),
    (["--methods", "qubo:sa", "--time-limit", "5"],
     "--sampler-option time_limit (or --time-limit): backend 'sa' does not take this option"),
    (["--methods", "qubo:sa", "--sampler-option", "tabu:timeout=3"],
     "--sampler-option tabu:timeout: BACKEND:KEY gives an option to one qubo backend, and 'tabu' is not one of "
     "--methods qubo:sa (sa)"),
    (["--methods", "qubo", "--sampler-option", "layer-sa:=3"], "--sampler-option layer-sa:: give BACKEND:KEY=VALUE"),
    (["--methods", "qubo:sa,qubo:layer-sa", "--sampler-option", "layer-sa:effort=slow"],
     "--sampler-option effort='slow' must be one of"),
])
def test_backend_options_of_a_sweep_are_checked_before_training(argv, message, tmp_path, capsys, monkeypatch):
    import qannealq.experiment

    monkeypatch.setattr(qannealq.experiment, "train_mlp", lambda *a, **k: pytest.fail("a model was trained"))
    assert main(["sweep", "--bits", "2", "--seeds", "1", *argv, "--out", str(tmp_path / "s")]) == 2
    assert message in capsys.readouterr().err
    assert not (tmp_path / "s").exists()


def test_too_many_seeds_are_refused_before_any_training(tmp_path, capsys, monkeypatch):
    """``--seeds 100000000000`` (a typo) ended in a MemoryError traceback: the sweep listed every seed first. Seeds
    past 2**31-1 are ones no generator here takes; up to 2**31 are not listed before they are reached."""
    import qannealq.experiment

    monkeypatch.setattr(qannealq.experiment, "train_mlp", lambda *a, **k: pytest.fail("a model was trained"))
    assert main(["sweep", "--bits", "2", "--methods", "rtn", "--seeds", "100000000000",
                 "--out", str(tmp_path / "s")]) == 2
    assert "--seeds=100000000000 is more than 2**31" in capsys.readouterr().err
    assert not (tmp_path / "s").exists()
    assert len(SweepConfig(seeds=2 ** 31).seed_list()) == 2 ** 31


def test_a_sweep_with_a_data_dir_writes_its_outputs_and_resumes_from_a_moved_folder(tmp_path, monkeypatch):
    """``sweep --data-dir`` ended in a TypeError (a ``Path`` in ``sweep.json``) after its first cell; a moved
    folder with the same files resumes it (``store.json`` records their SHA-256)."""
    import numpy as np

    monkeypatch.chdir(tmp_path)
    x = np.random.default_rng(0).integers(0, 256, size=(80, 28, 28), dtype=np.uint8)
    (tmp_path / "dd").mkdir()
    np.savez(tmp_path / "dd" / "mnist.npz", x_train=x[:60], y_train=np.arange(60) % 10, x_test=x[60:],
             y_test=np.arange(20) % 10)
    argv = ["sweep", "--dataset", "mnist", "--hidden", "4", "--epochs", "1", "--num-calibration", "32", "--bits",
            "2", "--methods", "rtn,gptq", "--data-dir", "dd", "--out", "s"]
    assert main(argv) == 0
    assert json.loads((tmp_path / "s" / "sweep.json").read_text())["settings"]["model"]["data_dir"] == "dd"
    before = _table(tmp_path / "s")
    next((tmp_path / "s" / "units").glob("*gptq*.json")).unlink()
    (tmp_path / "dd").rename(tmp_path / "moved")
    assert main(["sweep", "--resume", "s", "--data-dir", "moved"]) == 0
    assert json.loads((tmp_path / "s" / "sweep.json").read_text())["settings"]["model"]["data_dir"] == "moved"
    after = _table(tmp_path / "s")
    assert [{k: v for k, v in r.items() if "seconds" not in k} for r in after] == \
           [{k: v for k, v in r.items() if "seconds" not in k} for r in before]


def test_two_backends_whose_names_share_a_results_key_are_refused_before_any_training(tmp_path, capsys, monkeypatch):
    """Third-party backends ``my-sa`` and ``my+sa`` (entry points) gave cells of one key,
    ``bits=2_method=qubo-my-sa_seed=0``: the second overwrote the first's file, so a resume (of the finished sweep
    too) had ``qubo:my+sa``'s cell alone and never computed ``qubo:my-sa``'s again ("1 of 2 cells finished")."""
    import importlib.metadata

    import qannealq.experiment

    eps = [importlib.metadata.EntryPoint("my-sa", "qannealq.backends.classical:SimulatedAnnealing",
                                         "qannealq.backends"),
           importlib.metadata.EntryPoint("my+sa", "qannealq.backends.classical:Tabu", "qannealq.backends")]
    real = importlib.metadata.entry_points
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda **kw: eps if kw.get("group") == "qannealq.backends" else real(**kw))
    monkeypatch.setattr(qannealq.experiment, "train_mlp", lambda *a, **k: pytest.fail("a model was trained"))
    assert main(["sweep", "--bits", "2", "--seeds", "1", "--methods", "qubo:my-sa,qubo:my+sa", "--warm-start", "none",
                 "--out", str(tmp_path / "s")]) == 2
    assert ("--methods: 'qubo:my-sa' and 'qubo:my+sa' differ only in characters a results key replaces"
            in capsys.readouterr().err)
    assert not (tmp_path / "s").exists()
    SweepConfig(methods=("qubo:my-sa", "qubo:sa"), warm_start=None)  # names of keys of their own are taken


def _failing_cells(monkeypatch, errors: dict):
    """Make the sweep's cells (method, bits, seed) of ``errors`` raise theirs; returns the real quantize_model."""
    import qannealq.sweep

    original = qannealq.sweep.quantize_model

    def failing(model, x, bits, method, *args, **kwargs):
        if (method, bits, kwargs.get("seed")) in errors:
            raise errors[method, bits, kwargs.get("seed")]
        return original(model, x, bits, method, *args, **kwargs)

    monkeypatch.setattr(qannealq.sweep, "quantize_model", failing)
    return original


def test_a_failed_cell_is_named_and_reported_as_failed_not_averaged_in(tmp_path, monkeypatch, capsys):
    """A backend error in cell gptq int2 seed 1 ended the sweep with the backend's message alone (no cell, no
    word of the finished cells kept) and summary.md read "interrupted, or still running"; the error now names the
    cell and the resume, summary.md the failed cell, and the resume computes it."""
    import qannealq.sweep
    from qannealq.errors import BackendError

    original = _failing_cells(monkeypatch, {("gptq", 2, 1): BackendError(
        "layer '0', neuron 3: backend 'dwave' failed after 4 tries: SolverFailureError")})
    out = tmp_path / "s"
    args = ["sweep", "--dataset", "digits", "--input-size", "4", "--bits", "4,2", "--seeds", "2", "--methods",
            "rtn,gptq", "--out", str(out)]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "cell gptq int2 seed 1 failed" in err and f"--resume {out}" in err and "SolverFailureError" in err
    summary = (out / "summary.md").read_text()
    assert "7 of 8 cells finished" in summary and "failed: gptq int2 seed 1" in summary
    aggregates = json.loads((out / "sweep.json").read_text())["aggregates"]
    assert [a["n"] for a in aggregates if (a["method"], a["bits"]) == ("gptq", 2)] == [1]
    monkeypatch.setattr(qannealq.sweep, "quantize_model", original)
    assert main(["sweep", "--resume", str(out)]) == 0
    summary = (out / "summary.md").read_text()
    assert "failed" not in summary and "Unfinished" not in summary


def test_keep_going_records_failed_cells_computes_the_others_and_resume_retries_them(tmp_path, monkeypatch, capsys):
    """A failed cell stopped the whole sweep, the other cells not computed (hours lost on a long sweep).
    ``--keep-going`` records each failed cell (a backend's error and a bug's alike), computes every other one,
    marks the failed ones in summary.md and sweep.json, exits non-zero naming them, and ``--resume`` retries them."""
    import qannealq.sweep
    from qannealq.errors import BackendError

    original = _failing_cells(monkeypatch, {
        ("gptq", 2, 1): BackendError("backend 'dwave' failed after 4 tries: SolverFailureError"),
        ("rtn", 4, 0): KeyError("no_such_layer")})
    out = tmp_path / "s"
    args = ["sweep", "--dataset", "digits", "--input-size", "4", "--bits", "4,2", "--seeds", "2", "--methods",
            "rtn,gptq", "--out", str(out), "--keep-going"]
    assert main(args) == 2
    captured = capsys.readouterr()
    assert ("2 sweep cell(s) failed (6 finished cell(s) kept" in captured.err and f"--resume {out}" in captured.err
            and "digits4x4 rtn int4 seed 0: KeyError: 'no_such_layer'" in captured.err
            and "digits4x4 gptq int2 seed 1: backend 'dwave' failed" in captured.err)
    summary = (out / "summary.md").read_text()
    assert summary in captured.out  # the tables of the cells that finished are printed before the error
    assert "6 of 8 cells finished, 2 to go (2 failed;" in summary and "failed: rtn int4 seed 0: KeyError" in summary
    rows = [line.strip("| ").split(" | ") for line in summary.splitlines() if line.startswith("| int")]
    for row in rows:  # accuracy, then layer error: rtn at int4 and gptq at int2 lost one seed of two
        failures = [i for i, text in enumerate(row) if text.endswith("(n=1) (1 failed)")]
        assert failures == ([1] if row[0] == "int4" else [2])
    payload = json.loads((out / "sweep.json").read_text())
    assert [(f["dataset"], f["method"], f["bits"], f["seed"]) for f in payload["failed"]] == \
        [("digits4x4", "rtn", 4, 0), ("digits4x4", "gptq", 2, 1)]
    assert len(payload["cells"]) == 6 and len(_table(out)) == 6 and (out / "sweep.png").exists()

    config = SweepConfig(model=ModelConfig(dataset="digits", input_size=4), bits=(4, 2), methods=("rtn", "gptq"),
                         seeds=2, out=out, resume=True, keep_going=True)
    with pytest.raises(qannealq.sweep.SweepCellsFailedError) as raised:  # still failing: the API says so too
        sweep(config)
    assert [f.name for f in raised.value.summary.failed] == ["rtn int4 seed 0", "gptq int2 seed 1"]
    assert raised.value.summary.computed == 0 and len(raised.value.summary.cells) == 6
    monkeypatch.setattr(qannealq.sweep, "quantize_model", original)
    assert main(["sweep", "--resume", str(out)]) == 0  # --keep-going is not a stored setting
    summary = (out / "summary.md").read_text()
    assert "failed" not in summary and "Unfinished" not in summary
    assert json.loads((out / "sweep.json").read_text())["failed"] == [] and len(_table(out)) == 8


def test_without_keep_going_a_bug_in_a_cell_still_stops_the_sweep(tmp_path, monkeypatch):
    """The default is unchanged: the first failed cell stops the sweep, a non-qannealq error with its traceback."""
    _failing_cells(monkeypatch, {("rtn", 4, 0): KeyError("no_such_layer")})
    config = SweepConfig(model=ModelConfig(dataset="digits", input_size=4), bits=(4,), methods=("rtn",), seeds=2,
                         out=tmp_path / "s")
    with pytest.raises(KeyError, match="no_such_layer"):
        sweep(config)
    assert json.loads((tmp_path / "s" / "store.json").read_text())["command"] == "sweep"
    assert not list((tmp_path / "s" / "units").iterdir())
