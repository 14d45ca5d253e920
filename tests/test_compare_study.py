"""benchmarks/compare_backends.py (the published backend study): its options are refused before any work when
they name no group of the study."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))
import compare_backends  # noqa: E402  (imported, not skipped: a broken import fails here)


def _main(monkeypatch, tmp_path: Path, *args: str) -> None:
    monkeypatch.setattr(sys, "argv", ["compare_backends.py", "--out", str(tmp_path / "out"), *args])
    compare_backends.main()


@pytest.mark.parametrize("groups", ["foo", "digits4x4,digits4x8", ","])
def test_an_unknown_group_is_refused_before_any_work(monkeypatch, tmp_path, capsys, groups):
    with pytest.raises(SystemExit) as exc:
        _main(monkeypatch, tmp_path, "--groups", groups)
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "--groups" in err and "digits4x4, digits8x8" in err
    assert ("no group" if groups == "," else groups.split(",")[-1]) in err
    assert not (tmp_path / "out").exists()


def test_groups_run_in_the_study_order():
    assert [g.name for g in compare_backends.groups_of("mnist, digits4x4")] == ["digits4x4", "mnist"]


def test_a_group_is_not_run_without_the_group_whose_references_it_takes():
    """``digits8x8-qaoa`` searches 1 read of 1 sweep for its reference and takes ``digits8x8``'s: alone, its
    references were 10-45 % above digits8x8's, and so its gaps too small."""
    with pytest.raises(Exception, match="from group digits8x8: add digits8x8"):
        compare_backends.groups_of("digits8x8-qaoa")
    picked = compare_backends.groups_of("digits8x8-qaoa,digits8x8")
    assert [g.name for g in picked] == ["digits8x8", "digits8x8-qaoa"]  # the source first, so its references pass


def test_no_threads_is_refused(monkeypatch, tmp_path, capsys):
    """``--threads 0`` left BLAS unpinned (threadpoolctl's limit 0 changes nothing) and was refused only by
    ``layer-sa``'s ``num_threads``, as a ``--sampler-option`` the command does not have."""
    with pytest.raises(SystemExit) as exc:
        _main(monkeypatch, tmp_path, "--groups", "digits4x4", "--threads", "0")
    assert exc.value.code == 2 and "--threads" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_no_reads_is_refused_before_the_library_is_built(monkeypatch, tmp_path, capsys):
    """``--reads 0`` built the library (about 8 s) and ended in a traceback from the harness's own check."""
    with pytest.raises(SystemExit) as exc:
        _main(monkeypatch, tmp_path, "--groups", "digits4x4", "--reads", "0")
    assert exc.value.code == 2 and "--reads" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()
