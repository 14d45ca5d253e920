"""The results store: atomic units, resume without recomputation, refusal of different settings."""

from __future__ import annotations

import csv
import gc
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import qannealq.runner
from qannealq.cli import main
from qannealq.config import RunConfig
from qannealq.errors import InvalidArgumentError, StoreError
from qannealq.store import CACHE_REMEDY, ResultStore, atomic_path, atomic_write, unit_key


def test_units_round_trip_and_fresh_run_refuses_an_existing_store(tmp_path):
    store = ResultStore.open(tmp_path / "r", "run", {"a": 1, "b": (1, 2)})
    store.put(unit_key(bits=4, method="rtn"), {"x": 1.5})
    assert store.done("bits=4_method=rtn") and not store.done("bits=2_method=rtn")
    assert store.records() == [{"x": 1.5}]
    assert [p.name for p in (tmp_path / "r" / "units").iterdir()] == ["bits=4_method=rtn.json"]  # nothing else
    # another process's unit, written but not yet renamed, is not a unit
    (tmp_path / "r" / "units" / ".bits=2_method=rtn.999.tmp.json").write_text('{"key": "k", "record": {"x": 2}}')
    assert store.records() == [{"x": 1.5}] and not store.done("bits=2_method=rtn")
    with pytest.raises(InvalidArgumentError, match="--resume"):
        ResultStore.open(tmp_path / "r", "run", {"a": 1, "b": (1, 2)})
    again = ResultStore.open(tmp_path / "r", "run", {"a": 1, "b": [1, 2]}, resume=True)
    assert again.resumed == ["bits=4_method=rtn"] and again.get("bits=4_method=rtn") == {"x": 1.5}


def test_numpy_settings_are_stored_as_their_values_and_a_resume_with_them_is_accepted(tmp_path):
    """``json.dumps(default=str)`` stored ``np.int64(2)`` as ``"2"``: the resume's own settings were then
    refused (``bits='2' is not supported``), and sweep.json held bits as text."""
    import json

    import numpy as np

    from qannealq.config import ModelConfig
    from qannealq.sweep import SweepConfig, sweep

    settings = {"bits": np.array([2, 1]), "num_calibration": np.int64(512), "inactive": np.float32(0.5),
                "path": tmp_path}
    ResultStore.open(tmp_path / "r", "run", settings)
    stored = ResultStore.stored_settings(tmp_path / "r", "run")
    assert stored == {"bits": [2, 1], "num_calibration": 512, "inactive": 0.5, "path": str(tmp_path)}
    ResultStore.open(tmp_path / "r", "run", {**stored, "bits": (2, 1)}, resume=True)
    out = tmp_path / "s"
    config = SweepConfig(model=ModelConfig(dataset="digits", input_size=4, num_calibration=np.int64(256)),
                         bits=np.array([2]), methods=("rtn",), seeds=np.int64(1), out=out)
    sweep(config)
    again = SweepConfig.from_stored(ResultStore.stored_settings(out, "sweep"), out)
    assert again.bits == (2,) and again.model.num_calibration == 256
    assert sweep(again).cells[0].bits == 2
    assert json.loads((out / "sweep.json").read_text())["cells"][0]["bits"] == 2


def test_resume_refuses_other_settings_naming_them(tmp_path):
    ResultStore.open(tmp_path / "r", "run", {"bits": [4], "seed": 0})
    with pytest.raises(InvalidArgumentError, match=r"seed: 0 -> 1"):
        ResultStore.open(tmp_path / "r", "run", {"bits": [4], "seed": 1}, resume=True)
    with pytest.raises(InvalidArgumentError, match="holds a 'run' run, not a 'sweep' run"):
        ResultStore.open(tmp_path / "r", "sweep", {"bits": [4], "seed": 0}, resume=True)
    with pytest.raises(InvalidArgumentError, match="no results store there"):
        ResultStore.open(tmp_path / "none", "run", {}, resume=True)


