"""Instance export: every format re-read gives the same energies (also with a parser that is not qannealq's),
the metadata and best-known solution are right, and ``compare --instances`` runs on the exported folder."""

from __future__ import annotations

import json
import subprocess
import sys

import dimod
import numpy as np
import pytest
import torch

from backend_fixtures import tiny_digits
from qannealq._compare_instances import instances_from_experiment
from qannealq.compare import CompareSettings, compare_backends
from qannealq.errors import InvalidArgumentError
from qannealq.export import LIBRARY, export_instances, load_instances, read_coo


@pytest.fixture(scope="module")
def exported(tmp_path_factory):
    instances = instances_from_experiment(tiny_digits(), 1, 2, "0:3")  # the output layer: 17 variables
    out = tmp_path_factory.mktemp("instances")
    export_instances(instances, out)
    return instances, out


def _plain_coo(path) -> tuple[float, dict[tuple[int, int], float]]:
    """The COO file read with nothing but the standard library (as another team would)."""
    offset, terms = 0.0, {}
    for line in open(path):
        if line.startswith("#") or not line.strip():
            continue
        parts = line.split()
        if parts[0] == "offset":
            offset = float(parts[1])
        else:
            terms[int(parts[0]), int(parts[1])] = float(parts[2])
    return offset, terms


def _plain_energy(offset: float, terms: dict, x: np.ndarray) -> float:
    return offset + sum(v * x[k] * x[l] if k != l else v * x[k] for (k, l), v in terms.items())


def test_every_format_gives_the_same_energies(exported):
    instances, out = exported
    rng = np.random.default_rng(0)
    for inst in instances:
        labels = list(inst.bqm.variables)
        x = rng.integers(0, 2, size=(20, len(labels)))
        expected = inst.bqm.energies((x, labels))
        with open(out / f"{inst.name}.bqm", "rb") as fh:
            dimod_bqm = dimod.BinaryQuadraticModel.from_file(fh)
        np.testing.assert_allclose(dimod_bqm.energies((x, labels)), expected, rtol=1e-13)
        coo = read_coo(out / f"{inst.name}.coo")
        np.testing.assert_allclose(coo.energies((x, list(range(len(labels))))), expected, rtol=1e-13)
        offset, terms = _plain_coo(out / f"{inst.name}.coo")
        np.testing.assert_allclose([_plain_energy(offset, terms, row) for row in x], expected, rtol=1e-12)


def test_metadata_and_best_known_solution(exported):
    instances, out = exported
    index = json.loads((out / "index.json").read_text())
    assert [row["name"] for row in index["instances"]] == [i.name for i in instances]
    assert "NAME.coo" in (out / "FORMAT.txt").read_text()
    for inst in instances:
        meta = json.loads((out / f"{inst.name}.json").read_text())
        assert meta["dataset"] == "digits4x4" and meta["layer"] == 1 and meta["bits"] == 2
        assert meta["num_variables"] == inst.num_variables == len(meta["labels"]) == len(meta["steps"])
        assert meta["calibration"]["num_samples"] == 1024 and meta["grid"]["lo"] == -2
        best = meta["best_known"]
        assert best["provenance"] == "proven" and best["method"] == "exact"
        offset, terms = _plain_coo(out / f"{inst.name}.coo")
        assert _plain_energy(offset, terms, np.array(best["x"])) == pytest.approx(best["energy"], rel=1e-12)
        assert best["energy"] == pytest.approx(dimod.ExactSolver().sample(inst.bqm).first.energy, rel=1e-12)
        assert meta["warm_start_energy"] == pytest.approx(meta["baselines"]["gptq-restricted"], rel=1e-9)
        assert best["energy"] <= min(meta["baselines"]["rtn"], meta["warm_start_energy"]) * (1 + 1e-12)


def test_compare_runs_on_exported_instances(exported):
    instances, out = exported
    loaded = load_instances(out)
    assert [i.name for i in loaded] == [i.name for i in instances]
    for a, b in zip(loaded, instances):
        assert a.bqm == b.bqm and a.warm_start == b.warm_start and a.reference.provenance == "proven"
    result = compare_backends(loaded, ["steepest"], CompareSettings(reads=4, repeats=1))
    assert {r.reference_provenance for r in result.rows} == {"proven"}
    with pytest.raises(InvalidArgumentError, match="index.json"):
        load_instances(out / "nowhere")


