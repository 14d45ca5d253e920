"""``compare``'s results: rows per call, summaries per backend x neuron and per backend, files and table.

Every metric is computed here from the stored raw units (every read's energy, the call's timing), so a
resumed comparison and a fresh one give the same numbers. Columns of ``compare.csv``: :data:`CSV_COLUMNS`
(documented in the README, "Comparing backends").
"""

from __future__ import annotations

import csv
import io
import json
import math
import re
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from qannealq._compare_instances import NeuronInstance, Reference
from qannealq._compare_reference import settle
from qannealq.metrics import ONE_CALL_FLOOR, energy_noise, residual_gap, success_probability, tts99
from qannealq.store import atomic_write, json_default

__all__ = ["CompareRow", "NeuronSummary", "BackendSummary", "CompareResult", "summarise", "backend_summaries",
           "layer_summaries", "size_group", "CSV_COLUMNS", "format_summary"]


@dataclass
class CompareRow:
    """One call: backend x instance x repeat (one line of ``compare.csv``)."""

    backend: str
    instance: str
    dataset: str
    layer: Any
    neuron: Any
    bits: Any
    num_variables: int
    repeat: int
    seed: int | None
    reads: int
    decomposed: bool
    warm_start: bool
    best_energy: float
    mean_energy: float
    reference_energy: float
    reference_provenance: str
    reference_method: str
    residual_gap: float
    mean_gap: float
    success_probability: float
    success_probability_loose: float
    solver_seconds: float
    wall_seconds: float
    tts99_solver_seconds: float
    tts99_wall_seconds: float
    qpu_access_seconds: float
    chain_break_fraction: float | None
    chain_strength: float | None
    qubits: int | None
    reps: int | None
    shots: int | None
    optimizer_evals: int | None
    circuit_depth: int | None
    rounds: int | None
    backend_calls: int | None
    error_vs_rtn: float
    error_vs_gptq: float


CSV_COLUMNS = tuple(f.name for f in fields(CompareRow))


@dataclass
class NeuronSummary:
    """One backend on one instance, pooled over its repeats (p over all reads; ``t_read`` their mean; the best
    energy, its gap and its error over RTN's and GPTQ's, the best read of all calls)."""

    backend: str
    instance: str
    num_variables: int
    calls: int
    reads: int
    best_energy: float
    mean_energy: float
    reference_energy: float
    reference_provenance: str
    residual_gap: float
    success_probability: float
    success_probability_loose: float
    tts99_solver_seconds: float
    tts99_wall_seconds: float
    error_vs_rtn: float
    error_vs_gptq: float
    decomposed: bool


@dataclass
class BackendSummary:
    """One backend over the instances of a group: medians over neurons (of an even number, the mean of the two
    middle values) and their spread (25th-75th percentile, observed values); NaN values are left out."""

    backend: str
    group: str
    neurons: int
    variables: str
    decomposed: int
    median_gap: float
    gap_spread: tuple[float, float]
    median_p: float
    p_spread: tuple[float, float]
    median_p_loose: float
    median_tts99_solver: float
    tts99_solver_spread: tuple[float, float]
    median_tts99_wall: float
    tts99_wall_spread: tuple[float, float]
    median_error_vs_rtn: float
    median_error_vs_gptq: float


def _row(unit: dict, instance: NeuronInstance, ref: Reference, eps: float, loose: float, noise: float) -> CompareRow:
    energies = np.asarray(unit["energies"], dtype=np.float64)
    reads = max(int(unit["reads"]), 1)
    info, meta = unit.get("info", {}), instance.meta
    p = success_probability(energies, ref.energy, eps, noise)
    best = float(energies.min()) if energies.size else math.nan
    qubits = info.get("num_qubits")
    if qubits is None and unit["backend"] == "qaoa":  # a unit stored before run_unit recorded it
        qubits = min(instance.num_variables, info.get("capacity") or instance.num_variables)
    return CompareRow(
        unit["backend"], instance.name, str(meta.get("dataset", "")), meta.get("layer"), meta.get("neuron"),
        meta.get("bits"), instance.num_variables, unit["repeat"], unit["seed"], int(unit["reads"]),
        unit["decomposed"], unit["warm_start"], best, float(energies.mean()) if energies.size else math.nan,
        ref.energy, ref.provenance, ref.method, residual_gap(best, ref.energy),
        float(np.mean(residual_gap(energies, ref.energy))) if energies.size else math.nan, p,
        success_probability(energies, ref.energy, loose, noise), unit["solver_s"], unit["wall_s"],
        tts99(unit["solver_s"] / reads, p, _call(unit, unit["solver_s"])),
        tts99(unit["wall_s"] / reads, p, _call(unit, unit["wall_s"])), unit["qpu_access_s"],
        info.get("chain_break_fraction"), info.get("chain_strength"), qubits, info.get("reps"),
        info.get("shots"), info.get("optimizer_evals"), info.get("circuit_depth"), info.get("rounds"),
        info.get("backend_calls"), _ratio(best, instance.baselines.get("rtn")),
        _ratio(best, instance.baselines.get("gptq")))


