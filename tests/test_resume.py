"""Kill and resume `qannealq run`: a real signal to a subprocess mid-layer, then `--resume` (in this process).

The solves are counted from the run's own log lines (``-v``): every batch of neurons is logged once it is
saved (``solved and saved neurons A-B of layer L as KEY``), every batch taken from the store once it is loaded
(``resumed neurons ...``) and every finished row (``solved and stored unit KEY``).
"""

from __future__ import annotations

import csv
import dataclasses
import json
import logging
import os
import re
import signal
import subprocess
import sys

import numpy as np
import pytest

from qannealq.checkpoint import StoreCheckpoint
from qannealq.cli import main
from qannealq.store import ResultStore

ARGS = ["run", "--dataset", "digits", "--bits", "4,2", "--methods", "qubo", "--backend", "sa",
        "--sampler-option", "num_reads=10", "--warm-start", "none"]
SAVED = re.compile(r"solved and saved neurons \d+-\d+ of layer \S+ as (\S+)")
LOADED = re.compile(r"resumed neurons \d+-\d+ of layer \S+ from (\S+)")
STORED = re.compile(r"solved and stored unit (\S+)")


def _command(*extra: str) -> list[str]:
    return [sys.executable, "-c", "import sys; from qannealq.cli import main; sys.exit(main())", *ARGS, *extra,
            "-v"]


def _table(out):
    with open(out / "results.csv") as fh:
        rows = [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(fh)]
    layers = [[{k: v for k, v in layer.items() if k != "seconds"} for layer in r["layers"]]
              for r in json.loads((out / "results.json").read_text())["results"]]
    return rows, layers