def test_a_damaged_instance_file_is_named(exported, tmp_path):
    """A truncated ``.bqm`` ended in json's ``JSONDecodeError`` from inside dimod; a ``.json`` without its fields in
    a ``KeyError``."""
    import shutil

    instances, out = exported
    first, second = (i.name for i in instances[:2])
    for damage, name, words in ((lambda f: f.write_bytes(f.read_bytes()[:50]), first, "JSONDecodeError"),
                                (lambda f: f.write_text('{"labels": [1]}'), second, "KeyError: 'best_known'")):
        folder = tmp_path / name
        shutil.copytree(out, folder)
        damage(folder / (f"{name}.bqm" if name == first else f"{name}.json"))
        with pytest.raises(InvalidArgumentError, match=f"instance '{name}' is unreadable \\({words}.*re-export"):
            load_instances(folder)
    (tmp_path / first / "index.json").write_text('{"other": 1}')
    with pytest.raises(InvalidArgumentError, match="no readable index.json \\(KeyError: 'instances'\\)"):
        load_instances(tmp_path / first)


def test_a_bqm_that_is_not_its_json_s_is_refused(exported, tmp_path):
    """A ``.bqm`` edited, or another instance's under this name, was read as it was: two swapped files ended in a
    ``KeyError`` traceback from the warm start, an edited offset in gaps measured against an energy the BQM cannot
    reach (every backend's gap and success wrong, without a word)."""
    import shutil

    instances, out = exported
    first, second = (i.name for i in instances[:2])
    shifted = tmp_path / "shifted"
    shutil.copytree(out, shifted)
    bqm = instances[0].bqm.copy()
    bqm.offset += 0.05
    with bqm.to_file() as fh:
        (shifted / f"{first}.bqm").write_bytes(fh.read())
    with pytest.raises(InvalidArgumentError, match=f"instance '{first}': its best known x has energy .* not the "
                       ".* its .json states .*re-export the folder"):
        load_instances(shifted)
    swapped = tmp_path / "swapped"
    shutil.copytree(out, swapped)
    relabelled = instances[1].bqm.relabel_variables({v: 100 + k for k, v in enumerate(instances[1].bqm.variables)},
                                                    inplace=False)
    with relabelled.to_file() as fh:
        (swapped / f"{first}.bqm").write_bytes(fh.read())
    with pytest.raises(InvalidArgumentError, match=f"instance '{first}': its .bqm's variables are not the labels"):
        load_instances(swapped)
    assert [i.name for i in load_instances(out)] == [i.name for i in instances]


def _edit_json(path, edit) -> None:
    meta = json.loads(path.read_text())
    edit(meta)
    path.write_text(json.dumps(meta, indent=1))


@pytest.mark.parametrize("file, edit", [
    ("json", lambda f: _edit_json(f, lambda m: m["warm_start"].__setitem__(0, 1 - m["warm_start"][0]))),
    ("json", lambda f: _edit_json(f, lambda m: m["baselines"].__setitem__("gptq", m["baselines"]["gptq"] / 2))),
    ("coo", lambda f: f.write_text(f.read_text().replace("offset ", "offset 1", 1))),
])
def test_an_instance_file_edited_since_the_export_is_refused_by_name(file, edit, exported, tmp_path):
    """``load_instances`` checked a ``.bqm`` against its ``.json`` alone: a flipped warm-start bit, a halved GPTQ
    error or an edited ``.coo`` offset were read without a word, and a study compared against altered data; each
    file's SHA-256, recorded in ``index.json``, is now checked."""
    import shutil

    instances, out = exported
    folder = tmp_path / "edited"
    shutil.copytree(out, folder)
    name = instances[1].name
    edit(folder / f"{name}.{file}")
    with pytest.raises(InvalidArgumentError, match=f"--instances {folder}: {name}.{file} is not the file the export "
                       f"wrote \\(its SHA-256 [0-9a-f]{{64}} is not index.json's [0-9a-f]{{64}}: edited or damaged "
                       f"since\\); export the folder again, or write the instance again with `qannealq export "
                       f"--resume {folder}`"):
        load_instances(folder)
    rows = json.loads((out / "index.json").read_text())["instances"]
    assert all(set(row["sha256"]) == {"json", "bqm", "coo"} for row in rows)


