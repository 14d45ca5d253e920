"""Every bad input gets a clear error and loses nothing: one test per row of the README's table.

The README's table "Bad inputs and what they get" and :data:`ROWS` are the same list: a test checks that every
row of the table names a test here (its last column) and that the error it quotes is the one asserted.
"""

from __future__ import annotations

import csv
import errno
import json
import logging
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from qannealq import quantize_model
from qannealq.cli import main
from qannealq.errors import CalibrationError, NonFiniteError, ProblemTooLargeError

README = Path(__file__).resolve().parents[1] / "README.md"

ROWS = {  # test id -> the part of the error message the test asserts (quoted in the README's table)
    "hidden-0": "--hidden=0 must be an integer >= 1",
    "epochs-negative": "--epochs=-1 must be an integer >= 1",
    "bits-out-of-range": "bits=9 is not supported: use an integer from 1 to 8",
    "unknown-backend": "backend='nope' is unknown: choose one of",
    "retries-negative": "--retries=-1 must be an integer >= 0",
    "sampler-option-value": "--sampler-option timeout=-5 must be a number of milliseconds > 0 (backend 'tabu')",
    "sampler-option-without-qubo": "--sampler-option effort: sampler options (--effort and --time-limit too) are "
                                   "the qubo method's, and --methods rtn has no qubo",
    "memory-limit-zero": "--memory-limit=0 must be a positive number of GiB",
    "value-named-twice": "--bits=4,4 names 4 more than once: give each value once",
    "compare-export-option": "--solver-seed=-1 must be an integer in 0..2**31-1",
    "data-dir-missing": "--data-dir='/nonexistent' not found: give an existing folder holding the datasets",
    "calibration-above-train": "--num-calibration=100000 is more than the 1347 training samples of digits: "
                               "calibrating on all 1347",
    "out-is-a-file": "is an existing file, not a folder: give a folder path",
    "unwritable-out": "is not writable; choose another --out folder",
    "resume-other-settings": "the settings differ from the stored run's (quantize.bits: [4] -> [2])",
    "folder-in-use": "is in use by another qannealq process (pid ",
    "moved-datasets-other-files": "the datasets found with the new --data-dir are not the stored run's",
    "missing-credentials": "backend 'dwave' needs a D-Wave API token and none was found",
    "corrupt-dataset": "is corrupt or truncated",
    "conv2d-layers": "only torch.nn.Linear layers are quantized: 0 (Conv2d) stay in float",
    "nan-weights": "layer '2': its weight contains NaN or infinity",
    "calibration-wrong-shape": "the model cannot run on calibration data of shape (5,) per sample",
    "calibration-empty": "calibration data must have shape (N, ...) with N >= 1 samples",
    "calibration-nan": "calibration data contain NaN or infinity",
    "calibration-half-range": "calibration data reach 100000 in magnitude, beyond the range of the model's "
                              "torch.float16 (largest 65504): scale them",
    "activations-half-range": "layer '0': its outputs on the calibration data contain NaN or infinity (the model's "
                              "torch.float16 reaches 65504 at most): scale the data",
    "oversize-problem": "backend 'exact' takes at most 24 variables",
    "capacity-above-backend": "--sampler-option capacity=30 is above the 24 variables that backend 'exact' takes",
    "corrupt-checkpoint": "is unreadable",
    "full-disk": "No space left on device; free disk space or choose another --out folder",
}


@pytest.fixture
def no_training(monkeypatch):
    """Training fails the test: these inputs must be refused before any."""
    import qannealq.experiment

    monkeypatch.setattr(qannealq.experiment, "train_mlp", lambda *a, **k: pytest.fail("a model was trained"))


def _cli_error(argv, capsys) -> str:
    assert main(argv) == 2
    return capsys.readouterr().err


def _rows(out: Path) -> list[dict]:
    with open(out / "results.csv") as fh:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(fh)]


def test_the_readme_table_lists_exactly_these_rows_with_their_errors():
    text = README.read_text()
    section = text.split("### Bad inputs and what they get", 1)[1].split("\n#", 1)[0]
    table = [line for line in section.splitlines() if line.startswith("|")][2:]
    found = {}
    for line in table:
        cells = [c.strip() for c in line.strip("|").split("|")]
        found[cells[-1].strip("`")] = cells[1]
    assert sorted(found) == sorted(ROWS)
    for key, message in ROWS.items():
        assert message in found[key].replace("\\|", "|"), key


