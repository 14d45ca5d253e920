"""Every option each backend lists, given bad values: refused by the commands' check naming it, or taken by the
solver, which then runs or refuses in our error; never a TypeError, ValueError or RecursionError from inside a
solver (as ``dwave-mock``'s ``chain_break_method='abc'``, ``sa``'s ``beta_schedule`` without
``beta_schedule_type='custom'`` and ``layer-sa``'s ``beta_range=3`` did, after training)."""

from __future__ import annotations

import warnings

import dimod
import pytest

from qannealq.backends import get_sampler
from qannealq.contract import RESERVED_OPTIONS, accepted_options, check_parameters
from qannealq.errors import QannealqError

BAD = [0, -1, -0.5, "abc", True, float("nan"), [1], {"a": 1}]
"""Values of the wrong sign, type or shape (no huge ones: a count of 10**7 is legal, and runs as long as asked)."""
BACKENDS = {"sa": ({}, "dwave.samplers"), "tabu": ({"timeout": 5}, "dwave.samplers"),
            "steepest": ({}, "dwave.samplers"), "exact": ({}, "dimod"), "layer-sa": ({}, "numba"),
            "gurobi": ({"time_limit": 2}, "gurobipy"), "qaoa": ({"maxiter": 5, "shots": 32}, "qiskit_optimization"),
            "dwave-mock": ({"topology_shape": [6], "num_reads": 5}, "dwave.system")}


def _bqm(n: int) -> dimod.BinaryQuadraticModel:
    """A dense QUBO of ``n`` variables, as a neuron's (every pair coupled)."""
    return dimod.BinaryQuadraticModel({k: (-1.0) ** k * (k + 1) for k in range(n)},
                                      {(j, k): 0.5 + 0.1 * ((j * 7 + k) % 5) for j in range(n) for k in range(j)},
                                      0.0, "BINARY")


@pytest.mark.parametrize("name", sorted(BACKENDS))
def test_every_listed_option_refuses_a_bad_value_or_runs(name):
    options, module = BACKENDS[name]
    pytest.importorskip(module)
    sampler = get_sampler(name, **options)
    keys = sorted((accepted_options(sampler) or set()) - set(RESERVED_OPTIONS))
    assert keys, f"{name} lists no options"
    bqm = _bqm(5 if name == "qaoa" else 8)
    escaped = []
    for key in keys:
        for value in BAD:
            try:
                check_parameters(name, sampler, {key: value})
            except QannealqError:
                continue
            except Exception as exc:  # noqa: BLE001 (the point: what the check lets through)
                escaped.append(f"check {key}={value!r}: {type(exc).__name__}: {exc}")
                continue
            try:
                with warnings.catch_warnings():
                    warnings.simplefilter("ignore")
                    answer = sampler.sample(bqm, **{key: value})
                    answer.resolve()
            except QannealqError:
                continue
            except Exception as exc:  # noqa: BLE001
                escaped.append(f"sample {key}={value!r}: {type(exc).__name__}: {str(exc)[:120]}")
    close = getattr(sampler, "close", None)
    if callable(close):
        close()
    assert not escaped, f"{name}: " + "; ".join(escaped)