def test_the_recorded_checksums_are_of_the_bytes_written_not_read_back(exported, tmp_path, monkeypatch):
    """The export read each .bqm, .coo and .json back from disk to hash it, though it held their bytes: it now
    hashes the bytes it writes, and index.json's digests are those of the files on disk."""
    import hashlib
    from pathlib import Path

    instances, _ = exported
    out = tmp_path / "out"
    read = Path.read_bytes

    def no_read_back(path):
        assert out not in path.parents, f"the export read back {path.name}"
        return read(path)

    monkeypatch.setattr(Path, "read_bytes", no_read_back)
    export_instances(instances[:2], out)
    monkeypatch.undo()
    rows = json.loads((out / "index.json").read_text())["instances"]
    assert [row["name"] for row in rows] == [i.name for i in instances[:2]]
    for row in rows:
        assert row["sha256"] == {ext: hashlib.sha256((out / f"{row['name']}.{ext}").read_bytes()).hexdigest()
                                 for ext in ("json", "bqm", "coo")}
    assert [i.name for i in load_instances(out)] == [row["name"] for row in rows]


def test_a_folder_exported_before_the_checksums_loads_with_one_warning(exported, tmp_path, caplog):
    """A folder whose ``index.json`` has no ``sha256`` (written before they were recorded) still loads, saying once
    that its files cannot be verified."""
    import logging
    import shutil

    instances, out = exported
    folder = tmp_path / "old"
    shutil.copytree(out, folder)
    index = json.loads((folder / "index.json").read_text())
    for row in index["instances"]:
        del row["sha256"]
    (folder / "index.json").write_text(json.dumps(index))
    with caplog.at_level(logging.WARNING, logger="qannealq.export"):
        assert [i.name for i in load_instances(folder)] == [i.name for i in instances]
    assert [r.getMessage() for r in caplog.records] == [
        f"--instances {folder}: 3 of 3 instance(s) have no checksums in index.json (exported before qannealq "
        "recorded them): their files cannot be verified; export the folder again to have them checked"]
    caplog.clear()
    load_instances(out)
    assert not caplog.records


def test_compare_json_names_the_instances_folder_and_its_index(exported, tmp_path, monkeypatch, capsys):
    """``compare.json``'s settings were the sampling options alone: its reader could not tell which neurons were
    compared, though ``store.json`` said it; they now hold the source as ``store.json`` does (the folder as given),
    the instance names and backends, and the SHA-256 of the folder's ``index.json``."""
    import hashlib

    from qannealq.cli import main

    instances, out = exported
    monkeypatch.chdir(out.parent)
    argv = ["compare", "--instances", out.name, "--backends", "steepest", "--reads", "2", "--repeats", "1"]
    assert main([*argv, "--out", str(tmp_path / "cmp")]) == 0
    settings = json.loads((tmp_path / "cmp" / "compare.json").read_text())["settings"]
    stored = json.loads((tmp_path / "cmp" / "store.json").read_text())["settings"]
    index = hashlib.sha256((out / "index.json").read_bytes()).hexdigest()
    assert settings["source"] == {**stored["source"], "index_sha256": index} == {"instances": out.name,
                                                                                  "index_sha256": index}
    assert settings["instances"] == [i.name for i in instances] and settings["backends"] == ["steepest"]
    assert settings["reads"] == 2 and settings["eps"] == 1e-9
    assert main(["compare", "--resume", str(tmp_path / "cmp")]) == 0  # the resume matches the stored settings
    assert json.loads((tmp_path / "cmp" / "compare.json").read_text())["settings"] == settings


def test_the_library_names_the_three_sizes():
    assert {(e.dataset, e.input_size) for e in LIBRARY} == {("digits", 4), ("digits", None), ("mnist", None)}