def test_a_moved_data_dir_resumes_only_with_the_recorded_files_and_nothing_else_changed(tmp_path):
    """A compare store's model lies under ``source``: its fingerprint is found there; a resume that differs in
    the folder alone is let through when the fingerprint matches, the store then keeps the new folder."""
    files = {"a": "sha-1", "b": "sha-1", "c": "sha-2"}
    seen = []

    def fingerprint(settings):
        seen.append(settings)
        model = settings["source"]["model"]
        return {"source.model": files[model["data_dir"]]} if model["data_dir"] is not None else {}

    def settings(folder, bits=2):
        return {"source": {"model": {"dataset": "mnist", "data_dir": folder}, "bits": bits}, "reads": 4}

    store = ResultStore.open(tmp_path / "r", "compare", settings("a"), fingerprint=fingerprint)
    store.put("k", {"x": 1})
    assert ResultStore._saved(tmp_path / "r", "compare")["data"] == {"source.model": "sha-1"}
    with pytest.raises(InvalidArgumentError, match=r"are not the stored run's \(source.model.data_dir: 'a' -> 'c'; "
                                                   r"their SHA-256 differ: source.model: sha-1 -> sha-2\)"):
        ResultStore.check(tmp_path / "r", "compare", settings("c"), resume=True, fingerprint=fingerprint)
    with pytest.raises(InvalidArgumentError, match=r"source.bits: 2 -> 3; source.model.data_dir: 'a' -> 'b'\); "
                                                   r"resume with the same options"):
        ResultStore.open(tmp_path / "r", "compare", settings("b", 3), resume=True, fingerprint=fingerprint)
    with pytest.raises(InvalidArgumentError, match="made to lead to the datasets' new place by a link if they "
                                                   r"moved\)$"):  # a fingerprint no caller gave is not asked
        ResultStore.open(tmp_path / "r", "compare", settings("b"), resume=True)
    ResultStore.check(tmp_path / "r", "compare", settings("b"), resume=True, fingerprint=fingerprint)
    assert ResultStore.stored_settings(tmp_path / "r", "compare") == settings("a")  # a check writes nothing
    again = ResultStore.open(tmp_path / "r", "compare", settings("b"), resume=True, fingerprint=fingerprint)
    assert again.resumed == ["k"] and ResultStore.stored_settings(tmp_path / "r", "compare") == settings("b")
    assert ResultStore._saved(tmp_path / "r", "compare")["data"] == {"source.model": "sha-1"}
    calls = len(seen)
    ResultStore.open(tmp_path / "r", "compare", settings("b"), resume=True, fingerprint=fingerprint)
    assert len(seen) == calls  # the same settings: the files are not hashed again


def test_data_fingerprint_hashes_each_model_read_from_a_given_folder(tmp_path):
    from data_files import images, write_npz

    from qannealq.data import data_fingerprint, load_dataset

    write_npz(tmp_path / "mnist.npz", images(12, (28, 28)), [0] * 12, images(4, (28, 28), 1), [1] * 4)
    model = {"dataset": "mnist", "data_dir": str(tmp_path)}
    found = data_fingerprint({"source": {"model": model}, "model": {**model, "data_dir": None}, "bits": 2})
    assert found == {"source.model": load_dataset("mnist", tmp_path).checksum}
    assert data_fingerprint({"dataset": "digits", "data_dir": str(tmp_path / "none")}) == {
        "": load_dataset("digits").checksum}


_HOLD = """
import sys, time
from qannealq.store import ResultStore
store = ResultStore.open(sys.argv[1], "run", {"a": 1}, resume=sys.argv[2] == "resume")
print("open", flush=True)
time.sleep(120)
"""


def _holder(root, how: str):
    """A process that opens the store in ``root`` and keeps it open (killed by the caller)."""
    proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(root), how], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "open"
    return proc


def test_a_folder_another_process_writes_is_refused_naming_it_until_that_process_ends(tmp_path):
    """Two processes resuming one folder both computed (and on a QPU paid for) the same units."""
    root = tmp_path / "r"
    proc = _holder(root, "fresh")
    try:
        for attempt in (lambda: ResultStore.open(root, "run", {"a": 1}, resume=True),
                        lambda: ResultStore.check(root, "run", {"a": 1}, resume=True)):
            with pytest.raises(StoreError, match=rf"{root} is in use by another qannealq process \(pid {proc.pid}\): "
                                                 r"two processes on one results folder would compute"):
                attempt()
    finally:
        proc.kill()  # SIGKILL: no handler runs, the system releases the lock
        proc.wait()
    store = ResultStore.open(root, "run", {"a": 1}, resume=True)
    again = ResultStore.open(root, "run", {"a": 1}, resume=True)  # one process may open it twice
    store.put("k", {"x": 1})
    del store, again  # the last store of the folder in this process gone: the lock with it
    gc.collect()
    proc = _holder(root, "resume")
    proc.kill()
    proc.wait()


