"""``qannealq run``: the bits x methods sweep on one dataset, with progress and incremental results."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path

import numpy as np
from tqdm.auto import tqdm

from qannealq.errors import InvalidArgumentError
from qannealq.grid import check_bits
from qannealq.pipeline import quantize_model
from qannealq.report import ResultRow, RunWriter, format_table, plot_accuracy
from qannealq.solve import METHODS, WARM_STARTS, accepts_parameter

__all__ = ["run_experiment"]

logger = logging.getLogger(__name__)


def _validate(args: argparse.Namespace) -> None:
    for bits in args.bits:
        check_bits(bits)
    if not args.bits:
        raise InvalidArgumentError("--bits is empty: give a comma list such as 8,4,2")
    for method in args.methods:
        if method not in METHODS:
            raise InvalidArgumentError(f"--methods: {method!r} is unknown; choose from {', '.join(METHODS)}")
    if args.num_calibration < 1:
        raise InvalidArgumentError(f"--num-calibration={args.num_calibration} must be >= 1")
    if args.warm_start not in (*WARM_STARTS, "none", "None", ""):
        raise InvalidArgumentError(f"--warm-start={args.warm_start!r} must be one of "
                                   f"{', '.join(w for w in WARM_STARTS if w)} or none")


def _shown_options(options: dict) -> dict[str, str]:
    """Sampler options as written to the results; a value whose key names a token is never written."""
    return {k: "<redacted>" if "token" in k.lower() else repr(v) for k, v in options.items()}


def _layer_rows(result) -> list[dict]:
    return [{"name": l.name, "error": l.error, "seconds": l.seconds, "seed": l.seed, "neurons": int(l.errors.size),
             "variables": l.num_variables,
             "warm_start_error": None if l.warm_start_errors is None else float(l.warm_start_errors.sum())}
            for l in result.layers]


def _qubo_line(args: argparse.Namespace, sampler, warm: str | None) -> tuple[str, str | None]:
    """What the qubo method will do, and the warm start actually used (None if the backend takes none)."""
    whole = hasattr(sampler, "sample_layer")
    how = "the whole-layer solver (all neurons of a layer at once)" if whole else "one BQM per neuron"
    if warm is not None and not (whole or accepts_parameter(sampler, "initial_states")):
        return f"{how}, no warm start (the backend takes no initial states)", None
    return f"{how}, warm start {warm}", warm


def run_experiment(args: argparse.Namespace, out: Path) -> int:
    """Run the sweep described by the parsed ``qannealq run`` arguments; write results into ``out``."""
    from qannealq.backends import resolve_sampler
    from qannealq.cli import DEFAULT_EPOCHS, default_hidden
    from qannealq.data import accuracy, load_dataset, train_mlp

    _validate(args)
    data = load_dataset(args.dataset, args.data_dir, args.input_size)
    sampler = resolve_sampler(args.backend) if "qubo" in args.methods else None
    hidden = args.hidden or default_hidden(args.dataset, args.input_size)
    epochs = args.epochs or DEFAULT_EPOCHS[args.dataset]
    lr = 1e-2 if args.dataset == "digits" else 1e-3
    model = train_mlp(data, hidden, epochs, lr=lr, batch_size=64 if args.dataset == "digits" else 128, seed=args.seed)
    float_acc = accuracy(model, data.x_test, data.y_test)
    n_cal = min(args.num_calibration, len(data.x_train))
    calib = data.x_train[np.sort(np.random.default_rng(args.seed).choice(len(data.x_train), n_cal, replace=False))]
    options = dict(args.sampler_option)
    warm = None if args.warm_start in ("none", "None", "") else args.warm_start
    print(f"{data.name}: MLP {[data.num_inputs, *hidden, data.num_classes]}, float test accuracy {float_acc:.4f}; "
          f"{n_cal} calibration samples; results -> {out}")
    if sampler is not None:
        how, warm = _qubo_line(args, sampler, warm)
        print(f"qubo method: backend {args.backend!r}, {how}", flush=True)
    settings = {"dataset": data.name, "model": [data.num_inputs, *hidden, data.num_classes], "epochs": epochs,
                "float_accuracy": float_acc, "num_calibration": n_cal, "backend": args.backend,
                "sampler_options": _shown_options(options), "warm_start": warm,
                "calibration": args.calibration, "granularity": args.granularity, "int1": args.int1,
                "seed": args.seed, "bits": args.bits, "methods": args.methods}
    writer = RunWriter(out, settings)
    total = sum(settings["model"][1:]) * len(args.bits) * args.methods.count("qubo")
    with tqdm(total=total, desc="solving QUBOs", unit="neuron", disable=total == 0) as bar:
        for bits in args.bits:
            for method in args.methods:
                bar.set_postfix_str(f"int{bits} {method}")
                qubo = method == "qubo"
                result = quantize_model(model, calib, bits, method, sampler if qubo else None, args.calibration,
                                        args.granularity, args.int1, warm_start=warm, seed=args.seed,
                                        progress=(lambda name, k, n: bar.update(k)) if qubo else None, **options)
                writer.add(ResultRow(data.name, method, args.backend if qubo else "", bits, args.calibration,
                                     args.granularity, accuracy(result.model, data.x_test, data.y_test),
                                     result.layer_error, result.seconds, _layer_rows(result)))
    print(format_table(writer.rows))
    print(f"float accuracy {float_acc:.4f}")
    plot_accuracy(writer.rows, out / "accuracy_vs_bits.png", float_acc, f"{data.name}, {args.calibration} calibration")
    print(f"wrote {out / 'results.csv'}, {out / 'results.json'}, {out / 'accuracy_vs_bits.png'}")
    return 0
