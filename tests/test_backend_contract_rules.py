"""The backend contract's rules (ARCHITECTURE.md §3) on every backend that can be built offline.

* Unknown keyword arguments: warned about (``SamplerUnknownArgWarning``) and dropped, as dimod's
  ``remove_unknown_kwargs`` does; ``parameters`` lists what ``sample`` takes, without any network call.
* Capacity in one form: ``properties["max_variables"]`` is the class's ``default_max_variables``.
* Resources: ``close()`` and ``with`` release them, twice is harmless, a closed sampler works again.

The cloud backends (``dwave``, ``dwave-hybrid``) run with a fake token and an offline child: never the network.
"""

from __future__ import annotations

import dimod
import numpy as np
import pytest
from dimod.exceptions import SamplerUnknownArgWarning

from backend_fixtures import mock_qpu
from qannealq.backends import BACKENDS, _load, get_sampler
from qannealq.contract import check_parameters
from qannealq.errors import InvalidArgumentError

# name: (constructor options, sample kwargs, module needed)
CASES = {
    "sa": ({}, {"num_reads": 2}, "dwave.samplers"),
    "tabu": ({"timeout": 5}, {}, "dwave.samplers"),
    "steepest": ({}, {}, "dwave.samplers"),
    "exact": ({}, {}, "dimod"),
    "gurobi": ({}, {}, "gurobipy"),
    "qaoa": ({"maxiter": 5, "shots": 64}, {}, "qiskit_optimization"),
    "dwave-mock": ({"topology_shape": [2]}, {"num_reads": 5}, "dwave.system"),
    "dwave": ({}, {"num_reads": 5}, "dwave.system"),
    "dwave-hybrid": ({}, {}, "dwave.system"),
}
DWAVE_SAMPLERS = {"sa": "SimulatedAnnealingSampler", "tabu": "TabuSampler", "steepest": "SteepestDescentSolver"}


def _bqm() -> dimod.BinaryQuadraticModel:
    return dimod.BinaryQuadraticModel({0: 1.0, 1: -2.0, 2: 0.5}, {(0, 1): 1.5, (1, 2): -1.0}, 0.25, "BINARY")


class _Spy:
    """Records the keyword arguments that reach the inner sampler."""

    def __init__(self) -> None:
        self.seen: list[dict] = []

    def wrap(self, sample):
        def spied(*args, **kwargs):
            self.seen.append(dict(kwargs))
            return sample(*args, **kwargs)

        return spied


def _offline(name: str, monkeypatch, request, spy: _Spy) -> None:
    """Route the sampler's inner calls through ``spy``; the cloud backends get an offline child."""
    if name in DWAVE_SAMPLERS:
        import dwave.samplers

        cls = getattr(dwave.samplers, DWAVE_SAMPLERS[name])
        monkeypatch.setattr(cls, "sample", spy.wrap(cls.sample))
    elif name in ("dwave", "dwave-mock"):
        from dwave.system.testing import MockDWaveSampler  # refuses unknown kwargs itself, too

        from qannealq.backends.dwave import QPUSampler

        monkeypatch.setattr(MockDWaveSampler, "sample", spy.wrap(MockDWaveSampler.sample))
        if name == "dwave":
            request.getfixturevalue("fake_dwave_token")
            monkeypatch.setattr(QPUSampler, "_make_child", lambda self: MockDWaveSampler(
                topology_type="pegasus", topology_shape=[2], parameter_warnings=False))
    elif name == "dwave-hybrid":
        request.getfixturevalue("fake_dwave_token")

        class Hybrid:
            properties = {"maximum_number_of_variables": 50}

            def __init__(self, **config) -> None:
                pass

            def sample(self, bqm, **kwargs):
                return dimod.ExactSolver().sample(bqm).truncate(1)

        Hybrid.sample = spy.wrap(Hybrid.sample)
        monkeypatch.setattr("dwave.system.LeapHybridSampler", Hybrid)


