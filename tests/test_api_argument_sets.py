"""Random sets of valid and invalid arguments of ``quantize_model`` and ``compare_backends`` either work or are
refused with a :class:`QannealqError`, never another exception (``-m slow``).

The same search on the command line (``tests/test_cli_flag_sets.py``) found two defects; over the Python API,
``initial_states=...`` with ``layer-sa`` ended in a ``TypeError`` (refused since 2026-12-06: three of these draws
fail without that check), and ``compare``'s sampler ``seed`` was replaced without a word. About 15 s.
"""

from __future__ import annotations

import random
import warnings

import numpy as np
import pytest
import torch

from qannealq import quantize_model
from qannealq.compare import CompareSettings, compare_backends, instances_from_experiment
from qannealq.errors import QannealqError
from qannealq.experiment import prepare

pytestmark = pytest.mark.slow


def _models() -> list[torch.nn.Module]:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        return [torch.nn.Sequential(torch.nn.Linear(10, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3)),
                torch.nn.Sequential(torch.nn.Linear(10, 6, bias=False), torch.nn.Tanh(), torch.nn.Linear(6, 3)),
                torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(10, 4), torch.nn.ReLU(), torch.nn.Dropout(0.1),
                                    torch.nn.Linear(4, 2))]


QUANTIZE = {"bits": [1, 2, 3, 8, 0, "4"], "method": ["rtn", "gptq", "gptq-restricted", "qubo", "gptq-pivot", "nope"],
            "sampler": ["layer-sa", "sa", "steepest", "exact", "nope", None], "calibration": ["float", "sequential"],
            "granularity": ["tensor", "channel", "best"], "int1": ["sign", "paper"],
            "warm_start": [None, "none", "rtn", "gptq-restricted-pivot", "bad"], "seed": [None, 0, 5, -1],
            "batch_size": [1, 7, 0], "objective": ["preact", "relu-aware"], "layers": [None, ["0"], "2", ["9"]],
            "num_reads": [1, 2], "effort": ["fast"], "initial_states": [None], "time_limit": [0.05, -1]}
COMPARE = {"reads": [1, 3, 0], "repeats": [1, 2], "eps": [0, 0.1, -1], "seed": [0, 5, -2], "warm_start": [True, False],
           "max_calls": [1, 5, 0], "capacity": [{}, {"exact": 6}, {"sa": 0}, {"nope": 3}],
           "sampler_options": [{}, {"*": {"num_sweeps": 5}}, {"sa": {"num_sweeps": -1}}, {"*": {"bogus": 1}},
                               {"*": {"seed": 1}}, {"tabu": {"timeout": 3}}]}


@pytest.mark.parametrize("draw", range(40))
def test_quantize_model_works_or_refuses(draw):
    rng = random.Random(draw)
    kwargs = {key: rng.choice(values) for key, values in QUANTIZE.items() if rng.random() < 0.4}
    kwargs.setdefault("bits", 2)
    model = rng.choice(_models())
    data = rng.choice([torch.randn(48, 10), np.random.default_rng(draw).normal(size=(24, 10)).astype(np.float32),
                       torch.utils.data.DataLoader(torch.utils.data.TensorDataset(torch.randn(40, 10)), batch_size=16),
                       torch.randn(8, 2, 5)])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            result = quantize_model(model, data, **kwargs)
        except QannealqError:
            return
    assert np.isfinite(result.layer_error) and result.granularity in ("tensor", "channel")


@pytest.fixture(scope="module")
def neurons():
    return instances_from_experiment(prepare(dataset="digits", input_size=4), 0, 2, "0:2")


@pytest.mark.parametrize("draw", range(20))
def test_compare_backends_works_or_refuses(draw, neurons, tmp_path):
    rng = random.Random(1000 + draw)
    kwargs = {key: rng.choice(values) for key, values in COMPARE.items() if rng.random() < 0.4}
    backends = rng.sample(["sa", "tabu", "steepest", "exact", "layer-sa", "dwave-mock"], rng.randint(1, 3))
    instances = neurons[: rng.randint(0, 2)]
    try:
        result = compare_backends(instances, backends, CompareSettings(**kwargs),
                                  out=tmp_path / "c" if rng.random() < 0.5 else None)
    except QannealqError:
        return
    assert {row.backend for row in result.rows} <= set(backends) and result.rows