@pytest.mark.parametrize("key, argv", [
    ("hidden-0", ["--hidden", "0"]),
    ("epochs-negative", ["--epochs", "-1"]),
    ("bits-out-of-range", ["--bits", "4,9"]),
    ("unknown-backend", ["--methods", "rtn,qubo", "--backend", "nope"]),
    ("retries-negative", ["--methods", "qubo", "--retries", "-1"]),
    ("sampler-option-value", ["--methods", "qubo", "--backend", "tabu", "--sampler-option", "timeout=-5"]),
    ("memory-limit-zero", ["--objective", "relu-aware", "--memory-limit", "0"]),
    ("sampler-option-without-qubo", ["--effort", "fast"]),
    ("data-dir-missing", ["--data-dir", "/nonexistent"]),
    ("value-named-twice", ["--bits", "4,4"]),
])
def test_bad_options_are_refused_before_training_and_write_nothing(key, argv, tmp_path, capsys, no_training):
    out = tmp_path / "out"
    err = _cli_error(["run", "--methods", "rtn", *argv, "--out", str(out)], capsys)
    assert ROWS[key] in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("argv", [
    ["sweep", "--methods", "qubo", "--backend", "tabu", "--sampler-option", "timeout=-5"],
    ["compare", "--backends", "sa,tabu", "--sampler-option", "tabu:timeout=-5"],
])
def test_a_bad_sampler_option_value_stops_sweep_and_compare_before_training(argv, tmp_path, capsys, no_training):
    """The table's ``sampler-option-value`` row holds for ``sweep`` and ``compare`` too (``compare`` checked its
    sampler options, keys included, only after training and building its instances)."""
    out = tmp_path / "out"
    err = _cli_error([*argv, "--out", str(out)], capsys)
    assert ROWS["sampler-option-value"] in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("argv", [
    ["run", "--methods", "qubo", "--backend", "sa"],
    ["run", "--methods", "qubo"],
    ["sweep", "--methods", "qubo:sa"],
    ["compare", "--backends", "sa,layer-sa"],
])
def test_a_reversed_beta_range_is_refused_before_training(argv, tmp_path, capsys, no_training):
    """``beta_range=(10,1)`` (cold to hot): ``sa`` annealed backwards without a word (4x4 digits int2: layer error
    64.1 against 30.8 for ``(1,10)``, above GPTQ-restricted's 54.9) and ``layer-sa`` refused it only after training,
    as "beta_range=(10, 1) must satisfy 0 < hot <= cold", naming no option."""
    out = tmp_path / "out"
    err = _cli_error([*argv, "--sampler-option", "beta_range=(10,1)", "--out", str(out)], capsys)
    assert "--sampler-option beta_range=(10, 1) must be [low, high] with low <= high" in err
    assert "give [1, 10]" in err and "Traceback" not in err
    assert not out.exists()


@pytest.mark.parametrize("argv", [
    ["run", "--methods", "qubo", "--backend", "dwave-mock"],
    ["sweep", "--methods", "qubo:dwave-mock"],
])
def test_a_reverse_anneal_without_a_warm_start_is_refused_before_training(argv, tmp_path, capsys, no_training):
    """``--sampler-option anneal=reverse --warm-start none`` was refused only at the first layer, after training (on a
    QPU, with its cloud client opened); the whole-layer path's warm start counts as each neuron's start row."""
    pytest.importorskip("dwave.system")
    out = tmp_path / "out"
    err = _cli_error([*argv, "--sampler-option", "anneal=reverse", "--warm-start", "none", "--out", str(out)], capsys)
    assert "--sampler-option anneal='reverse' needs a warm start to anneal back from: use --warm-start" in err
    assert not out.exists()
    from qannealq.backends import get_sampler
    from qannealq.solve import check_warm_rows

    qpu = get_sampler("dwave-mock")
    check_warm_rows(qpu, {"anneal": "reverse"}, "gptq-restricted-pivot")  # a warm start to anneal back from
    check_warm_rows(qpu, {"anneal": "reverse", "parallel": False}, None)  # one neuron a call: 'anneal' not used


