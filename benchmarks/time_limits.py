"""``layer-sa`` under a time limit: the error reached against the limit, on the first layers of the MNIST
(784-128-10) and CIFAR-10 (3072-512-10) MLPs at int4 and int2.

The layers are :mod:`frontier`'s (its models and calibration draw: 1024 images, float calibration). On each, in
this one process: GPTQ, timed ``--gptq-runs`` times at the start and twice more before each round, alternating 1
and 2 BLAS threads (its best time so far sets the round's limits); ``fast``, ``fast`` with a beam of 32, and the
``default`` and ``thorough`` presets unbounded, once; then ``--repeats`` rounds of the default under limits of
``--default-limits`` GPTQ times and ``thorough`` under ``--thorough-limits``, interleaved. Every run goes through
:func:`qannealq.solve.quantize_layer` (:func:`frontier.timed`), so a limit covers the whole layer, the warm start
included.

The reference is each neuron's lowest energy over every run here (the unbounded ``thorough`` run mostly): a
weaker one than :mod:`frontier`'s long runs, which this script does not repeat (``--reference`` takes a best-known
total instead, e.g. the frontier's, where the layer is the same). Per point it prints the limit, the seconds taken
(in GPTQ times, the median and range over the rounds), the error above the reference (median and range) and how
many rounds were ``late`` (the search the polish alone: :data:`qannealq.backends.layer_sa.LATE_SHARE`). Results go
to ``--out`` as JSON, one file per layer and bit width. ``--gptq-seconds`` gives each layer's unit in seconds in
place of GPTQ's time measured here: that time moves between invocations (9-15 ms on MNIST's layer on this
project's machines), and every limit in seconds with it, so two codes compared in two invocations should run the
same limits.

Run: ``.venv/bin/python benchmarks/time_limits.py`` (about 17 min on 2 cores; ``--datasets mnist``: 2 min).
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path
from typing import Callable

import qannealq  # noqa: F401  (first: it shortens OpenBLAS's spin before numpy loads it, qannealq.BLAS_SPIN)
import numpy as np

from _threads import count, pinned  # benchmarks/ is the script's folder
from frontier import first_layer, layer_arguments, timed
from qannealq.backends import get_sampler
from qannealq.formulation import LayerProblem


def limits(text: str) -> list[float]:
    """``"5,10"`` -> ``[5.0, 10.0]`` (GPTQ times, each > 0)."""
    values = [float(t) for t in text.split(",") if t.strip()]
    if not values or any(v <= 0 for v in values):
        raise argparse.ArgumentTypeError(f"{text!r}: give limits in GPTQ times, each > 0, comma-separated")
    return values


def by_layer(what: str, example: str, key: str = "mnist4",
             keys: str = "layer names (dataset and bit width, e.g. mnist4)") -> Callable[[str], dict[str, float]]:
    """A parser of ``'{"mnist4": 0.012}'`` -> ``{"mnist4": 0.012}``: ``what`` per layer (``keys``: dataset and bit
    width here; ``tight_regimes.py``'s bit widths), each a finite number > 0, refused when the option is read (a
    reference of 0 or a string was taken as given and printed every error as "inf %" or failed after the whole
    run)."""
    def parse(text: str) -> dict[str, float]:
        try:
            given = json.loads(text)
        except json.JSONDecodeError as exc:
            raise argparse.ArgumentTypeError(f"{text!r} is not JSON ({exc}): give e.g. '{{\"{key}\": {example}}}'")
        if not isinstance(given, dict) or not all(isinstance(v, (int, float)) and not isinstance(v, bool)
                                                  and np.isfinite(v) and v > 0 for v in given.values()):
            raise argparse.ArgumentTypeError(f"{text!r}: give a JSON object of {keys} to {what}, each > 0")
        return {str(k): float(v) for k, v in given.items()}
    return parse


#: ``--gptq-seconds``: GPTQ's seconds per layer.
unit_seconds = by_layer("GPTQ's seconds", "0.012")
#: ``--reference``: the best-known total energy per layer.
references = by_layer("best-known total energies", "0.171769")


def run(problem: LayerProblem, method: str, seed: int, threads: int, **options) -> tuple[np.ndarray, float, dict]:
    """Per-neuron errors, wall seconds and ``info`` of one run through the solve loop (:func:`frontier.timed`:
    a fresh copy of the problem); ``method`` "qubo" runs ``layer-sa`` on ``threads`` threads with ``options``."""
    layer_sa = method == "qubo"
    result, seconds = timed(problem, method, "layer-sa" if layer_sa else None, seed,
                            **({"num_threads": threads, **options} if layer_sa else {}))
    return result.errors, seconds, dict(result.info or {})


def gptq_time(problem: LayerProblem, runs: int, seed: int) -> float:
    """GPTQ's best wall time over ``runs`` runs, alternating 1 and 2 BLAS threads (GPTQ at its fastest: 1.4x faster
    on two on CIFAR-10's layer when the other core is idle, slower on MNIST's; :mod:`frontier`)."""
    from threadpoolctl import threadpool_limits

    best = np.inf
    for k in range(runs):
        with threadpool_limits(1 + k % 2):
            best = min(best, run(problem, "gptq", seed, 1)[1])
    return best


def measure(dataset: str, bits: int, problem: LayerProblem, args: argparse.Namespace) -> dict:
    """Every point of one layer (see the module docstring). Where ``--gptq-seconds`` gives the layer's GPTQ time,
    that is the unit of every limit and ratio (the same limits in seconds in every invocation); GPTQ is still
    timed once, to print the machine's pace beside it."""
    fixed = args.gptq_seconds.get(f"{dataset}{bits}")
    gptq = gptq_time(problem, args.gptq_runs, args.seed)
    print(f"{dataset} int{bits}: GPTQ {gptq:.3f} s (best of {args.gptq_runs})"
          + ("" if fixed is None else f"; the unit: {fixed:.3f} s (--gptq-seconds)"), flush=True)
    gptq = gptq if fixed is None else fixed
    points: list[dict] = []

    def keep(label: str, limit: float | None, errors: np.ndarray, seconds: float, info: dict) -> None:
        points.append({"label": label, "limit_x": limit, "seconds": seconds, "gptq_seconds": gptq,
                       "energies": errors.tolist(), "late": bool(info.get("late", False)),
                       "time_limited": bool(info.get("time_limited"))})
        shown = f"limit {limit:g}x GPTQ, " if limit is not None else ""
        print(f"  {label} ({shown}{seconds:.3g} s = {seconds / gptq:.2f}x GPTQ): error {errors.sum():.6g}"
              f"{' (late)' if points[-1]['late'] else ''}", flush=True)

    for label, options in (("fast", {"effort": "fast"}), ("fast, beam 32", {"effort": "fast", "warm_start_beam": 32}),
                           ("default", {}), ("thorough", {"effort": "thorough"})):
        keep(label, None, *run(problem, "qubo", args.seed, args.threads, **options))
    for round_ in range(args.repeats):
        if fixed is None:
            gptq = min(gptq, gptq_time(problem, 2, args.seed))  # the machine's pace between rounds
        for effort, chosen in (("default", args.default_limits), ("thorough", args.thorough_limits)):
            for x in chosen:
                keep(effort, x, *run(problem, "qubo", args.seed, args.threads, effort=effort,
                                     time_limit=x * gptq))
    given = args.reference.get(f"{dataset}{bits}")
    reference = float(np.min([p["energies"] for p in points], axis=0).sum() if given is None else given)
    return {"dataset": dataset, "bits": bits, "gptq_seconds": gptq, "reference": reference,
            "gptq_from": "best of this run" if fixed is None else "--gptq-seconds",
            "reference_from": "best of this run" if given is None else "--reference",
            "points": points, "date": time.strftime("%Y-%m-%d %H:%M")}


