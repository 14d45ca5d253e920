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
