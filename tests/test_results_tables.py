"""benchmarks/results_tables.py: the README's Results tables render the stored cells of the sweep folders, under
column names that tell every column apart."""

from __future__ import annotations

import shutil
import sys
from dataclasses import asdict
from pathlib import Path

import pytest

from qannealq.config import ModelConfig
from qannealq.errors import InvalidArgumentError
from qannealq.store import ResultStore, unit_key
from qannealq.sweep import SweepConfig
from qannealq.sweep_report import CellResult

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import results_tables  # noqa: E402  (benchmarks/results_tables.py: imported, so that a broken import fails here)


def _folder(root: Path, methods: tuple[str, ...], seeds: int = 2, bits: tuple[int, ...] = (4, 2),
            float_accuracy: float = 0.9, **options) -> Path:
    """A stored sweep of digits (no training): cell (method, bits, seed) has accuracy 0.5 + bits/100 + index/10
    + seed/500 and layer error 10 * index + bits + seed, ``index`` the method's place in ``methods``."""
    model = options.pop("model", ModelConfig(dataset="digits", num_calibration=256))
    config = SweepConfig.from_preset("paper", model=model, methods=methods, bits=bits, seeds=seeds, **options)
    store = ResultStore.open(root, "sweep", config.stored_settings())
    for index, label in enumerate(config.labels()):
        for b in bits:
            for seed in range(seeds):
                accuracy, error = 0.5 + b / 100 + index / 10 + seed / 500, 10 * index + b + seed
                cell = CellResult("digits", "paper", label, label.partition(":")[2], b, seed, 0, "float", "tensor",
                                  "paper", model.num_calibration, accuracy, float_accuracy, error, {"0": error})
                store.put(unit_key(method=label, bits=b, seed=seed), asdict(cell))
    store.close()
    return root


def _tables(results: Path, tmp_path: Path) -> list[str]:
    return results_tables.dataset_tables(results, tmp_path / "docs", "digits")


def test_every_column_is_named_apart_in_both_tables(tmp_path):
    """Two qubo backends of one preset and a GPTQ-restricted baseline: the error table named all three 'QUBO',
    the accuracy table named gptq-restricted 'QUBO ()'."""
    _folder(tmp_path / "r" / "digits-paper", ("rtn", "qubo:sa", "qubo:layer-sa", "gptq-restricted"))
    (tmp_path / "docs").mkdir()
    lines = _tables(tmp_path / "r", tmp_path)
    headers = [line for line in lines if line.startswith("| bits |")]
    expected = ("| bits | paper: RTN | paper: GPTQ-restricted | paper: QUBO (sa) | paper: QUBO (layer-sa) |")
    assert headers == [expected, expected]
    error_rows = [line for line in lines if line.startswith("| int2 |")][1]
    assert error_rows == "| int2 | 2.5 | 32.5 | 12.5 | 22.5 |"  # under its column: gptq-restricted was stored third


def test_a_single_seed_is_shown_without_a_spread(tmp_path):
    """As summary.md: one value has no spread (the table wrote '54.00 ± 0.00', a spread of zero measured)."""
    _folder(tmp_path / "r" / "digits-paper", ("rtn", "qubo"), seeds=2, bits=(4,))
    _folder(tmp_path / "r" / "digits-paper-low", ("rtn", "qubo"), seeds=1, bits=(2,))
    (tmp_path / "docs").mkdir()
    rows = [line for line in _tables(tmp_path / "r", tmp_path) if line.startswith("| int")]
    assert rows[:2] == ["| int4 | 54.10 ± 0.14 | 64.10 ± 0.14 |", "| int2 | 52.00 (n=1) | 62.00 (n=1) |"]


def test_the_error_table_says_where_fewer_seeds_finished(tmp_path):
    """A -low folder of one seed under a main folder of two: the accuracy table marked its int2 '(n=1)', the error
    table showed '2', one seed's error, beside int4's mean of two, as comparable."""
    _folder(tmp_path / "r" / "digits-paper", ("rtn", "qubo"), seeds=2, bits=(4,))
    _folder(tmp_path / "r" / "digits-paper-low", ("rtn", "qubo"), seeds=1, bits=(2,))
    (tmp_path / "docs").mkdir()
    rows = [line for line in _tables(tmp_path / "r", tmp_path) if line.startswith("| int")]
    assert rows[2:] == ["| int4 | 4.5 | 14.5 |", "| int2 | 2 (n=1) | 12 (n=1) |"]


