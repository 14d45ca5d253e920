"""``compare``'s plots, drawn on their own Agg canvases (no pyplot global state).

* ``gap_vs_tts.png``: per backend and neuron, the residual gap of its best read against TTS99 (solver time
  and wall time, log axes); a neuron that no read solved (p = 0, TTS infinite) sits at the right edge, marked; one
  without that time (TTS NaN: the backend reports no solver time, or no read) is left out of that panel.
* ``success_probability.png``: per backend, the success probability of each neuron (points) and the median.
* ``energy_distribution.png``: for one neuron, the residual gap of every read, per backend.
* ``scaling.png`` (where the neurons come from two or more layers or models, e.g. ``--instances`` of the benchmark
  library): per backend, the median residual gap and the median TTS99 (solver time) of each layer's neurons (all
  bit widths) against their median size, log axes: how a backend scales with the problem's size.
"""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np

from qannealq._compare_report import CompareResult, size_group
from qannealq.metrics import residual_gap
from qannealq.store import atomic_path

__all__ = ["plot_all", "plot_scaling", "GAP_FLOOR"]

GAP_FLOOR = 1e-12
"""Gaps are drawn as ``max(gap, GAP_FLOOR)`` on log axes (0 = the reference optimum itself)."""


def _figure(width: float, height: float):
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _save(fig, path: Path) -> Path:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=110)
    return path


def _backends(result: CompareResult) -> list[str]:
    return list(dict.fromkeys(n.backend for n in result.neurons))


def plot_gap_vs_tts(result: CompareResult, path: Path) -> Path:
    fig = _figure(11, 4.5)
    axes = fig.subplots(1, 2, sharey=True)
    for ax, attr, label in ((axes[0], "tts99_solver_seconds", "TTS99, solver time (s)"),
                            (axes[1], "tts99_wall_seconds", "TTS99, wall time (s)")):
        finite = [getattr(n, attr) for n in result.neurons if math.isfinite(getattr(n, attr))]
        edge = (max(finite) if finite else 1.0) * 3
        for k, backend in enumerate(_backends(result)):
            sel = [n for n in result.neurons if n.backend == backend]
            t = np.array([getattr(n, attr) for n in sel])
            gap = np.maximum([n.residual_gap for n in sel], GAP_FLOOR)
            solved, never = np.isfinite(t), np.isposinf(t)  # a NaN TTS (no time reported) is not drawn
            color = f"C{k % 10}"
            ax.scatter(t[solved], gap[solved], color=color, label=backend, alpha=0.8)
            ax.scatter(np.full(never.sum(), edge), gap[never], color=color, marker="x", alpha=0.8)
        ax.axvline(edge / 1.5, color="gray", linewidth=0.5, linestyle=":")
        ax.set(xscale="log", yscale="log", xlabel=label + "; x at right: never solved (p = 0)")
        ax.grid(alpha=0.3)
    axes[0].set_ylabel(f"residual gap of the best read (floor {GAP_FLOOR:g})")
    axes[1].legend(fontsize=8)
    return _save(fig, path)


def plot_success(result: CompareResult, path: Path) -> Path:
    fig = _figure(8, 4)
    ax = fig.subplots()
    names = _backends(result)
    for k, backend in enumerate(names):
        p = np.array([n.success_probability for n in result.neurons if n.backend == backend])
        jitter = np.linspace(-0.15, 0.15, p.size) if p.size > 1 else np.zeros(1)
        ax.scatter(k + jitter, p, color=f"C{k % 10}", alpha=0.7)
        ax.hlines(np.nanmedian(p), k - 0.3, k + 0.3, color="black")
    ax.set_xticks(range(len(names)), names, rotation=30)
    ax.set(ylabel="success probability per read", ylim=(-0.05, 1.05), title="per neuron (points), median (bar)")
    ax.grid(alpha=0.3, axis="y")
    return _save(fig, path)