_TAKE = """
import sys, time
from qannealq.errors import StoreError
from qannealq.store import FolderLock
try:
    FolderLock.acquire(sys.argv[1])
except StoreError as exc:
    print(exc, flush=True)
else:
    print("took it", flush=True)
    time.sleep(120)
"""


@pytest.mark.parametrize("command", ["run", "sweep", "compare"])
def test_a_second_resume_is_refused_before_this_one_prepares_its_model_not_after(tmp_path, monkeypatch, command):
    """Two resumes of one folder started at the same moment both passed the folder check (which let the lock go
    again), both trained; the second was refused only when it opened the store, minutes later (a sweep trains
    before that only to plan a --qpu-budget). A resume now holds the folder from its check on: another process
    trying it while this one prepares its model is refused then, and this one goes on."""
    import qannealq.experiment
    import qannealq.sweep

    out = tmp_path / command
    options = {"run": ["--methods", "rtn"], "sweep": ["--methods", "qubo", "--backend", "dwave-mock", "--seeds",
                                                       "1", "--sampler-option", "num_reads=2"],
               "compare": ["--neurons", "0", "--backends", "exact", "--repeats", "1"]}[command]
    assert main([command, "--dataset", "digits", "--input-size", "4", "--bits", "2", *options, "--out", str(out)]) == 0
    for unit in (out / "units").glob("*.json"):  # a unit left to compute: a sweep prepares its model only then
        unit.unlink()
    module = {"run": qannealq.runner, "sweep": qannealq.sweep, "compare": qannealq.experiment}[command]
    real, others = module.prepare, []

    def prepare(*args, **kwargs):  # another resume of the folder, started as this one prepares its model
        others.append(subprocess.Popen([sys.executable, "-c", _TAKE, str(out)], stdout=subprocess.PIPE, text=True))
        others[-1].said = others[-1].stdout.readline().strip()
        return real(*args, **kwargs)

    monkeypatch.setattr(module, "prepare", prepare)
    try:
        assert main([command, "--resume", str(out), *(["--qpu-budget", "1e5"] if command == "sweep" else [])]) == 0
    finally:
        for proc in others:
            proc.kill()
            proc.wait()
    assert len(others) == 1 and others[0].said.startswith(f"{out} is in use by another qannealq process (pid ")


def test_a_file_system_without_locks_leaves_the_folder_unguarded_not_a_traceback(tmp_path, monkeypatch):
    """``flock`` failing (``ENOLCK``: some network mounts) or missing (no ``fcntl``) is the documented fallback: the
    folder is written unlocked, and resumed."""
    import errno
    import fcntl

    def no_locks(fd, operation):
        raise OSError(errno.ENOLCK, "No locks available")

    monkeypatch.setattr(fcntl, "flock", no_locks)
    store = ResultStore.open(tmp_path / "r", "run", {"a": 1})
    store.put("k", {"x": 1})
    assert ResultStore.open(tmp_path / "r", "run", {"a": 1}, resume=True).resumed == ["k"]
    monkeypatch.setitem(sys.modules, "fcntl", None)  # import fcntl raises ImportError, as on Windows
    assert ResultStore.open(tmp_path / "r", "run", {"a": 1}, resume=True).resumed == ["k"]


def test_a_truncated_unit_counts_as_not_done(tmp_path):
    store = ResultStore.open(tmp_path / "r", "run", {})
    store.put("k", {"x": 1})
    (tmp_path / "r" / "units" / "k.json").write_text('{"key": "k", "rec')
    assert not store.done("k") and store.records() == []


def test_a_resume_counts_a_truncated_unit_as_not_kept_and_says_so(tmp_path, caplog):
    """It was counted among the units kept ("4 finished row(s) kept") and computed again without a word."""
    store = ResultStore.open(tmp_path / "r", "run", {})
    store.put("a", {"x": 1})
    store.put("b", {"x": 2})
    (tmp_path / "r" / "units" / "b.json").write_text('{"key": "b", "rec')
    with caplog.at_level("WARNING", logger="qannealq.store"):
        ResultStore.check(tmp_path / "r", "run", {}, resume=True)  # the early check says nothing
        again = ResultStore.open(tmp_path / "r", "run", {}, resume=True)
    assert again.resumed == ["a"]
    assert caplog.text.count("unit b is unreadable; computing it again") == 1