def _interrupted_at(call: int, real):
    """``reference_optimum`` that raises KeyboardInterrupt (Ctrl-C) at its ``call``-th call."""
    calls = []

    def stopping(instance, options):
        calls.append(instance.name)
        if len(calls) == call:
            raise KeyboardInterrupt
        return real(instance, options)

    return stopping


def test_an_interrupted_export_lists_what_it_finished(tmp_path, monkeypatch):
    """``index.json`` was written at the end alone: an export stopped after three of four neurons (minutes of
    proofs on the library) left files that ``compare --instances`` could not read."""
    import qannealq.export

    instances = instances_from_experiment(tiny_digits(), 1, 2, "0:4")
    monkeypatch.setattr(qannealq.export, "reference_optimum", _interrupted_at(4, qannealq.export.reference_optimum))
    with pytest.raises(KeyboardInterrupt):
        export_instances(instances, tmp_path / "out")
    assert [i.name for i in load_instances(tmp_path / "out")] == [i.name for i in instances[:3]]
    assert (tmp_path / "out" / "FORMAT.txt").is_file()


def test_an_export_interrupted_before_its_first_instance_is_refused_by_compare(tmp_path, monkeypatch, capsys):
    """``index.json`` is written before the first instance: an export stopped then left a folder on which
    ``compare --instances`` ended in an ``IndexError`` traceback (the sizes of no instance)."""
    import qannealq.export
    from qannealq.cli import main

    instances = instances_from_experiment(tiny_digits(), 1, 2, "0:2")
    monkeypatch.setattr(qannealq.export, "reference_optimum", _interrupted_at(1, qannealq.export.reference_optimum))
    with pytest.raises(KeyboardInterrupt):
        export_instances(instances, tmp_path / "out")
    assert json.loads((tmp_path / "out" / "index.json").read_text())["instances"] == []
    assert main(["compare", "--instances", str(tmp_path / "out"), "--backends", "steepest", "--out",
                 str(tmp_path / "cmp")]) == 2
    assert (f"--instances {tmp_path / 'out'}: index.json lists no instance (an export interrupted before its first "
            f"one finished); continue it with `qannealq export --resume {tmp_path / 'out'}`") in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (["export", "--library", "--dataset", "mnist", "--bits", "4"],
     "--dataset, --bits: --library chooses the neurons, so these are not used; leave them out, or leave out "
     "--library"),
    (["compare", "--backends", "sa", "--neurons", "0:3", "--data-dir", "."],
     "--neurons, --data-dir: --instances {folder} chooses the neurons, so these are not used"),
    (["export", "--dataset", "digits", "--input-size", "4", "--layer", "1"],
     "--out={out!r} holds an export already (index.json): continue it with --resume {folder}, give another --out "
     "folder, or remove that one"),
])
def test_options_an_instances_folder_or_the_library_leaves_unused_are_refused(argv, message, exported, capsys,
                                                                               monkeypatch):
    """``export --library --dataset mnist`` exported the library, ``compare --instances DIR --neurons 0:3`` every
    instance of DIR, without a word; an export into a folder holding one overwrote its files and replaced its
    index."""
    import qannealq.experiment
    from qannealq.cli import main

    monkeypatch.setattr(qannealq.experiment, "train_mlp", lambda *a, **k: pytest.fail("a model was trained"))
    folder = exported[1]
    before = (folder / "index.json").read_text()
    where = ["--instances", str(folder)] if argv[0] == "compare" else ["--out", str(folder)]
    assert main([*argv, *where]) == 2
    assert message.format(folder=folder, out=str(folder)) in capsys.readouterr().err
    assert (folder / "index.json").read_text() == before