@pytest.mark.parametrize("argv, message", [
    (["sweep", "--methods", "rtn", "--effort", "fast"], ROWS["sampler-option-without-qubo"]),
    (["sweep", "--methods", "rtn", "--time-limit", "5"], "sampler options (--effort and --time-limit too) are"),
    (["run", "--methods", "rtn,gptq", "--sampler-option", "num_reads=3"], "--sampler-option num_reads: sampler opt"),
    (["run", "--methods", "rtn,gptq", "--backend", "sa"], "--backend sa is the sampler of the qubo method, and "
                                                          "--methods rtn,gptq has no plain qubo"),
    (["sweep", "--methods", "rtn,qubo:sa", "--backend", "tabu"], "--backend tabu is the sampler of the qubo method"),
    (["run", "--methods", "rtn", "--warm-start", "none"], "--warm-start none is the qubo method's initial state"),
    (["sweep", "--methods", "gptq", "--warm-start", "rtn"], "--warm-start rtn is the qubo method's initial state"),
])
def test_qubo_options_without_the_qubo_method_are_refused(argv, message, tmp_path, capsys, no_training):
    """They were ignored: ``--methods rtn --effort fast`` ran RTN alone and said nothing (``--backend`` and
    ``--warm-start`` only where given on the command line: they have defaults)."""
    err = _cli_error([*argv, "--out", str(tmp_path / "o")], capsys)
    assert message in err and "add qubo to --methods" in err
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv, message", [
    (["run", "--methods", "rtn", "--executor", "threads:2"], "--executor threads:2 runs the qubo method's neuron "
                                                             "solves, and --methods rtn has no qubo: add qubo"),
    (["run", "--methods", "rtn", "--objective", "relu-aware"], "--objective relu-aware is the error that GPTQ and "
                                                               "the QUBOs minimise, and --methods rtn has RTN alone"),
    (["sweep", "--methods", "rtn", "--objective", "relu-aware"], "--methods rtn has RTN alone, which does not"),
    (["run", "--methods", "rtn,gptq", "--dry-run"], "--dry-run: --methods rtn,gptq has no qubo method, so nothing "
                                                    "spends QPU time; add qubo with --backend dwave or dwave-mock"),
    (["run", "--methods", "qubo", "--dry-run"], "--dry-run: backend 'layer-sa' spends no QPU time"),
    (["compare", "--backends", "sa,exact", "--dry-run"], "--dry-run: none of --backends spends QPU time"),
])
def test_options_that_would_have_no_effect_are_refused_before_training(argv, message, tmp_path, capsys,
                                                                        no_training):
    """``--executor`` and ``--objective relu-aware`` with RTN alone were ignored without a word; a dry run without a
    QPU backend trained the model (CIFAR-10's: minutes) to say "nothing to plan"."""
    err = _cli_error([*argv, "--out", str(tmp_path / "o")], capsys)
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_qubo_options_at_their_defaults_or_with_qubo_pass(tmp_path, capsys):
    assert main(["sweep", "--input-size", "4", "--bits", "2", "--methods", "rtn,qubo:sa", "--seeds", "1",
                 "--warm-start", "none", "--out", str(tmp_path / "s")]) == 0  # a named qubo takes a warm start
    assert main(["run", "--input-size", "4", "--bits", "2", "--methods", "rtn", "--out", str(tmp_path / "r")]) == 0


@pytest.mark.parametrize("argv, message", [
    (["compare", "--solver-seed", "-1"], ROWS["compare-export-option"]),  # a numpy traceback after training
    (["compare", "--proof-time", "-1"], "--proof-time=-1.0 must be a number of seconds >= 0"),
    (["compare", "--long-reads", "0"], "--long-reads=0 must be an integer >= 1"),  # both accepted, unused
    (["compare", "--long-sweeps", "-3"], "--long-sweeps=-3 must be an integer >= 1"),
    (["compare", "--max-calls", "0"], "--max-calls=0 must be an integer >= 1"),
    (["compare", "--capacity", "sa=0"], "--capacity sa=0 must be an integer >= 1"),
    (["export", "--long-reads", "0"], "--long-reads=0 must be an integer >= 1"),  # refused mid-export, as num_reads
    (["export", "--proof-time", "nan"], "--proof-time=nan must be a number of seconds >= 0"),
])
def test_compare_and_export_options_are_refused_before_training(argv, message, tmp_path, capsys, no_training):
    err = _cli_error([*argv, "--out", str(tmp_path / "o")], capsys)
    assert message in err and "Traceback" not in err
    assert not (tmp_path / "o").exists()


def test_list_options_from_python_take_one_value_as_a_list_of_one():
    """``prepare(hidden=16)`` and ``QuantizeConfig(bits=4)`` failed with Python's TypeError; ``hidden="128"`` was
    read as sizes 1, 2, 8 and ``methods="rtn"`` as methods r, t, n."""
    from qannealq.config import ModelConfig, QuantizeConfig
    from qannealq.sweep import SweepConfig

    assert ModelConfig(hidden=16).hidden == (16,) and ModelConfig(hidden=[32, 16]).hidden == (32, 16)
    for config in (QuantizeConfig, SweepConfig):
        assert config(bits=4, methods="rtn").bits == (4,) and config(methods="rtn").methods == ("rtn",)
        with pytest.raises(ValueError, match="bits='48' is not supported"):
            config(bits="48")
    for bad in ("128", 2.5):
        with pytest.raises(ValueError, match=re.escape(f"--hidden={bad!r} must be an integer >= 1")):
            ModelConfig(hidden=bad)


def test_layers_given_as_one_name_or_not_names():
    """``layers="02"`` was read as layers "0" and "2"; ``layers=0`` failed with Python's TypeError."""
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    x = np.random.default_rng(0).normal(size=(8, 4))
    assert [l.name for l in quantize_model(model, x, bits=4, method="rtn", layers="2").layers] == ["2"]
    # the message lists the layers there are (a typo such as "fc_1" for "fc1" had to be looked up)
    with pytest.raises(ValueError, match=re.escape("layers: the model has no layer named '02'; its torch.nn.Linear "
                                                   "layers are ['0', '2']")):
        quantize_model(model, x, bits=4, method="rtn", layers="02")
    for bad in (0, ["0", 2]):
        with pytest.raises(ValueError, match=re.escape(f"layers={bad!r} must be module names")):
            quantize_model(model, x, bits=4, method="rtn", layers=bad)


