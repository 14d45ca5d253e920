"""The sweep's outputs: one :class:`CellResult` per cell, ``sweep.csv``, ``sweep.json``, ``summary.md`` and plots.

Aggregates are the mean and the sample standard deviation (``ddof=1``; 0 for a single seed) over seeds of
each (method, bits); the float network's accuracy is aggregated the same way over the seeds' networks.
"""

from __future__ import annotations

import csv
import io
import json
from collections import defaultdict
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Sequence

import numpy as np

from qannealq.store import atomic_path, atomic_write, json_default

__all__ = ["CellResult", "FailedCell", "CSV_COLUMNS", "Aggregate", "aggregate", "summary_markdown",
           "write_outputs", "plot_sweep"]

CSV_COLUMNS = ("dataset", "preset", "method", "backend", "bits", "seed", "train_seed", "calibration",
               "granularity", "int1", "num_calibration", "accuracy", "float_accuracy", "layer_error", "seconds")


@dataclass
class CellResult:
    """One (method, bits, seed) of a sweep.

    Attributes:
        method: the label (``rtn``, ``gptq``, ``qubo:layer-sa``...); ``backend`` the qubo sampler or ``""``.
        seed: the calibration draw's (and the samplers') seed; ``train_seed`` the network's.
        granularity: the grid used (under ``best``, the one chosen; ``candidates`` holds both errors).
        accuracy, float_accuracy: test accuracy of the quantized and of the float network.
        layer_error, layer_errors: summed and per-layer reconstruction errors on the calibration data.
        seconds: wall time of the cell (both grids under ``best``).
    """

    dataset: str
    preset: str
    method: str
    backend: str
    bits: int
    seed: int
    train_seed: int
    calibration: str
    granularity: str
    int1: str
    num_calibration: int
    accuracy: float
    float_accuracy: float
    layer_error: float
    layer_errors: dict = field(default_factory=dict)
    seconds: float = 0.0
    candidates: dict = field(default_factory=dict)


@dataclass(frozen=True)
class FailedCell:
    """A (method, bits, seed) whose quantization raised: in no mean, computed again by ``--resume``."""

    dataset: str
    method: str
    bits: int
    seed: int
    error: str

    @property
    def name(self) -> str:
        return f"{self.method} int{self.bits} seed {self.seed}"


@dataclass(frozen=True)
class Aggregate:
    """Mean and standard deviation over seeds of one method at one bit width."""

    method: str
    bits: int
    n: int
    accuracy_mean: float
    accuracy_std: float
    error_mean: float
    error_std: float
    seconds_mean: float


def _std(values: list[float]) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else 0.0


def aggregate(cells: list[CellResult], order: list[str] | None = None) -> list[Aggregate]:
    """One :class:`Aggregate` per (method, bits): methods in ``order`` (else as they appear), bits descending."""
    groups: dict[tuple[str, int], list[CellResult]] = defaultdict(list)
    for cell in cells:
        groups[(cell.method, cell.bits)].append(cell)
    order = [m for m in (order or []) if any(c.method == m for c in cells)]
    order += [m for m in dict.fromkeys(c.method for c in cells) if m not in order]
    out = []
    for (method, bits), group in sorted(groups.items(), key=lambda kv: (order.index(kv[0][0]), -kv[0][1])):
        acc, err = [c.accuracy for c in group], [c.layer_error for c in group]
        out.append(Aggregate(method, bits, len(group), float(np.mean(acc)), _std(acc), float(np.mean(err)),
                             _std(err), float(np.mean([c.seconds for c in group]))))
    return out


def _float_accuracy(cells: list[CellResult]) -> tuple[float, float, int]:
    per_network = {c.train_seed: c.float_accuracy for c in cells}
    values = list(per_network.values())
    return float(np.mean(values)), _std(values), len(values)


