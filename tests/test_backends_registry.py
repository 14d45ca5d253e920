"""The registry: names and aliases, statuses and pip hints, entry points, instances, capacities (the classes'
own) and capacity refusals."""

from __future__ import annotations

import importlib.metadata
import subprocess
import sys

import dimod
import numpy as np
import pytest

from backend_fixtures import mock_qpu
from qannealq.backends import (BACKENDS, UNDOCUMENTED_CAPACITY, available_backends, capacity_of, get_sampler,
                               resolve_sampler)
from qannealq.backends.exact import ExactSampler
from qannealq.cli import main
from qannealq.errors import BackendUnavailableError, InvalidArgumentError, ProblemTooLargeError

EXPECTED = {"sa", "tabu", "steepest", "exact", "gurobi", "dwave", "dwave-mock", "dwave-hybrid", "qaoa"}


def _dense(m: int) -> dimod.BinaryQuadraticModel:
    rng = np.random.default_rng(m)
    return dimod.BinaryQuadraticModel(rng.normal(size=m), np.triu(rng.normal(size=(m, m)), 1), 0.0, "BINARY")


CAPACITIES = {"sa": "any", "tabu": "any", "steepest": "any", "layer-sa": "any", "exact": "24 (2^m assignments)",
              "gurobi": "200 (Gurobi pip licence)", "qaoa": "20 (one qubit per variable)",
              "dwave-mock": "180 (largest clique, P16)", "dwave": "largest clique (~177-184)",
              "dwave-hybrid": "solver's limit (~1M)"}


def test_every_backend_is_registered_with_a_family_and_its_class_capacity(no_dwave_token):
    assert EXPECTED <= set(BACKENDS)
    assert all(spec.family and spec.target.count(":") == 1 for spec in BACKENDS.values())
    rows = {r.name: r for r in available_backends()}
    for name, row in rows.items():
        if row.status == "package missing":
            assert row.capacity == ""
            continue
        assert row.capacity == CAPACITIES[name], name


def test_capacity_text_is_read_from_the_class(monkeypatch):
    monkeypatch.setattr(ExactSampler, "default_max_variables", 7)
    monkeypatch.setattr(ExactSampler, "capacity_reason", "a test limit")
    assert {r.name: r.capacity for r in available_backends()}["exact"] == "7 (a test limit)"
    assert get_sampler("exact").properties["max_variables"] == 24  # the constructor's default is bound once
    assert capacity_of(dimod.ExactSolver) == UNDOCUMENTED_CAPACITY


def test_a_third_party_class_states_its_capacity_in_its_properties():
    """A sampler of yours with ``properties = {"max_variables": 8}`` on its class (the contract's way to state a
    capacity) was listed "see its documentation", though decomposition and capacity checks read the 8."""
    class Mine(dimod.Sampler):
        properties = {"max_variables": 8}
        parameters = {}

        def sample(self, bqm, **kwargs):  # pragma: no cover - listed, never sampled
            raise NotImplementedError

    assert capacity_of(Mine) == "8 (its properties' max_variables)"
    Mine.properties = {"max_variables": True}
    assert capacity_of(Mine) == UNDOCUMENTED_CAPACITY


def test_mock_capacity_text_is_its_real_largest_clique():
    pytest.importorskip("dwave.system")
    from qannealq.backends.dwave import MockQPUSampler

    assert mock_qpu().max_variables == MockQPUSampler.default_max_variables == 180


def test_alias_and_instances():
    assert type(get_sampler("neal")) is type(get_sampler("sa"))
    exact = get_sampler("exact")
    assert resolve_sampler(exact) is exact and get_sampler(exact) is exact
    assert resolve_sampler(dimod.ExactSolver()).sample(_dense(3)).first.energy is not None
    with pytest.raises(InvalidArgumentError, match="backend='nope' is unknown"):
        get_sampler("nope")
    with pytest.raises(InvalidArgumentError, match="cannot be applied"):
        get_sampler(exact, max_variables=3)


def test_an_alias_names_a_backend_and_is_resolved_in_one_place():
    """Four places resolved aliases each with ``ALIASES.get(name, name)`` and others compared names as given (sweep's
    ``sa:KEY`` did not reach ``qubo:neal``): :func:`canonical_name` is the one resolution. An alias names a
    registry key itself (no chain, no dangling name); names are case-sensitive, as :func:`get_sampler` is."""
    import pathlib

    from qannealq.backends import ALIASES, BACKENDS, canonical_name

    assert all(target in BACKENDS and target not in ALIASES for target in ALIASES.values())
    assert not set(ALIASES) & set(BACKENDS)
    assert canonical_name("neal") == "sa" and canonical_name("sa") == "sa" and canonical_name("NEAL") == "NEAL"
    root = pathlib.Path(__file__).resolve().parents[1]
    readers = sorted(str(p.relative_to(root)) for folder in ("qannealq", "backends")
                     for p in (root / folder).rglob("*.py") if "ALIASES.get" in p.read_text())
    assert readers == ["backends/__init__.py"]