def _call(unit: dict, seconds: float) -> float | None:
    """One call's time where it floors the backend's TTS99 (:data:`qannealq.metrics.ONE_CALL_FLOOR`: the unit says,
    one stored before it did goes by its backend's name), else None."""
    return seconds if unit.get("one_call_floor", unit["backend"] in ONE_CALL_FLOOR) else None


def _ratio(value: float, base: float | None) -> float:
    return value / base if base else math.nan


def _neuron(rows: list[CompareRow], units: list[dict], instance: NeuronInstance, eps: float,
            loose: float, noise: float) -> NeuronSummary:
    energies = np.concatenate([np.asarray(u["energies"], dtype=np.float64) for u in units])
    reads = max(int(energies.size), 1)
    first, ref = rows[0], rows[0].reference_energy
    p = success_probability(energies, ref, eps, noise)
    # calls that returned no sample (a time-limited solver that found none): NaN, as their rows have
    best, mean = (float(energies.min()), float(energies.mean())) if energies.size else (math.nan, math.nan)
    solver, wall = sum(r.solver_seconds for r in rows), sum(r.wall_seconds for r in rows)
    return NeuronSummary(
        first.backend, first.instance, first.num_variables, len(rows), int(energies.size), best,
        mean, ref, first.reference_provenance, residual_gap(best, ref), p,
        success_probability(energies, ref, loose, noise),
        tts99(solver / reads, p, _call(units[0], solver / len(rows))),
        tts99(wall / reads, p, _call(units[0], wall / len(rows))), _ratio(best, instance.baselines.get("rtn")),
        _ratio(best, instance.baselines.get("gptq")), any(r.decomposed for r in rows))  # the pooled best's error


def _median_spread(values: Sequence[float]) -> tuple[float, tuple[float, float]]:
    """The median of the values that are not NaN (of an even count, the mean of the two middle ones, as
    ``np.nanmedian`` and the plots) and their 25th/75th percentiles, observed values (no interpolation: an
    infinite TTS stays inf, where interpolating between two would give NaN)."""
    x = np.asarray(values, dtype=np.float64)
    x = x[~np.isnan(x)]
    if x.size == 0:
        return math.nan, (math.nan, math.nan)
    q25, q75 = np.percentile(x, [25, 75], method="nearest")
    return float(np.median(x)), (float(q25), float(q75))


def backend_summaries(neurons: Sequence[NeuronSummary], group: Callable[[NeuronSummary], str] = lambda n: ""
                      ) -> list[BackendSummary]:
    """Per backend (and ``group`` of instances, e.g. by size): medians over neurons with their spread."""
    keys = list(dict.fromkeys((n.backend, group(n)) for n in neurons))
    out = []
    for backend, name in keys:
        sel = [n for n in neurons if n.backend == backend and group(n) == name]
        sizes = [n.num_variables for n in sel]
        gap, gap_s = _median_spread([n.residual_gap for n in sel])
        p, p_s = _median_spread([n.success_probability for n in sel])
        ts, ts_s = _median_spread([n.tts99_solver_seconds for n in sel])
        tw, tw_s = _median_spread([n.tts99_wall_seconds for n in sel])
        variables = f"{min(sizes)}" if min(sizes) == max(sizes) else f"{min(sizes)}-{max(sizes)}"
        loose = _median_spread([n.success_probability_loose for n in sel])[0]
        out.append(BackendSummary(backend, name, len(sel), variables, sum(n.decomposed for n in sel), gap, gap_s,
                                  p, p_s, loose, ts, ts_s, tw, tw_s, _median_spread([n.error_vs_rtn for n in sel])[0],
                                  _median_spread([n.error_vs_gptq for n in sel])[0]))
    return out


