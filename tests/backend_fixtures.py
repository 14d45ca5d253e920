"""Real neuron BQMs of the tiny digits model (4x4 inputs, 16 hidden), shared by the backend tests.

Plain cached functions, plus two fixtures that tests import by name (this file is not a conftest.py).
"""

from __future__ import annotations

from functools import lru_cache

import dimod
import numpy as np
import pytest
import torch

from qannealq.data import load_digits, train_mlp
from qannealq.formulation import LayerProblem, LayerStats, build_problem
from qannealq.grid import make_grid

__all__ = ["digits_layer", "digits_neurons", "optimum", "mock_qpu", "no_dwave_token", "fake_dwave_token", "FAKE_TOKEN"]

FAKE_TOKEN = "DEV-fake0token0never0to0leak-8c1d2e"


@lru_cache(maxsize=None)
def _model() -> torch.nn.Module:
    return train_mlp(load_digits(input_size=4), (16,), epochs=20, lr=1e-2, batch_size=64, seed=0, cache=False)


@lru_cache(maxsize=None)
def digits_layer(bits: int) -> LayerProblem:
    """The first layer (16 -> 16) of the tiny digits model on a ``bits`` grid, float calibration."""
    data = load_digits(input_size=4)
    layer = _first_linear(_model())
    x = data.x_train[:512].astype(np.float64)
    weight = layer.weight.detach().double().numpy()
    bias = layer.bias.detach().double().numpy()
    stats = LayerStats.from_arrays(x, x @ weight.T + bias)
    return build_problem(stats, weight, bias, make_grid(weight, bias, bits), name=f"fc1-int{bits}")


def _first_linear(model: torch.nn.Module) -> torch.nn.Linear:
    return next(m for m in model.modules() if isinstance(m, torch.nn.Linear))


def digits_neurons(max_variables: int, count: int = 3, bits: tuple[int, ...] = (1, 2, 3, 4),
                   min_variables: int = 2) -> list[dimod.BinaryQuadraticModel]:
    """Up to ``count`` distinct neuron BQMs with ``min_variables..max_variables`` variables."""
    found = []
    for b in bits:
        problem = digits_layer(b)
        sizes = problem.free.sum(axis=1)
        for i in np.argsort(-sizes, kind="stable"):
            if min_variables <= sizes[i] <= max_variables:
                found.append(problem.neuron_bqm(int(i)))
            if len(found) == count:
                return found
    return found


def optimum(bqm: dimod.BinaryQuadraticModel) -> float:
    """Lowest energy of a small BQM, by dimod's brute force."""
    return float(dimod.ExactSolver().sample(bqm).first.energy)


@lru_cache(maxsize=None)
def mock_qpu():
    """One shared ``dwave-mock`` sampler (building the P16 graph and its clique cache takes ~2 s)."""
    from qannealq.backends import get_sampler

    return get_sampler("dwave-mock")


def _isolate_dwave_config(monkeypatch, tmp_path) -> None:
    """The dwave config is an empty file (``DWAVE_CONFIG_FILE`` replaces the search for one)."""
    empty = tmp_path / "dwave.conf"
    empty.write_text("")
    monkeypatch.setenv("DWAVE_CONFIG_FILE", str(empty))
    for var in ("DWAVE_API_TOKEN", "DWAVE_PROFILE"):
        monkeypatch.delenv(var, raising=False)


@pytest.fixture
def no_dwave_token(monkeypatch, tmp_path):
    """An environment without any D-Wave API token."""
    _isolate_dwave_config(monkeypatch, tmp_path)


@pytest.fixture
def fake_dwave_token(monkeypatch, tmp_path):
    """``DWAVE_API_TOKEN`` set to :data:`FAKE_TOKEN` (and no config file)."""
    _isolate_dwave_config(monkeypatch, tmp_path)
    monkeypatch.setenv("DWAVE_API_TOKEN", FAKE_TOKEN)
    return FAKE_TOKEN
