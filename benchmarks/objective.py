"""The relu-aware objective against the paper's (preact), side by side: accuracy, time and memory.

For each dataset (the MLP and calibration draw of :mod:`qannealq.experiment`, seed 0, 1024 calibration
samples) and each of ``--seeds`` (the seed of the model's training, of the calibration draw and of the
solver), calibration mode and bit width, the script quantizes the whole network with RTN, GPTQ and the QUBO
route (``layer-sa`` from the default warm start, GPTQ-restricted in pivot order) under each objective, and
prints the test accuracies (mean ± std over the seeds), the QUBO's accuracy change relu-aware − preact and the
time ratio relu-aware / preact,
all measured in this one run. RTN does not depend on the objective. ``--inactive-weights``
runs relu-aware with several inactive weights (the README's choice of the default). ``--memory`` adds one
traced (tracemalloc: numpy and Python allocations) int2 QUBO run per objective, float calibration, with the
weighted statistics collected inside it, and one relu-aware run whose ``memory_limit`` (64 MiB) holds the
samples but not all ``H_i`` (those beyond it formed again at each use).

Every relu-aware row's layer errors are recomputed independently from the networks' activations (hooks on the
float and quantized models: Σ_s m_si (y_si − ŷ_si)² / N with ŷ the quantized layer applied to that layer's
calibration inputs) and the largest relative difference to the QUBO algebra is printed.

Rows go to ``--out`` (JSON lines) as they finish; a rerun skips the finished ones. ``--summary`` prints the
tables of a results file. Run: ``.venv/bin/python benchmarks/objective.py --datasets mnist --bits 1,2``.
"""

from __future__ import annotations

import argparse
import json
import time
import tracemalloc
from itertools import product
from dataclasses import replace
from pathlib import Path

import qannealq  # noqa: F401  (first: it shortens OpenBLAS's spin before numpy loads it, qannealq.BLAS_SPIN)
import numpy as np
import torch

from qannealq.calibration import as_calibration_tensor
from qannealq.experiment import calibrate, prepare
from qannealq.pipeline import quantize_model
from qannealq.weighted import DEFAULT_INACTIVE_WEIGHT, make_objective
from qannealq.weighted_calibration import with_weighted_stats
from _threads import count, pinned  # benchmarks/_threads.py, beside this script

DATASETS = ("digits", "mnist", "fashion-mnist", "emnist-letters")


def _list(kind):
    return lambda text: [kind(t) for t in text.split(",") if t.strip()]


def recompute_error(exp, result, objective) -> float:
    """The model's summed layer error from activations: weighted layers by the float neurons' activity."""
    x = as_calibration_tensor(exp.calibration)
    names = result.settings["layers"]
    float_mods, quant_mods = dict(exp.model.named_modules()), dict(result.model.named_modules())
    seen: dict[str, dict] = {n: {} for n in names}
    hooks = [float_mods[n].register_forward_hook(lambda m, i, o, _n=n: seen[_n].update(y=o, xf=i[0]))
             for n in names]
    hooks += [quant_mods[n].register_forward_hook(lambda m, i, o, _n=n: seen[_n].update(xq=i[0])) for n in names]
    with torch.no_grad():
        exp.model(x)
        result.model(x)
        total = 0.0
        for n in names:
            inputs = seen[n]["xf" if result.calibration == "float" else "xq"]
            y, y_hat = seen[n]["y"].double(), quant_mods[n](inputs).double()
            weight = torch.ones_like(y)
            if n in result.settings["weighted_layers"]:
                weight = torch.as_tensor(objective.sample_weights(y.numpy()))
            total += float((weight * (y - y_hat) ** 2).sum() / y.shape[0])
    for hook in hooks:
        hook.remove()
    return total


def _row(exp, calibration, bits, method, objective, seed, stats, threads) -> dict:
    kw = {"sampler": "layer-sa", "num_threads": threads} if method == "qubo" else {}
    result = quantize_model(exp.model, exp.calibration, bits, method, calibration=calibration, seed=seed,
                            objective=objective, float_stats=stats, **kw)
    seconds = result.seconds  # without the layers' warm-ups: preact ran first and paid them, relu/preact was low
    row = {"dataset": exp.name, "calibration": calibration, "bits": bits, "method": method, "seed": seed,
           **objective.describe(), "accuracy": exp.test_accuracy(result.model), "error": result.layer_error,
           "seconds": seconds}
    if objective.weighted:
        row["recomputed_error"] = recompute_error(exp, result, objective)
    return row