def _keys(pattern, text):
    return pattern.findall(text)


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def _run_here(*extra: str, options: list[str] = ARGS) -> str:
    """``qannealq run`` in this process; its log lines (as ``-v`` prints them)."""
    logger, handler = logging.getLogger("qannealq"), _Lines()
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        assert main([*options, *extra]) == 0
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)
    return "\n".join(handler.lines)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory):
    """The uninterrupted run (in this process; it also trains and caches the model the subprocess loads)."""
    out = tmp_path_factory.mktemp("full") / "run"
    every = _keys(SAVED, _run_here("--out", str(out)))
    assert len(every) == len(set(every)) == 2 * 3  # per bit width: fc1 neurons 0-15 and 16-31, fc2 0-9
    return out, every


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM, signal.SIGKILL], ids=["ctrl-c", "term", "crash"])
def test_killed_mid_layer_and_resumed_equals_an_uninterrupted_run_without_solving_twice(sig, tmp_path, capsys,
                                                                                        uninterrupted):
    full, every = uninterrupted
    out = tmp_path / "run"
    proc = subprocess.Popen(_command("--out", str(out)), cwd=tmp_path, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    seen = []
    for line in proc.stderr:  # wait for the first saved batch of the first layer, then interrupt the layer
        seen.append(line)
        if SAVED.search(line):
            os.kill(proc.pid, sig)
            break
    rest, tail = proc.communicate(timeout=300)
    first = "".join(seen) + tail
    assert proc.returncode == {signal.SIGINT: 130, signal.SIGTERM: 143}.get(sig, -sig), first[-2000:]
    if sig != signal.SIGKILL:  # a scheduler's SIGTERM stops the run as Ctrl-C does (it ended the process at once)
        said = "interrupted" if sig == signal.SIGINT else "terminated (SIGTERM)"
        assert f"{said}; results finished so far are in {out}: continue with --resume {out}" in first
    kept = sorted(p.stem for p in (out / "units").glob("*.json"))
    assert "bits=4_layer=0_method=qubo_neurons=0-15" in kept and "bits=4_method=qubo" not in kept
    assert not list((out / "units").glob(".*tmp")) or sig == signal.SIGKILL  # Ctrl-C leaves no temporary file

    capsys.readouterr()
    # resumed here (the same code, without a second start-up); after the crash with the stored options alone
    second = _run_here("--resume", str(out), options=ARGS if sig == signal.SIGINT else ["run"])
    assert f"{len(kept)} batch(es) of solved neurons kept" in capsys.readouterr().out
    solved_first, solved_second = _keys(SAVED, first), _keys(SAVED, second)
    assert sorted(_keys(LOADED, second)) == kept  # what the killed run saved is loaded, not solved
    assert not set(solved_second) & set(kept)  # no batch solved twice
    assert sorted(solved_second + kept) == sorted(every)  # and every batch solved once in all
    assert set(solved_first) <= set(kept)
    assert sorted(_keys(STORED, second)) == ["bits=2_method=qubo", "bits=4_method=qubo"]
    assert _table(out) == _table(full)  # the same results as the uninterrupted run
    assert sorted(p.stem for p in (out / "units").glob("*.json")) == ["bits=2_method=qubo", "bits=4_method=qubo"]


def test_batches_are_used_only_for_the_same_problem_and_seed(tmp_path, caplog):
    from helpers import random_layer

    problem = random_layer(np.random.default_rng(1), 6, 5).problem(3)
    other = random_layer(np.random.default_rng(2), 6, 5).problem(3)
    store = ResultStore.open(tmp_path / "r", "run", {})
    check = StoreCheckpoint(store, {"bits": 3, "method": "qubo"}, batch_size=2)
    rows = np.where(problem.free[:2], 1, 0)
    check.save(problem, 0, rows, seed=7)
    np.testing.assert_array_equal(check.load(problem, 0, 2, seed=7), rows)
    assert check.load(problem, 0, 2, seed=8) is None  # another layer seed
    assert check.load(other, 0, 2, seed=7) is None  # another problem under the same key
    assert check.load(problem, 2, 4, seed=7) is None  # never saved
    renamed = dataclasses.replace(problem, name="fc 1")  # an older store's batch of "fc-1" under its key
    store.put(check.key(renamed, 0, 2), store.get(check.key(problem, 0, 2)))
    assert check.load(renamed, 0, 2, seed=7) is None
    assert "saved for another problem or seed" in caplog.text
    check.discard()
    assert len(store.records()) == 1  # the one put here, not the checkpoint's


def test_batches_left_by_a_stop_between_the_row_and_their_removal_are_removed_on_resume(tmp_path, monkeypatch,
                                                                                         capsys):
    """A Ctrl-C (or SIGKILL) after a qubo row was stored but before its batches were removed left them in
    ``units/`` for good: the resume skipped the stored row, so nothing removed them, and every later resume said
    they were kept. The resume removes them, and says so (it announced "2 batch(es) of solved neurons kept", which
    it then removed); the results are the stored row's."""
    out, options = tmp_path / "run", ["run", "--dataset", "digits", "--input-size", "4", "--bits", "2", "--methods",
                                      "qubo", "--backend", "sa", "--sampler-option", "num_reads=2", "--warm-start",
                                      "none"]
    real = StoreCheckpoint.discard

    def stop(self):
        raise KeyboardInterrupt  # right after store.put of the row, as a Ctrl-C there

    monkeypatch.setattr(StoreCheckpoint, "discard", stop)
    assert main([*options, "--out", str(out)]) == 130
    left = sorted(p.stem for p in (out / "units").glob("*.json"))
    assert left == ["bits=2_layer=0_method=qubo_neurons=0-15", "bits=2_layer=2_method=qubo_neurons=0-9",
                    "bits=2_method=qubo"]
    row = json.loads((out / "units" / "bits=2_method=qubo.json").read_text())["record"]
    monkeypatch.setattr(StoreCheckpoint, "discard", real)
    capsys.readouterr()
    assert main(["run", "--resume", str(out)]) == 0
    assert (f"resuming {out}: 1 finished row(s) and 0 batch(es) of solved neurons kept, not recomputed; 2 batch(es) "
            "of finished rows removed") in capsys.readouterr().out
    assert sorted(p.stem for p in (out / "units").glob("*.json")) == ["bits=2_method=qubo"]
    (result,) = json.loads((out / "results.json").read_text())["results"]
    assert (result["accuracy"], result["layer_error"]) == (row["accuracy"], row["layer_error"])  # the stored row


def test_resume_alone_takes_the_stored_options_and_asks_for_a_secret_again(tmp_path):
    from qannealq.config import ModelConfig, QuantizeConfig, RunConfig
    from qannealq.errors import InvalidArgumentError
    from qannealq.store import settings_diff

    secret = "not-a-real-token-123"
    config = RunConfig(ModelConfig(dataset="digits", input_size=4),
                       QuantizeConfig(bits=(2,), methods=("qubo",), sampler_options={"num_reads": 4, "token": secret}))
    stored = config.stored_settings()
    assert secret not in str(stored)
    with pytest.raises(InvalidArgumentError, match="secret sampler option 'token'") as caught:
        RunConfig.from_stored(stored, tmp_path)
    assert secret not in str(caught.value)
    again = RunConfig.from_stored(stored, tmp_path, quantize={"sampler_options": {"token": secret}, "retries": 1})
    assert settings_diff(again.stored_settings(), stored) == []
    assert again.quantize.sampler_options == {"num_reads": 4, "token": secret} and again.quantize.retries == 1
    assert again.resume and again.out == tmp_path and again.model.input_size == 4
    other = RunConfig.from_stored(stored, tmp_path, {"seed": 3}, {"sampler_options": {"token": secret}})
    assert settings_diff(stored, other.stored_settings()) == ["model.seed: 0 -> 3"]


def _heads_net(outputs: int):
    """A model whose Linear layers' names hold characters a unit key replaces (``heads.fc 1``, ``heads.fc-1``), the
    second of ``outputs`` neurons; built after the caller's seed."""
    import torch

    class Net(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.heads = torch.nn.ModuleDict({"fc 1": torch.nn.Linear(6, 5), "fc-1": torch.nn.Linear(5, outputs)})

        def forward(self, x):
            return self.heads["fc-1"](torch.relu(self.heads["fc 1"](x)))

    return Net()


def test_layers_whose_names_differ_only_in_characters_a_key_replaces_keep_their_own_batches(tmp_path):
    """A ModuleDict's ``"fc 1"`` and ``"fc-1"`` had one batch key (``layer=heads.fc-1``): the second layer
    overwrote the first's batch (and said it was 'saved for another problem' in an uninterrupted call), so a
    resume found one batch, the second's, and solved both layers again."""
    import torch

    from qannealq import quantize_model
    from qannealq.store import key_part

    assert key_part("0") == "0" and key_part("layers.3") == "layers.3"  # the run's keys are as before
    assert len({key_part(n) for n in ("fc 1", "fc/1", "fc-1", "fc:1")}) == 4

    torch.manual_seed(0)
    net, x = _heads_net(5), torch.randn(64, 6)
    results, checks = [], []
    for resume in (False, True):
        store = ResultStore.open(tmp_path / "r", "mine", {"bits": 2}, resume=resume)
        checks.append(StoreCheckpoint(store, {"bits": 2}))
        results.append(quantize_model(net, x, 2, "qubo", "sa", seed=1, checkpoint=checks[-1], num_reads=5))
        store.close()
    assert len(set(checks[0].saved)) == 2 and len(list((tmp_path / "r" / "units").iterdir())) == 2
    assert sorted(checks[1].loaded) == sorted(checks[0].saved) and checks[1].saved == []  # nothing solved again
    for first, again in zip(results[0].layers, results[1].layers):
        np.testing.assert_array_equal(first.integers, again.integers)


def test_a_batch_stored_under_a_layer_key_of_before_key_part_is_loaded_and_removed(tmp_path):
    """A store written before layer names were keyed by ``key_part`` holds layer ``fc 1``'s batch under
    ``layer=heads.fc-1``: a resume looked for ``layer=heads.fc-1-<hash>`` alone, solved the layer again and left the
    old file in the folder for good. It is loaded from the old key, for its own layer alone, and removed."""
    import torch

    from qannealq import quantize_model
    from qannealq.store import unit_key

    torch.manual_seed(0)
    net, x, units = _heads_net(3), torch.randn(64, 6), tmp_path / "r" / "units"
    store = ResultStore.open(tmp_path / "r", "mine", {"bits": 2})
    first = StoreCheckpoint(store, {"bits": 2})
    done = quantize_model(net, x, 2, "qubo", "sa", seed=1, checkpoint=first, num_reads=5)
    store.close()
    (units / "bits=2_layer=heads.fc-1_neurons=0-2.json").unlink()  # an older store kept fc 1's batch there
    old = unit_key(bits=2, layer="heads.fc 1", neurons="0-4")
    assert old == "bits=2_layer=heads.fc-1_neurons=0-4"
    (units / f"{first.saved[0]}.json").rename(units / f"{old}.json")
    store = ResultStore.open(tmp_path / "r", "mine", {"bits": 2}, resume=True)
    again = StoreCheckpoint(store, {"bits": 2})
    resumed = quantize_model(net, x, 2, "qubo", "sa", seed=1, checkpoint=again, num_reads=5)
    assert again.loaded == [old] and again.saved == [first.saved[1]]  # fc 1's batch loaded; fc-1's had none
    np.testing.assert_array_equal(done.layers[0].integers, resumed.layers[0].integers)
    again.discard()
    store.close()
    assert list(units.iterdir()) == []  # the old file removed with the others


def test_batches_of_a_layer_with_a_long_name_are_removed_as_left_by_a_stop(tmp_path):
    """A layer name of 92 characters gives batch keys that unit_key cuts short and hashes, without their
    ``_method=qubo_neurons=`` parts: discard_left (a resume after a stop between storing the row and removing its
    batches) matched 2 of the 4 batches, and the long-named layer's stayed in units/ for good."""
    import torch

    from qannealq import quantize_model

    torch.manual_seed(0)
    long = "attention_output_" * 5 + "dense"  # layers "0.attention_output_...dense" (92 characters) and "1"
    net = torch.nn.Sequential(torch.nn.ModuleDict({long: torch.nn.Linear(4, 4)}), torch.nn.Linear(4, 4))
    net.forward = lambda x: net[1](net[0][long](x))
    store = ResultStore.open(tmp_path / "r", "mine", {"bits": 2})
    check = StoreCheckpoint(store, {"bits": 2, "method": "qubo"}, batch_size=2)
    quantize_model(net, torch.randn(32, 4), 2, "qubo", "sa", seed=1, checkpoint=check, num_reads=2)
    assert len(check.saved) == 4 and sum(len(key) == 117 for key in check.saved) == 2  # the long name's: hashed
    other = StoreCheckpoint(store, {"bits": 4, "method": "qubo"})
    assert other.discard_left(list(store._keys())) == []  # another unit's batches are kept
    left = StoreCheckpoint(store, {"bits": 2, "method": "qubo"}).discard_left(list(store._keys()))
    assert sorted(left) == sorted(check.saved) and list((tmp_path / "r" / "units").iterdir()) == []
    store.close()


def test_a_resume_accepts_the_recipes_own_hidden_sizes_and_epochs(tmp_path):
    """A run stored without ``--hidden`` or ``--epochs`` (the recipe's, stored as None) refused ``--resume DIR
    --hidden 16 --epochs 60``, the 16-16-10 model's own values ("model.hidden: None -> [16]"); other values
    are still refused, as is any value differing from one the run stored."""
    from qannealq.config import ModelConfig, QuantizeConfig, RunConfig

    stored = RunConfig(ModelConfig(dataset="digits", input_size=4), QuantizeConfig(methods=("rtn",)),
                       tmp_path).stored_settings()
    for given in ({"hidden": (16,)}, {"hidden": [16], "epochs": 60}, {"epochs": 60}):
        resumed = RunConfig.from_stored(stored, tmp_path, given)
        assert resumed.stored_settings() == stored and resumed.model.hidden is None, given
    for given in ({"hidden": (32,)}, {"epochs": 5}):
        assert RunConfig.from_stored(stored, tmp_path, given).stored_settings() != stored, given
    wide = RunConfig(ModelConfig(dataset="digits", hidden=(32,)), QuantizeConfig(methods=("rtn",)),
                     tmp_path).stored_settings()
    assert RunConfig.from_stored(wide, tmp_path, {"hidden": (32,), "epochs": 60}).stored_settings() == wide


def _count_warm_starts(monkeypatch) -> list[str]:
    """The names of the layers whose warm start :func:`qannealq.solve.quantize_layer` computes (a warm-up's stand-in
    layer left out)."""
    from qannealq import solve

    calls, real = [], solve.warm_start_integers

    def counting(problem, *args, **kwargs):
        calls.append(problem.name)
        return real(problem, *args, **kwargs)

    monkeypatch.setattr(solve, "warm_start_integers", counting)
    return calls


def test_a_resumed_whole_layer_solve_skips_the_warm_start_of_a_stored_layer_and_keeps_its_error(tmp_path,
                                                                                                 monkeypatch):
    """A resume of a ``layer-sa`` solve computed each layer's warm start (a beam: minutes on CIFAR-10 at
    ``effort=thorough``) and then loaded the layer's stored batch. The batch keeps the warm start's errors: a layer
    whose batch is stored is not started again, and its ``warm_start_errors`` are the uninterrupted run's."""
    import torch

    from qannealq import quantize_model

    calls = _count_warm_starts(monkeypatch)
    torch.manual_seed(0)
    net, x, names = _heads_net(5), torch.randn(64, 6), ["heads.fc 1", "heads.fc-1"]
    results, checks = [], []
    for resume in (False, True, True):
        store = ResultStore.open(tmp_path / "r", "mine", {"bits": 2}, resume=resume)
        checks.append(StoreCheckpoint(store, {"bits": 2}))
        if len(checks) == 3:  # the second layer's batch lost: only its warm start runs again
            store.discard(checks[0].saved[1])
        calls.clear()
        results.append(quantize_model(net, x, 2, "qubo", "layer-sa", seed=1, checkpoint=checks[-1]))
        store.close()
        assert [c for c in calls if c in names] == [names, [], names[1:]][len(checks) - 1]
    assert sorted(checks[1].loaded) == sorted(checks[0].saved) and checks[1].saved == []
    assert checks[2].loaded == checks[0].saved[:1] and checks[2].saved == checks[0].saved[1:]
    for again in results[1:]:
        for first, layer in zip(results[0].layers, again.layers):
            np.testing.assert_array_equal(first.integers, layer.integers)
            np.testing.assert_array_equal(first.warm_start_errors, layer.warm_start_errors)


def test_a_whole_layer_batch_stored_without_warm_start_errors_resumes_with_the_warm_start_computed(tmp_path,
                                                                                                   monkeypatch):
    """A batch stored before it kept the warm start's errors (an older store) is still loaded; its layer's warm
    start is computed again for them, as before."""
    import torch

    from qannealq import quantize_model

    calls = _count_warm_starts(monkeypatch)
    torch.manual_seed(0)
    net, x, names = _heads_net(5), torch.randn(64, 6), ["heads.fc 1", "heads.fc-1"]
    store = ResultStore.open(tmp_path / "r", "mine", {"bits": 2})
    first = StoreCheckpoint(store, {"bits": 2})
    done = quantize_model(net, x, 2, "qubo", "layer-sa", seed=1, checkpoint=first)
    for key in first.saved:
        record = store.get(key)
        assert record.pop("warm_start_errors", None) is not None  # kept by this version
        store.put(key, record)
    store.close()
    store = ResultStore.open(tmp_path / "r", "mine", {"bits": 2}, resume=True)
    again = StoreCheckpoint(store, {"bits": 2})
    calls.clear()
    resumed = quantize_model(net, x, 2, "qubo", "layer-sa", seed=1, checkpoint=again)
    store.close()
    assert [c for c in calls if c in names] == names and sorted(again.loaded) == sorted(first.saved)
    assert again.saved == []
    for a, b in zip(done.layers, resumed.layers):
        np.testing.assert_array_equal(a.integers, b.integers)
        np.testing.assert_array_equal(a.warm_start_errors, b.warm_start_errors)


def test_a_resumed_layer_sa_run_computes_the_warm_start_of_its_unsolved_layer_alone(tmp_path, monkeypatch, capsys):
    """``qannealq run --resume`` of a ``layer-sa`` row stopped in its second layer: the first layer's batch is loaded
    without its warm start, and results.json (each layer's ``warm_start_error`` included) is the uninterrupted
    run's."""
    options = ["run", "--dataset", "digits", "--input-size", "4", "--bits", "2", "--methods", "qubo", "--backend",
               "layer-sa", "--effort", "fast"]
    assert main([*options, "--out", str(tmp_path / "full")]) == 0
    real, saves = StoreCheckpoint.save, []

    def stop_at_the_second(self, *args, **kwargs):
        saves.append(args[0].name)
        if len(saves) == 2:
            raise KeyboardInterrupt  # as a Ctrl-C in the second layer's solve
        return real(self, *args, **kwargs)

    monkeypatch.setattr(StoreCheckpoint, "save", stop_at_the_second)
    out = tmp_path / "run"
    assert main([*options, "--out", str(out)]) == 130
    monkeypatch.setattr(StoreCheckpoint, "save", real)
    calls = _count_warm_starts(monkeypatch)
    capsys.readouterr()
    assert main(["run", "--resume", str(out)]) == 0
    assert "1 batch(es) of solved neurons kept" in capsys.readouterr().out
    assert [c for c in calls if c in saves] == saves[1:]
    assert _table(out) == _table(tmp_path / "full")
    assert all(layer["warm_start_error"] is not None for layer in _table(out)[1][0])