def test_a_neuron_named_twice_is_refused(tmp_path, capsys):
    """``export --neurons 3,3`` wrote one instance's files twice and listed it twice (``compare --instances`` then
    refused the folder: "instance names must be unique")."""
    err = _cli_error(["export", "--neurons", "3,3", "--proof-time", "0", "--out", str(tmp_path / "o")], capsys)
    assert "--neurons='3,3' names neuron(s) [3] more than once: give each once" in err
    assert not (tmp_path / "o").exists()


def test_a_neuron_range_past_the_layers_end_is_refused(tmp_path, capsys):
    """``compare --neurons 0:99`` on a 16-neuron layer compared 16 without a word (a Python slice, clipped); the
    default, the first 8, still takes fewer on a smaller layer."""
    from qannealq._compare_instances import DEFAULT_NEURONS, parse_neurons

    err = _cli_error(["compare", "--input-size", "4", "--neurons", "0:99", "--backends", "exact", "--out",
                      str(tmp_path / "o")], capsys)
    assert "--neurons='0:99' reaches past the layer's end: this layer has 16 neurons, 0..15; give a range within " \
        "them, e.g. 0:16" in err
    assert not (tmp_path / "o").exists()
    for bad in ("12:20", "-20:", "0:17:2"):
        with pytest.raises(ValueError, match="reaches past the layer's end: this layer has 16 neurons"):
            parse_neurons(bad, 16)
    assert parse_neurons("0:16", 16) == list(range(16)) and parse_neurons("-4:", 16) == [12, 13, 14, 15]
    assert parse_neurons(DEFAULT_NEURONS, 4) == [0, 1, 2, 3]


def test_a_typed_default_neuron_range_is_refused_past_the_layers_end_as_any_range():
    """``--neurons 0:8`` typed on a layer of 4 neurons compared 4 without a word where ``0:9`` was refused: the
    default was told by its text. The default alone is clipped; one stored by a comparison is, on its resume."""
    from qannealq._compare_command import Selection
    from qannealq._compare_instances import DEFAULT_NEURONS, parse_neurons

    for typed in ("0:8", "".join(["0", ":8"])):
        with pytest.raises(ValueError, match="reaches past the layer's end: this layer has 4 neurons"):
            parse_neurons(typed, 4)
    assert parse_neurons(Selection().neurons, 4) == [0, 1, 2, 3] == parse_neurons(DEFAULT_NEURONS, 4)
    resumed = Selection.from_stored(Selection().describe())  # store.json's text "0:8": the default it was
    assert parse_neurons(resumed.neurons, 4) == [0, 1, 2, 3] and resumed.describe() == Selection().describe()
    with pytest.raises(ValueError, match="reaches past the layer's end"):
        parse_neurons(Selection.from_stored(Selection().describe(), neurons="0:8").neurons, 4)  # typed again


@pytest.mark.parametrize("argv, message", [
    (["run", "--bits", "4", "--methods", "rtn,gptq,rtn"], "--methods=rtn,gptq,rtn names rtn more than once"),
    (["sweep", "--bits", "4,2,4", "--methods", "rtn"], "--bits=4,2,4 names 4 more than once"),
    (["sweep", "--bits", "4", "--methods", "qubo,rtn,qubo:layer-sa"],
     "--methods=qubo,rtn,qubo:layer-sa names qubo:layer-sa more than once"),
    (["compare", "--backends", "sa,exact,sa"], "--backends=sa,exact,sa names sa more than once"),
    (["sweep", "--bits", "4", "--methods", "qubo:sa,qubo:neal"], "--methods=qubo:sa,qubo:neal names qubo:sa more "
     "than once"),  # neal is sa's alias: the same solver twice, two identical columns
    (["compare", "--backends", "neal,exact,sa"], "--backends=neal,exact,sa names sa more than once"),
])
def test_a_value_named_twice_in_a_list_option_is_refused(argv, message, tmp_path, capsys, no_training):
    """``--bits 4,4`` and ``--methods rtn,rtn`` ran each value once and said nothing; ``sweep``'s ``qubo`` is its
    ``qubo:layer-sa``."""
    out = tmp_path / "out"
    err = _cli_error([*argv, "--out", str(out)], capsys)
    assert f"{message}: give each value once" in err and "Traceback" not in err
    assert not out.exists()


