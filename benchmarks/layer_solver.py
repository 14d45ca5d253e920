"""Side by side on the MNIST MLP (784-128-10): RTN, GPTQ, GPTQ-restricted, per-neuron ``sa`` and ``layer-sa``.

Step 1 takes the MNIST model of :mod:`qannealq.experiment` (its recipe: Adam 1e-3, batch 128, 3 epochs, seed
``--seed``; trained once and cached; ``--data-dir`` holds ``mnist.npz``) and its calibration draw. Then, on 1024 calibration images (float calibration) and for int4, int3 and int2, every method
quantizes every layer in this one process; the script prints per layer and in total the error (sum of the
neurons' mean squared pre-activation errors), the wall time (the best of ``--repeats`` runs for the fast
methods), the peak traced memory (tracemalloc: numpy and Python allocations; for ``sa`` traced on two
neurons, as it holds one neuron at a time), and the ratios new/GPTQ (error, time) and sa/new (time, with the error
ratio beside it). The totals are then recomputed directly from the layers' calibration activations,
independently of the QUBO algebra.

Per-neuron ``sa`` is dwave-samplers' simulated annealing with its defaults and no warm start (the paper's
solver). With 10 reads it runs on a subset of each layer's neurons (``--sa10-neurons``) and its time is
extrapolated to the whole layer; the output says so. ``--device`` picks layer-sa's device (default cpu: the
numba kernel; cuda: torch on the GPU). Run: ``.venv/bin/python benchmarks/layer_solver.py``.
"""

from __future__ import annotations

import argparse
import time
import tracemalloc
from dataclasses import dataclass, replace

import qannealq  # noqa: F401  (first: it shortens OpenBLAS's spin before numpy loads it, qannealq.BLAS_SPIN)
import numpy as np
import torch

from qannealq.backends import get_sampler
from qannealq.backends._layer_run import resolve_device
from qannealq.calibration import as_calibration_tensor
from qannealq.errors import BackendUnavailableError
from qannealq.experiment import calibrate, prepare
from qannealq.formulation import LayerProblem, LayerStats
from qannealq.pipeline import formulate_layer
from qannealq.solve import quantize_layer
from _threads import count, pinned  # benchmarks/_threads.py, beside this script

BITS = (4, 3, 2)
FAST = ("rtn", "gptq", "gptq-restricted", "layer-sa")


@dataclass
class Run:
    """One method on one layer: summed error, wall seconds, peak traced bytes, quantized rows, neurons run."""

    error: float
    seconds: float
    peak: int
    values: np.ndarray | None = None
    neurons: np.ndarray | None = None
    extrapolated: bool = False
    ref: float = 0.0  # sa rows: layer-sa's error on the same neurons

    def add(self, other: "Run") -> None:
        self.error += other.error
        self.seconds += other.seconds
        self.peak = max(self.peak, other.peak)
        self.ref += other.ref
        self.extrapolated |= other.extrapolated


def subset(problem: LayerProblem, rows: np.ndarray) -> LayerProblem:
    """The same layer restricted to the neurons ``rows`` (shared H unchanged)."""
    s = problem.stats
    stats = LayerStats(s.hessian, s.cross[rows], s.target_sq[rows], s.num_samples)
    grid = replace(problem.grid, weight_step=problem.grid.weight_step[rows])
    return replace(problem, stats=stats, grid=grid, weights=problem.weights[rows], steps=problem.steps[rows],
                   base=problem.base[rows], free=problem.free[rows])


def measure(problem: LayerProblem, method: str, repeats: int, seed: int, memory_neurons: int = 0,
            **options) -> Run:
    """Best wall time of ``repeats`` runs, then one run under tracemalloc for the peak memory. Each run gets a
    fresh copy of the problem (the same arrays), as :func:`frontier.timed` does: on the same problem a later run
    reused the products and errors an earlier one cached on it (RTN on MNIST's first layer 0.4 ms against 3.0 ms
    fresh), and the traced run left them out of its peak.

    ``memory_neurons > 0`` traces a run on that many neurons only (per-neuron solvers hold one neuron at a
    time, and tracing slows their Python-side BQM building several-fold).
    """
    qubo = method not in ("rtn", "gptq", "gptq-restricted")
    sampler = get_sampler(options.pop("backend")) if qubo else None
    kwargs = dict(sampler=sampler, backend=method, seed=seed, **options) if qubo else {}
    best, result = np.inf, None
    for _ in range(repeats):
        fresh = replace(problem)
        t0 = time.perf_counter()
        result = quantize_layer(fresh, "qubo" if qubo else method, **kwargs)
        best = min(best, time.perf_counter() - t0)
    traced = (subset(problem, np.arange(min(memory_neurons, problem.num_neurons))) if memory_neurons
              else replace(problem))
    tracemalloc.start()
    quantize_layer(traced, "qubo" if qubo else method, **kwargs)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    return Run(result.error, best, peak, result.values)


