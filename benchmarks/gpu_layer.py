"""``layer-sa`` on a CUDA device (the torch path) against the numba kernel, side by side, on first layers.

For the first layer of the MNIST (784-128-10) and CIFAR-10 (3072-512-10) MLPs (or of any dataset's experiment
model, ``--datasets``) at each bit width: GPTQ's error
and time, then for each effort (``--efforts``) and device (``--devices``) ``layer-sa``'s error and wall time
(the best of ``--repeats`` runs through the solve loop, after one run that loads the device's compiled code and
kernels and is left out), and the default effort under ``--limits`` GPTQ times on each device (the median of
``--repeats`` runs). Errors are also given relative to the best of the run (``best``) and to GPTQ's.

A layer is built as ``frontier.py`` builds it (the experiment's model, 1024 calibration images, float
calibration, per-tensor grid), from the datasets (``--data-dir``) or from a file ``--save`` wrote: the layer's
calibration inputs, weights and bias (float32, compressed), enough to rebuild its problem on a machine without
the datasets (a GPU machine, say), whose statistics then come from :meth:`LayerStats.from_arrays`.

Run: ``.venv/bin/python benchmarks/gpu_layer.py --datasets mnist --devices cpu,cuda``; without CUDA,
``--devices cpu,torch-cpu`` runs the torch code on the CPU (slow: a check of the script, not a measurement).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import qannealq  # noqa: F401  (first: it shortens OpenBLAS's spin before numpy loads it, qannealq.BLAS_SPIN)
import numpy as np
import torch

from frontier import timed  # benchmarks/ is the script's folder
from layer_solver import activations
from qannealq.backends.layer_sa import EFFORTS
from qannealq.calibration import as_calibration_tensor
from qannealq.data import DATASETS
from qannealq.experiment import prepare
from qannealq.formulation import LayerProblem, LayerStats
from qannealq.pipeline import formulate_layer
from _threads import count, pinned, scales  # benchmarks/_threads.py, beside this script


def layer_arrays(dataset: str, data_dir: str | None, seed: int) -> dict[str, np.ndarray]:
    """The first layer's calibration inputs ``x`` (N, f), weights ``w`` (n, f) and bias ``b`` (n,), float32."""
    exp = prepare(dataset=dataset, data_dir=data_dir, seed=seed, num_calibration=1024)
    name = exp.layer_names()[0]
    module = dict(exp.model.named_modules())[name]
    x = activations(exp.model, [name], as_calibration_tensor(exp.calibration))[name][0][:, :-1]  # less the ones
    return {"x": x.astype(np.float32), "w": module.weight.detach().numpy().astype(np.float32),
            "b": module.bias.detach().numpy().astype(np.float32), "name": np.array(name)}


def problems(arrays: dict[str, np.ndarray], bits: list[int]) -> dict[int, LayerProblem]:
    """The layer's problem at each bit width (float calibration, per-tensor grid, ``sign`` int1)."""
    w, b = torch.from_numpy(arrays["w"]), torch.from_numpy(arrays["b"])
    module = torch.nn.Linear(w.shape[1], w.shape[0])
    with torch.no_grad():
        module.weight.copy_(w)
        module.bias.copy_(b)
        y = module(torch.from_numpy(arrays["x"])).numpy()
    stats = LayerStats.from_arrays(arrays["x"], y)
    return {k: formulate_layer(module, stats, k, "tensor", "sign", str(arrays["name"])) for k in bits}


def load(path: Path) -> dict[str, np.ndarray]:
    """A layer file written by ``--save``."""
    if not path.is_file():
        sys.exit(f"--load: no file {path}; write one with --save on a machine that has the datasets")
    with np.load(path) as f:
        return {k: f[k] for k in f.files}


def run(problem: LayerProblem, device: str, effort: str | None, seed: int, threads: int,
        time_limit: float | None = None) -> tuple[float, float, str]:
    """Layer error, wall seconds (less a time-limited solve's warm-up) and the device that ran."""
    opts = {"device": device, "num_threads": threads}
    if effort is not None:
        opts["effort"] = effort
    if time_limit is not None:
        opts["time_limit"] = time_limit
    result, seconds = timed(problem, "qubo", "layer-sa", seed, **opts)
    return float(result.errors.sum()), seconds, str(result.info.get("device", device))