@dataclass
class CompareResult:
    """What :func:`qannealq.compare.compare_backends` returns (and ``compare.json`` holds)."""

    rows: list[CompareRow]
    neurons: list[NeuronSummary]
    backends: list[BackendSummary]
    references: dict[str, Reference]
    skipped: dict[str, str]
    units: list[dict]
    settings: dict

    def write(self, out: Path) -> list[Path]:
        """``compare.csv`` and ``compare.json`` into ``out`` (atomically); returns their paths."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        buffer = io.StringIO()
        writer = csv.writer(buffer, lineterminator="\n")
        writer.writerow(CSV_COLUMNS)
        for row in self.rows:
            writer.writerow(["" if v is None else v for v in (getattr(row, c) for c in CSV_COLUMNS)])
        atomic_write(out / "compare.csv", buffer.getvalue())
        payload = {"settings": self.settings, "skipped": self.skipped,
                   "references": {k: v.to_dict() for k, v in self.references.items()},
                   "backends": [asdict(b) for b in self.backends], "neurons": [asdict(n) for n in self.neurons],
                   "rows": [asdict(r) for r in self.rows], "units": self.units}
        text = json.dumps(_finite(payload), indent=1, default=lambda v: _finite(json_default(v)), allow_nan=False)
        atomic_write(out / "compare.json", text)
        return [out / "compare.csv", out / "compare.json"]


def _finite(value: Any) -> Any:
    """``value`` with every non-finite float as the string ``"inf"``, ``"-inf"`` or ``"nan"`` (Python's
    ``float()`` reads them back): strict JSON has no such numbers, and ``json.dumps`` wrote ``Infinity`` and
    ``NaN``, which ``JSON.parse`` and other strict parsers refuse (an infinite TTS99 is common: p = 0)."""
    if isinstance(value, dict):
        return {k: _finite(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_finite(v) for v in value]
    if isinstance(value, (float, np.floating)) and not math.isfinite(value):
        return str(float(value))
    return value


def summarise(instances: Sequence[NeuronInstance], refs: dict[str, Reference], units: list[dict],
              settings: Any, skipped: dict[str, str], backends: list[str]) -> CompareResult:
    """Rows and summaries from raw units, against references settled with every backend's best energy."""
    by_name = {i.name: i for i in instances}
    noise = {i.name: energy_noise(i.bqm) for i in instances}  # an optimum of 0 computed as 1e-16 is one
    final = {}
    for name, ref in refs.items():
        found = {}
        for u in units:
            if u["instance"] == name and u["energies"]:
                found[u["backend"]] = min(found.get(u["backend"], math.inf), min(u["energies"]))
        final[name] = settle(ref, found, noise[name])
    rows = [_row(u, by_name[u["instance"]], final[u["instance"]], settings.eps, settings.loose_eps,
                 noise[u["instance"]]) for u in units]
    neurons = []
    for backend in backends:
        for instance in instances:
            pick = [k for k, u in enumerate(units) if u["backend"] == backend and u["instance"] == instance.name]
            if pick:
                neurons.append(_neuron([rows[k] for k in pick], [units[k] for k in pick], instance, settings.eps,
                                       settings.loose_eps, noise[instance.name]))
    return CompareResult(rows, neurons, layer_summaries(neurons), final, skipped, units, settings.stored())


def layer_summaries(neurons: Sequence[NeuronSummary]) -> list[BackendSummary]:
    """:func:`backend_summaries` per backend, and per layer (:func:`size_group`, the ``group`` column) where the
    neurons come from two or more layers."""
    several = len({size_group(n.instance) for n in neurons}) > 1
    return backend_summaries(neurons, (lambda n: size_group(n.instance)) if several else lambda n: "")


def size_group(instance: str) -> str:
    """The group of neurons an instance belongs to: its name without the neuron and the bit width
    (``mnist-L0-int2-n3`` -> ``mnist-L0``: one model's layer, whose neurons share their size). Where a comparison
    holds several (``--instances`` of the benchmark library), its summary has a row per backend and group, and
    ``scaling.png`` draws the groups against their sizes."""
    return re.sub(r"(-int\d+)?-n\d+$", "", instance)


def _fmt(value: float) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "-"
    if math.isinf(value):
        return "inf"
    return f"{value:.3g}"


def _cell(median: float, spread: tuple[float, float]) -> str:
    return f"{_fmt(median)} [{_fmt(spread[0])}, {_fmt(spread[1])}]"


def format_summary(result: CompareResult, backends: Sequence[BackendSummary] | None = None) -> str:
    """The summary table printed at the end of ``qannealq compare`` (medians over neurons, [25th, 75th]).

    ``backends``: summaries to show (default: ``result.backends``, one per backend; see
    :func:`backend_summaries` for groups). The ``group`` column is left out when no summary has one.
    """
    backends = result.backends if backends is None else list(backends)
    cols = ("backend", "group", "neurons", "vars", "residual gap", "p (success)", "p (loose)", "TTS99 solver s",
            "TTS99 wall s", "E/E_rtn", "E/E_gptq")
    table = [cols]
    for b in backends:
        table.append((b.backend + ("*" if b.decomposed else ""), b.group, str(b.neurons), b.variables,
                      _cell(b.median_gap, b.gap_spread), _cell(b.median_p, b.p_spread), _fmt(b.median_p_loose),
                      _cell(b.median_tts99_solver, b.tts99_solver_spread),
                      _cell(b.median_tts99_wall, b.tts99_wall_spread), _fmt(b.median_error_vs_rtn),
                      _fmt(b.median_error_vs_gptq)))
    if not any(b.group for b in backends):
        table = [r[:1] + r[2:] for r in table]
    widths = [max(len(r[k]) for r in table) for k in range(len(table[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in table]
    lines.insert(1, "-" * len(lines[0]))
    provs = [r.provenance for r in result.references.values()]
    lines.append(f"reference optima: {provs.count('proven')} proven, {provs.count('best-known')} best-known; "
                 "cells: median over neurons [25th, 75th percentile]; * = decomposed on neurons above the backend's "
                 "capacity")
    eps, loose = result.settings.get("eps"), result.settings.get("loose_eps")
    if eps is not None and loose is not None:  # the targets p and p (loose) count, as --eps and --loose-eps set them
        lines.append(f"success: a read with E <= E_ref + {eps:g} |E_ref| (p), and + {loose:g} |E_ref| (p (loose)), "
                     "each + the float noise of the neuron's energies")
    for name, reason in result.skipped.items():
        lines.append(f"skipped {name}: {reason}")
    return "\n".join(lines)