def test_a_value_named_twice_in_a_list_argument_of_the_python_api_is_refused():
    from qannealq.compare import compare_backends
    from qannealq.config import QuantizeConfig

    with pytest.raises(ValueError, match=re.escape("--bits=4,2,2 names 2 more than once")):
        QuantizeConfig(bits=(4, 2, 2))
    with pytest.raises(ValueError, match=re.escape("samplers=sa,sa names sa more than once")):
        compare_backends([], ["sa", "sa"])
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    x = np.random.default_rng(0).normal(size=(8, 4))
    with pytest.raises(ValueError, match=re.escape("layers=2,0,2 names 2 more than once")):
        quantize_model(model, x, bits=4, method="rtn", layers=["2", "0", "2"])
    assert [l.name for l in quantize_model(model, x, bits=4, method="rtn", layers=["2", "0"]).layers] == ["0", "2"]


def test_more_calibration_samples_than_training_data_warns_and_takes_all(caplog):
    from types import SimpleNamespace

    from qannealq.experiment import calibration_draw

    data = SimpleNamespace(name="digits", x_train=np.arange(2694.0).reshape(1347, 2))  # its size in the product
    with caplog.at_level(logging.WARNING, logger="qannealq.experiment"):
        calib = calibration_draw(data, 100000, seed=0)
    assert ROWS["calibration-above-train"] in caplog.text
    np.testing.assert_array_equal(calib, data.x_train)
    caplog.clear()
    assert len(calibration_draw(data, 1024, seed=0)) == 1024 and not caplog.text
    assert len(calibration_draw(data, 100000, seed=1, warn=False)) == 1347 and not caplog.text  # a sweep's seeds


def test_a_sweep_warns_once_about_too_many_calibration_samples(tmp_path, caplog):
    with caplog.at_level(logging.WARNING, logger="qannealq.experiment"):
        assert main(["sweep", "--bits", "4", "--methods", "rtn", "--seeds", "3", "--num-calibration", "100000",
                     "--out", str(tmp_path / "s")]) == 0
    assert caplog.text.count(ROWS["calibration-above-train"]) == 1


def test_out_naming_an_existing_file(tmp_path, capsys, no_training):
    target = tmp_path / "results.txt"
    target.write_text("keep me")
    assert ROWS["out-is-a-file"] in _cli_error(["run", "--methods", "rtn", "--out", str(target)], capsys)
    assert target.read_text() == "keep me"


def test_unwritable_out(tmp_path, monkeypatch, capsys, no_training):
    if os.geteuid() == 0:  # root writes anywhere: make the permission check see what a user would
        monkeypatch.setattr("qannealq.store.os.access", lambda path, mode: False)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    assert ROWS["unwritable-out"] in _cli_error(["run", "--methods", "rtn", "--out", str(locked / "r")], capsys)
    assert not (locked / "r").exists()


def test_resume_with_other_settings(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", "--bits", "4", "--methods", "rtn", "--out", str(out)]) == 0
    before = (out / "results.csv").read_text()
    capsys.readouterr()
    assert ROWS["resume-other-settings"] in _cli_error(["run", "--bits", "2", "--methods", "rtn", "--resume",
                                                        str(out)], capsys)
    assert (out / "results.csv").read_text() == before


def test_a_folder_another_process_writes(tmp_path, capsys):
    out = tmp_path / "r"
    assert main(["run", "--bits", "4", "--methods", "rtn", "--out", str(out)]) == 0
    before = (out / "results.csv").read_text()
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from qannealq.store import FolderLock; "
                               "FolderLock.acquire(sys.argv[1]); print('held', flush=True); time.sleep(120)", str(out)],
                              stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "held"
        capsys.readouterr()
        err = _cli_error(["run", "--resume", str(out)], capsys)
        assert ROWS["folder-in-use"] + f"{holder.pid})" in err
    finally:
        holder.kill()
        holder.wait()
    assert (out / "results.csv").read_text() == before


def test_missing_credentials(tmp_path, capsys, no_dwave_token, no_training):
    pytest.importorskip("dwave.system")
    err = _cli_error(["run", "--methods", "rtn,qubo", "--backend", "dwave", "--out", str(tmp_path / "o")], capsys)
    assert ROWS["missing-credentials"] in err and "DWAVE_API_TOKEN" in err
    assert not (tmp_path / "o").exists()


