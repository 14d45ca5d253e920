"""The tight path against the population, each forced, side by side: where this machine's crossover lies.

Before a population (layers of 1024 inputs or more: CIFAR-10's first), ``layer-sa`` under a ``time_limit`` takes
the tight path (its beam, the polish and a greedy descent by chains) where the time left once the warm start's
fixed costs (its factorizations) are paid is under a threshold times those costs
(:data:`qannealq.backends.layer_sa.POPULATION_TIGHT`, ``THOROUGH_TIGHT`` for ``thorough``; ``ONE_THREAD_TIGHT``
times that on one thread), and the beam's share and a population after it where it is not. The crossover is the
machine's, its searches' speed against its factorizations', and the thread count's (docs/layer-sa.md, "The tight
thresholds on a second machine" and "One thread"): this script measures it. For each limit (``--limits``, GPTQ
times: GPTQ's fastest of ``--gptq-runs`` at the start) it solves the layer with the threshold forced to 0 (the
population) and to 1e9 (the tight path), alternating in one process, ``--repeats`` rounds, after one run left out
(the first loading of the compiled code). Per limit it prints the fixed costs left as the runs read them at the
decision (their median), each regime's median error above the reference and its range, the regime the threshold
in force takes there, and last the crossover: where the medians' difference changes sign, interpolated in fixed
costs left. The reference is ``--reference`` (a best-known total per bit width, e.g. the frontier's), else the
lowest error of the runs here.

The fixed costs left are read by wrapping :meth:`qannealq._deadline.Deadline.search_seconds`' reading
(``Deadline._search``) for the run's own deadline, and each regime is forced by patching the module's constant: a
measuring tool, not a way to run ``layer-sa``.

Run: ``.venv/bin/python benchmarks/tight_regimes.py --bits 4 --limits 10,14,18,22`` (CIFAR-10's first layer from
the datasets, or ``--load DIR`` for a ``benchmarks/gpu_layer.py --save`` file; about a minute a limit and bit width
at three rounds on two cores). On one thread (``--threads 1``) the crossover lies further out: limits such as
14,18,24,30.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from contextlib import contextmanager
from pathlib import Path
from typing import Iterator

import qannealq  # noqa: F401  (first: it shortens OpenBLAS's spin before numpy loads it, qannealq.BLAS_SPIN)

from _threads import count, pinned  # benchmarks/_threads.py, beside this script
from frontier import first_layer, timed
from gpu_layer import load, problems
from time_limits import by_layer
from qannealq import _deadline
from qannealq.backends import get_sampler, layer_sa
from qannealq.formulation import LayerProblem

#: The forced thresholds: 0, every time left is ample (the population); 1e9, every one is tight.
FORCED = {"population": 0.0, "tight": 1e9}


@contextmanager
def costs_left(seen: list[float]) -> Iterator[None]:
    """Within the block, each decision a deadline with a tight regime takes appends the time left over the
    search's fixed costs, as it read them, to ``seen``."""
    original = _deadline.Deadline._search

    def reading(self, fixed, scale, rows):
        out = original(self, fixed, scale, rows)
        if self.tight_share is not None and fixed > 0:
            seen.append(self.left() / fixed)
        return out

    _deadline.Deadline._search = reading
    try:
        yield
    finally:
        _deadline.Deadline._search = original


@contextmanager
def forced(name: str, value: float) -> Iterator[None]:
    """``layer_sa``'s threshold ``name`` set to ``value`` within the block."""
    before = getattr(layer_sa, name)
    setattr(layer_sa, name, value)
    try:
        yield
    finally:
        setattr(layer_sa, name, before)


def crossover(rows: list[dict]) -> float | None:
    """Where the tight path stops winning: the fixed costs left at which the medians' difference (tight less
    population) first turns from below 0 to above it, interpolated; None where it does not change sign."""
    for a, b in zip(rows, rows[1:]):
        da, db = a["tight"] - a["population"], b["tight"] - b["population"]
        if da <= 0 < db:
            return a["left"] + (b["left"] - a["left"]) * (-da) / (db - da)
    return None


