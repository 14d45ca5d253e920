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


def test_help_says_what_the_tool_does_and_version_matches_the_package(capsys):
    """``qannealq --help`` printed the package's developer docstring ("one module per subcommand in this
    package"); ``--version`` was missing."""
    import tomllib
    from pathlib import Path

    import qannealq

    with pytest.raises(SystemExit) as stop:
        main(["--help"])
    assert stop.value.code == 0
    printed = " ".join(capsys.readouterr().out.split())
    assert "Quantize a trained dense PyTorch network" in printed and "module per subcommand" not in printed
    assert "qannealq COMMAND --help" in printed and all(c in printed for c in ("run", "sweep", "compare", "export"))
    with pytest.raises(SystemExit) as stop:
        main(["--version"])
    assert stop.value.code == 0
    project = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"]
    assert capsys.readouterr().out.strip() == f"qannealq {qannealq.__version__}" == f"qannealq {project['version']}"


def test_the_choices_of_the_command_line_are_the_librarys_own_lists():
    """``--calibration``, ``--granularity``, ``--int1`` and ``--objective`` spelled their choices out again: a
    mode added to the library (grid.INT1_SCHEMES grown by one) stayed refused by the parser. Each is now the
    library's tuple itself (kept in :mod:`qannealq._defaults`, which ``--help`` loads without numpy or torch)."""
    import argparse

    from qannealq.calibration import CALIBRATION_MODES
    from qannealq.cli import build_parser
    from qannealq.grid import GRANULARITIES, GRANULARITY_CHOICES, INT1_SCHEMES
    from qannealq.weighted import OBJECTIVES

    commands = next(a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)).choices
    expected = {"run": {"calibration": CALIBRATION_MODES, "granularity": GRANULARITY_CHOICES, "int1": INT1_SCHEMES,
                        "objective": OBJECTIVES},
                "sweep": {"calibration": CALIBRATION_MODES, "granularity": GRANULARITY_CHOICES, "int1": INT1_SCHEMES,
                          "objective": OBJECTIVES},
                "compare": {"granularity": GRANULARITIES, "int1": INT1_SCHEMES}}
    for command, options in expected.items():
        found = {a.dest: a.choices for a in commands[command]._actions if a.dest in options}
        assert found == options and all(found[o] is options[o] for o in options), command


def test_sweep_help_gives_each_presets_warm_start(capsys):
    """``sweep --help`` called gptq-restricted-pivot "the presets' qubo start", but ``--preset paper`` (the
    paper's per-neuron ``sa``) has no warm start (the README's preset table; ``sweep.json``: ``warm_start`` None)."""
    from qannealq.baselines import DEFAULT_WARM_START
    from qannealq.sweep import PRESETS

    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    printed = " ".join(capsys.readouterr().out.split())
    assert PRESETS["paper"].warm_start is None and PRESETS["best"].warm_start == DEFAULT_WARM_START
    assert "the presets' qubo start" not in printed and "--preset paper: none" in printed

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
    # sa's one read from each warm row may end above it (most of the first layer's neurons at int4): each such
    # neuron keeps its start, counted in results.json and said on the console
    for row in payload["results"]:
        for layer in row["layers"] if row["method"] == "qubo" else ():
            assert layer["error"] <= layer["warm_start_error"] * (1 + 1e-9)
            assert 0 <= layer["warm_start_kept"] <= layer["neurons"]
    kept = [l["warm_start_kept"] for r in payload["results"] if r["method"] == "qubo" for l in r["layers"]]
    assert sum(kept) > 0 and "warm start kept for" in printed


def test_run_without_out_creates_a_folder_under_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--bits", "3", "--methods", "rtn"]) == 0
    folders = list((tmp_path / "runs").iterdir())
    assert len(folders) == 1 and (folders[0] / "results.csv").is_file()
    assert str(folders[0].relative_to(tmp_path)) in capsys.readouterr().out


@pytest.fixture
def no_training(monkeypatch):
    """Any call to train a model fails the test: bad options must be refused before training."""
    import qannealq.experiment

    def refuse(*args, **kwargs):
        raise AssertionError("a model was trained although the options were invalid")

    monkeypatch.setattr(qannealq.experiment, "train_mlp", refuse)


