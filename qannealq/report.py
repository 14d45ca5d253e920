"""Run results: one row per (method, bits), written incrementally to CSV/JSON, and a plot."""

from __future__ import annotations

import csv
import io
import json
import logging
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Iterator, Protocol

from qannealq.store import atomic_path, atomic_write

logger = logging.getLogger(__name__)

__all__ = ["ResultRow", "RunWriter", "CSV_COLUMNS", "format_table", "plot_accuracy", "Reporter", "Progress",
           "LogReporter", "duration"]

CSV_COLUMNS = ("dataset", "method", "backend", "bits", "calibration", "granularity", "accuracy", "layer_error",
               "seconds")


@dataclass
class ResultRow:
    """One quantized network: its accuracy and summed layer error, with per-layer details."""

    dataset: str
    method: str
    backend: str
    bits: int
    calibration: str
    granularity: str
    accuracy: float
    layer_error: float
    seconds: float
    layers: list[dict] = field(default_factory=list)


class RunWriter:
    """Keeps ``results.csv`` and ``results.json`` in step with the rows, rewriting both atomically after each."""

    def __init__(self, out: Path, settings: dict, rows: list[ResultRow] | None = None) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.rows: list[ResultRow] = list(rows or [])
        self.flush()

    def add(self, row: ResultRow) -> None:
        self.rows.append(row)
        self.flush()

    def flush(self) -> None:
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for row in self.rows:
            writer.writerow([getattr(row, c) for c in CSV_COLUMNS])
        atomic_write(self.out / "results.csv", buffer.getvalue())
        payload = {"settings": self.settings, "results": [asdict(r) for r in self.rows]}
        atomic_write(self.out / "results.json", json.dumps(payload, indent=2, default=float))


def duration(seconds: float) -> str:
    """``95 s``, ``12 min``, ``3.4 h``: a time the user is told to expect (``compare``'s pace, a slow QAOA call)."""
    if seconds < 120:
        return f"{seconds:.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def format_table(rows: list[ResultRow], grids: bool = False) -> str:
    """A fixed-width text table of the rows; ``grids``: with each row's grid (``--granularity best`` keeps the
    better of the two per row)."""
    # as wide as the longest name and a space: gptq-restricted-pivot ran into the backend
    wm = max([16, *(len(r.method) + 1 for r in rows)])
    wb = max([10, *(len(r.backend) + 1 for r in rows)])
    grid = f"{'grid':>9}" if grids else ""
    head = f"{'method':<{wm}}{'backend':<{wb}}{'bits':>5}{grid}{'accuracy':>10}{'layer_error':>14}{'seconds':>10}"
    lines = [head, "-" * len(head)]
    for r in rows:
        grid = f"{r.granularity:>9}" if grids else ""
        lines.append(f"{r.method:<{wm}}{r.backend or '-':<{wb}}{r.bits:>5}{grid}{r.accuracy:>10.4f}"
                     f"{r.layer_error:>14.6g}{r.seconds:>10.2f}")
    return "\n".join(lines)


def plot_accuracy(rows: list[ResultRow], path: Path, float_accuracy: float | None, title: str) -> None:
    """Accuracy and summed layer error against bits, one line per method."""
    # A Figure with its own Agg canvas: no pyplot, so the user's global matplotlib backend is left alone.
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10, 4))
    FigureCanvasAgg(fig)
    ax_acc, ax_err = fig.subplots(1, 2)
    methods = sorted({(r.method, r.backend) for r in rows})
    for method, backend in methods:
        sel = sorted((r for r in rows if (r.method, r.backend) == (method, backend)), key=lambda r: r.bits)
        label = f"{method} ({backend})" if backend else method
        ax_acc.plot([r.bits for r in sel], [r.accuracy for r in sel], marker="o", label=label)
        ax_err.plot([r.bits for r in sel], [max(r.layer_error, 1e-12) for r in sel], marker="o", label=label)
    if float_accuracy is not None:
        ax_acc.axhline(float_accuracy, color="gray", linestyle="--", label="float")
    ax_acc.set(xlabel="bits", ylabel="test accuracy", title=title)
    ax_err.set(xlabel="bits", ylabel="summed layer error", yscale="log", title="reconstruction error")
    for ax in (ax_acc, ax_err):
        ax.grid(alpha=0.3)
        ax.legend()
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=120)


class Reporter(Protocol):
    """Where a long command reports: messages, and a progress bar over a known total."""

    def message(self, text: str) -> None:
        """One line for the user."""

    def progress(self, total: int, desc: str, unit: str) -> "AbstractContextManager[Progress]":
        """A progress context; the object it yields advances with ``update(k)`` and ``status(text)``."""


class Progress(Protocol):
    def update(self, k: int) -> None: ...

    def status(self, text: str) -> None: ...


class _NoProgress:
    def update(self, k: int) -> None:
        pass

    def status(self, text: str) -> None:
        pass


class LogReporter:
    """The library's default: messages go to the ``qannealq`` logger at INFO, no progress bar."""

    def message(self, text: str) -> None:
        logger.info("%s", text)

    @contextmanager
    def progress(self, total: int, desc: str, unit: str = "it") -> Iterator[_NoProgress]:
        yield _NoProgress()