def activations(model: torch.nn.Module, names: list[str], x: torch.Tensor) -> dict:
    """Each layer's calibration inputs (with the ones column) and float outputs, by forward hooks."""
    out, modules, handles = {}, dict(model.named_modules()), []
    for name in names:
        def hook(mod, inp, res, _n=name):
            xi = inp[0].detach().double().numpy()
            out[_n] = (np.concatenate([xi, np.ones((len(xi), 1))], axis=1), res.detach().double().numpy())
        handles.append(modules[name].register_forward_hook(hook))
    with torch.no_grad():
        model(x)
    for h in handles:
        h.remove()
    return out


def direct_error(acts: tuple, values: np.ndarray, neurons: np.ndarray | None = None) -> float:
    """``Σ_i mean_s (y_is − q_i·x̃_s)²`` straight from the activations."""
    x, y = acts
    y = y if neurons is None else y[:, neurons]
    return float(np.sum(np.mean((y - x @ values.T) ** 2, axis=0)))


def run_layer(problem: LayerProblem, args: argparse.Namespace) -> dict[str, Run]:
    """Every method on one layer; ``sa`` x10 on a subset (time extrapolated)."""
    layer_sa = dict(backend="layer-sa", num_threads=args.threads, device=args.device)
    runs = {m: measure(problem, m, args.repeats, args.seed, **(layer_sa if m == "layer-sa" else {}))
            for m in FAST}
    new = problem.errors(runs["layer-sa"].values)
    for name, reads, chosen in (("sa", 1, args.sa_neurons), ("sa x10", 10, args.sa10_neurons)):
        n = problem.num_neurons
        rows = np.arange(n) if not 0 < chosen < n else np.linspace(0, n - 1, chosen).astype(int)
        run = measure(subset(problem, rows), "sa", 1, args.seed, memory_neurons=2, backend="sa", warm_start=None,
                      num_reads=reads)
        run.seconds *= n / rows.size
        run.extrapolated, run.ref = rows.size < n, float(new[rows].sum())
        runs[name] = run
    return runs


def ratio(a: float, b: float) -> str:
    return f"{a / b:6.3f}" if b > 0 else "   n/a"


def report(title: str, runs: dict[str, Run]) -> None:
    """One table: error, time, memory and the ratios (sa rows compared on the neurons they ran)."""
    print(f"  {title}")
    print(f"    {'method':<16}{'error':>12}{'time s':>10}{'peak MB':>9}  ratios")
    new, gptq = runs["layer-sa"], runs["gptq"]
    for name, run in runs.items():
        extra = ""
        if name == "layer-sa":
            extra = f"new/GPTQ error {ratio(new.error, gptq.error)}  time {ratio(new.seconds, gptq.seconds)}"
        elif name.startswith("sa"):
            extra = (f"{name}/new time {ratio(run.seconds, new.seconds)}  error {ratio(run.error, run.ref)}"
                     + ("  (on a subset of neurons; time extrapolated)" if run.extrapolated else ""))
        print(f"    {name:<16}{run.error:12.6g}{run.seconds:10.3f}{run.peak / 2**20:9.2f}  {extra}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", default=None,
                        help="folder with mnist.npz (default: $QANNEALQ_DATA, ./datasets or ../shared/datasets)")
    parser.add_argument("--threads", type=count, default=2, help="BLAS threads and layer-sa threads")
    parser.add_argument("--repeats", type=count, default=3, help="timed runs of the fast methods (best kept)")
    parser.add_argument("--sa-neurons", type=int, default=0, help="neurons per layer for sa, 1 read (0: all)")
    parser.add_argument("--sa10-neurons", type=int, default=32, help="neurons per layer for sa with 10 reads")
    parser.add_argument("--bits", type=lambda t: [int(b) for b in t.split(",")], default=list(BITS))
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda", "torch-cpu"],
                        help="layer-sa's device: cpu (numba, the default), auto (CUDA via torch when available, "
                             "else numba), "
                             "cuda (torch on the GPU), torch-cpu (the torch implementation on the CPU)")
    args = parser.parse_args()
    try:  # before the model: without a CUDA device, --device cuda ended in a traceback from the warm-up
        resolve_device(args.device)
    except BackendUnavailableError as exc:
        parser.error(f"--device {args.device}: {exc}")
    with pinned(args.threads, torch_threads=args.threads) as threads:
        print(f"threads: {threads}; layer-sa {args.threads}")
        bench(args)