def table(record: dict) -> str:
    """The layer's points: limit, time (in GPTQ times, each against GPTQ's best time when it ran: median,
    range), error above the reference (median, range)."""
    gptq, ref = record["gptq_seconds"], record["reference"]
    rows = {}
    for p in record["points"]:
        rows.setdefault((p["label"], p["limit_x"]), []).append(p)
    lines = [f"### {record['dataset']} int{record['bits']}: GPTQ {gptq:.3f} s "
             f"({record.get('gptq_from', 'best of this run')}); reference {ref:.6g} ({record['reference_from']})", "",
             "| run | limit (GPTQ times) | time (GPTQ times) | above the reference | late |",
             "| --- | --- | --- | --- | --- |"]
    def spread(v: np.ndarray, f: str) -> str:  # the median, and the range over several rounds
        return f"{np.median(v):{f}}" + (f" ({v.min():{f}}–{v.max():{f}})" if v.size > 1 else "")

    for (label, limit), ps in rows.items():
        x = np.array([p["seconds"] / p["gptq_seconds"] for p in ps])
        e = 100 * (np.array([sum(p["energies"]) for p in ps]) / ref - 1)
        lines.append(f"| {label} | {'—' if limit is None else f'{limit:g}'} | {spread(x, '.2f')} | "
                     f"{spread(e, '.2f')} % | {sum(p['late'] for p in ps)}/{len(ps)} |")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    layer_arguments(parser)
    parser.add_argument("--blas-threads", type=count, default=1, help="BLAS threads of the layer-sa runs")
    parser.add_argument("--gptq-runs", type=count, default=6, help="GPTQ's timed runs before the points")
    parser.add_argument("--repeats", type=count, default=3, help="rounds of the time-limited points")
    parser.add_argument("--default-limits", type=limits, default=limits("5,6,7,8,10,15,20"),
                        help="the default's limits, in GPTQ times")
    parser.add_argument("--thorough-limits", type=limits, default=limits("4,9,15,30"),
                        help="thorough's limits, in GPTQ times")
    parser.add_argument("--reference", type=references, default={},
                        help='best-known totals instead of this run\'s best, e.g. \'{"mnist4": 0.171769}\'')
    parser.add_argument("--gptq-seconds", type=unit_seconds, default={},
                        help="GPTQ's time per layer as the unit of the limits, instead of this run's best, so that "
                             'invocations run the same limits in seconds, e.g. \'{"mnist4": 0.012, "mnist2": 0.012}\'')
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", type=Path, default=Path("runs/time_limits"))
    args = parser.parse_args()
    layers = {f"{d}{b}" for d in args.datasets.split(",") for b in args.bits}
    for name in ("reference", "gptq_seconds"):
        unknown = sorted(set(getattr(args, name)) - layers)
        if unknown:
            parser.error(f"--{name.replace('_', '-')} names {', '.join(unknown)}, not among this run's layers "
                         f"({', '.join(sorted(layers))}): name a layer by its dataset and bit width, e.g. mnist4")
    args.out.mkdir(parents=True, exist_ok=True)
    with pinned(args.blas_threads, torch_threads=args.blas_threads) as threads:
        print(f"threads: {threads}; layer-sa {args.threads}")
        get_sampler("layer-sa").sample_layer(first_layer("digits", [2], args.data_dir, 0)[2], seed=0)  # load kernel
        tables = []
        for dataset in args.datasets.split(","):
            for bits, problem in first_layer(dataset, args.bits, args.data_dir, args.seed).items():
                record = measure(dataset, bits, problem, args)
                (args.out / f"time_limits_{dataset}_int{bits}.json").write_text(json.dumps(record))
                tables.append(table(record))
                print(tables[-1], flush=True)
    (args.out / "time_limits.md").write_text("\n\n".join(tables) + "\n")


if __name__ == "__main__":
    main()
