"""Run results: one row per (method, bits), written incrementally to CSV/JSON, and a plot."""

from __future__ import annotations

import csv
import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path

__all__ = ["ResultRow", "RunWriter", "CSV_COLUMNS", "format_table", "plot_accuracy"]

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


def _atomic_write(path: Path, text: str) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(text)
    os.replace(tmp, path)


class RunWriter:
    """Writes ``results.csv`` and ``results.json`` after every row, so an interrupted run keeps its rows."""

    def __init__(self, out: Path, settings: dict) -> None:
        self.out = Path(out)
        self.out.mkdir(parents=True, exist_ok=True)
        self.settings = settings
        self.rows: list[ResultRow] = []
        self.flush()

    def add(self, row: ResultRow) -> None:
        self.rows.append(row)
        self.flush()

    def flush(self) -> None:
        with open(self.out / "results.csv.tmp", "w", newline="") as fh:
            writer = csv.writer(fh)
            writer.writerow(CSV_COLUMNS)
            for row in self.rows:
                writer.writerow([getattr(row, c) for c in CSV_COLUMNS])
        os.replace(self.out / "results.csv.tmp", self.out / "results.csv")
        payload = {"settings": self.settings, "results": [asdict(r) for r in self.rows]}
        _atomic_write(self.out / "results.json", json.dumps(payload, indent=2, default=float))


def format_table(rows: list[ResultRow]) -> str:
    """A fixed-width text table of the rows."""
    head = f"{'method':<16}{'backend':<10}{'bits':>5}{'accuracy':>10}{'layer_error':>14}{'seconds':>10}"
    lines = [head, "-" * len(head)]
    for r in rows:
        lines.append(f"{r.method:<16}{r.backend or '-':<10}{r.bits:>5}{r.accuracy:>10.4f}{r.layer_error:>14.6g}"
                     f"{r.seconds:>10.2f}")
    return "\n".join(lines)


def plot_accuracy(rows: list[ResultRow], path: Path, float_accuracy: float | None, title: str) -> None:
    """Accuracy and summed layer error against bits, one line per method."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, (ax_acc, ax_err) = plt.subplots(1, 2, figsize=(10, 4))
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
    tmp = path.with_name(path.stem + ".tmp.png")
    fig.savefig(tmp, dpi=120)
    plt.close(fig)
    os.replace(tmp, path)