def plot_energies(result: CompareResult, path: Path, instance: str | None = None) -> Path:
    """Every read's residual gap for ``instance`` (default: the largest instance compared that has reads)."""
    if instance is None:  # of those with reads
        instance = max((n for n in result.neurons if n.reads), key=lambda n: n.num_variables).instance
    ref = result.references[instance].energy
    fig = _figure(8, 4)
    ax = fig.subplots()
    gaps = {}
    for backend in _backends(result):
        reads = [e for u in result.units if u["backend"] == backend and u["instance"] == instance
                 for e in u["energies"]]
        if reads:
            gaps[backend] = np.maximum(residual_gap(np.asarray(reads), ref), GAP_FLOOR)
    top = max(max(g.max() for g in gaps.values()), GAP_FLOOR * 10) if gaps else 1.0
    bins = np.logspace(math.log10(GAP_FLOOR), math.log10(top) + 0.1, 40)
    for k, (backend, g) in enumerate(gaps.items()):
        ax.hist(g, bins=bins, weights=np.full(g.size, 1.0 / g.size), histtype="step", color=f"C{k % 10}",
                label=f"{backend} ({g.size} reads)", linewidth=1.5)
    ax.set(xscale="log", xlabel=f"residual gap of each read (floor {GAP_FLOOR:g} = optimum)",
           ylabel="share of the backend's reads",
           title=f"energy distribution, {instance}")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _save(fig, path)


def plot_scaling(result: CompareResult, path: Path) -> Path | None:
    """Per backend, the median residual gap and the median TTS99 (solver time) of each layer's neurons (its
    summaries per ``group``, :func:`qannealq._compare_report.layer_summaries`) against their median size; a layer
    whose median TTS is infinite (its median neuron never solved) is marked at the top. None (nothing drawn) with
    fewer than two layers."""
    summaries = [b for b in result.backends if b.group]
    if len({b.group for b in summaries}) < 2:
        return None
    members: dict[str, list[int]] = {}
    for n in result.neurons:
        members.setdefault(size_group(n.instance), []).append(n.num_variables)
    size = {g: float(np.median(sizes)) for g, sizes in members.items()}
    fig = _figure(11, 4.5)
    axes = fig.subplots(1, 2)
    finite = [n.tts99_solver_seconds for n in result.neurons if math.isfinite(n.tts99_solver_seconds)]
    edge = (max(finite) if finite else 1.0) * 3
    for k, backend in enumerate(_backends(result)):
        rows = sorted((b for b in summaries if b.backend == backend), key=lambda b: size[b.group])
        x = np.array([size[b.group] for b in rows])
        t = np.array([b.median_tts99_solver for b in rows])
        color, solved = f"C{k % 10}", np.isfinite(t)
        axes[0].plot(x, [max(b.median_gap, GAP_FLOOR) for b in rows], "o-", color=color, label=backend)
        axes[1].plot(x[solved], t[solved], "o-", color=color, label=backend)
        axes[1].scatter(x[~solved], np.full((~solved).sum(), edge * 1.15 ** k), color=color, marker="x")  # apart
    axes[0].set(ylabel=f"median residual gap of the best read (floor {GAP_FLOOR:g})")
    axes[1].set(ylabel="median TTS99, solver time (s); x at top: never solved")
    axes[1].axhline(edge / 1.5, color="gray", linewidth=0.5, linestyle=":")
    ticks = sorted(set(size.values()))
    for ax in axes:
        ax.set(xscale="log", yscale="log", xlabel="variables per neuron (median of the layer)")
        ax.set_xticks(ticks, [f"{t:g}" for t in ticks])
        ax.minorticks_off()
        ax.grid(alpha=0.3)
    axes[1].legend(fontsize=8)
    groups = sorted(size, key=size.get)
    fig.suptitle(f"scaling over {len(groups)} layers: {', '.join(groups)}", fontsize=9)
    return _save(fig, path)


def plot_all(result: CompareResult, out: Path) -> list[Path]:
    """The plots into ``out`` (``scaling.png`` only where the neurons form two groups or more); returns their
    paths (none where no call returned a sample)."""
    out = Path(out)
    if not any(n.reads for n in result.neurons):
        return []
    out.mkdir(parents=True, exist_ok=True)
    paths = [plot_gap_vs_tts(result, out / "gap_vs_tts.png"), plot_success(result, out / "success_probability.png"),
             plot_energies(result, out / "energy_distribution.png")]
    scaling = plot_scaling(result, out / "scaling.png")
    return paths + ([scaling] if scaling is not None else [])