def test_atomic_write_failure_is_a_store_error_and_leaves_the_old_file(tmp_path, monkeypatch):
    target = tmp_path / "f.json"
    atomic_write(target, "old")

    def full_disk(*args, **kwargs):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr("qannealq.store.os.fsync", full_disk)
    with pytest.raises(StoreError, match="No space left on device"):
        atomic_write(target, "new")
    assert target.read_text() == "old" and [p.name for p in tmp_path.iterdir()] == ["f.json"]


def test_a_unit_path_too_long_for_the_system_is_a_store_error(tmp_path):
    """A results folder whose path leaves no room for its units' (a PATH_MAX of 4096: the run trained and solved
    its first layer, then ended in a traceback): removing the temporary file that could not be made raised
    ENAMETOOLONG again, which replaced the StoreError naming the file."""
    root = tmp_path
    while len(str(root)) < 4060:  # then store.json fits (4060 + 24 < 4096) and units/bits=2_method=qubo.json not
        root = root / ("b" * min(200, 4060 - len(str(root)) - 1))
        root.mkdir()
    store = ResultStore.open(root, "run", {})
    with pytest.raises(StoreError, match=r"cannot write .*units/bits=2_method=qubo\.json: File name too long; "):
        store.put(unit_key(bits=2, method="qubo"), {"x": 1})
    with pytest.raises(StoreError, match="File name too long"):
        atomic_write(tmp_path / ("a" * 300 + ".json"), "x")


def test_atomic_path_renames_on_success_and_cleans_up_on_failure_or_interrupt(tmp_path):
    """Writers that need a file name (savefig, np.savez, torch.save) get a temporary one with the same suffix;
    the target is the old file or the complete new one, never a partial one, and nothing is left behind."""
    import numpy as np

    target = tmp_path / "a.npz"
    with atomic_path(target) as tmp:
        assert tmp.parent == tmp_path and tmp.suffix == ".npz" and tmp != target
        np.savez(tmp, x=np.arange(3))  # np.savez would append .npz to another suffix
    np.testing.assert_array_equal(np.load(target)["x"], np.arange(3))
    for error in (KeyboardInterrupt, OSError(28, "No space left on device")):
        with pytest.raises(StoreError if isinstance(error, OSError) else KeyboardInterrupt) as caught:
            with atomic_path(target, CACHE_REMEDY) as tmp:
                np.savez(tmp, x=np.zeros(5))
                raise error
        assert [p.name for p in tmp_path.iterdir()] == ["a.npz"]
        np.testing.assert_array_equal(np.load(target)["x"], np.arange(3))
    assert str(caught.value) == f"cannot write {target}: No space left on device; {CACHE_REMEDY}"


def test_every_atomic_write_syncs_its_file_and_then_its_folder(tmp_path, monkeypatch):
    """A rename changes only the folder: the file was synced, the folder never, so after a power loss a unit, a
    neuron batch or store.json could come back as the old file or none. Each kind of write now syncs the folder
    after its rename (and a new results folder its parent). A file written by a writer given its path (np.savez,
    savefig, a download) was renamed unsynced: now synced before its rename."""
    import hashlib
    import os

    import numpy as np

    from qannealq.checkpoint import StoreCheckpoint
    from qannealq.data.download import fetch_resource
    from qannealq.data.sources import Resource
    from helpers import random_layer

    events = []
    fsync, replace = os.fsync, os.replace
    monkeypatch.setattr(os, "fsync", lambda fd: events.append(("fsync", os.fstat(fd).st_ino)) or fsync(fd))
    monkeypatch.setattr(os, "replace", lambda src, dst: replace(src, dst) or events.append(("replace", Path(dst))))

    def synced_after_renames(*expected):
        renamed = [(k, dst) for k, (what, dst) in enumerate(events) if what == "replace"]
        assert sorted(dst.name for _, dst in renamed) == sorted(expected)
        for k, dst in renamed:
            assert ("fsync", dst.stat().st_ino) in events[:k], f"{dst.name} not synced before its rename"
            assert ("fsync", dst.parent.stat().st_ino) in events[k + 1:], f"{dst.parent} not synced after {dst.name}"
        events.clear()

    store = ResultStore.open(tmp_path / "new" / "r", "run", {})
    assert ("fsync", (tmp_path / "new").stat().st_ino) in events  # the new folder's own entry
    synced_after_renames("store.json")
    store.put(unit_key(bits=4, method="rtn"), {"x": 1.5})
    synced_after_renames("bits=4_method=rtn.json")
    problem = random_layer(np.random.default_rng(0), 6, 3).problem(2)
    StoreCheckpoint(store, {"bits": 2, "method": "qubo"}, batch_size=2).save(problem, 0, np.ones((2, 7)), 1)
    synced_after_renames("bits=2_layer=layer_method=qubo_neurons=0-1.json")
    with atomic_path(tmp_path / "cache.npz") as tmp:
        np.savez(tmp, x=np.arange(3))
    synced_after_renames("cache.npz")
    (tmp_path / "www").mkdir()
    (tmp_path / "www" / "f.bin").write_bytes(b"published bytes")
    fetch_resource(Resource("f.bin", ((tmp_path / "www" / "f.bin").as_uri(),),
                            hashlib.sha256(b"published bytes").hexdigest()), tmp_path / "dl")
    synced_after_renames("f.bin")


