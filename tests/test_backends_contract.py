"""dimod's sampler contract kit (``load_sampler_bqm_tests``, BQMs of 0-3 variables) on every local backend."""

from __future__ import annotations

import importlib.util
import unittest

import dimod.testing
import pytest

from qannealq.backends import get_sampler

# the kit's empty BQMs make simulated annealing warn that every bias is zero
pytestmark = pytest.mark.filterwarnings("ignore:All bqm biases are zero")


def _contract(name: str, module: str, **options) -> type:
    """A TestCase with the kit's tests for backend ``name``, skipped when ``module`` is not installed."""
    cls = type(f"TestContract_{name.replace('-', '_')}", (unittest.TestCase,), {})
    if importlib.util.find_spec(module) is None:
        return unittest.skip(f"{module} is not installed")(cls)
    return dimod.testing.load_sampler_bqm_tests(get_sampler(name, **options))(cls)


TestContractSA = _contract("sa", "dwave.samplers")
TestContractTabu = _contract("tabu", "dwave.samplers", timeout=5)
TestContractSteepest = _contract("steepest", "dwave.samplers")
TestContractExact = _contract("exact", "dimod")
TestContractGurobi = _contract("gurobi", "gurobipy")
TestContractDWaveMock = _contract("dwave-mock", "dwave.system")
TestContractQAOA = _contract("qaoa", "qiskit_optimization", maxiter=10, shots=256)
