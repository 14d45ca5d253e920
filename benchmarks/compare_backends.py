"""The fixed backend study on the benchmark library: quality and time-to-solution per backend and size.

Instances: the library of :data:`qannealq.export.LIBRARY` (built here from the cached models, or read from a
folder exported by ``qannealq export --library --out DIR`` with ``--instances DIR``):

* ``17``: digits 4x4, first layer, int2 and int4, neurons 0-7 (14-17 variables; optimum proven by ``exact``);
* ``60``: digits 8x8, first layer, int2 and int4, neurons 0-7 (58-61 variables; best-known);
* ``600``: MNIST's first layer, int4, neurons 0-3 (599 variables; best-known).

Every offline backend runs on every size it can: ``qaoa`` directly on the 17-variable set and through the
capacity-aware decomposition (sub-problems of 12 qubits, at most 20 calls per neuron) on 4 of the 60-variable
neurons; ``dwave-mock`` directly up to 180 variables and decomposed on MNIST; ``exact`` directly on 17 and
decomposed (sub-problems of 16) on 60; ``gurobi`` with a time limit per call (decomposed at 200 on MNIST).
All from scratch (no warm start; the decomposition starts from a greedy descent) unless ``--warm-start``.
Results per group go to ``--out/<group>/`` (``compare.csv``, ``compare.json``, plots; a rerun into the same
``--out`` continues each group whose store is there: there is no ``--resume`` flag), and the tables are
printed and written to ``--out/results.md``. Run::

    .venv/bin/python benchmarks/compare_backends.py --out runs/compare-study
"""

from __future__ import annotations

import argparse
import datetime
import os
import platform
import sys
import time
from dataclasses import dataclass, field, replace
from pathlib import Path


from qannealq._compare_reference import ReferenceOptions
from qannealq._compare_report import CompareResult, backend_summaries, format_summary, layer_summaries
from qannealq._compare_plots import plot_all, plot_scaling
from qannealq.compare import CompareSettings, compare_backends
from qannealq.export import LIBRARY, library_instances, load_instances
from qannealq.store import atomic_write
from _threads import count, pinned  # benchmarks/_threads.py, beside this script


@dataclass(frozen=True)
class Group:
    """One comparison: instances of a size, the backends run on them and their options."""

    name: str
    size: str
    entries: tuple
    backends: tuple[str, ...]
    repeats: int
    neurons: tuple[int, ...] | None = None
    options: dict = field(default_factory=dict)
    capacity: dict = field(default_factory=dict)
    max_calls: int = 100
    reference: ReferenceOptions = field(default_factory=ReferenceOptions)
    references_from: str | None = None  # the group run before it whose reference optima it takes


CLASSICAL = ("sa", "tabu", "steepest")
STUDY = (
    Group("digits4x4", "17", LIBRARY[0:2], (*CLASSICAL, "exact", "gurobi", "qaoa", "dwave-mock", "layer-sa"), 2,
          options={"qaoa": {"maxiter": 20}}),
    Group("digits8x8", "60", LIBRARY[2:4], (*CLASSICAL, "exact", "gurobi", "dwave-mock", "layer-sa"), 2,
          options={"gurobi": {"time_limit": 2.0}}, max_calls=40,
          reference=ReferenceOptions(proof_seconds=5.0)),
    Group("digits8x8-qaoa", "60", LIBRARY[2:4], ("qaoa",), 1, neurons=(0, 1), options={"qaoa": {"maxiter": 10}},
          capacity={"qaoa": 12}, max_calls=20, reference=ReferenceOptions(proof_seconds=0, long_reads=1,
                                                                            long_sweeps=1),
          references_from="digits8x8"),
    Group("mnist", "600", LIBRARY[4:5], (*CLASSICAL, "gurobi", "dwave-mock", "layer-sa"), 2,
          options={"gurobi": {"time_limit": 1.0}}, max_calls=10),
)


def groups_of(text: str) -> list[Group]:
    """An argparse type for ``--groups``: the named groups of :data:`STUDY`, in its order (a name not in it was
    dropped: ``--groups foo`` ran nothing and then failed to write ``results.md``, blaming the disk), each with
    the group whose references it takes (``digits8x8-qaoa`` alone measured its gaps against its own one-read
    search)."""
    names = [name.strip() for name in text.split(",") if name.strip()]
    known = [g.name for g in STUDY]
    unknown = [name for name in names if name not in known]
    if unknown or not names:
        what = f"unknown group(s) {', '.join(unknown)}" if unknown else "no group"
        raise argparse.ArgumentTypeError(f"{text!r}: {what}; choose from {', '.join(known)} (comma-separated)")
    for group in STUDY:  # alone, its own search (1 read of 1 sweep) gave references 10-45 % above digits8x8's
        if group.name in names and group.references_from not in (None, *names):
            raise argparse.ArgumentTypeError(
                f"{text!r}: group {group.name} takes its reference optima from group {group.references_from}: "
                f"add {group.references_from} (resumed from --out where it already ran)")
    return [g for g in STUDY if g.name in names]