def test_statuses_without_credentials(no_dwave_token):
    rows = {r.name: r for r in available_backends()}
    assert EXPECTED <= set(rows)
    for name in ("sa", "tabu", "steepest", "exact", "dwave-mock", "qaoa", "gurobi"):
        assert rows[name].status == "ready", rows[name]
    for name in ("dwave", "dwave-hybrid"):
        assert rows[name].status == "no credentials"
        assert "DWAVE_API_TOKEN" in rows[name].hint and "dwave config create" in rows[name].hint


@pytest.mark.parametrize("module, backend, extra", [
    ("gurobipy", "gurobi", "gurobi"),
    ("qiskit_optimization", "qaoa", "qiskit"),
    ("dwave.system", "dwave-mock", "dwave"),
    ("dwave.system", "dwave", "dwave"),
])
def test_missing_package_gives_the_exact_pip_hint(monkeypatch, module, backend, extra):
    monkeypatch.setitem(sys.modules, module, None)  # makes `import module` raise ImportError
    target = BACKENDS[backend].target.partition(":")[0]
    for name in [m for m in sys.modules if m == target or m.startswith("qannealq.backends._dwave")]:
        monkeypatch.delitem(sys.modules, name)  # imported afresh, as in an environment without the SDK
    row = next(r for r in available_backends() if r.name == backend)
    assert row.status == "package missing" and row.capacity == ""
    assert f"pip install 'qannealq[{extra}]'" in row.hint and module in row.hint
    with pytest.raises(BackendUnavailableError, match=rf"pip install 'qannealq\[{extra}\]'"):
        get_sampler(backend)
    with pytest.raises(ImportError):  # BackendUnavailableError is also an ImportError
        get_sampler(backend)


def test_third_party_backend_through_entry_points(monkeypatch):
    eps = [importlib.metadata.EntryPoint("brute", "dimod:ExactSolver", "qannealq.backends"),
           importlib.metadata.EntryPoint("own-exact", "qannealq.backends.exact:ExactSampler", "qannealq.backends")]
    real = importlib.metadata.entry_points

    def fake(**kwargs):
        return eps if kwargs.get("group") == "qannealq.backends" else real(**kwargs)

    monkeypatch.setattr(importlib.metadata, "entry_points", fake)
    assert isinstance(get_sampler("brute"), dimod.ExactSolver)
    rows = {r.name: r for r in available_backends()}
    assert rows["brute"].status == "ready" and rows["brute"].spec.family == "third-party"
    assert rows["brute"].capacity == "see its documentation"  # the class does not say
    assert rows["own-exact"].capacity == "24 (2^m assignments)"  # the class says


def test_cli_lists_every_backend_with_status_and_capacity(capsys, no_dwave_token):
    assert main(["backends"]) == 0
    out = capsys.readouterr().out
    for name in EXPECTED:
        assert f"\n{name} " in out
    assert "no credentials" in out and "DWAVE_API_TOKEN" in out and "neal = sa" in out
    assert "200 (Gurobi pip licence)" in out


@pytest.mark.parametrize("name, options, size, limit", [
    ("exact", {}, 25, 24),
    ("exact", {"max_variables": 6}, 7, 6),
    ("gurobi", {}, 201, 200),
    ("qaoa", {}, 21, 20),
    ("qaoa", {"max_qubits": 5}, 6, 5),
])
def test_capacity_refusals_name_both_sizes(name, options, size, limit):
    if name == "gurobi":
        pytest.importorskip("gurobipy")
    if name == "qaoa":
        pytest.importorskip("qiskit_optimization")
    sampler = get_sampler(name, **options)

    class Untouchable(dimod.BinaryQuadraticModel):
        """Any conversion of the BQM means the backend started working on it before checking its size."""

        def change_vartype(self, *args, **kwargs):
            raise AssertionError("the backend started work before checking the capacity")

        def to_numpy_vectors(self, *args, **kwargs):
            raise AssertionError("the backend started work before checking the capacity")

    big = _dense(size)
    untouchable = Untouchable(big.linear, big.quadratic, big.offset, "BINARY")
    with pytest.raises(ProblemTooLargeError, match=rf"at most {limit} variables.*this BQM has {size}"):
        sampler.sample(untouchable)


def test_dwave_mock_capacity_is_its_graphs_largest_clique():
    pytest.importorskip("dwave.system")
    sampler = mock_qpu()
    assert sampler.max_variables == sampler.properties["max_variables"] == 180
    limit = sampler.max_variables
    with pytest.raises(ProblemTooLargeError, match=rf"at most {limit} variables.*this BQM has {limit + 1}"):
        sampler.sample(_dense(limit + 1))
    small = get_sampler("dwave-mock", topology_shape=[2])
    assert small.max_variables < 20
    with pytest.raises(ProblemTooLargeError, match=rf"at most {small.max_variables} variables"):
        small.sample(_dense(small.max_variables + 1))


def test_core_and_registry_import_no_backend_sdk():
    code = ("import sys, qannealq, qannealq.solve, qannealq.backends; "
            "print([m for m in ('gurobipy', 'qiskit', 'qiskit_optimization', 'dwave.system', 'dwave.cloud') "
            "if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