def _table(out):
    with open(out / "results.csv") as fh:
        return [{k: v for k, v in row.items() if k != "seconds"} for row in csv.DictReader(fh)]


def test_removing_batches_syncs_their_folder_after_the_last_removal(tmp_path, monkeypatch):
    """An unlink changes only the folder: ``discard`` never synced it, so after a power loss the batches a
    finished row superseded could come back, and the next resume said "2 batch(es) of solved neurons kept"
    for a run that had none. ``units/`` is now synced once after the removals (a checkpoint's and those a
    stopped run left); nothing removed, nothing synced."""
    import os

    import numpy as np

    from qannealq.checkpoint import StoreCheckpoint
    from helpers import random_layer

    store = ResultStore.open(tmp_path / "r", "run", {})
    problem = random_layer(np.random.default_rng(0), 6, 4).problem(2)
    check = StoreCheckpoint(store, {"bits": 2, "method": "qubo"}, batch_size=2)
    for start in (0, 2):
        check.save(problem, start, np.ones((2, problem.num_coordinates)), 1)
    store.put(unit_key(bits=2, method="qubo"), {"x": 1})
    events = []
    fsync, unlink = os.fsync, os.unlink
    monkeypatch.setattr(os, "fsync", lambda fd: events.append(("fsync", os.fstat(fd).st_ino)) or fsync(fd))
    monkeypatch.setattr(os, "unlink", lambda path, **kw: unlink(path, **kw) or events.append(("unlink", path)))
    units = ("fsync", (tmp_path / "r" / "units").stat().st_ino)
    check.discard()
    assert [what for what, _ in events] == ["unlink", "unlink", "fsync"] and events[-1] == units
    assert [p.stem for p in (tmp_path / "r" / "units").glob("*.json")] == ["bits=2_method=qubo"]
    events.clear()
    check.save(problem, 0, np.ones((2, problem.num_coordinates)), 1)  # as a stopped run leaves it
    events.clear()
    assert StoreCheckpoint(store, {"bits": 2, "method": "qubo"}).discard_left(list(store._keys())) == [check.saved[0]]
    assert [what for what, _ in events] == ["unlink", "fsync"] and events[-1] == units
    events.clear()
    store.discard()
    assert events == []


def test_run_resume_recomputes_only_the_missing_rows(tmp_path, monkeypatch):
    argv = ["run", "--bits", "4,2", "--methods", "rtn,qubo", "--backend", "sa", "--sampler-option", "num_reads=2"]
    full = tmp_path / "full"
    assert main([*argv, "--out", str(full)]) == 0
    # an interrupted run: only the first two units finished
    part = tmp_path / "part"
    assert main([*argv, "--out", str(part)]) == 0
    for unit in sorted((part / "units").glob("*.json"))[2:]:
        unit.unlink()
    calls = []
    real = qannealq.runner.quantize_model
    monkeypatch.setattr(qannealq.runner, "quantize_model",
                        lambda *a, **k: calls.append((a[2], a[3])) or real(*a, **k))
    assert main([*argv, "--resume", str(part)]) == 0
    assert sorted(calls) == [(4, "qubo"), (4, "rtn")]  # keys sort bits=2_... first: the int2 rows were kept
    assert _table(part) == _table(full)
    assert main([*argv[:-2], "--sampler-option", "num_reads=3", "--resume", str(part)]) == 2