def test_export_resume_keeps_what_was_finished_and_computes_the_rest(tmp_path, monkeypatch, capsys):
    """An interrupted export (its proofs take minutes on the library) had to start again; ``--resume DIR`` takes
    the stored selection and options from ``index.json`` and computes the missing instances alone."""
    import qannealq.export
    from qannealq.cli import main

    out = tmp_path / "out"
    (tmp_path / "data").mkdir()  # a --data-dir is stored as text (a Path failed json.dumps)
    argv = ["export", "--dataset", "digits", "--input-size", "4", "--layer", "1", "--neurons", "0:4", "--data-dir",
            str(tmp_path / "data"), "--out", str(out)]
    real, calls = qannealq.export.reference_optimum, []
    monkeypatch.setattr(qannealq.export, "reference_optimum", _interrupted_at(3, real))
    assert main(argv) == 130  # interrupted: what was finished is kept
    first = json.loads((out / "index.json").read_text())
    assert len(first["instances"]) == 2 and first["source"]["neurons"] == "0:4"
    assert main(argv) == 2 and f"continue it with --resume {out}" in capsys.readouterr().err
    assert first["source"]["model"]["data_dir"] == str(tmp_path / "data")
    assert main(["export", "--resume", str(out), "--bits", "3"]) == 2
    assert f"--resume {out} takes the stored export's options: leave out --bits" in capsys.readouterr().err
    holder = subprocess.Popen([sys.executable, "-c", "import sys, time; from qannealq.store import FolderLock; "
                               "FolderLock.acquire(sys.argv[1]); print('held', flush=True); time.sleep(120)", str(out)],
                              stdout=subprocess.PIPE, text=True)
    try:  # another export writing the folder: refused before the model is loaded
        assert holder.stdout.readline().strip() == "held"
        assert main(["export", "--resume", str(out)]) == 2
        assert f"{out} is in use by another qannealq process (pid {holder.pid})" in capsys.readouterr().err
    finally:
        holder.kill()
        holder.wait()
    calls.clear()
    monkeypatch.setattr(qannealq.export, "reference_optimum", lambda i, o: (calls.append(i.name), real(i, o))[1])
    assert main(["export", "--resume", str(out)]) == 0
    assert "(2 finished before, kept)" in capsys.readouterr().out
    index = json.loads((out / "index.json").read_text())
    assert [row["name"] for row in index["instances"][:2]] == [row["name"] for row in first["instances"]]
    assert len(index["instances"]) == 4 and calls == [row["name"] for row in index["instances"][2:]]
    assert len(load_instances(out)) == 4


def test_export_resume_writes_again_an_instance_whose_bqm_or_coo_was_deleted(tmp_path, capsys):
    """``--resume`` kept every row whose ``.json`` was there: a deleted ``.bqm`` stayed missing while the export
    said it wrote every instance's three files, and ``compare --instances`` then refused the folder."""
    from qannealq.cli import main

    out = tmp_path / "out"
    assert main(["export", "--dataset", "digits", "--input-size", "4", "--layer", "1", "--neurons", "0:3",
                 "--out", str(out)]) == 0
    before = {f.name: f.read_bytes() for f in out.iterdir() if f.suffix in (".bqm", ".coo")}
    names = [row["name"] for row in json.loads((out / "index.json").read_text())["instances"]]
    (out / f"{names[0]}.bqm").unlink()
    (out / f"{names[2]}.coo").unlink()
    capsys.readouterr()
    assert main(["export", "--resume", str(out)]) == 0
    assert "(1 finished before, kept)" in capsys.readouterr().out
    assert {f.name: f.read_bytes() for f in out.iterdir() if f.suffix in (".bqm", ".coo")} == before
    assert [row["name"] for row in json.loads((out / "index.json").read_text())["instances"]] == [
        names[1], names[0], names[2]]
    assert [i.name for i in load_instances(out)] == [names[1], names[0], names[2]]


def test_export_resume_writes_again_an_instance_whose_file_was_edited(tmp_path, capsys):
    """``--resume`` kept every row whose three files were there, an edited one too: the folder stayed altered (and
    ``compare --instances`` now refuses it); a file whose SHA-256 is not ``index.json``'s is written again."""
    from qannealq.cli import main

    out = tmp_path / "out"
    assert main(["export", "--dataset", "digits", "--input-size", "4", "--layer", "1", "--neurons", "0:2",
                 "--out", str(out)]) == 0
    names = [row["name"] for row in json.loads((out / "index.json").read_text())["instances"]]
    before = json.loads((out / f"{names[0]}.json").read_text())
    _edit_json(out / f"{names[0]}.json", lambda m: m["baselines"].__setitem__("rtn", 0.0))
    with pytest.raises(InvalidArgumentError, match=f"{names[0]}.json is not the file the export wrote"):
        load_instances(out)
    capsys.readouterr()
    assert main(["export", "--resume", str(out)]) == 0
    printed = capsys.readouterr().out
    assert f"{names[0]}.json changed since the export (SHA-256): writing {names[0]} again" in printed
    assert "(1 finished before, kept)" in printed
    assert json.loads((out / f"{names[0]}.json").read_text())["baselines"] == before["baselines"]
    assert [i.name for i in load_instances(out)] == [names[1], names[0]]