def _memory(exp, objective, threads) -> tuple[int, float]:
    """Peak traced bytes and seconds of one int2 QUBO run, float calibration, statistics collected inside."""
    tracemalloc.start()
    t0 = time.perf_counter()
    stats = with_weighted_stats(exp.model, exp.calibration, objective, calibrate(exp))
    quantize_model(exp.model, exp.calibration, 2, "qubo", seed=0, objective=objective, float_stats=stats,
                   num_threads=threads)
    seconds = time.perf_counter() - t0
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return peak, seconds


def run(args) -> None:
    done = set()
    if args.out.is_file():
        done = {_key(json.loads(line)) for line in args.out.read_text().splitlines() if line.strip()}
    goals = [make_objective("preact")] + [make_objective("relu-aware", w) for w in args.inactive_weights]
    with args.out.open("a") as fh:
        for dataset in args.datasets:
            data = None
            for seed in args.seeds:
                exp = prepare(dataset=dataset, data_dir=args.data_dir, seed=seed, data=data)
                data, plain = exp.data, calibrate(exp)
                for goal in goals:
                    stats = with_weighted_stats(exp.model, exp.calibration, goal, plain)
                    for calibration, bits, method in product(args.calibration, args.bits, ("rtn", "gptq", "qubo")):
                        row = {"dataset": exp.name, "calibration": calibration, "bits": bits, "method": method,
                               "seed": seed, **goal.describe()}
                        if (method == "rtn" and goal.weighted) or _key(row) in done:
                            continue
                        row = _row(exp, calibration, bits, method, goal, seed, stats, args.threads)
                        fh.write(json.dumps(row) + "\n")
                        fh.flush()
                        print(_line(row), flush=True)
                    del stats
            if args.memory:  # preact twice (the first run also traces one-time allocations): the smaller
                tight = replace(goals[1], memory_limit=64 * 2 ** 20)  # the samples fit, all H_i do not
                runs = [_memory(exp, goal, args.threads) for goal in (goals[0], goals[1], tight, goals[0])]
                best = min((runs[0], runs[3]), key=lambda r: r[0])
                row = {"dataset": exp.name, "method": "memory", "peak_preact": best[0], "seconds_preact": best[1],
                       "peak_relu": runs[1][0], "seconds_relu": runs[1][1], "peak_tight": runs[2][0],
                       "seconds_tight": runs[2][1], "inactive_weight": goals[1].inactive_weight}
                fh.write(json.dumps(row) + "\n")
                print(_line(row), flush=True)


def _key(row: dict) -> tuple:
    return tuple(row.get(k) for k in ("dataset", "calibration", "bits", "method", "seed", "objective",
                                      "inactive_weight"))


def _line(row: dict) -> str:
    if row["method"] == "memory":
        if "peak_tight" not in row:
            return ""
        mib = {k: row[f"peak_{k}"] / 2 ** 20 for k in ("preact", "relu", "tight")}
        sec = {k: row[f"seconds_{k}"] for k in ("preact", "relu", "tight")}
        return (f"{row['dataset']}: int2 qubo, float statistics collected inside, peak traced memory and time: "
                f"preact {mib['preact']:.0f} MiB {sec['preact']:.1f} s; relu-aware (H_i kept) {mib['relu']:.0f} MiB "
                f"{sec['relu']:.1f} s ({mib['relu'] / mib['preact']:.1f}x, {sec['relu'] / sec['preact']:.1f}x); "
                f"relu-aware memory_limit 64 MiB (H_i beyond it formed at each use) {mib['tight']:.0f} MiB {sec['tight']:.1f} s "
                f"({mib['tight'] / mib['preact']:.1f}x, {sec['tight'] / sec['preact']:.1f}x)")
    check = ""
    if "recomputed_error" in row:
        check = f" recomputed rel. diff {abs(row['recomputed_error'] - row['error']) / abs(row['error']):.1e}"
    return (f"{row['dataset']} {row['calibration']} int{row['bits']} {row['method']} {row['objective']}"
            f"{'' if row['inactive_weight'] is None else ' w=' + str(row['inactive_weight'])} seed {row['seed']}:"
            f" acc {row['accuracy']:.4f} error {row['error']:.4g} {row['seconds']:.1f} s{check}")


