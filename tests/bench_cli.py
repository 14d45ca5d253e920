"""Benchmark scripts' option checks: an option a script cannot use must be refused before its first costly step."""

from __future__ import annotations

import sys
from types import ModuleType

import pytest


def refused_first(monkeypatch, capsys, script: ModuleType, first_step: str, argv: list[str]) -> str:
    """Run ``script.main()`` under ``argv`` (the script's name first); ``script.<first_step>`` (what builds its layer
    or pins its threads) fails the test where it is reached, and the run must end in SystemExit. Returns what the
    script wrote to stderr (argparse's refusal)."""
    def started(*args, **kwargs):
        raise AssertionError(f"{argv[1:]}: the run started; it must be refused first")

    monkeypatch.setattr(script, first_step, started)
    monkeypatch.setattr(sys, "argv", argv)
    with pytest.raises(SystemExit):
        script.main()
    return capsys.readouterr().err