def test_export_resume_reads_a_moved_data_dir_when_its_files_are_the_same(tmp_path, monkeypatch, capsys):
    """``export --resume DIR --data-dir NEW`` kept reading the stored folder (refused where it had gone, read
    where it was still there); the new folder is now read, and refused where its files are not the export's."""
    import qannealq.export
    from data_files import images, write_npz
    from qannealq.cli import main

    monkeypatch.setenv("QANNEALQ_CACHE", str(tmp_path / "cache"))
    x = images(40, (28, 28))
    write_npz(tmp_path / "old" / "mnist.npz", x, np.arange(40) % 10, x[:20], np.arange(20) % 10)
    out = tmp_path / "out"
    argv = ["export", "--dataset", "mnist", "--data-dir", str(tmp_path / "old"), "--hidden", "4", "--epochs", "1",
            "--layer", "1", "--bits", "2", "--neurons", "0:3", "--proof-time", "0", "--out", str(out)]
    real = qannealq.export.reference_optimum
    monkeypatch.setattr(qannealq.export, "reference_optimum", _interrupted_at(2, real))
    assert main(argv) == 130
    monkeypatch.setattr(qannealq.export, "reference_optimum", real)
    (tmp_path / "old").rename(tmp_path / "new")
    write_npz(tmp_path / "other" / "mnist.npz", x[::-1], np.arange(40) % 10, x[:20], np.arange(20) % 10)
    capsys.readouterr()
    assert main(["export", "--resume", str(out), "--data-dir", str(tmp_path / "other")]) == 2
    assert "does not hold the datasets the export read (their SHA-256 differ" in capsys.readouterr().err
    assert main(["export", "--resume", str(out), "--data-dir", str(tmp_path / "new")]) == 0
    assert "(1 finished before, kept)" in capsys.readouterr().out
    assert len(load_instances(out)) == 3


def test_the_metadata_decodes_x_into_the_neuron_s_whole_row(tmp_path):
    """The file gave the variables' coordinates and integers alone: a neuron with coordinates that are not variables
    (on the grid, clipped, dead inputs: 11 of 17 here) could not be decoded into its row. The row decoded from the
    json file alone has, on the model's own calibration inputs, the stored energy as its mean squared error."""
    exp = tiny_digits()
    instances = instances_from_experiment(exp, 1, 1, "1", "channel", "paper")
    export_instances(instances, tmp_path)
    meta = json.loads((tmp_path / f"{instances[0].name}.json").read_text())
    assert 0 < meta["num_variables"] < meta["coordinates"]
    ints, steps = np.zeros(meta["coordinates"], dtype=int), np.zeros(meta["coordinates"])
    ints[meta["variables"]] = np.array(meta["base_integers"]) + meta["best_known"]["x"]
    steps[meta["variables"]] = meta["steps"]
    ints[meta["fixed"]["coordinates"]] = meta["fixed"]["integers"]
    steps[meta["fixed"]["coordinates"]] = meta["fixed"]["steps"]
    assert sorted(meta["variables"] + meta["fixed"]["coordinates"]) == list(range(meta["coordinates"]))
    row = steps * (ints + meta["grid"]["offset"])
    modules = list(exp.model.children())
    linear, x = modules[int(meta["layer_name"])], torch.as_tensor(exp.calibration)
    with torch.no_grad():  # the layer's inputs: the float model's, up to it (float calibration)
        for module in modules[:int(meta["layer_name"])]:
            x = module(x)
        w = torch.cat([linear.weight, linear.bias[:, None]], 1)[meta["neuron"]].double().numpy()
    x = np.hstack([x.double().numpy(), np.ones((len(x), 1))])
    assert np.mean((x @ row - x @ w) ** 2) == pytest.approx(meta["best_known"]["energy"], rel=1e-6)