def test_corrupt_or_truncated_dataset_file(tmp_path, capsys, no_training):
    folder = tmp_path / "data"
    folder.mkdir()
    arrays = {"x_train": np.zeros((60, 28, 28), np.uint8), "y_train": np.arange(60) % 10,
              "x_test": np.zeros((10, 28, 28), np.uint8), "y_test": np.arange(10)}
    np.savez_compressed(folder / "mnist.npz", **arrays)
    data = (folder / "mnist.npz").read_bytes()
    (folder / "mnist.npz").write_bytes(data[: len(data) // 2])  # a download cut short
    err = _cli_error(["run", "--dataset", "mnist", "--data-dir", str(folder), "--methods", "rtn", "--out",
                      str(tmp_path / "o")], capsys)
    assert ROWS["corrupt-dataset"] in err and str(folder / "mnist.npz") in err and "--download" in err
    assert not (tmp_path / "o").exists()


def test_a_resume_whose_data_dir_moved_says_what_to_do(tmp_path, capsys, monkeypatch):
    """A run stored with ``--data-dir`` whose folder moved was refused as ``--data-dir='dd' not found: give an
    existing folder`` (a flag the resume was not given), or with the path's difference alone. A run stored
    without the files' SHA-256 (before 2026-12-06) still needs a link; digits come from scikit-learn whatever
    the folder."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dd").mkdir()
    argv = ["run", "--input-size", "4", "--bits", "2", "--methods", "rtn", "--data-dir", "dd", "--out", "r"]
    assert main(argv) == 0
    (tmp_path / "dd").rename(tmp_path / "moved")
    err = _cli_error(["run", "--resume", "r"], capsys)
    assert "--resume: the stored run read its datasets from --data-dir='dd', which is not found (a relative path: " \
           "it is read from the folder the resume runs in); give --data-dir with the datasets' new folder" in err \
           and "a link to their new place works" in err
    meta = tmp_path / "r" / "store.json"
    saved = json.loads(meta.read_text())
    assert set(saved.pop("data")) == {"model"}
    meta.write_text(json.dumps(saved))  # as stored before the checksum was
    err = _cli_error(["run", "--resume", "r", "--data-dir", "moved"], capsys)
    assert "(model.data_dir: 'dd' -> 'moved')" in err and "give the stored --data-dir, made to lead to the " \
           "datasets' new place by a link if they moved; this run was stored without the files' SHA-256" in err
    (tmp_path / "dd").symlink_to(tmp_path / "moved")
    assert main(["run", "--resume", "r"]) == 0
    (tmp_path / "dd").unlink()
    assert main(["run", "--resume", "r", "--data-dir", "moved"]) == 2  # no checksum: the link was the only way


def test_a_digits_resume_given_a_data_dir_says_digits_reads_none(tmp_path, capsys, monkeypatch):
    """``run --resume DIR --data-dir X`` of a digits run stored without one was refused with a hint to give the
    stored --data-dir by a link, and that the run was stored without the files' SHA-256: digits has no files."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "X").mkdir()
    assert main(["run", "--input-size", "4", "--bits", "2", "--methods", "rtn", "--out", "r"]) == 0
    stored = (tmp_path / "r" / "store.json").read_text()
    err = _cli_error(["run", "--resume", "r", "--data-dir", "X"], capsys)
    assert "--data-dir='X' does not apply: dataset 'digits' is embedded in scikit-learn and reads no data " \
           "folder, and the stored run was given none; resume without --data-dir" in err
    assert "SHA-256" not in err and "link" not in err
    assert (tmp_path / "r" / "store.json").read_text() == stored
    assert main(["run", "--resume", "r"]) == 0


def test_a_resume_reads_moved_datasets_when_their_files_are_the_same(tmp_path, capsys, monkeypatch, caplog):
    """``--data-dir NEW`` resumes a run whose datasets moved when the files found there have the stored SHA-256,
    and from then on reads them there; other files are refused, naming both checksums."""
    monkeypatch.chdir(tmp_path)
    x = np.random.default_rng(0).integers(0, 256, size=(80, 28, 28), dtype=np.uint8)
    y = np.arange(80) % 10
    np.savez(tmp_path / "mnist.npz", x_train=x[:60], y_train=y[:60], x_test=x[60:], y_test=y[60:])
    (tmp_path / "dd").mkdir()
    shutil.copy(tmp_path / "mnist.npz", tmp_path / "dd" / "mnist.npz")
    argv = ["run", "--dataset", "mnist", "--hidden", "4", "--epochs", "1", "--num-calibration", "32", "--bits",
            "2", "--methods", "rtn,gptq", "--data-dir", "dd", "--out", "r"]
    assert main(argv) == 0
    rows = _rows(tmp_path / "r")
    meta = tmp_path / "r" / "store.json"
    checksum = json.loads(meta.read_text())["data"]["model"]
    (tmp_path / "r" / "units" / "bits=2_method=gptq.json").unlink()  # a row left to compute
    (tmp_path / "dd").rename(tmp_path / "moved")
    (tmp_path / "other").mkdir()
    np.savez(tmp_path / "other" / "mnist.npz", x_train=x[:60] // 2, y_train=y[:60], x_test=x[60:], y_test=y[60:])
    err = _cli_error(["run", "--resume", "r", "--data-dir", "other"], capsys)
    assert ROWS["moved-datasets-other-files"] in err
    assert "the datasets found with the new --data-dir are not the stored run's (model.data_dir: 'dd' -> " \
           f"'other'; their SHA-256 differ: model: {checksum[:12]} -> " in err
    assert json.loads(meta.read_text())["settings"]["model"]["data_dir"] == "dd"
    with caplog.at_level(logging.WARNING):
        assert main(["run", "--resume", "r", "--data-dir", "moved"]) == 0
    assert "the datasets are now read from the new folder (model.data_dir: 'dd' -> 'moved'" in caplog.text
    assert _rows(tmp_path / "r") == rows
    saved = json.loads(meta.read_text())
    assert saved["settings"]["model"]["data_dir"] == "moved" and saved["data"] == {"model": checksum}
    assert main(["run", "--resume", "r"]) == 0  # the new folder is the stored one now
    assert "resuming r: 2 finished row(s)" in capsys.readouterr().out


def _conv_net() -> torch.nn.Module:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return torch.nn.Sequential(torch.nn.Conv2d(1, 2, 3), torch.nn.ReLU(), torch.nn.Flatten(),
                                   torch.nn.Linear(2 * 6 * 6, 5), torch.nn.ReLU(), torch.nn.Linear(5, 3))


def test_conv2d_layers_stay_in_float_said_once_and_recorded(caplog):
    model = _conv_net()
    calib = np.random.default_rng(0).normal(size=(32, 1, 8, 8)).astype(np.float32)
    with caplog.at_level(logging.WARNING, logger="qannealq"):
        result = quantize_model(model, calib, bits=2, method="rtn")
    warnings = [r.getMessage() for r in caplog.records if "stay in float" in r.getMessage()]
    assert warnings == [ROWS["conv2d-layers"]]
    assert result.settings["skipped_layers"] == {"0": "Conv2d"}
    assert [layer.name for layer in result.layers] == ["3", "5"]
    assert torch.equal(result.model[0].weight, model[0].weight)  # the convolution is untouched
    assert not torch.equal(result.model[3].weight, model[3].weight)  # the Linear layers are quantized
    plain = quantize_model(torch.nn.Sequential(torch.nn.Linear(4, 2)), np.ones((3, 4)), bits=4, method="rtn")
    assert plain.settings["skipped_layers"] == {}


def test_quantize_model_refuses_a_bad_sampler_option_value_before_calibration(monkeypatch):
    import qannealq.pipeline

    monkeypatch.setattr(qannealq.pipeline, "linear_layers", lambda *a, **k: pytest.fail("calibration began"))
    model = torch.nn.Sequential(torch.nn.Linear(4, 2))
    with pytest.raises(ValueError, match="timeout=-5 must be a number of milliseconds > 0"):
        quantize_model(model, np.ones((3, 4)), bits=4, method="qubo", sampler="tabu", timeout=-5)


@pytest.mark.parametrize("kwargs, message", [
    ({"method": "rtn", "calibraton": "sequential"}, "calibraton: method 'rtn' takes no sampler options"),  # was ignored
    ({"method": "gptq", "effort": "fast"}, "effort: method 'gptq' takes no sampler options"),
    ({"sampler": "sa", "num_sweepz": 3}, "quantize_model keyword num_sweepz: backend 'sa' does not take this option"),
    ({"sampler": "layer-sa", "effort": "slow"}, "quantize_model keyword effort='slow' must be one of"),
    ({"seed": 1.5}, "seed=1.5 must be an integer in 0..2**32-1 or None"),  # was checked after calibration
    ({"method": "rtn", "progress": 5}, "progress=5 must be a function"),  # Python's TypeError, per layer
])
def test_quantize_model_refuses_keywords_nothing_takes_before_calibration(kwargs, message, monkeypatch):
    """A keyword ``quantize_model`` does not know goes to the sampler: with a method other than ``qubo`` it was
    ignored, and a backend of ours given by name only warned, per call, that it dropped a misspelt one."""
    import qannealq.pipeline

    monkeypatch.setattr(qannealq.pipeline, "linear_layers", lambda *a, **k: pytest.fail("calibration began"))
    model = torch.nn.Sequential(torch.nn.Linear(4, 2))
    with pytest.raises(ValueError, match=re.escape(message)):
        quantize_model(model, np.ones((3, 4)), bits=4, **{"method": "qubo", **kwargs})


@pytest.mark.parametrize("where", ["weight", "bias"])
def test_nan_or_inf_weights_are_refused_before_calibration(where, monkeypatch):
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    with torch.no_grad():
        getattr(model[2], where)[0] = float("nan") if where == "weight" else float("inf")
    monkeypatch.setattr("qannealq.pipeline.collect_stats", lambda *a, **k: pytest.fail("calibrated"))
    with pytest.raises(NonFiniteError, match=re.escape(ROWS["nan-weights"].replace("weight", where))):
        quantize_model(model, np.ones((8, 4)), bits=4, method="rtn")


@pytest.mark.parametrize("key, data, error", [
    ("calibration-wrong-shape", np.ones((8, 5)), CalibrationError),
    ("calibration-empty", np.ones((0, 4)), CalibrationError),
    ("calibration-nan", np.full((8, 4), np.nan), NonFiniteError),
])
def test_bad_calibration_data(key, data, error):
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2))
    with pytest.raises(error, match=re.escape(ROWS[key])):
        quantize_model(model, data, bits=4, method="rtn")


def test_data_beyond_a_half_precision_models_range_are_named_so():
    """Finite data that overflow the model's float16 were refused as "calibration data contain NaN or infinity"."""
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2)).half()
    data = np.ones((8, 4))
    data[2, 1] = 1e5
    with pytest.raises(NonFiniteError, match=re.escape(ROWS["calibration-half-range"])):
        quantize_model(model, data, bits=4, method="rtn")