@pytest.mark.parametrize("argv, message", [
    (["run", "--bits", "4,9", "--methods", "rtn"], "bits=9"),
    (["run", "--methods", "rtn,magic"], "--methods='magic' is unknown"),
    (["sweep", "--dataset", "digits", "--methods", "rtn", "--train-seeds", "--seed", "3"],  # it was ignored
     "--seed=3 has no effect with --train-seeds"),
    (["run", "--methods", "qubo", "--backend", "nope"], "backend='nope' is unknown"),
    (["run", "--methods", "qubo", "--warm-start", "best"], "--warm-start='best'"),
    (["run", "--dataset", "mnist", "--data-dir", "/nonexistent", "--methods", "rtn"], "not found"),
    (["run", "--data-dir", "/nonexistent", "--methods", "rtn"],  # digits: the typo was not seen at all
     "--data-dir='/nonexistent' not found: give an existing folder holding the datasets"),
    (["run", "--hidden", "0", "--methods", "rtn"], "--hidden=0 must be an integer >= 1"),
    (["run", "--hidden", "16,-3", "--methods", "rtn"], "--hidden=-3"),
    (["run", "--epochs", "0", "--methods", "rtn"], "--epochs=0 must be an integer >= 1"),
    (["run", "--epochs", "-1", "--methods", "rtn"], "--epochs=-1"),
    (["run", "--num-calibration", "0", "--methods", "rtn"], "--num-calibration=0"),
    (["run", "--input-size", "3", "--methods", "rtn"], "--input-size=3"),
    (["run", "--dataset", "mnist", "--input-size", "4", "--methods", "rtn"], "--input-size applies to"),
    (["run", "--methods", "qubo", "--backend", "sa", "--sampler-option", "num_read=10"],
     "--sampler-option num_read: backend 'sa' does not take"),
    (["run", "--methods", "qubo", "--sampler-option", "num_sweep=3"],
     "--sampler-option num_sweep: backend 'layer-sa' does not take"),
    (["run", "--methods", "qubo", "--sampler-option", "layer-sa:time_limit=5"],  # "does not take ... time_limit"
     "--sampler-option layer-sa:time_limit: every option here goes to backend 'layer-sa', by its key alone "
     "(BACKEND:KEY picks one of several backends in sweep and compare): give time_limit=VALUE"),
    (["run", "--methods", "qubo", "--effort", "fast", "--sampler-option", "effort=thorough"],
     "sampler option effort is given twice, as 'fast' and 'thorough'"),
    (["run", "--methods", "qubo", "--backend", "sa", "--time-limit", "5"],
     "--sampler-option time_limit (or --time-limit): backend 'sa' does not take"),
    (["run", "--methods", "rtn,gptq", "--retries", "5"],  # it ran, retrying nothing, without a word
     "--retries 5 retries the qubo method's cloud backend, and --methods rtn,gptq has no qubo"),
    # refused at the first neuron, after training and calibration
    (["run", "--methods", "qubo", "--backend", "sa", "--warm-start", "none", "--sampler-option",
      "initial_states_generator=none"], "--sampler-option initial_states_generator='none' starts every read from a "
     "given state, and no initial_states were given: give some (a warm start), or leave the generator out"),
    (["run", "--methods", "qubo", "--backend", "tabu", "--sampler-option", "initial_states_generator=none",
      "--sampler-option", "num_reads=5"], "initial_states_generator='none' starts every read from a given state: "
     "num_reads=5 needs 5, and 1 initial_states were given: give num_reads <= 1"),
    (["sweep", "--dataset", "digits", "--methods", "qubo:sa", "--warm-start", "none", "--sampler-option",
      "initial_states_generator=none"], "initial_states_generator='none' starts every read from a given state, and "
     "no initial_states were given"),
])
def test_bad_arguments_exit_2_before_any_training(argv, message, tmp_path, capsys, no_training):
    assert main([*argv, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert not (tmp_path / "x").exists()


def test_datasets_refuses_a_data_dir_that_is_not_there(capsys):
    """It listed every dataset as "not found (9 places searched)", the typo among the places."""
    assert main(["datasets", "--data-dir", "/nonexistent"]) == 2
    assert "--data-dir='/nonexistent' not found: give an existing folder" in capsys.readouterr().err


def test_datasets_exits_2_when_a_named_dataset_is_missing(tmp_path, monkeypatch, capsys):
    """``datasets mnist`` with MNIST found nowhere printed how to get it and exited 0: a script or CI step checking
    its data could not tell. Listing every dataset (no names) still exits 0: some are usually absent."""
    monkeypatch.setenv("QANNEALQ_DATA", str(tmp_path))
    monkeypatch.setenv("QANNEALQ_CACHE", str(tmp_path / "cache"))
    assert main(["datasets", "--no-load", "mnist", "digits"]) == 2
    captured = capsys.readouterr()
    assert "mnist            not found" in captured.out and "digits           scikit-learn" in captured.out
    assert captured.err.strip() == ("qannealq: error: mnist not found: `qannealq datasets --download mnist` fetches "
                                    "it, or point --data-dir at a folder holding it")
    assert main(["datasets", "--no-load"]) == 0


def test_datasets_lists_every_dataset_past_one_that_fails_its_sha256sums(tmp_path, monkeypatch, capsys):
    """A data folder whose mnist.npz differs from its SHA256SUMS stopped the listing at mnist with that error alone:
    fashion-mnist, in the same folder and good, was never shown. Each dataset is listed, the refused one with its
    reason, and the command exits 2 naming it."""
    import hashlib

    import numpy as np

    monkeypatch.setenv("QANNEALQ_CACHE", str(tmp_path / "cache"))
    x, y = np.zeros((20, 28, 28), np.uint8), np.arange(20) % 10
    for name in ("mnist", "fashion-mnist"):
        np.savez(tmp_path / f"{name}.npz", x_train=x, y_train=y, x_test=x[:10], y_test=y[:10])
    listed = hashlib.sha256(b"another file").hexdigest()
    (tmp_path / "SHA256SUMS").write_text(f"{listed}  mnist.npz\n")
    assert main(["datasets", "--data-dir", str(tmp_path)]) == 2
    captured = capsys.readouterr()
    assert f"mnist            refused: {tmp_path / 'mnist.npz'}: SHA-256 " in captured.out and listed in captured.out
    assert f"fashion-mnist    npz at {tmp_path / 'fashion-mnist.npz'}\n{' ' * 17}train (20, 784)" in captured.out
    assert "cifar10          not found" in captured.out
    assert captured.err.strip() == "qannealq: error: mnist refused: the listing above says why and what to do"
    assert main(["datasets", "--data-dir", str(tmp_path), "fashion-mnist"]) == 0


def test_data_dir_help_names_every_default_folder(capsys, monkeypatch):
    """Every command's ``--data-dir`` help and its refusal said "else ../shared/datasets", leaving out
    ``./datasets``, which is searched first (the README's "Where a dataset is looked for", ``data_dirs``)."""
    from pathlib import Path

    from qannealq.cli import COMMANDS, build_parser
    from qannealq.data.sources import data_dirs

    monkeypatch.delenv("QANNEALQ_DATA", raising=False)
    assert data_dirs()[:2] == [Path("datasets"), Path("..") / "shared" / "datasets"]
    parser = build_parser()
    for command in COMMANDS:
        with pytest.raises(SystemExit):
            parser.parse_args([command, "--help"])
        printed = " ".join(capsys.readouterr().out.split())
        if "--data-dir" in printed:
            assert "(default: $QANNEALQ_DATA, else ./datasets and ../shared/datasets)" in printed, command
    assert main(["datasets", "--data-dir", "/nonexistent"]) == 2
    assert "leave it out ($QANNEALQ_DATA, else ./datasets and ../shared/datasets)" in capsys.readouterr().err


def test_datasets_refuses_download_with_no_load(capsys, monkeypatch):
    """``datasets --download --no-load NAME`` fetched nothing and, for a dataset found nowhere, printed that
    `qannealq datasets --download NAME` fetches it: the command just given (exit 0)."""
    import qannealq.data.sources as sources

    monkeypatch.setattr(sources, "find_source", lambda *a, **k: pytest.fail("looked for the dataset"))
    assert main(["datasets", "--download", "--no-load", "emnist-digits"]) == 2
    err = capsys.readouterr().err
    assert err.startswith("qannealq: error: --download fetches") and "--no-load" in err and "give one of" in err


def test_unknown_sampler_option_lists_the_valid_keys(tmp_path, capsys, no_training):
    argv = ["run", "--methods", "qubo", "--backend", "layer-sa", "--sampler-option", "num_read=10"]
    assert main([*argv, "--out", str(tmp_path / "x")]) == 2
    err = capsys.readouterr().err
    assert "valid keys:" in err and "num_reads" in err and "num_sweeps" in err


def test_out_naming_an_existing_file_exits_2(tmp_path, capsys, no_training):
    target = tmp_path / "results.txt"
    target.write_text("keep me")
    assert main(["run", "--methods", "rtn", "--out", str(target)]) == 2
    assert "is an existing file" in capsys.readouterr().err
    assert target.read_text() == "keep me"


def test_out_with_a_name_too_long_for_the_file_system_exits_2(tmp_path, capsys, no_training):
    """A folder name over 255 bytes: Path.exists() raised ENAMETOOLONG, a traceback instead of a message."""
    out = tmp_path / ("a" * 300)
    assert main(["run", "--methods", "rtn", "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert f"--out={str(out)!r} cannot be used as a folder (File name too long)" in err and "shorter" in err


def test_resume_of_a_folder_that_cannot_be_written_exits_2_before_training(tmp_path, capsys, monkeypatch):
    """A resumed folder whose units/ could not be written (read-only, or chattr +i) trained the model and solved
    the first layer, then failed on its first unit ("cannot write .../units/bits=2_layer=0_...json: Operation not
    permitted; free disk space or choose another --out folder")."""
    import os

    import qannealq.experiment

    out = tmp_path / "r"
    assert main(["run", "--dataset", "digits", "--input-size", "4", "--bits", "2", "--methods", "rtn", "--out",
                 str(out)]) == 0
    (out / "units" / "bits=2_method=rtn.json").unlink()
    (out / "units").chmod(0o500)
    if os.geteuid() == 0:  # root writes anywhere: make the permission check see what a user would
        access = os.access
        monkeypatch.setattr("qannealq.store.os.access",
                            lambda path, mode: os.path.basename(path) != "units" and access(path, mode))
    monkeypatch.setattr(qannealq.experiment, "train_mlp", lambda *a, **k: pytest.fail("trained before the refusal"))
    capsys.readouterr()
    assert main(["run", "--resume", str(out)]) == 2
    assert f"--resume {out}: {out / 'units'} is not writable; make it writable" in capsys.readouterr().err
    (out / "units").chmod(0o700)


def test_backends_command_lists_sa_and_exact(capsys):
    assert main(["backends"]) == 0
    lines = capsys.readouterr().out.splitlines()
    status = {line.split()[0]: line.split()[1] for line in lines[1:] if line and not line.startswith((" ", "aliases"))}
    assert status["sa"] == "ready" and status["exact"] == "ready" and status["layer-sa"] == "ready"


def test_sampler_options_reach_the_qubo_rows_alone(tmp_path, monkeypatch):
    """``run --methods rtn,qubo --effort fast``: the qubo rows get the option, the rtn rows none (quantize_model
    refuses sampler options with another method)."""
    import qannealq.runner

    seen = []
    real = qannealq.runner.quantize_model

    def spy(*args, **kwargs):
        seen.append((args[3], kwargs.get("effort")))
        return real(*args, **kwargs)

    monkeypatch.setattr(qannealq.runner, "quantize_model", spy)
    assert main(["run", "--dataset", "digits", "--input-size", "4", "--bits", "2", "--methods", "rtn,qubo",
                 "--effort", "fast", "--out", str(tmp_path / "r")]) == 0
    assert sorted(seen) == [("qubo", "fast"), ("rtn", None)]


def test_run_says_retries_are_not_used_by_a_backend_that_calls_no_service(tmp_path, capsys):
    """``run --backend sa --retries 5`` ran as if --retries were not given (only cloud backends are wrapped in the
    retry composite), without a word; a cloud backend is retried and says nothing."""
    base = ["run", "--input-size", "4", "--bits", "2", "--methods", "qubo", "--retries", "5"]
    assert main([*base, "--backend", "sa", "--sampler-option", "num_reads=1", "--out", str(tmp_path / "sa")]) == 0
    assert "--retries 5 is not used: backend 'sa' calls no cloud service" in capsys.readouterr().out
    assert main([*base, "--backend", "dwave-mock", "--dry-run"]) == 0
    assert "--retries" not in capsys.readouterr().out
    # a typed --retries equal to the default (3) was taken for no --retries at all: no note
    typed = [*base[:-1], "3", "--backend", "sa", "--sampler-option", "num_reads=1", "--out", str(tmp_path / "sa3")]
    assert main(typed) == 0
    assert "--retries 3 is not used: backend 'sa' calls no cloud service" in capsys.readouterr().out
    assert main([*base[:-2], "--backend", "sa", "--sampler-option", "num_reads=1", "--out", str(tmp_path / "no")]) == 0
    assert "--retries" not in capsys.readouterr().out


def test_effort_and_time_limit_flags_are_layer_sa_sampler_options(capsys):
    """``--effort`` and ``--time-limit`` are ``--sampler-option effort=...`` and ``time_limit=...`` (for ``run`` and
    ``sweep``, stored and resumed as such); argparse refuses a bad value naming the flag."""
    from qannealq.backends._layer_schedule import EFFORTS
    from qannealq.cli import build_parser
    from qannealq.cli._args import EFFORTS as CLI_EFFORTS
    from qannealq.cli._args import quantize_config

    assert CLI_EFFORTS == tuple(EFFORTS)
    parser = build_parser()
    args = parser.parse_args(["run", "--effort", "thorough", "--time-limit", "2.5", "--sampler-option", "num_reads=3"])
    assert quantize_config(args).sampler_options == {"effort": "thorough", "time_limit": 2.5, "num_reads": 3}
    assert parser.parse_args(["run"]).sampler_option == []
    assert parser.parse_args(["sweep", "--effort", "fast"]).sampler_option == [("effort", "fast")]
    assert parser.parse_args(["sweep"]).sampler_option is None
    for argv, words in ((["run", "--effort", "slow"], "argument --effort: expected one of fast, default, thorough"),
                        (["sweep", "--time-limit", "0"], "argument --time-limit: expected a positive number")):
        with pytest.raises(SystemExit):
            parser.parse_args(argv)
        assert words in capsys.readouterr().err


def test_run_granularity_best_keeps_the_better_grid_per_row_and_its_batches_apart(tmp_path, monkeypatch, capsys):
    """``run --granularity best`` was refused (``sweep`` alone had it): each row now solves both grids and keeps
    the lower summed layer error; its neuron batches are stored per grid (the two grids' batches of a layer are
    different problems: under one key they replaced each other)."""
    from qannealq.store import ResultStore

    put, keys = ResultStore.put, []
    monkeypatch.setattr(ResultStore, "put", lambda self, key, record: (keys.append(key), put(self, key, record))[1])
    base = ["run", "--input-size", "4", "--bits", "2", "--methods", "rtn,qubo", "--sampler-option", "num_sweeps=64"]
    errors = {}
    for grid in ("tensor", "channel", "best"):
        assert main([*base, "--granularity", grid, "--out", str(tmp_path / grid)]) == 0
        with open(tmp_path / grid / "results.csv") as fh:
            errors[grid] = {r["method"]: (r["granularity"], float(r["layer_error"])) for r in csv.DictReader(fh)}
    for method in ("rtn", "qubo"):
        kept = min(("tensor", "channel"), key=lambda g: errors[g][method][1])
        assert errors["best"][method] == (kept, errors[kept][method][1])
    assert "     grid  accuracy" in capsys.readouterr().out  # the table shows the grid kept
    batches = [k for k in keys if "layer=" in k and k.startswith("bits=2_granularity=")]
    assert {k.split("_")[1] for k in batches} == {"granularity=tensor", "granularity=channel"}
    assert sorted(p.name for p in (tmp_path / "best" / "units").iterdir()) == ["bits=2_method=qubo.json",
                                                                               "bits=2_method=rtn.json"]


@pytest.mark.parametrize("argv", [
    ["run", "--sampler-option", "seed=3"],  # a TypeError after training: "got multiple values for ... 'seed'"
    ["sweep", "--methods", "qubo:sa,qubo", "--sampler-option", "sa:seed=2"],
    ["compare", "--backends", "sa", "--sampler-option", "sa:seed=2"],  # replaced by each call's seed, no word
    ["run", "--backend", "sa", "--sampler-option", "initial_states=1"],
    # layer-sa's hand-off keys: checked and used without a time limit, replaced by the loop's own under one
    ["run", "--sampler-option", "late=True"],
    ["sweep", "--methods", "qubo", "--sampler-option", "start_tight=True"],
    ["compare", "--backends", "layer-sa", "--sampler-option", "layer-sa:time_spent=0.5"],
])
def test_the_seed_and_the_warm_start_are_not_sampler_options(argv, tmp_path, capsys, no_training):
    assert main([*argv, "--input-size", "4", "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    key = argv[-1].split(":")[-1].split("=")[0]
    assert f"--sampler-option {key}: " in err and "it is not a sampler option here" in err
    if key in ("late", "start_tight", "time_spent"):
        assert "the solve loop sets it under a time limit" in err
    assert not (tmp_path / "o").exists()


def test_quantize_model_refuses_the_seed_and_warm_start_as_sampler_keywords():
    import torch

    from qannealq import InvalidArgumentError, quantize_model
    from qannealq.backends import get_sampler

    model = torch.nn.Sequential(torch.nn.Linear(6, 3))
    for sampler in ("layer-sa", get_sampler("layer-sa")):  # a TypeError from sample_layer for the object
        with pytest.raises(InvalidArgumentError, match="quantize_model keyword initial_states: the warm start "
                                                       r"gives them \(--warm-start; quantize_model: warm_start=\)"):
            quantize_model(model, torch.randn(16, 6), 3, sampler=sampler, initial_states=None)


def test_the_table_keeps_its_columns_apart_for_long_method_and_backend_names():
    """The method column was 16 characters wide and the backend's 10: ``gptq-restricted-pivot`` ran into the
    backend (``gptq-restricted-pivot-             2``) and ``dwave-hybrid`` out of its column."""
    from qannealq.report import ResultRow, format_table

    rows = [ResultRow("digits", method, backend, 2, "float", "tensor", 0.5, 1.25, 0.5)
            for method, backend in (("rtn", ""), ("gptq-restricted-pivot", ""), ("qubo", "dwave-hybrid"))]
    lines = format_table(rows).splitlines()
    assert [line.split()[:3] for line in lines[2:]] == [["rtn", "-", "2"], ["gptq-restricted-pivot", "-", "2"],
                                                       ["qubo", "dwave-hybrid", "2"]]
    head = lines[0]
    for line in lines[2:]:  # every value ends under its heading's end (right-aligned) or starts at its start
        assert line.index(line.split()[1], len(line.split()[0])) == head.index("backend")
        assert len(line) == len(head)


@pytest.mark.parametrize("command", ["run", "sweep", "compare"])
def test_an_interrupt_names_the_folder_to_resume_or_says_nothing_was_stored(command, tmp_path, monkeypatch,
                                                                             capsys):
    """Ctrl-C while the network trained said "results finished so far are in the results folder", also where that
    folder did not exist yet (run and compare open it after training; a --resume of it was refused). It now names
    the folder to resume (sweep opens it first), or says that nothing was stored."""
    import qannealq.experiment

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(qannealq.experiment, "train_mlp", interrupted)
    extra = {"run": ["--methods", "rtn"], "sweep": ["--methods", "rtn"], "compare": ["--backends", "steepest"]}
    out = tmp_path / "out"
    assert main([command, "--dataset", "digits", *extra[command], "--out", str(out)]) == 130
    err = capsys.readouterr().err
    if command == "sweep":
        assert f"interrupted; results finished so far are in {out}: continue with --resume {out}" in err
        assert (out / "store.json").exists()
    else:
        assert "interrupted; stopped before any result was stored: run the command again" in err
        assert "results folder" not in err and not (out / "store.json").exists()


def test_an_interrupt_during_the_import_of_a_compiled_module_is_an_interrupt(tmp_path, monkeypatch, capsys):
    """Ctrl-C while ``qannealq run`` imported scipy (sklearn's loading of digits) ended in a traceback of
    ``ImportError: initialization failed``, exit 1: a compiled (pybind11) module's import turns the
    KeyboardInterrupt into an ImportError whose cause it is. It is the interrupt's line and exit 130; an
    ImportError of its own is not hidden."""
    import qannealq.experiment

    def cut(*args, **kwargs):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt as exc:
            raise ImportError("initialization failed") from exc

    monkeypatch.setattr(qannealq.experiment, "train_mlp", cut)
    options = ["run", "--dataset", "digits", "--methods", "rtn", "--out", str(tmp_path / "out")]
    assert main(options) == 130
    assert "qannealq: interrupted; stopped before any result was stored" in capsys.readouterr().err

    def missing(*args, **kwargs):
        raise ImportError("No module named 'mine'")

    monkeypatch.setattr(qannealq.experiment, "train_mlp", missing)
    with pytest.raises(ImportError, match="mine"):
        main(options)


def test_python_dash_m_qannealq_is_the_command():
    """``python -m qannealq`` ran nothing ("No module named qannealq.__main__"): where the console script is not on
    the PATH it is the way to the command, with its exit codes."""
    import subprocess
    import sys

    done = subprocess.run([sys.executable, "-m", "qannealq", "--version"], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0 and done.stdout.startswith("qannealq ")
    bad = subprocess.run([sys.executable, "-m", "qannealq", "run", "--bits", "9"], capture_output=True, text=True,
                         timeout=120)
    assert bad.returncode == 2 and "qannealq: error: bits=9 is not supported" in bad.stderr