def test_a_new_run_into_units_without_a_store_json_is_refused_before_training(tmp_path, monkeypatch, capsys):
    """A folder whose store.json was deleted (or a copied ``units/``) kept its units, and ``--resume`` said to start
    a new run: ``--out`` on that folder with ``--num-calibration 64`` reported the 1024-sample run's rtn row
    (layer error 12.12, its own 12.90) and stored it under the new settings. Such a folder is refused, and one
    whose ``units/`` is empty (a run stopped before its store.json was written) is taken."""
    import qannealq.experiment

    argv = ["run", "--bits", "4", "--methods", "rtn"]
    assert main([*argv, "--out", str(tmp_path / "a")]) == 0
    (tmp_path / "a" / "store.json").unlink()
    monkeypatch.setattr(qannealq.experiment, "train_mlp", lambda *a, **k: pytest.fail("a model was trained"))
    assert main([*argv, "--num-calibration", "64", "--out", str(tmp_path / "a")]) == 2
    assert "holds 1 result unit(s) in units/ (bits=4_method=rtn.json...) but no store.json" in capsys.readouterr().err
    assert not (tmp_path / "a" / "store.json").exists()
    with pytest.raises(InvalidArgumentError, match="no store.json"):  # the Python API alike
        ResultStore.open(tmp_path / "a", "run", {"a": 1})
    (tmp_path / "a" / "units" / "bits=4_method=rtn.json").unlink()
    ResultStore.open(tmp_path / "a", "run", {"a": 1}).close()


def test_run_refuses_an_unwritable_out_before_training(tmp_path, monkeypatch, capsys):
    import os

    if os.geteuid() == 0:
        monkeypatch.setattr("qannealq.store.os.access", lambda path, mode: False)
    locked = tmp_path / "locked"
    locked.mkdir()
    locked.chmod(0o500)
    monkeypatch.setattr("qannealq.experiment.train_mlp", lambda *a, **k: pytest.fail("trained"))
    assert main(["run", "--methods", "rtn", "--out", str(locked / "run")]) == 2
    assert "is not writable" in capsys.readouterr().err
    assert not (locked / "run").exists()


@pytest.mark.parametrize("text", ["null", "[1, 2]", '"x"', '{"key": "b", "record": 5}', '{"key": "b"}'])
def test_a_unit_whose_json_is_not_a_record_counts_as_not_done(tmp_path, text):
    """``null`` or a list in a unit file raised TypeError in ``get``, ending the resume; a record that is not a
    mapping was returned and broke the command that read it."""
    store = ResultStore.open(tmp_path / "r", "run", {})
    store.put("a", {"x": 1})
    store.put("b", {"x": 2})
    store.close()
    (tmp_path / "r" / "units" / "b.json").write_text(text)
    again = ResultStore.open(tmp_path / "r", "run", {}, resume=True)
    assert again.resumed == ["a"] and not again.done("b") and again.records() == [{"x": 1}]


@pytest.mark.parametrize("text", ["[]", "null", '"x"', '{"command": "run", "settings": [1]}'])
def test_a_store_json_that_is_not_a_store_is_refused_with_a_message(tmp_path, text):
    """An edited ``store.json`` holding valid JSON of another shape raised AttributeError ('list' object has no
    attribute 'get') from ``--resume``."""
    ResultStore.open(tmp_path / "r", "run", {}).close()
    (tmp_path / "r" / "store.json").write_text(text)
    with pytest.raises(InvalidArgumentError, match="store.json is not a results store's"):
        ResultStore.open(tmp_path / "r", "run", {}, resume=True)


def test_a_numpy_sampler_option_is_stored_as_its_value_and_the_run_resumes_from_the_command_line(tmp_path):
    """``sampler_options={"num_reads": np.int64(2)}`` was stored as ``"np.int64(2)"``: ``qannealq run --resume
    DIR`` read it back as text and was refused (``num_reads: np.int64(2) -> 'np.int64(2)'``), and so was a
    Python resume giving ``num_reads=2``."""
    import numpy as np

    from qannealq.config import ModelConfig, QuantizeConfig, RunConfig

    def config(reads, resume=False):
        return RunConfig(model=ModelConfig(dataset="digits", input_size=4),
                         quantize=QuantizeConfig(bits=(2,), methods=("rtn",), sampler_options={"num_reads": reads}),
                         out=tmp_path / "r", resume=resume)

    assert config(np.int64(2)).stored_settings() == config(2).stored_settings()
    ResultStore.open(tmp_path / "r", "run", config(np.int64(2)).stored_settings()).close()
    again = RunConfig.from_stored(ResultStore.stored_settings(tmp_path / "r", "run"), tmp_path / "r")
    assert again.quantize.sampler_options == {"num_reads": 2}
    ResultStore.open(tmp_path / "r", "run", again.stored_settings(), resume=True).close()