@pytest.mark.parametrize("method", ["rtn", "gptq"])
def test_activations_beyond_a_half_precision_models_range_are_named_so(method):
    """Data within a float16 model's range whose first layer's outputs overflow it: the statistics were NaN, rtn
    reported NaN errors and gptq raised a bare ZeroDivisionError."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 4), torch.nn.ReLU(), torch.nn.Linear(4, 3))
    with torch.no_grad():
        model[0].weight.fill_(1000.0)
    data = np.full((8, 8), 100.0)  # 8e5 after the first layer
    with pytest.raises(NonFiniteError, match=re.escape(ROWS["activations-half-range"])):
        quantize_model(model.half(), data, bits=4, method=method)


def test_oversize_problem_is_refused_naming_both_sizes():
    import dimod

    from qannealq.backends import get_sampler

    bqm = dimod.BinaryQuadraticModel({v: 1.0 for v in range(30)}, {(0, 1): 1.0}, 0.0, "BINARY")
    with pytest.raises(ProblemTooLargeError, match=re.escape(ROWS["oversize-problem"]) + ".*this BQM has 30"):
        get_sampler("exact").sample(bqm)


def test_sub_problems_above_the_backends_capacity_are_refused_before_training(tmp_path, capsys, no_training):
    """run decomposes neurons above a backend's capacity; sub-problems of 30 variables are still too large for
    exact, and the run trained, then failed at the first neuron naming exact's limit but not the option."""
    out = tmp_path / "r"
    err = _cli_error(["run", "--bits", "4", "--methods", "rtn,qubo", "--backend", "exact", "--sampler-option",
                      "capacity=30", "--out", str(out)], capsys)
    assert ROWS["capacity-above-backend"] in err and "give at most 24" in err and "Traceback" not in err