def test_folders_of_other_settings_are_refused_not_merged(tmp_path):
    """A -act folder calibrated on 64 samples merged into a table of 256 (the line said '256 calibration
    samples' for both); folders differing in what each ran alone, or in the qubo options of a folder without
    qubo, make one table."""
    results = tmp_path / "r"
    _folder(results / "digits-paper", ("rtn", "qubo"), bits=(4,))
    _folder(results / "digits-paper-low", ("rtn", "qubo"), seeds=1, bits=(2,))
    _folder(results / "digits-paper-pivot", ("gptq-pivot",), bits=(4, 2), sampler_options={"num_reads": 5})
    (tmp_path / "docs").mkdir()
    assert len([line for line in _tables(results, tmp_path) if line.startswith("| int")]) == 4
    _folder(results / "digits-paper-act", ("gptq-act",), model=ModelConfig(dataset="digits", num_calibration=64))
    with pytest.raises(InvalidArgumentError, match=r"digits-paper-act and .*digits-paper make one table.*"
                       r"model.num_calibration: 256 -> 64"):
        _tables(results, tmp_path)
    shutil.rmtree(results / "digits-paper-act")
    _folder(results / "digits-paper-act", ("qubo",), sampler_options={"num_reads": 5})
    with pytest.raises(InvalidArgumentError, match=r"sampler_options.num_reads: 1 -> 5"):
        _tables(results, tmp_path)


def test_the_heading_names_each_presets_float_accuracy_where_they_differ(tmp_path):
    """The heading showed the paper preset's float network alone (90.00 %), also over a best preset trained
    otherwise (92.50 %)."""
    results = tmp_path / "r"
    _folder(results / "digits-paper", ("rtn",), bits=(4,))
    (tmp_path / "docs").mkdir()
    assert _tables(results, tmp_path)[0] == "#### digits — float accuracy 90.00 %"
    model = ModelConfig(dataset="digits", num_calibration=256, seed=1)
    _folder(results / "digits-best", ("rtn",), bits=(4,), float_accuracy=0.925, model=model)
    assert _tables(results, tmp_path)[0] == "#### digits — float accuracy paper 90.00 %, best 92.50 %"


def test_a_results_folder_without_sweeps_is_refused(tmp_path, monkeypatch, capsys):
    """``--results`` naming no sweep folder (a typo, or runs/results not there yet) printed nothing and ended with
    status 0; a folder that holds one prints its tables."""
    empty = tmp_path / "elsewhere"
    monkeypatch.setattr(sys, "argv", ["results_tables.py", "--results", str(empty), "--docs", str(tmp_path / "docs"),
                                      "--datasets", "digits"])
    with pytest.raises(SystemExit) as exc:
        results_tables.main()
    assert exc.value.code == 2 and f"--results {empty}" in capsys.readouterr().err
    _folder(tmp_path / "r" / "digits-paper", ("rtn", "gptq"), seeds=1, bits=(2,))
    monkeypatch.setattr(sys, "argv", ["results_tables.py", "--results", str(tmp_path / "r"), "--docs",
                                      str(tmp_path / "docs"), "--datasets", "digits"])
    results_tables.main()
    assert "| int2 |" in capsys.readouterr().out


def test_the_plots_are_linked_where_docs_puts_them_from_the_folder_the_tables_go_to(tmp_path, monkeypatch, capsys):
    """``--docs DIR`` wrote the plots to DIR but the tables linked ``docs/results/…`` whatever DIR was: images
    that do not exist. A link now leads from the working folder (where the README the tables go to is) to the
    plot; the default ``--docs docs/results`` keeps its links."""
    _folder(tmp_path / "r" / "digits-paper", ("rtn", "gptq"), seeds=1, bits=(2,))
    (tmp_path / "repo").mkdir()
    monkeypatch.chdir(tmp_path / "repo")
    for docs, link in ((tmp_path / "site" / "img", "../site/img/digits-paper.png"),
                       (Path("docs/results"), "docs/results/digits-paper.png")):
        monkeypatch.setattr(sys, "argv", ["results_tables.py", "--results", str(tmp_path / "r"), "--docs", str(docs),
                                          "--datasets", "digits"])
        results_tables.main()
        assert f"![digits]({link})" in capsys.readouterr().out.splitlines()
        assert (tmp_path / "repo" / link).is_file()
    lines = results_tables.dataset_tables(tmp_path / "r", tmp_path / "site" / "img", "digits", tables=tmp_path / "site")
    assert lines[-2] == "![digits](img/digits-paper.png)"


def test_an_unfinished_sweep_keeps_its_columns_and_rows_and_marks_fewer_seeds(tmp_path):
    """A sweep of rtn and qubo at int4 and int2 over 2 seeds stopped after one rtn int4 cell: the tables dropped the
    QUBO column and the int2 row and showed '54.00', a finished table of one method, one bit width and one seed;
    as summary.md does, every column and row of the stored settings is kept, '—' where no seed finished, and
    '(n=…)' marks a cell of fewer seeds than the sweep's."""
    root = _folder(tmp_path / "r" / "digits-paper", ("rtn", "qubo"), seeds=2, bits=(4, 2))
    for unit in (root / "units").glob("*.json"):
        if unit.stem != unit_key(method="rtn", bits=4, seed=0):
            unit.unlink()
    (tmp_path / "docs").mkdir()
    lines = _tables(tmp_path / "r", tmp_path)
    assert [line for line in lines if line.startswith("| bits |")] == ["| bits | paper: RTN | paper: QUBO (sa) |"] * 2
    assert [line for line in lines if line.startswith("| int")] == [
        "| int4 | 54.00 (n=1) | — |", "| int2 | — | — |", "| int4 | 4 (n=1) | — |", "| int2 | — | — |"]