def summary(path: Path) -> None:
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    runs = [r for r in rows if r["method"] != "memory"]
    weights = sorted({r["inactive_weight"] for r in runs if r["inactive_weight"] is not None})
    for dataset in dict.fromkeys(r["dataset"] for r in runs):
        for calibration in dict.fromkeys(r["calibration"] for r in runs if r["dataset"] == dataset):
            sel = [r for r in runs if r["dataset"] == dataset and r["calibration"] == calibration]
            print(f"\n{dataset}, {calibration} calibration: test accuracy % (mean ± std over seeds)")
            head = ["bits", "RTN", "GPTQ", *[f"GPTQ w={w}" for w in weights], "QUBO preact",
                    *[f"QUBO w={w}" for w in weights], *[f"Δ QUBO w={w}" for w in weights], "time relu/preact"]
            print("| " + " | ".join(head) + " |\n|" + " --- |" * len(head))
            for bits in sorted({r["bits"] for r in sel}):
                print("| " + " | ".join(_cells(sel, bits, weights)) + " |")
    for r in rows:
        if r["method"] == "memory" and _line(r):
            print(_line(r))
    diffs = [abs(r["recomputed_error"] - r["error"]) / abs(r["error"]) for r in runs if "recomputed_error" in r]
    if diffs:
        print(f"relu-aware errors recomputed from activations: largest relative difference {max(diffs):.1e} "
              f"over {len(diffs)} runs")


def _acc(sel, bits, method, w) -> np.ndarray:
    """Accuracies in %, ordered by seed."""
    return np.array([100 * r["accuracy"] for r in sorted(sel, key=lambda r: r["seed"])
                     if r["bits"] == bits and r["method"] == method and r["inactive_weight"] == w])


def _cells(sel, bits, weights) -> list[str]:
    def fmt(a):
        return "" if a.size == 0 else f"{a.mean():.1f}" + (f" ± {a.std():.1f}" if a.size > 1 else "")

    base = _acc(sel, bits, "qubo", None)
    cells = [f"int{bits}", fmt(_acc(sel, bits, "rtn", None)), fmt(_acc(sel, bits, "gptq", None))]
    cells += [fmt(_acc(sel, bits, "gptq", w)) for w in weights] + [fmt(base)]
    cells += [fmt(_acc(sel, bits, "qubo", w)) for w in weights]
    for w in weights:  # paired by seed
        relu = _acc(sel, bits, "qubo", w)
        delta = relu - base if relu.size == base.size else np.array([])
        cells.append("" if delta.size == 0 else f"{delta.mean():+.1f}" + (f" ± {delta.std():.1f}" if delta.size > 1
                                                                          else ""))
    t = {w: [r["seconds"] for r in sel if r["bits"] == bits and r["method"] == "qubo" and r["inactive_weight"] == w]
         for w in (None, *weights)}
    cells.append(" / ".join(f"{np.mean(t[w]) / np.mean(t[None]):.1f}" for w in weights if t[w] and t[None]))
    return cells


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=_list(str), default=list(DATASETS))
    parser.add_argument("--bits", type=_list(int), default=[1, 2, 3, 4])
    parser.add_argument("--calibration", type=_list(str), default=["float", "sequential"])
    parser.add_argument("--seeds", type=_list(int), default=[0],
                        help="seeds of the model's training, the calibration draw and layer-sa")
    parser.add_argument("--inactive-weights", type=_list(float), default=[DEFAULT_INACTIVE_WEIGHT])
    parser.add_argument("--threads", type=count, default=2, help="BLAS, torch and layer-sa threads")
    parser.add_argument("--data-dir", type=Path, default=None)
    parser.add_argument("--memory", action="store_true", help="also trace the peak memory of one run each")
    parser.add_argument("--out", type=Path, default=Path("/tmp/qannealq-objective.jsonl"))
    parser.add_argument("--summary", action="store_true", help="only print the tables of --out")
    args = parser.parse_args()
    if args.summary and not args.out.is_file():  # a FileNotFoundError traceback
        parser.error(f"--summary: no results file {args.out}; run the benchmark with --out {args.out} first")
    if not args.summary:  # the README's --out runs/objective/objective.jsonl: a folder a fresh checkout lacks
        args.out.parent.mkdir(parents=True, exist_ok=True)
    with pinned(args.threads, torch_threads=args.threads) as threads:
        print(f"threads: {threads}; layer-sa {args.threads}; results -> {args.out}", flush=True)
        if not args.summary:
            run(args)
    summary(args.out)


if __name__ == "__main__":
    main()