def test_corrupt_checkpoint_in_the_cache_is_rebuilt_with_a_warning(tmp_path, monkeypatch, caplog):
    from backend_fixtures import tiny_digits

    from qannealq.data import checkpoint_path, load_dataset
    from qannealq.experiment import TINY_RECIPE, prepare

    reference = tiny_digits()  # trained (or loaded) in the session's cache
    data = load_dataset("digits", input_size=4)
    sizes = (16, *TINY_RECIPE.hidden, 10)
    good = checkpoint_path(data, sizes, TINY_RECIPE.epochs, TINY_RECIPE.lr, TINY_RECIPE.batch_size, 0)
    monkeypatch.setenv("QANNEALQ_CACHE", str(tmp_path / "cache"))
    broken = checkpoint_path(data, sizes, TINY_RECIPE.epochs, TINY_RECIPE.lr, TINY_RECIPE.batch_size, 0)
    broken.parent.mkdir(parents=True)
    shutil.copyfile(good, broken)
    broken.write_bytes(broken.read_bytes()[:200])  # truncated by a crash or a full disk
    with caplog.at_level(logging.WARNING, logger="qannealq"):
        rebuilt = prepare(dataset="digits", input_size=4)
    assert any(ROWS["corrupt-checkpoint"] in r.getMessage() and str(broken) in r.getMessage()
               for r in caplog.records)
    for key, value in reference.model.state_dict().items():  # retrained deterministically: the same model
        assert torch.equal(rebuilt.model.state_dict()[key], value), key
    assert torch.load(broken, weights_only=True).keys() == reference.model.state_dict().keys()  # file replaced


def test_full_disk_while_writing_keeps_finished_units_and_resumes(tmp_path, monkeypatch, capsys):
    real_fsync = os.fsync

    def fsync(fd):
        if "method=gptq" in os.readlink(f"/proc/self/fd/{fd}"):  # the disk fills while the gptq row is written
            raise OSError(errno.ENOSPC, "No space left on device")
        real_fsync(fd)

    argv = ["run", "--bits", "4", "--methods", "rtn,gptq"]
    out = tmp_path / "r"
    monkeypatch.setattr("qannealq.store.os.fsync", fsync)
    err = _cli_error([*argv, "--out", str(out)], capsys)
    assert ROWS["full-disk"] in err and "Traceback" not in err
    assert [r["method"] for r in _rows(out)] == ["rtn"]
    assert sorted(p.name for p in (out / "units").iterdir()) == ["bits=4_method=rtn.json"]  # no temporary file
    monkeypatch.setattr("qannealq.store.os.fsync", real_fsync)  # space freed: resume
    assert main([*argv, "--resume", str(out)]) == 0
    assert [r["method"] for r in _rows(out)] == ["rtn", "gptq"]