def bench_layer(label: str, problem: LayerProblem, args: argparse.Namespace, out: list[dict]) -> None:
    """Every point of one layer at one bit width, printed as it comes and appended to ``out``."""
    rows: list[dict] = []

    def note(row: dict) -> None:
        rows.append(row)
        out.append({"layer": label, **row})
        print(f"  {row['point']:<34} error {row['error']:.6g}  {row['seconds']:8.3f} s  ({row['device']})",
              flush=True)
        if args.json:
            Path(args.json).write_text(json.dumps(out, indent=1))

    gptq = []
    for _ in range(max(args.repeats, 3)):
        result, seconds = timed(problem, "gptq", None, args.seed)
        gptq.append((float(result.errors.sum()), seconds))
    g_err, g_s = min(gptq, key=lambda r: r[1])
    note({"point": "gptq", "device": "cpu", "error": g_err, "seconds": g_s})
    for device in args.devices:
        for effort in args.efforts:
            try:
                run(problem, device, effort, args.seed, args.threads)  # loads compiled code / CUDA kernels
                times = [run(problem, device, effort, args.seed, args.threads) for _ in range(args.repeats)]
            except Exception as exc:  # noqa: BLE001  (a device that fails is a result: print it, go on)
                print(f"  {effort} on {device}: {type(exc).__name__}: {exc}", flush=True)
                continue
            err, sec, ran = min(times, key=lambda r: r[1])
            note({"point": f"{effort}", "device": ran, "error": err, "seconds": sec,
                  "runs": [list(t[:2]) for t in times]})
        for k in args.limits:
            try:
                times = [run(problem, device, None, args.seed, args.threads, time_limit=k * g_s)
                         for _ in range(max(args.repeats, 3))]
            except Exception as exc:  # noqa: BLE001
                print(f"  default under {k:g}x on {device}: {type(exc).__name__}: {exc}", flush=True)
                continue
            err = statistics.median(t[0] for t in times)
            sec = statistics.median(t[1] for t in times)
            note({"point": f"default under {k:g}x GPTQ", "device": times[0][2], "error": err, "seconds": sec,
                  "runs": [list(t[:2]) for t in times]})
    best = min(r["error"] for r in rows)
    print(f"  {label}: best of the run {best:.6g}; GPTQ {g_s:.3f} s")
    print(f"  {'point':<34} {'device':<8} {'above best':>10} {'vs GPTQ err':>11} {'GPTQ times':>10}")
    for r in rows:
        print(f"  {r['point']:<34} {r['device']:<8} {100 * (r['error'] / best - 1):9.2f}% {r['error'] / g_err:11.3f} "
              f"{r['seconds'] / g_s:10.2f}")


def listed(allowed: tuple, empty: bool = False):
    """A parser of comma-separated names from ``allowed`` (none at all only where ``empty``)."""
    def parse(text: str) -> list[str]:
        items = [t for t in text.split(",") if t]
        bad = [t for t in items if t not in allowed]
        if (not items and not empty) or bad:
            raise argparse.ArgumentTypeError(f"{text!r}: expected a comma-separated list of {', '.join(allowed)}")
        return items
    return parse


def gptq_times(text: str) -> list[float]:
    """``"5,10"`` -> ``[5.0, 10.0]``: limits in GPTQ times, each a finite number > 0 (``''``: none). A limit of 0 or
    below failed in every device's solve, printed as the device's error, and the run ended with status 0 and no
    limited point."""
    return scales(text, "5,10", empty=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", type=listed(DATASETS), default=["mnist", "cifar10"],
                        help="comma-separated; each one's first layer (default: mnist,cifar10)")
    parser.add_argument("--data-dir", default=None, help="the datasets' folder (default: QANNEALQ_DATA, ...)")
    parser.add_argument("--save", type=Path, default=None,
                        help="write each dataset's first layer to SAVE/<dataset>.npz and stop")
    parser.add_argument("--load", type=Path, default=None, help="read the layers from LOAD/<dataset>.npz")
    parser.add_argument("--bits", type=lambda t: [int(b) for b in t.split(",")], default=[4, 2])
    parser.add_argument("--devices", type=listed(("cpu", "cuda", "torch-cpu", "auto")), default=["cpu", "cuda"])
    parser.add_argument("--efforts", type=listed(tuple(EFFORTS), empty=True), default=["fast", "default"],
                        help="efforts run without a time limit ('' for none: the --limits points alone)")
    parser.add_argument("--limits", type=gptq_times, default=[],
                        help="GPTQ times for the default under a time limit, e.g. 5,10")
    parser.add_argument("--repeats", type=count, default=2,
                        help="timed runs of each point, >= 1 (the best kept; a limited point's median of 3 at least)")
    parser.add_argument("--threads", type=count, default=None, help="layer-sa's CPU threads (default: one per core)")
    parser.add_argument("--blas-threads", type=count, default=1)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", default=None, help="also write every point to this file, as it comes")
    args = parser.parse_args()
    if args.save is not None:
        args.save.mkdir(parents=True, exist_ok=True)
        for ds in args.datasets:
            np.savez_compressed(args.save / f"{ds}.npz", **layer_arrays(ds, args.data_dir, args.seed))
            print(f"wrote {args.save / f'{ds}.npz'}")
        return
    cuda = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "none"
    out: list[dict] = []
    with pinned(args.blas_threads, torch_threads=args.blas_threads) as line:
        print(f"{line}; torch {torch.__version__}; CUDA device: {cuda}", flush=True)
        for ds in args.datasets:
            arrays = load(args.load / f"{ds}.npz") if args.load else layer_arrays(ds, args.data_dir, args.seed)
            for k, problem in problems(arrays, args.bits).items():
                label = f"{ds} {arrays['name']} int{k} ({problem.num_neurons} x {problem.num_coordinates})"
                print(label, flush=True)
                t0 = time.perf_counter()
                bench_layer(label, problem, args, out)
                print(f"  ({time.perf_counter() - t0:.0f} s)", flush=True)


if __name__ == "__main__":
    main()