def bench(args: argparse.Namespace) -> None:
    t0 = time.perf_counter()
    exp = prepare(dataset="mnist", data_dir=args.data_dir, seed=args.seed, num_calibration=1024)
    model = exp.model
    x = as_calibration_tensor(exp.calibration)
    stats = calibrate(exp)
    names = list(stats)
    acts = activations(model, names, x)
    modules = dict(model.named_modules())
    print(f"MNIST MLP {exp.sizes} from qannealq.experiment (seed {args.seed}), trained or loaded in "
          f"{time.perf_counter() - t0:.1f} s; {len(exp.calibration)} calibration images, float calibration")
    tc = time.perf_counter()
    warm_up = get_sampler("layer-sa").sample_layer(formulate_layer(modules[names[-1]], stats[names[-1]], 4, "tensor",
                                                                   "sign", names[-1]), seed=0, device=args.device)
    print(f"layer-sa device: {warm_up.info['device']} (--device {args.device}); kernel compiled, loaded from "
          f"numba's cache or warmed up in {time.perf_counter() - tc:.1f} s (excluded from the timings)")
    summary = []
    for bits in args.bits:
        print(f"\nint{bits}")
        totals: dict[str, Run] = {}
        direct = {m: 0.0 for m in FAST}
        for name in names:
            problem = formulate_layer(modules[name], stats[name], bits, "tensor", "sign", name)
            runs = run_layer(problem, args)
            report(f"layer {name} ({problem.num_neurons} neurons x {problem.num_coordinates} coordinates)", runs)
            for m, run in runs.items():
                totals.setdefault(m, Run(0.0, 0.0, 0)).add(run)
            for m in FAST:
                direct[m] += direct_error(acts[name], runs[m].values)
        report_total(bits, totals, direct)
        summary.append((bits, totals))
    print_summary(summary)


def report_total(bits: int, totals: dict[str, Run], direct: dict[str, float]) -> None:
    """The totals table and the independent recomputation of the fast methods' errors."""
    report(f"int{bits} TOTAL (all layers)", totals)
    dev = max(abs(direct[m] - totals[m].error) / totals[m].error for m in FAST)
    print("    recomputed from the activations: " + ", ".join(f"{m} {direct[m]:.6g}" for m in FAST)
          + f"  (max relative difference {dev:.1e})")


def print_summary(summary: list) -> None:
    print("\nsummary (totals over both layers)")
    print(f"  {'bits':<6}{'new/GPTQ error':>16}{'new/GPTQ time':>15}{'sa/new time':>13}{'sa/new error':>14}"
          f"{'sa10/new time':>15}{'sa10/new error':>16}")
    for bits, t in summary:
        new, gptq, sa, sa10 = t["layer-sa"], t["gptq"], t["sa"], t["sa x10"]
        print(f"  int{bits:<3}{new.error / gptq.error:16.3f}{new.seconds / gptq.seconds:15.2f}"
              f"{sa.seconds / new.seconds:13.1f}{sa.error / sa.ref:14.3f}{sa10.seconds / new.seconds:15.1f}"
              f"{sa10.error / sa10.ref:16.3f}")
    print("  (sa10: 10 reads on a subset of neurons, its time extrapolated to the full layers; its error ratio "
          "is against layer-sa on the same neurons)")


if __name__ == "__main__":
    main()