STORES = Path(__file__).resolve().parent / "stores"  # results stores written by older qannealq, row(s) left out


def _old_store(name, tmp_path):
    """A copy of ``tests/stores/NAME`` (its unfinished rows are what a resume computes)."""
    return Path(shutil.copytree(STORES / name, tmp_path / name))


def test_a_store_written_with_a_numpy_option_as_its_repr_resumes_from_the_command_line(tmp_path):
    """``run-numpy-option`` was written at ba02ba7 (before e0b45c9) by ``RunConfig(... backend="sa",
    sampler_options={"num_reads": np.int64(2)})``, its qubo row left out: store.json holds ``"np.int64(2)"``.
    ``qannealq run --resume DIR`` read that back as text and was refused (``num_reads: np.int64(2) ->
    'np.int64(2)'``), and so was ``--sampler-option num_reads=2``: the store could not be resumed at all."""
    import json

    out = _old_store("run-numpy-option", tmp_path)
    kept = json.loads((out / "units" / "bits=2_method=rtn.json").read_text())["record"]
    again = RunConfig.from_stored(ResultStore.stored_settings(out, "run"), out)
    assert again.quantize.sampler_options == {"num_reads": 2}
    assert main(["run", "--resume", str(out), "--sampler-option", "num_reads=3"]) == 2  # another value: refused
    assert main(["run", "--resume", str(out), "--sampler-option", "num_reads=2.0"]) == 2
    assert main(["run", "--resume", str(out)]) == 0
    rows = _table(out)
    assert [(r["method"], r["backend"]) for r in rows] == [("rtn", ""), ("qubo", "sa")]
    assert float(rows[0]["layer_error"]) == kept["layer_error"]  # the stored row, kept


def test_a_store_written_before_a_setting_existed_resumes_with_the_value_it_used_and_refuses_another(tmp_path):
    """``run-before-objective`` was written at f8aaaa6, before ``--objective`` (494a15e), its qubo row left out:
    store.json has no ``objective`` and no ``inactive_weight``. ``qannealq run --resume DIR`` was refused for two
    settings the old run could only have had (``quantize.objective: '<absent>' -> 'preact'``)."""
    out = _old_store("run-before-objective", tmp_path)
    assert ResultStore.stored_settings(out, "run")["quantize"]["objective"] == "preact"
    assert main(["run", "--resume", str(out), "--objective", "relu-aware"]) == 2  # not what the units were
    assert main(["run", "--resume", str(out)]) == 0
    assert [(r["method"], r["backend"]) for r in _table(out)] == [("rtn", ""), ("qubo", "exact")]
    with pytest.raises(InvalidArgumentError, match=r"quantize.objective: 'preact' -> 'relu-aware'"):
        ResultStore.open(out, "run", RunConfig.from_stored(ResultStore.stored_settings(out, "run"), out, quantize={
            "objective": "relu-aware"}).stored_settings(), resume=True)


def test_a_setting_absent_from_a_store_and_not_known_to_mean_todays_value_is_refused_saying_why(tmp_path):
    ResultStore.open(tmp_path / "r", "run", {"quantize": {"bits": [4]}}).close()
    ResultStore.open(tmp_path / "r", "run", {"quantize": {"bits": [4], "objective": "preact",
                                                          "inactive_weight": None}}, resume=True).close()
    with pytest.raises(InvalidArgumentError, match=r"granularity: '<absent>' -> 'tensor'.*did not exist in the "
                                                   r"qannealq that wrote the stored run.*start a new run with --out"):
        ResultStore.open(tmp_path / "r", "run", {"quantize": {"bits": [4], "granularity": "tensor"}}, resume=True)
    with pytest.raises(InvalidArgumentError, match=r"bits: \[4\] -> '<absent>'.*written by a newer version"):
        ResultStore.open(tmp_path / "r", "run", {"quantize": {}}, resume=True)