def test_a_folder_of_a_newer_format_is_refused_by_name(exported, tmp_path):
    """Neither ``index.json``'s nor an instance's ``format`` was read: a folder a newer qannealq wrote
    (``qannealq-neuron-qubo/2``, whose files may mean other things) was loaded and compared, and ``export --resume``
    would have added version 1 files to it."""
    import shutil

    from qannealq._compare_command import ExportJob

    instances, out = exported
    newer = tmp_path / "newer"
    shutil.copytree(out, newer)
    index = json.loads((newer / "index.json").read_text())
    (newer / "index.json").write_text(json.dumps({**index, "format": "qannealq-neuron-qubo/2"}))
    words = "is of format 'qannealq-neuron-qubo/2', written by a newer qannealq; this one reads " \
            "'qannealq-neuron-qubo/1': upgrade qannealq to read it"
    with pytest.raises(InvalidArgumentError, match=f"--instances {newer}: index.json {words}"):
        load_instances(newer)
    with pytest.raises(InvalidArgumentError, match=f"--resume {newer}: index.json {words}"):
        ExportJob.resumed(newer)
    (newer / "index.json").write_text(json.dumps(index))
    name = instances[1].name
    meta = json.loads((newer / f"{name}.json").read_text())
    (newer / f"{name}.json").write_text(json.dumps({**meta, "format": "qannealq-neuron-qubo/2"}))
    with pytest.raises(InvalidArgumentError, match=f"{name}.json {words}"):
        load_instances(newer)
    (newer / f"{name}.json").write_text(json.dumps({**meta, "format": "someone-else/1"}))
    with pytest.raises(InvalidArgumentError, match=f"{name}.json is not a qannealq instance file \\(format "
                       "'someone-else/1', expected 'qannealq-neuron-qubo/1'\\)"):
        load_instances(newer)


def test_a_bqm_file_that_cannot_be_written_is_a_store_error_and_keeps_the_finished_neurons(tmp_path):
    """The ``.bqm`` file alone was written with ``Path.write_bytes``: a write failure (a full disk; here a folder
    in its place) was a raw OSError, a traceback from ``qannealq export``, and could leave a half-written file."""
    from qannealq.errors import StoreError

    instances = instances_from_experiment(tiny_digits(), 1, 2, "0:3")
    (tmp_path / "out" / f"{instances[2].name}.bqm").mkdir(parents=True)
    with pytest.raises(StoreError, match=f"cannot write .*{instances[2].name}.bqm"):
        export_instances(instances, tmp_path / "out")
    assert [i.name for i in load_instances(tmp_path / "out")] == [i.name for i in instances[:2]]


def test_an_out_that_is_a_file_is_refused_before_the_model_is_trained(tmp_path, monkeypatch, capsys):
    """``export --out FILE`` trained the model, then ended in ``mkdir``'s FileExistsError traceback (``run`` and
    ``compare`` refuse it by name); the API raised the same OSError, a file above the folder too."""
    import qannealq.experiment
    from qannealq.cli import main
    from qannealq.errors import StoreError

    (tmp_path / "a file").write_text("not a folder")
    monkeypatch.setattr(qannealq.experiment, "train_mlp", lambda *a, **k: pytest.fail("a model was trained"))
    assert main(["export", "--dataset", "digits", "--input-size", "4", "--out", str(tmp_path / "a file")]) == 2
    assert f"--out={str(tmp_path / 'a file')!r} is an existing file, not a folder" in capsys.readouterr().err
    monkeypatch.undo()
    instances = instances_from_experiment(tiny_digits(), 1, 2, "0:1")
    for out in (tmp_path / "a file", tmp_path / "a file" / "sub"):
        with pytest.raises(StoreError, match="cannot create the instances folder .*give the path of a folder"):
            export_instances(instances, out)
    assert (tmp_path / "a file").read_text() == "not a folder"
