"""The command line's reporter: messages printed to stdout, progress as a tqdm bar on stderr."""

from __future__ import annotations

import sys
from contextlib import contextmanager
from typing import Iterator, TextIO

__all__ = ["ConsoleReporter"]


class _Bar:
    def __init__(self, bar) -> None:
        self._bar = bar

    def update(self, k: int) -> None:
        self._bar.update(k)

    def status(self, text: str) -> None:
        self._bar.set_postfix_str(text)


class ConsoleReporter:
    """The command line's: messages printed to ``stream`` (stdout), progress as a tqdm bar on stderr."""

    def __init__(self, stream: TextIO | None = None) -> None:
        self.stream = stream

    def message(self, text: str) -> None:
        print(text, file=self.stream or sys.stdout, flush=True)

    @contextmanager
    def progress(self, total: int, desc: str, unit: str = "it") -> Iterator[_Bar]:
        """A bar; log lines (``-v``) written while it runs go through it (``logging_redirect_tqdm``), so each
        starts a line of its own above the bar instead of continuing the bar's line."""
        from tqdm.auto import tqdm
        from tqdm.contrib.logging import logging_redirect_tqdm

        with logging_redirect_tqdm(), tqdm(total=total, desc=desc, unit=unit, disable=total == 0) as bar:
            yield _Bar(bar)