def test_store_json_lists_the_code_that_wrote_its_units_and_a_resume_by_other_code_says_so(tmp_path, monkeypatch,
                                                                                          caplog):
    """A resume under changed code may mix results of both: it is let through (finished units are kept), but
    store.json now lists every qannealq that wrote into the folder and the resume warns; a store from before
    the list says it recorded no version. The same code resuming says nothing."""
    import json

    import qannealq.store as store

    monkeypatch.setattr(store, "code_version", lambda: "qannealq 0.1.0, git aaaa")
    ResultStore.open(tmp_path / "s", "run", {"a": 1}).close()
    meta = tmp_path / "s" / "store.json"
    assert json.loads(meta.read_text())["code"] == ["qannealq 0.1.0, git aaaa"]
    with caplog.at_level("WARNING"):
        ResultStore.open(tmp_path / "s", "run", {"a": 1}, resume=True).close()
    assert not [r for r in caplog.records if "written by" in r.getMessage()]
    monkeypatch.setattr(store, "code_version", lambda: "qannealq 0.1.0, git bbbb")
    with caplog.at_level("WARNING"):
        ResultStore.open(tmp_path / "s", "run", {"a": 1}, resume=True).close()
    said = [r.getMessage() for r in caplog.records if "written by" in r.getMessage()]
    assert said == [f"--resume {tmp_path / 's'}: the stored units were written by qannealq 0.1.0, git aaaa, this is "
                    "qannealq 0.1.0, git bbbb: where the code changed between them the results mix both (start a "
                    "new run with --out for one version's)"]
    assert json.loads(meta.read_text())["code"] == ["qannealq 0.1.0, git aaaa", "qannealq 0.1.0, git bbbb"]
    old = json.loads(meta.read_text())
    del old["code"]
    meta.write_text(json.dumps(old))
    caplog.clear()
    with caplog.at_level("WARNING"):
        ResultStore.open(tmp_path / "s", "run", {"a": 1}, resume=True).close()
    assert any("written by a qannealq that recorded no version" in r.getMessage() for r in caplog.records)
    monkeypatch.undo()
    assert store.code_version().startswith("qannealq ")


def test_a_write_syncs_its_file_through_a_handle_open_for_writing(tmp_path, monkeypatch):
    """Windows' fsync (FlushFileBuffers) needs a handle with write access and fails a read-only one with EBADF:
    replace_synced synced the finished temporary file through a read-only handle, so every atomic write (each
    unit, store.json) raised StoreError there. Emulated here: fsync of a read-only descriptor fails as on
    Windows, and a folder cannot be opened (sync_folder's no-op)."""
    import errno
    import os

    fcntl = pytest.importorskip("fcntl")
    fsync, synced = os.fsync, []

    def windows_fsync(fd):
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_ACCMODE == os.O_RDONLY:
            raise OSError(errno.EBADF, "Bad file descriptor")
        synced.append(os.fstat(fd).st_ino)
        return fsync(fd)

    monkeypatch.setattr(os, "fsync", windows_fsync)
    monkeypatch.setattr("qannealq.store.sync_folder", lambda folder: None)
    atomic_write(tmp_path / "store.json", "{}")
    assert (tmp_path / "store.json").read_text() == "{}" and synced == [(tmp_path / "store.json").stat().st_ino]
    monkeypatch.setattr(os, "fsync", fsync)
    with atomic_path(tmp_path / "read-only.txt") as tmp:  # a writer that leaves its file read-only (POSIX)
        tmp.write_text("x")
        tmp.chmod(0o444)
    assert (tmp_path / "read-only.txt").read_text() == "x"


def test_two_threads_opening_one_folder_at_once_share_its_lock(tmp_path, monkeypatch):
    """Two threads of one process taking a folder's lock at the same moment both found it not held yet, and the
    second's ``flock`` (on a descriptor of its own) failed against the first's: a StoreError "in use by another
    qannealq process" naming this process's own pid. Both now hold it, counted; it goes when both let it go."""
    import os
    import threading

    import qannealq.store
    from qannealq.store import FolderLock

    real_open, meet = os.open, threading.Barrier(2)

    def open_together(path, *args, **kwargs):  # each thread reaches the lock file before either has it
        if str(path).endswith(".lock"):
            try:
                meet.wait(timeout=2)
            except threading.BrokenBarrierError:  # serialized: the other thread comes only once this one is done
                pass
        return real_open(path, *args, **kwargs)

    monkeypatch.setattr(qannealq.store.os, "open", open_together)
    keys = [None, None]

    def take(j):
        try:
            keys[j] = FolderLock.acquire(tmp_path)
        except StoreError as exc:
            keys[j] = exc

    threads = [threading.Thread(target=take, args=(j,)) for j in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    monkeypatch.setattr(qannealq.store.os, "open", real_open)
    key = str(tmp_path.resolve())
    assert keys == [key, key]
    assert FolderLock._held[key][1] == 2
    FolderLock.release(key)
    FolderLock.release(key)
    assert key not in FolderLock._held