@pytest.mark.parametrize("name", list(CASES))
def test_a_typo_is_warned_about_and_dropped(name, monkeypatch, request):
    options, kwargs, module = CASES[name]
    pytest.importorskip(module)
    spy = _Spy()
    _offline(name, monkeypatch, request, spy)
    sampler = get_sampler(name, **options)
    bqm = _bqm()
    with pytest.warns(SamplerUnknownArgWarning, match="'num_read'"):
        ss = sampler.sample(bqm, num_read=3, **kwargs)
    ss.resolve()
    assert len(ss) >= 1 and np.allclose(bqm.energies(ss), ss.record.energy)
    assert ss.first.energy == pytest.approx(dimod.ExactSolver().sample(bqm).first.energy)
    assert all("num_read" not in seen for seen in spy.seen)
    if name in DWAVE_SAMPLERS or name.startswith("dwave"):
        assert spy.seen, "the spy saw no inner call"


def test_classical_parameters_are_dwave_samplers_own():
    import dwave.samplers

    for name, inner in DWAVE_SAMPLERS.items():
        params = set(get_sampler(name).parameters)
        assert params == set(getattr(dwave.samplers, inner)().parameters) and {"seed", "initial_states"} <= params


def test_cloud_parameters_need_no_network(fake_dwave_token, monkeypatch):
    pytest.importorskip("dwave.system")
    from qannealq.backends.dwave import QPU_PARAMETERS

    def forbidden(*args, **kwargs):
        raise AssertionError("parameters called the network")

    monkeypatch.setattr("dwave.system.DWaveSampler", forbidden)
    monkeypatch.setattr("dwave.system.LeapHybridSampler", forbidden)
    qpu, hybrid, mock = get_sampler("dwave"), get_sampler("dwave-hybrid"), get_sampler("dwave-mock")
    assert set(qpu.parameters) == set(QPU_PARAMETERS) and "seed" not in qpu.parameters
    assert set(mock.parameters) == set(QPU_PARAMETERS) | {"seed"}
    assert set(hybrid.parameters) == {"time_limit", "label"}
    check_parameters("dwave", qpu, {"num_reads": 10, "annealing_time": 20})  # the commands' check, before any work
    with pytest.raises(InvalidArgumentError, match="num_read"):
        check_parameters("dwave", qpu, {"num_read": 10})
    with pytest.raises(InvalidArgumentError, match="seed"):
        check_parameters("dwave-hybrid", hybrid, {"seed": 1})
    assert qpu._child is None and hybrid._child is None and mock._child is None


@pytest.mark.parametrize("name, options", [
    ("sa", {}), ("tabu", {}), ("steepest", {}), ("layer-sa", {}), ("exact", {}), ("exact", {"max_variables": 6}),
    ("gurobi", {}), ("qaoa", {}), ("qaoa", {"max_qubits": 5}), ("dwave-mock", None),
])
def test_max_variables_property_is_the_class_default_or_the_option(name, options):
    pytest.importorskip(CASES[name][2] if name in CASES else "dimod")
    cls = _load(BACKENDS[name])
    sampler = mock_qpu() if options is None else get_sampler(name, **options)
    assert "max_variables" in sampler.properties
    expected = next(iter(options.values())) if options else cls.default_max_variables
    assert sampler.properties["max_variables"] == expected


def test_gurobi_with_block_disposes_of_its_environment():
    gp = pytest.importorskip("gurobipy")
    bqm = _bqm()
    with get_sampler("gurobi") as sampler:
        assert sampler.sample(bqm).first.energy == pytest.approx(dimod.ExactSolver().sample(bqm).first.energy)
        env = sampler._env
        assert env is not None
    assert sampler._env is None
    with pytest.raises(gp.GurobiError):  # disposed: no model can be built on it any more
        gp.Model(env=env)
    sampler.close()  # idempotent
    assert len(sampler.sample(bqm)) == 1 and sampler._env is not None  # a closed sampler starts a new environment
    sampler.close()
    assert sampler._env is None


def test_mock_qpu_close_works_twice_and_the_sampler_works_again():
    pytest.importorskip("dwave.system")
    sampler = get_sampler("dwave-mock", topology_shape=[2])
    bqm = _bqm()
    sampler.sample(bqm, num_reads=5).resolve()
    child = sampler._child
    closed = []
    child.close = lambda: closed.append(1)
    with sampler:
        pass
    sampler.close()
    assert closed == [1] and sampler._child is None and sampler._embeddings == {}
    assert len(sampler.sample(bqm, num_reads=5)) >= 1 and sampler._child is not child
    sampler.close()
