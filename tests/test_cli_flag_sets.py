"""Random sets of valid and invalid flags never end in a traceback: each command exits 0, or 2 with a message
(``run``, ``sweep``, ``compare``, ``export``).

Random flag sets found two defects that single-flag tests had missed (2026-12-06): ``sweep --data-dir`` wrote a
``Path`` into ``sweep.json`` (a ``TypeError`` after its first cell) and ``run --sampler-option seed=3`` ended in
"got multiple values for keyword argument 'seed'" after training. This keeps such a script as a test: a fixed
seed draws the same sets every time, on the 4x4 digits model with cheap solvers (``-m slow``: about two
minutes).
"""

from __future__ import annotations

import random
import re

import numpy as np
import pytest

from qannealq.cli import main

pytestmark = pytest.mark.slow

COMMON = [("--bits", ["1", "2", "3", "2,1"]), ("--granularity", ["tensor", "channel"]), ("--int1", ["sign", "paper"]),
          ("--hidden", ["6", "5,4"]), ("--epochs", ["1"]), ("--seed", ["0", "3"]),
          ("--num-calibration", ["16", "100", "5000"])]
OPTIONS = {
    "run": COMMON + [("--granularity", ["best"]), ("--calibration", ["float", "sequential"]),
                     ("--methods", ["rtn", "gptq", "qubo", "rtn,qubo", "gptq-pivot,gptq-restricted-act,qubo"]),
                     ("--backend", ["sa", "steepest", "exact", "layer-sa", "dwave-mock", "nope"]),
                     ("--warm-start", ["none", "rtn", "gptq-restricted-pivot"]),
                     ("--objective", ["preact", "relu-aware"]), ("--inactive-weight", ["0", "0.3"]),
                     ("--sampler-option", ["num_reads=2", "num_sweeps=20", "effort=fast", "seed=3", "bogus=1"]),
                     ("--effort", ["fast"]), ("--time-limit", ["0.05"]), ("--save-model", None),
                     ("--retries", ["0"]), ("--qpu-budget", ["10"]), ("--dry-run", None), ("--data-dir", ["dd"])],
    "sweep": COMMON + [("--granularity", ["best"]), ("--methods", ["rtn,gptq", "qubo", "qubo:sa,qubo:layer-sa"]),
                       ("--preset", ["paper", "best"]), ("--seeds", ["1", "2"]), ("--train-seeds", None),
                       ("--objective", ["relu-aware"]), ("--effort", ["fast"]), ("--dry-run", None),
                       ("--sampler-option", ["num_reads=2", "sa:num_sweeps=20", "seed=1"]), ("--data-dir", ["dd"])],
    "compare": COMMON[1:] + [("--bits", ["2", "3"]), ("--layer", ["0", "1", "-1", "2"]),
                             ("--neurons", ["0:2", "1", "0,1"]), ("--reads", ["1", "3"]), ("--repeats", ["1", "2"]),
                             ("--backends", ["sa", "sa,exact", "steepest,layer-sa", "exact,dwave-mock", "tabu"]),
                             ("--sampler-option", ["num_sweeps=20", "sa:num_sweeps=20", "timeout=5", "sa:seed=2"]),
                             ("--capacity", ["exact=8", "sa=4"]), ("--eps", ["0", "0.1", "-1"]),
                             ("--dry-run", None), ("--data-dir", ["dd"])],
    "export": COMMON[1:] + [("--bits", ["2", "3"]), ("--layer", ["0", "-1", "5"]), ("--neurons", ["0:2", "3", "2,2"]),
                            ("--proof-time", ["1", "-1"]), ("--data-dir", ["dd"])],
}


def _draws(count: int, seed: int = 20261206) -> list[list[str]]:
    rng = random.Random(seed)
    out = []
    for _ in range(count):
        command = rng.choice(["run", "run", "sweep", "compare", "compare", "export"])
        argv = [command, "--input-size", "4"]
        for name, values in rng.sample(OPTIONS[command], rng.randint(1, 4)):
            argv += [name] if values is None else [name, rng.choice(values)]
        if command == "compare" and "--backends" not in argv:
            argv += ["--backends", "sa,exact"]  # the default backends include qaoa and gurobi: minutes a set
        if command == "sweep" and "--bits" not in argv:
            argv += ["--bits", "2"]
        out.append(argv)
    return out


@pytest.mark.parametrize("argv", _draws(36), ids=lambda argv: " ".join(argv[3:])[:60])
def test_a_random_flag_set_exits_0_or_2_without_a_traceback(argv, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "dd").mkdir()
    x = np.random.default_rng(0).integers(0, 256, size=(80, 28, 28), dtype=np.uint8)
    np.savez(tmp_path / "dd" / "mnist.npz", x_train=x[:60], y_train=np.arange(60) % 10, x_test=x[60:],
             y_test=np.arange(20) % 10)  # where --data-dir dd is drawn (digits ignore it; it must exist)
    try:
        code = main([*argv, "--out", "out"])  # anything but a QannealqError propagates and fails the test
    except SystemExit as exc:  # argparse's own refusals (a value of the wrong type)
        code = exc.code
    err = capsys.readouterr().err
    assert code in (0, 2), err[-2000:]
    if code == 2:
        assert re.match(r"qannealq( \w+)?: error: ", err.strip().splitlines()[-1]), err[-2000:]