def summary_markdown(cells: list[CellResult], settings: dict, departures: Sequence[str] = (),
                     failed: Sequence[FailedCell] = ()) -> str:
    """Markdown tables: accuracy (mean ± std over seeds) and summed layer error per method and bits; the preset's
    words are followed by ``departures``, the settings used where they differ from those words; ``failed``: the
    cells whose error stopped the sweep (one) or that ``--keep-going`` went past, each in no mean, marked
    ``(k failed)`` in the tables (``failed`` where no seed finished) and listed with its error.

    Every method and bit width of ``settings`` has its column and row, and a cell is marked ``(n=…)`` where fewer
    than the ``seeds`` of ``settings`` finished, ``—`` where none did: the summary of an interrupted sweep dropped
    the methods and bit widths not reached yet and read as a finished sweep of fewer seeds."""
    failures = "; ".join(f"{f.name}: {f.error}" for f in failed)
    if not cells:
        return "no finished cells yet\n" + (f"\nfailed: {failures}\n" if failed else "")
    aggs = aggregate(cells, settings.get("methods"))
    methods = list(dict.fromkeys([*settings.get("methods", []), *(a.method for a in aggs)]))
    bits = sorted({*settings.get("bits", []), *(a.bits for a in aggs)}, reverse=True)
    table = {(a.method, a.bits): a for a in aggs}
    fmean, fstd, nets = _float_accuracy(cells)
    seeds = sorted({c.seed for c in cells})
    most = max(settings.get("seeds", 0), *(a.n for a in aggs))
    planned = len(methods) * len(bits) * most

    def pm(mean: float, std: float, n: int, digits: str, spread: str) -> str:  # one value has no spread
        return f"{mean:{digits}} ± {std:{spread}}" if n > 1 else f"{mean:{digits}}"

    over = "mean ± std over seeds" if most > 1 else "one seed, so no spread"
    given = f"; overridden here: {', '.join(departures)}" if departures else ""
    lines = [f"**{cells[0].dataset}**, preset `{settings.get('preset')}` ({settings.get('preset_means')}{given}); "
             f"{cells[0].num_calibration} calibration samples; seeds {seeds}; float accuracy "
             f"{pm(fmean, fstd, nets, '.4f', '.4f')} ({nets} network(s)); {over}"
             + (f" (n = seeds finished where fewer than {most})" if any(a.n < most for a in aggs) else "") + ".",
             *(["", f"**Unfinished**: {len(cells)} of {planned} cells finished, {planned - len(cells)} to go "
                + (f"({len(failed)} failed; `qannealq sweep --resume` computes {'it' if len(failed) == 1 else 'them'} "
                   f"again); failed: {failures}"
                   if failed else "(interrupted, or still running; `qannealq sweep --resume` continues it).")]
               if len(cells) < planned else []),
             "", "| bits | " + " | ".join(f"{m} accuracy" for m in methods) + " |",
             "| --- |" + " --- |" * len(methods)]
    def cell(m: str, b: int, mean: str, std: str, digits: str, spread: str) -> str:
        """A table cell, with the seeds it holds where fewer than the most finished (both tables: the error's
        mean over fewer seeds is another sample's, as the accuracy's is)."""
        lost = sum(f.method == m and f.bits == b for f in failed)
        if (m, b) not in table:
            return "failed" if lost else "—"
        a = table[m, b]
        return (pm(getattr(a, mean), getattr(a, std), a.n, digits, spread) + (f" (n={a.n})" if a.n < most else "")
                + (f" ({lost} failed)" if lost else ""))

    for b in bits:
        row = [cell(m, b, "accuracy_mean", "accuracy_std", ".4f", ".4f") for m in methods]
        lines.append(f"| int{b} | " + " | ".join(row) + " |")
    lines += ["", "| bits | " + " | ".join(f"{m} layer error" for m in methods) + " |",
              "| --- |" + " --- |" * len(methods)]
    for b in bits:
        row = [cell(m, b, "error_mean", "error_std", ".4g", ".2g") for m in methods]
        lines.append(f"| int{b} | " + " | ".join(row) + " |")
    grains = sorted({c.granularity for c in cells})
    seconds = {m: [c.seconds for c in cells if c.method == m] for m in methods}  # per cell, not per bit width
    lines += ["", f"grids used: {', '.join(grains)}; mean seconds per cell: "
              + ", ".join(f"{m} {np.mean(seconds[m]):.3g}" for m in methods if seconds[m])]
    return "\n".join(lines) + "\n"


def write_outputs(out: Path, settings: dict, cells: list[CellResult], plots: bool = True,
                  departures: Sequence[str] = (), failed: Sequence[FailedCell] = ()) -> list[CellResult]:
    """Rewrite ``sweep.csv``, ``sweep.json`` and ``summary.md`` (and the plots) from ``cells``, atomically
    (``departures``, ``failed``: see :func:`summary_markdown`; ``sweep.json`` lists the failed cells too)."""
    cells = sorted(cells, key=lambda c: (c.seed, -c.bits, c.method))
    layers = list(dict.fromkeys(name for c in cells for name in c.layer_errors))
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow([*CSV_COLUMNS, *(f"layer_error_{name}" for name in layers)])
    for c in cells:
        writer.writerow([getattr(c, k) for k in CSV_COLUMNS] + [c.layer_errors.get(name, "") for name in layers])
    atomic_write(out / "sweep.csv", buffer.getvalue())
    payload = {"settings": settings, "cells": [asdict(c) for c in cells],
               "aggregates": [asdict(a) for a in aggregate(cells, settings.get("methods"))],
               "failed": [asdict(f) for f in failed]}
    atomic_write(out / "sweep.json", json.dumps(payload, indent=2, default=json_default))  # a --data-dir as text
    atomic_write(out / "summary.md", summary_markdown(cells, settings, departures, failed))
    if plots and cells:
        plot_sweep(cells, out / "sweep.png", f"{cells[0].dataset}, preset {settings.get('preset')}",
                   settings.get("methods"))
    return cells


def plot_sweep(cells: list[CellResult], path: Path, title: str, order: list[str] | None = None) -> None:
    """Accuracy vs bits (mean ± std band per method, float band) and summed layer error vs bits (log)."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(11, 4.2))
    FigureCanvasAgg(fig)
    ax_acc, ax_err = fig.subplots(1, 2)
    aggs = aggregate(cells, order)
    for method in dict.fromkeys(a.method for a in aggs):
        sel = sorted((a for a in aggs if a.method == method), key=lambda a: a.bits)
        x = np.array([a.bits for a in sel])
        for ax, mean, std in ((ax_acc, [a.accuracy_mean for a in sel], [a.accuracy_std for a in sel]),
                              (ax_err, [a.error_mean for a in sel], [a.error_std for a in sel])):
            mean, std = np.asarray(mean), np.asarray(std)
            line, = ax.plot(x, np.maximum(mean, 1e-12), marker="o", label=method)
            ax.fill_between(x, np.maximum(mean - std, 1e-12), mean + std, color=line.get_color(), alpha=0.2)
    fmean, fstd, _ = _float_accuracy(cells)
    ax_acc.axhline(fmean, color="gray", linestyle="--", label="float")
    ax_acc.axhspan(fmean - fstd, fmean + fstd, color="gray", alpha=0.15)
    ax_acc.set(xlabel="bits", ylabel="test accuracy (mean ± std over seeds)", title=title)
    ax_err.set(xlabel="bits", ylabel="summed layer error", yscale="log", title="reconstruction error (calibration)")
    for ax in (ax_acc, ax_err):
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