def _matches(meta: dict, entry) -> bool:
    return (str(meta["dataset"]).startswith(entry.dataset) and meta.get("input_size") == entry.input_size
            and meta["layer"] == entry.layer and meta["bits"] == entry.bits)


def instances_of(group: Group, library: list | None, done: dict) -> list:
    """The group's instances (from the exported library when given), with references known from earlier groups."""
    pool = library if library is not None else library_instances(group.entries)
    picked = [i for i in pool if any(_matches(i.meta, e) for e in group.entries)]
    if group.neurons is not None:
        picked = [i for i in picked if i.meta["neuron"] in group.neurons]
    for inst in picked:
        if inst.name in done:
            inst.reference = done[inst.name]
    return picked


def run_group(group: Group, args: argparse.Namespace, library: list | None, done: dict) -> CompareResult:
    instances = instances_of(group, library, done)
    options = dict(group.options)
    if "layer-sa" in group.backends:
        options["layer-sa"] = {"num_threads": args.threads}
    settings = CompareSettings(reads=args.reads, repeats=group.repeats, seed=args.seed,
                               warm_start=args.warm_start, sampler_options=options, capacity=group.capacity,
                               max_calls=group.max_calls, reference=group.reference)
    out = args.out / group.name
    t0 = time.perf_counter()
    result = compare_backends(instances, list(group.backends), settings, out, resume=(out / "store.json").exists(),
                              source={"group": group.name, "library": [str(e) for e in group.entries]})
    result.write(out)
    plot_all(result, out)
    done.update(result.references)
    print(f"{group.name}: {len(instances)} neurons, {time.perf_counter() - t0:.0f} s", flush=True)
    return result


def markdown(results: list[tuple[Group, CompareResult]]) -> str:
    """Per backend and size: median residual gap, p (and at 1 %), TTS99 (solver, wall); medians over neurons."""
    lines = ["| size (variables) | backend | neurons | reference | median gap [25th, 75th] | median p | p (1 %) | "
             "TTS99 solver s | TTS99 wall s | E / E_GPTQ |",
             "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |"]
    for group, result in results:
        provs = {r.provenance for r in result.references.values()}
        for b in backend_summaries(result.neurons):
            name = b.backend + (f" (decomposed, {b.decomposed}/{b.neurons})" if b.decomposed else "")
            lines.append(f"| {group.size} ({b.variables}) | {name} | {b.neurons} | {'/'.join(sorted(provs))} | "
                         f"{_f(b.median_gap)} [{_f(b.gap_spread[0])}, {_f(b.gap_spread[1])}] | {_f(b.median_p)} | "
                         f"{_f(b.median_p_loose)} | "
                         f"{_f(b.median_tts99_solver)} | {_f(b.median_tts99_wall)} | {_f(b.median_error_vs_gptq)} |")
    return "\n".join(lines)


def _f(value: float) -> str:
    return "inf" if value == float("inf") else ("-" if value != value else f"{value:.3g}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=Path("runs/compare-study"))
    parser.add_argument("--instances", type=Path, default=None, help="an exported library folder")
    parser.add_argument("--groups", type=groups_of, default=",".join(g.name for g in STUDY),
                        help="comma list of groups to run")
    parser.add_argument("--reads", type=count, default=10)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--warm-start", action="store_true", help="give GPTQ-restricted starts to backends")
    parser.add_argument("--threads", type=count, default=2, help="BLAS and layer-sa threads")
    parser.add_argument("--quick", action="store_true",
                        help="1 repeat, the first neuron of each instance (a smoke run)")
    args = parser.parse_args()
    groups = args.groups
    if args.quick:
        groups = [replace(g, repeats=1, neurons=(0,), max_calls=min(g.max_calls, 5),
                          reference=replace(g.reference, proof_seconds=min(g.reference.proof_seconds, 1.0),
                                            long_reads=4, long_sweeps=100)) for g in groups]
    library = load_instances(args.instances) if args.instances else None
    with pinned(args.threads) as threads:
        header = (f"date {datetime.date.today()}, machine {platform.machine()} {os.cpu_count()} cores "
                  f"({platform.processor() or platform.platform()}), threads: {threads}, layer-sa "
                  f"num_threads={args.threads}; command: {' '.join([Path(sys.executable).name, *sys.argv])}")
        print(header, flush=True)
        done: dict = {}
        results = [(g, run_group(g, args, library, done)) for g in groups]
    for group, result in results:
        print(f"\n== {group.name} ({group.size} variables) ==\n{format_summary(result)}")
    table = markdown(results)
    print("\n" + table)
    atomic_write(args.out / "results.md", header + "\n\n" + table + "\n")
    if results:  # every group's neurons in one plot: each backend's gap and TTS99 against the size
        neurons = [n for _, result in results for n in result.neurons]
        combined = replace(results[0][1], neurons=neurons, backends=layer_summaries(neurons))
        scaling = plot_scaling(combined, args.out / "scaling.png")
        if scaling is not None:
            print(f"wrote {scaling}")


if __name__ == "__main__":
    main()