def regimes(problem: LayerProblem, bits: int, args: argparse.Namespace, out: list[dict]) -> None:
    """Both regimes at each limit on one layer at one bit width, printed and appended to ``out``."""
    sampler = get_sampler("layer-sa")
    options = {"effort": args.effort, "num_threads": args.threads}
    probe = sampler.warm_start_deadline(problem.num_coordinates, time_limit=1.0, **options)
    if probe.share != layer_sa.POPULATION_SHARE or probe.tight_share != layer_sa.DESCENT_SHARE:
        sys.exit(f"--dataset: its first layer ({problem.num_coordinates} inputs) takes no population with "
                 f"effort {args.effort!r}: there is no crossover to measure (a population needs 1024 inputs or more)")
    name = "THOROUGH_TIGHT" if args.effort == "thorough" else "POPULATION_TIGHT"
    gptq = min(timed(problem, "gptq", None, args.seed)[1] for _ in range(args.gptq_runs))
    print(f"int{bits}: GPTQ {gptq:.3f} s; threshold in force {probe.tight:g} fixed costs left ({name}"
          f"{', times ONE_THREAD_TIGHT' if probe.tight != getattr(layer_sa, name) else ''})", flush=True)
    timed(problem, "qubo", "layer-sa", args.seed, time_limit=args.limits[0] * gptq, **options)  # loads the code
    runs: dict[tuple[float, str], list[tuple[float, float, float, str]]] = {}
    for r in range(args.repeats):
        for k in args.limits:
            for regime, value in FORCED.items():
                seen: list[float] = []
                with forced(name, value), costs_left(seen):
                    result, seconds = timed(problem, "qubo", "layer-sa", args.seed + r, time_limit=k * gptq,
                                            **options)
                error = float(result.errors.sum())
                left = seen[0] if seen else float("nan")
                took = "tight" if result.info.get("params", {}).get("start_tight") else "population"
                runs.setdefault((k, regime), []).append((error, seconds, left, took))
                print(f"  {k:g}x ({seconds:.2f} s, {left:.1f} fixed costs left) {regime:<10} error {error:.6g}"
                      f"{'' if took == regime else f' (took the {took} path)'}", flush=True)
    reference = args.reference.get(str(bits)) or min(e for v in runs.values() for e, *_ in v)
    above = {key: [100 * (e / reference - 1) for e, *_ in v] for key, v in runs.items()}
    rows = []
    for k in args.limits:
        left = statistics.median(x for regime in FORCED for _, _, x, _ in runs[(k, regime)])
        row = {"bits": bits, "limit": k, "left": left, "gptq_seconds": gptq, "threshold": probe.tight,
               "reference": reference, **{regime: statistics.median(above[(k, regime)]) for regime in FORCED},
               "runs": {regime: runs[(k, regime)] for regime in FORCED}}
        rows.append(row)
        out.append(row)
    print(f"int{bits}, above {'the reference given' if str(bits) in args.reference else 'the lowest here'} "
          f"({reference:.6g}), medians of {args.repeats}:")
    print(f"  {'limit':>6} {'costs left':>10} {'population':>18} {'tight path':>18} {'in force':>10}")
    for row in rows:
        spread = {regime: f"{row[regime]:.2f} ({min(above[(row['limit'], regime)]):.1f}-"
                          f"{max(above[(row['limit'], regime)]):.1f})" for regime in FORCED}
        takes = "tight" if row["left"] < probe.tight else "population"
        print(f"  {row['limit']:>5g}x {row['left']:>10.1f} {spread['population']:>18} {spread['tight']:>18} "
              f"{takes:>10}")
    point = crossover(rows)
    print(f"  crossover: {'about %.1f fixed costs left' % point if point is not None else 'not within these limits'}"
          f"; threshold in force {probe.tight:g}", flush=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--dataset", default="cifar10")
    parser.add_argument("--data-dir", default=None, help="the datasets' folder (default: as the CLI's)")
    parser.add_argument("--load", type=Path, default=None,
                        help="read the layer from LOAD/<dataset>.npz (benchmarks/gpu_layer.py --save)")
    parser.add_argument("--bits", type=lambda t: [int(b) for b in t.split(",")], default=[4, 2])
    parser.add_argument("--effort", choices=("default", "thorough"), default="default")
    parser.add_argument("--limits", type=lambda t: sorted(float(k) for k in t.split(",") if k),
                        default=[10.0, 14.0, 18.0, 22.0], help="GPTQ times, e.g. 10,14,18,22")
    parser.add_argument("--threads", type=int, default=None, help="layer-sa's num_threads (default: one per core)")
    parser.add_argument("--blas-threads", type=count, default=1)
    parser.add_argument("--gptq-runs", type=int, default=3)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--reference", type=by_layer("best-known total energies", "0.0633835", "4", "bit widths"),
                        default={},
                        help='best-known totals per bit width, e.g. \'{"4": 0.0633835, "2": 1.2347}\'')
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, default=None, help="also write every row and run to this file")
    args = parser.parse_args()
    if not args.limits or min(args.limits) <= 0:
        parser.error("--limits: give GPTQ times above 0, e.g. 10,14,18,22")
    if args.repeats < 1 or args.gptq_runs < 1:
        parser.error("--repeats and --gptq-runs: at least 1")
    if args.threads is not None and args.threads < 1:
        parser.error("--threads: at least 1 (or leave it out: one per core)")
    unknown = sorted(set(args.reference) - {str(b) for b in args.bits})
    if unknown:  # taken silently: the table then read 'above the lowest here'
        parser.error(f"--reference names {', '.join(unknown)}, not among this run's bit widths "
                     f"({', '.join(map(str, args.bits))})")
    layers = (problems(load(args.load / f"{args.dataset}.npz"), args.bits) if args.load is not None
              else first_layer(args.dataset, args.bits, args.data_dir, args.seed))
    out: list[dict] = []
    with pinned(args.blas_threads) as line:
        print(f"{line}; layer-sa threads {args.threads or 'one per core'}; effort {args.effort}", flush=True)
        for bits in args.bits:
            regimes(layers[bits], bits, args, out)
            if args.json:
                args.json.write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
