"""The backend contract's rules (ARCHITECTURE.md §3) on every backend that can be built offline.

* Unknown keyword arguments: warned about (``SamplerUnknownArgWarning``) and dropped, as dimod's
  ``remove_unknown_kwargs`` does; ``parameters`` lists what ``sample`` takes, without any network call.
* Capacity in one form: ``properties["max_variables"]`` is the class's ``default_max_variables``.
* Resources: ``close()`` and ``with`` release them, twice is harmless, a closed sampler works again.

The cloud backends (``dwave``, ``dwave-hybrid``) run with a fake token and an offline child: never the network.
"""

from __future__ import annotations

import re

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


# name: (a bad option value and the words its error must hold, good options); the cloud QPU's are checked without
# the network or QPU time
BAD_VALUES = {
    "sa": ({"num_reads": -1}, "num_reads=-1 must be an integer >= 1", {"num_reads": 3, "beta_range": [0.1, 4.0]}),
    "tabu": ({"timeout": -5}, "timeout=-5 must be a number of milliseconds > 0", {"timeout": 5, "num_reads": 2}),
    "steepest": ({"large_sparse_opt": "yes"}, "large_sparse_opt='yes' must be True or False", {"num_reads": 2}),
    "exact": ({"num_reads": 0}, "num_reads=0 must be an integer >= 1", {"num_reads": 2}),
    "gurobi": ({"time_limit": 0}, "time_limit=0 must be a number of seconds > 0", {"time_limit": 1.5}),
    "qaoa": ({"reps": 0}, "reps=0 must be an integer >= 1", {"reps": 2, "shots": 64}),
    "layer-sa": ({"effort": "slow"}, "effort='slow' must be one of", {"effort": "fast", "time_limit": 0.5}),
    "dwave-mock": ({"reversal_point": 1.5}, "reversal_point=1.5 must be a number strictly between 0 and 1",
                   {"num_reads": 5, "anneal": "reverse"}),
    "dwave": ({"anneal": "sideways"}, "anneal='sideways' is unknown", {"num_reads": 5, "annealing_time": 20}),
    "dwave-hybrid": ({"time_limit": -3}, "time_limit=-3 must be a number of seconds > 0", {"time_limit": 5}),
}


@pytest.mark.parametrize("name", sorted(BAD_VALUES))
def test_a_bad_option_value_is_refused_before_any_work_naming_it(name, fake_dwave_token, monkeypatch):
    """The commands' check (:func:`check_parameters`, before any training) refuses a bad value by the sampler's own
    ``check_options``, naming the option, its value and the backend; good values pass; no QPU is reached."""
    module = {"dwave-mock": "dwave.system", "dwave": "dwave.system", "dwave-hybrid": "dwave.system",
              "layer-sa": "numba", "gurobi": "gurobipy",
              "qaoa": "qiskit_optimization"}.get(name, "dwave.samplers")
    pytest.importorskip(module)
    for cloud in ("DWaveSampler", "LeapHybridSampler"):
        monkeypatch.setattr(f"dwave.system.{cloud}", lambda *a, **k: pytest.fail("the cloud was reached"),
                            raising=False)
    bad, words, good = BAD_VALUES[name]
    sampler = get_sampler(name)
    check_parameters(name, sampler, good)
    with pytest.raises(InvalidArgumentError) as err:
        check_parameters(name, sampler, bad)
    assert words in str(err.value) and f"(backend {name!r})" in str(err.value)
    assert str(err.value).startswith("--sampler-option ")


CONSTRUCTOR_BAD = [
    ("tabu", {"num_reads": None}, "num_reads=None: give a value, or leave num_reads out for its default 10"),
    ("steepest", {"num_reads": None}, "num_reads=None: give a value"),
    ("exact", {"max_variables": "abc"}, "max_variables='abc' must be an integer within 0..30"),
    ("exact", {"max_variables": True}, "max_variables=True must be an integer within 0..30"),
    ("gurobi", {"max_variables": None}, "max_variables=None must be an integer >= 0"),
    ("gurobi", {"threads": -1}, "threads=-1 must be an integer >= 0"),
    ("gurobi", {"threads": "abc"}, "threads='abc' must be an integer >= 0"),
    ("qaoa", {"optimizer": ["cobyla"]}, "optimizer=['cobyla'] is unknown"),
    ("qaoa", {"max_qubits": 40}, "max_qubits=40: a statevector of 2^40 amplitudes needs"),
    ("dwave-mock", {"topology_type": "hexagon"}, "topology_type='hexagon' is unknown: choose one of pegasus, zephyr, chimera"),
    ("dwave-mock", {"topology_shape": 16}, "topology_shape=16 must be a list of positive integers"),
    ("dwave-mock", {"topology_shape": [1]}, "topology_shape=[1] must be a list of positive integers that fits "
     "topology_type='pegasus': [m], m >= 2 (P1 has no qubits)"),
    ("dwave-mock", {"topology_type": "chimera", "topology_shape": [2, 2, 4, 1]}, "fits topology_type='chimera'"),
    ("dwave-mock", {"anneal": None}, "anneal=None: give a value, or leave anneal out for its default 'auto'"),
    ("dwave", {"embedding_cache": 3}, "embedding_cache=3 must be a folder (a path)"),
    ("dwave-hybrid", {"time_limit": -1}, "time_limit=-1 must be a number of seconds > 0"),
]


@pytest.mark.parametrize("name, bad, words", CONSTRUCTOR_BAD,
                         ids=[f"{n}-{next(iter(b))}" for n, b, _ in CONSTRUCTOR_BAD])
def test_a_constructor_refuses_a_bad_option_naming_it(name, bad, words, fake_dwave_token, monkeypatch):
    """Found by building every backend with bad values of each constructor option: these were built (and failed
    at the first call, or took dwave-samplers' default, or never: ``gurobi``'s ``threads='abc'``), or raised a bare
    TypeError (``exact``'s ``max_variables='abc'``, ``qaoa``'s ``optimizer=[...]``, ``dwave-mock``'s
    ``topology_shape=16``; its ``[1]``, an empty Pegasus graph, failed at the first call)."""
    pytest.importorskip(CASES[name][2])
    for cloud in ("DWaveSampler", "LeapHybridSampler"):
        monkeypatch.setattr(f"dwave.system.{cloud}", lambda *a, **k: pytest.fail("the cloud was reached"),
                            raising=False)
    with pytest.raises(InvalidArgumentError, match=re.escape(words)):
        get_sampler(name, **bad)


def test_the_mock_qpu_keeps_the_qpus_defaults():
    """``QPUSampler._setup`` reads the defaults it refuses None for from ``QPUSampler.__init__``; the mock's
    constructor repeats them and must not drift."""
    import inspect

    pytest.importorskip("dwave.system")
    from qannealq.backends.dwave import MockQPUSampler, QPUSampler

    qpu, mock = (inspect.signature(c.__init__).parameters for c in (QPUSampler, MockQPUSampler))
    shared = [name for name in qpu if name in mock and name != "self"]
    assert len(shared) >= 8 and all(qpu[name].default == mock[name].default for name in shared)


@pytest.mark.parametrize("bad, words", [
    ({"beta_schedule": [0.1, 1, 5]}, "beta_schedule is given with beta_schedule_type='linear': add"),
    ({"beta_schedule_type": "custom"}, "beta_schedule_type=custom needs a beta_schedule"),
    ({"beta_schedule": [0.1, -1], "beta_schedule_type": "custom"}, "beta_schedule=[0.1, -1] must be a list of"),
    ({"beta_schedule": [0.1, 1, 5], "beta_schedule_type": "custom", "num_sweeps": 4},
     "num_sweeps=4 disagrees with beta_schedule's 3 values x num_sweeps_per_beta=1: give num_sweeps=3"),
    ({"beta_schedule": [0.1, 1, 5], "beta_schedule_type": "custom", "beta_range": [0.2, 5]},
     "beta_range=[0.2, 5] disagrees with beta_schedule's ends [0.1, 5]"),
    ({"interrupt_function": 3}, "interrupt_function=3 must be a callable"),
])
def test_sa_refuses_what_dwave_samplers_refuses_only_when_it_samples(bad, words):
    """dwave-samplers checks ``beta_schedule`` against ``beta_schedule_type``, ``num_sweeps`` and ``beta_range``,
    and ``interrupt_function``'s type, inside ``sample`` (after training, a bare ValueError or TypeError);
    ``--sampler-option beta_schedule=[...]`` alone passed every check before. A good custom schedule runs."""
    sampler = get_sampler("sa")
    with pytest.raises(InvalidArgumentError, match=re.escape(words)):
        check_parameters("sa", sampler, bad)
    with pytest.raises(InvalidArgumentError, match=re.escape(words)):
        sampler.sample(_bqm(), **bad)
    good = {"beta_schedule": [0.1, 1, 5], "beta_schedule_type": "custom", "num_sweeps": 3, "beta_range": [0.1, 5]}
    check_parameters("sa", sampler, good)
    assert len(sampler.sample(_bqm(), num_reads=2, **good)) == 2


@pytest.mark.parametrize("name, bad, words", [
    ("layer-sa", {"beta_range": 3}, "beta_range=3 must be two positive numbers"),
    ("layer-sa", {"beta_range": [5, 1]}, "beta_range=[5, 1] must be [low, high] with low <= high"),
    ("layer-sa", {"effort": ["fast"]}, "effort=['fast'] must be one of"),
    ("layer-sa", {"hot_acceptance": "abc"}, "hot_acceptance='abc' must be a probability within (0, 1)"),
    ("dwave-mock", {"chain_break_method": "abc"}, "chain_break_method='abc': use majority_vote (the default) or"),
    ("dwave-mock", {"chain_break_method": 3}, "chain_break_method=3: use majority_vote"),
    ("dwave-mock", {"programming_thermalization": "abc"}, "programming_thermalization='abc' must be a number of "
                                                          "microseconds >= 0"),
    ("dwave-mock", {"readout_thermalization": [1]}, "readout_thermalization=[1] must be a number of microseconds"),
])
def test_option_values_that_failed_inside_the_solver_are_refused_naming_them(name, bad, words):
    """Found by passing bad values of every option each backend lists: these passed the commands' check and
    then failed inside the solve with a TypeError, a ValueError or (``dwave-mock``'s ``chain_break_method='abc'``)
    a RecursionError; ``layer-sa``'s ``beta_range=[5, 1]`` (the ends swapped) was refused by the schedule only, once
    the first layer's solve began, after training and calibration."""
    pytest.importorskip({"layer-sa": "numba", "dwave-mock": "dwave.system"}[name])
    with pytest.raises(InvalidArgumentError, match=re.escape(words)):
        check_parameters(name, get_sampler(name), bad)


def test_a_qpu_call_on_one_bqm_takes_chain_break_method_by_name():
    """``compare`` samples one neuron per QPU call (``sample``), where ``chain_break_method='weighted_random'``
    (the name the whole-layer path and the README take) ended in a RecursionError inside dwave-system."""
    pytest.importorskip("dwave.system")
    qpu = get_sampler("dwave-mock", topology_shape=[6], num_reads=6)
    bqm = _bqm()
    for method in ("weighted_random", "majority_vote"):
        answer = qpu.sample(bqm, chain_break_method=method)
        answer.resolve()
        assert sum(answer.record.num_occurrences) == 6 and set(answer.variables) == set(bqm.variables)


@pytest.mark.parametrize("name", ["dwave-mock", "dwave"])
@pytest.mark.parametrize("bad, words", [({"num_reads": 0}, "num_reads=0 must be an integer >= 1"),
                                        ({"anneal": "sideways"}, "anneal='sideways' is unknown"),
                                        ({"chain_strength_scale": 0}, "chain_strength_scale=0 must be a number > 0"),
                                        ({"reversal_pause": -1}, "reversal_pause=-1 must be microseconds")])
def test_a_qpu_backends_constructor_refuses_what_its_calls_refuse(name, bad, words, fake_dwave_token, monkeypatch):
    """``get_sampler("dwave-mock", num_reads=0)`` was built, and failed only at its first call (after training,
    through ``quantize_model(sampler=...)``); the constructor now applies the calls' rules, without a connection."""
    pytest.importorskip("dwave.system")
    monkeypatch.setattr("dwave.system.DWaveSampler", lambda *a, **k: pytest.fail("the cloud was reached"))
    with pytest.raises(InvalidArgumentError, match=re.escape(words)):
        get_sampler(name, **bad)
    assert get_sampler(name, num_reads=7, anneal="forward", chain_strength_scale=0.5).num_reads == 7


@pytest.mark.parametrize("name, bad", [("sa", {"num_sweeps": "abc"}), ("tabu", {"num_reads": 0}),
                                       ("exact", {"num_reads": 0}), ("qaoa", {"reps": 0}),
                                       ("dwave-mock", {"annealing_time": -1})])
def test_sample_itself_refuses_a_bad_value(name, bad):
    """Called from Python, the sampler refuses the value before any work, in our error (an ``InvalidArgumentError``
    naming ``option=value``): ``sa``'s ``num_sweeps='abc'`` raised a TypeError from deep inside, ``qaoa``'s
    ``reps=0`` ran the default reps. (``tabu``'s ``timeout=-5``, refused the same way, ran without end: not solved
    here, in case the check is lost.)"""
    pytest.importorskip(CASES[name][2])
    with pytest.raises(InvalidArgumentError, match=f"{next(iter(bad))}="):
        get_sampler(name).sample(_bqm(), **bad)
    if name == "dwave-mock":  # and the whole-layer path, before any embedding or call
        with pytest.raises(InvalidArgumentError, match="annealing_time=-1"):
            get_sampler(name).sample_layer(None, **bad)


def test_layer_sa_refuses_a_cuda_device_torch_does_not_see_before_any_work(monkeypatch):
    pytest.importorskip("numba")
    import torch

    from qannealq.errors import BackendUnavailableError

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    sampler = get_sampler("layer-sa")
    check_parameters("layer-sa", sampler, {"device": "auto"})  # auto: the CPU then
    with pytest.raises(BackendUnavailableError, match="device='cuda'.*sees no CUDA device"):
        check_parameters("layer-sa", sampler, {"device": "cuda"})


def test_a_composite_checks_its_own_options_and_passes_the_rest_to_its_child():
    pytest.importorskip("dwave.samplers")
    from qannealq.backends import auto_decompose, with_retries

    wrapped = auto_decompose(with_retries("sa", get_sampler("sa"), 2, 0))
    check_parameters("sa", wrapped, {"num_reads": 2})
    with pytest.raises(InvalidArgumentError, match="num_reads=0 must be"):
        check_parameters("sa", wrapped, {"num_reads": 0})
    exact = auto_decompose(get_sampler("exact"))
    with pytest.raises(InvalidArgumentError, match="capacity=0 must be an integer >= 1"):
        check_parameters("exact", exact, {"capacity": 0})
    with pytest.raises(InvalidArgumentError, match="num_reads=0 must be"):
        check_parameters("exact", exact, {"capacity": 8, "num_reads": 0})


def test_get_sampler_names_a_constructor_option_the_backend_does_not_take():
    """``get_sampler("sa", num_reads=0)`` raised Python's TypeError about ``_Recorded.__init__``; now our error names
    the option, the ones the constructor takes and where options of each call go."""
    pytest.importorskip("dwave.samplers")
    with pytest.raises(InvalidArgumentError, match=r"backend 'sa' takes no constructor option num_reads \(its "
                                                   r"constructor options: none\); give options of each call"):
        get_sampler("sa", num_reads=0)
    with pytest.raises(InvalidArgumentError, match=r"tenure.*constructor options: timeout, num_reads"):
        get_sampler("tabu", tenure=3)
    assert get_sampler("tabu", timeout=5).timeout == 5


def test_gurobi_refuses_a_bad_time_limit_when_built():
    pytest.importorskip("gurobipy")
    with pytest.raises(InvalidArgumentError, match="time_limit=-1 must be a number of seconds > 0"):
        get_sampler("gurobi", time_limit=-1)


def test_constructor_counts_share_the_contract_rule():
    """QAOA's, the decomposition's and the QPU's counts go through ``qannealq.checks.check_positive``, as every
    sample option does: ``reps=True`` was taken for 1 and ``np.int64(8)`` refused."""
    from qannealq.backends._dwave_anneal import anneal_settings
    from qannealq.backends.decompose import DecomposingSampler

    pytest.importorskip("qiskit_optimization")
    with pytest.raises(InvalidArgumentError, match="reps=True must be an integer >= 1"):
        get_sampler("qaoa", reps=True)
    assert get_sampler("qaoa", maxiter=np.int64(5)).maxiter == 5
    with pytest.raises(InvalidArgumentError, match="max_calls=0 must be an integer >= 1"):
        DecomposingSampler(dimod.ExactSolver(), capacity=4, max_calls=0)
    composite = DecomposingSampler(dimod.ExactSolver(), capacity=np.int64(4), patience=None)
    assert (composite._capacity, composite.patience) == (4, None)
    with pytest.raises(InvalidArgumentError, match=r"num_reads=0 must be an integer >= 1"):
        anneal_settings({}, {"num_reads": 0}, False, 100)
    with pytest.raises(InvalidArgumentError, match="reinitialize_state=1 must be True or False"):
        anneal_settings({}, {"reinitialize_state": 1}, False, 100)
    from qannealq.backends._dwave_parallel import chain_strength_of

    spin = dimod.BinaryQuadraticModel({0: 0.5}, {(0, 1): 1.0}, 0.0, "SPIN")
    for bad in (float("inf"), float("nan"), 0, True):
        with pytest.raises(InvalidArgumentError, match="chain_strength_scale=.* must be a number > 0"):
            chain_strength_of(spin, {0: [0], 1: [1]}, 2.0, bad)
    assert chain_strength_of(spin, {0: [0], 1: [1]}, 2.0, np.float32(1.5)) == 3.0


@pytest.mark.parametrize("name", ["sa", "tabu", "steepest", "gurobi", "layer-sa"])
def test_every_seed_the_contract_takes_is_taken_and_recorded(name):
    """``draw_seed`` takes seeds up to ``2**32 - 1``; ``sa`` refused every one from ``2**31`` on with
    dwave-samplers' ``ValueError`` ("'seed' should be an integer between 0 and 2^32 - 1: value = 4294967295")."""
    if name == "gurobi":
        pytest.importorskip("gurobipy")
    sampler = get_sampler(name, **({"timeout": 5} if name == "tabu" else {}))
    for seed in (2 ** 31 - 1, 2 ** 31, 2 ** 32 - 1):
        first, again = (sampler.sample(_bqm(), seed=seed, num_reads=3) for _ in range(2))
        assert first.info["seed"] == seed
        assert np.array_equal(first.record.sample, again.record.sample)
        assert np.allclose(first.record.energy, _bqm().energies(first))


def _rugged_bqm(n: int = 12) -> dimod.BinaryQuadraticModel:
    """A dense random BQM whose short anneals end in many states: its samples show the seed."""
    rng = np.random.default_rng(1)
    return dimod.BinaryQuadraticModel({i: rng.normal() for i in range(n)}, {(i, j): rng.normal() for i in range(n)
                                                                           for j in range(i + 1, n)}, 0.0, "BINARY")


@pytest.mark.parametrize("name, options", [("sa", {"num_reads": 20, "num_sweeps": 3}),
                                           ("dwave-mock", {"num_reads": 20})])
def test_seeds_apart_by_the_solvers_range_give_other_samples(name, options):
    """dwave-samplers' annealer takes seeds below ``2**31``, the contract's go to ``2**32 - 1``: ``sa`` took
    seed ``s + 2**31`` as ``s`` (the same samples), and ``dwave-mock``, whose annealer got the seed as given,
    failed on it with dwave-samplers' ``ValueError``. A seed beyond the range is hashed into it; one within it
    is the solver's own seed, as before."""
    if name == "dwave-mock":
        pytest.importorskip("dwave.system")
    sampler = mock_qpu() if name == "dwave-mock" else get_sampler(name)
    bqm = _rugged_bqm()

    def samples(seed):
        ss = sampler.sample(bqm, seed=seed, **options)
        ss.resolve()
        assert ss.info["seed"] == seed
        return ss.record.sample.tobytes() + ss.record.num_occurrences.tobytes()

    assert samples(5 + 2 ** 31) == samples(5 + 2 ** 31) != samples(5)
    assert samples(2 ** 32 - 1) != samples(2 ** 31 - 1)
    if name == "sa":
        from dwave.samplers import SimulatedAnnealingSampler

        own = SimulatedAnnealingSampler().sample(bqm, seed=5, **options)
        assert samples(5) == own.record.sample.tobytes() + own.record.num_occurrences.tobytes()


def test_gurobi_seeds_apart_by_its_range_are_other_seeds():
    """Gurobi takes seeds up to 2e9: seed ``s + 2e9`` was taken as ``s``."""
    pytest.importorskip("gurobipy")
    with get_sampler("gurobi") as sampler:
        p, a = np.eye(2), np.ones(2)
        seeds = []
        for seed in (5, 5 + 2_000_000_000, 7, 2 ** 32 - 1):
            model = sampler._model(p, a, seed, 1, None)
            seeds.append(model.getParamInfo("Seed")[2])
            model.dispose()
    assert seeds[0] == 5 and seeds[2] == 7 and len(set(seeds)) == 4 and max(seeds) < 2_000_000_000


@pytest.mark.parametrize("dtype", [np.int64, np.float64, np.int8])
def test_sa_takes_initial_states_of_any_dtype_in_any_variable_order(dtype):
    """dwave-samplers' annealer takes int8 states alone: an int64 or float array ended in "Buffer dtype
    mismatch, expected 'int8_t' but got 'long'" (tabu and steepest took it). Without sweeps the start comes back."""
    bqm = _bqm()
    order = [2, 0, 1]
    states = np.array([[1, 0, 1], [0, 1, 1]], dtype=dtype)
    ss = get_sampler("sa").sample(bqm, initial_states=(states, order), num_reads=2, num_sweeps=0, seed=1)
    got = {tuple(s[v] for v in order) for s in ss.samples()}
    assert got == {(1, 0, 1), (0, 1, 1)}
    assert np.allclose(ss.record.energy, bqm.energies(ss))
    spin = bqm.change_vartype("SPIN", inplace=False)
    ss = get_sampler("sa").sample(spin, initial_states=(2 * states - 1, order), num_reads=2, num_sweeps=0, seed=1)
    assert {tuple(s[v] for v in order) for s in ss.samples()} == {(1, -1, 1), (-1, 1, 1)}


@pytest.mark.filterwarnings("ignore:All bqm biases are zero")
@pytest.mark.parametrize("name", ["sa", "tabu", "steepest", "layer-sa"])
def test_a_bqm_without_variables_gets_num_reads_samples_at_its_offset(name):
    """dwave-samplers' tabu returned no sample for a BQM without variables (``.first`` raised ValueError) where
    the other heuristics return ``num_reads`` empty ones."""
    sampler = get_sampler(name, **({"timeout": 5} if name == "tabu" else {}))
    for vartype in ("SPIN", "BINARY"):
        bqm = dimod.BinaryQuadraticModel({}, {}, 3.5, vartype)
        ss = sampler.sample(bqm, num_reads=3, seed=7)
        assert len(ss) == 3 and ss.vartype is bqm.vartype and not len(ss.variables)
        assert ss.first.energy == 3.5 and ss.info["seed"] == 7
        assert set(ss.info["timing"]) >= {"preprocessing_ns", "sampling_ns", "postprocessing_ns"}


def test_gurobi_proves_a_bqm_without_variables_optimal():
    """Gurobi's info on a BQM without variables (empty, or an offset alone) lacked ``proved_optimal``,
    ``objective_bound``, ``mip_gap`` and ``status``, which every other BQM's carries: ``compare``'s reference read
    the missing ``proved_optimal`` as False and called the offset, the one possible energy, an incumbent."""
    pytest.importorskip("gurobipy")
    import gurobipy as gp

    with get_sampler("gurobi") as sampler:
        normal = sampler.sample(_bqm(), seed=1)
        for bqm in (dimod.BinaryQuadraticModel("BINARY"), dimod.BinaryQuadraticModel({}, {}, 3.5, "SPIN")):
            ss = sampler.sample(bqm, seed=1)
            assert set(ss.info) == set(normal.info)
            assert ss.info["proved_optimal"] is True and ss.info["status"] == gp.GRB.OPTIMAL
            assert ss.info["objective_bound"] == ss.first.energy == bqm.offset and ss.info["mip_gap"] == 0.0


def test_a_qpu_bqm_without_variables_reports_the_chain_statistics_of_no_call():
    """``dwave-mock`` (the ``dwave`` code) on a BQM without variables returned no ``chain_break_fraction``, per
    sample or in ``info``, which its docstring promises, nor ``chain_strength``, ``num_qubits``,
    ``max_chain_length`` and ``neurons_in_call``: a reader of ``info["chain_break_fraction"]`` (as
    ``benchmarks/qpu_quality.py``) failed with a KeyError. No call is made: no qubit, no chain broken."""
    pytest.importorskip("dwave.system")
    normal = mock_qpu().sample(_bqm(), seed=1, num_reads=5)
    ours = {"chain_strength", "chain_break_fraction", "num_qubits", "max_chain_length", "neurons_in_call"}
    assert ours <= set(normal.info) and "chain_break_fraction" in normal.record.dtype.names
    for bqm in (dimod.BinaryQuadraticModel("BINARY"), dimod.BinaryQuadraticModel({}, {}, 3.5, "SPIN")):
        ss = mock_qpu().sample(bqm, seed=1, num_reads=5)
        ss.resolve()
        assert ours <= set(ss.info) and list(ss.record.chain_break_fraction) == [0.0]
        assert (ss.info["chain_break_fraction"], ss.info["num_qubits"], ss.info["neurons_in_call"]) == (0.0, 0, 0)
        assert ss.first.energy == bqm.offset and ss.info["seed"] == 1 and "timing" in ss.info


@pytest.mark.parametrize("name", ["exact", "gurobi"])
def test_num_reads_none_is_the_default_as_check_parameters_says(name):
    """``check_values`` passes ``None`` as the sampler's default; exact and gurobi then raised TypeError
    ("'<' not supported between instances of 'int' and 'NoneType'", "an integer is required")."""
    if name == "gurobi":
        pytest.importorskip("gurobipy")
    sampler = get_sampler(name)
    check_parameters(name, sampler, {"num_reads": None})
    ss = sampler.sample(_bqm(), num_reads=None)
    assert len(ss) == 1 and ss.first.energy == dimod.ExactSolver().sample(_bqm()).first.energy


class _WholeLayer(dimod.Sampler):
    """A user's whole-layer sampler (README "The backend contract"): every neuron's warm start, honest energies;
    ``spoil`` breaks its result one way."""

    parameters: dict = {}
    properties: dict = {}

    def __init__(self, spoil=None):
        self.spoil = spoil

    def sample(self, bqm, **kwargs):
        raise AssertionError("the solve loop must take the whole-layer path")

    def sample_layer(self, problem, initial_states=None, seed=None, **kwargs):
        from qannealq import LayerSample

        rows = np.asarray(initial_states)
        energies = problem.errors(problem.decode_layer(rows)[1])
        result = LayerSample(rows, energies, {"timing": {"sampling_ns": 5}, "seed": seed})
        return result if self.spoil is None else self.spoil(result)


def _layer_problem():
    from helpers import random_layer

    return random_layer(np.random.default_rng(3), 10, 4, samples=100).problem(3)


@pytest.mark.parametrize("spoil, words", [
    (lambda r: r.__class__(r.assignments * 3, r.energies, r.info), r"values \[3\].* must be 0 or 1"),
    (lambda r: r.__class__(r.assignments[:, :-1], r.energies, r.info), r"shape \(4, 10\).*\(4, 11\)"),
    (lambda r: r.__class__(r.assignments, r.energies[:2], r.info), r"energies of shape \(2,\).*one per neuron, \(4,\)"),
    (lambda r: r.__class__(r.assignments, r.energies * np.nan, r.info), r"energy nan for neuron 0 .*BQM gives"),
    (lambda r: r.__class__(r.assignments, r.energies - 1.0, r.info), r"for neuron 0 .*4 of 4 disagree"),
    (lambda r: (r.assignments, r.energies), r"returned tuple from sample_layer: it must return a qannealq.LayerSample"),
    (lambda r: r.__class__(r.assignments, r.energies, None), r"info=None .* must be a dict"),
    (lambda r: r.__class__(r.assignments, r.energies, {"timing": {"sampling_ns": "fast"}}),
     r"info\['timing'\]\['sampling_ns'\]='fast'.*finite number of nanoseconds"),
])
def test_a_whole_layer_sampler_that_breaks_the_contract_is_named_with_what_is_wrong(spoil, words):
    """Assignments of 3 were decoded to integers off the grid without a word (a layer error of 838 where the
    sampler's solution had 0.99 on digits 4x4); the wrong shapes and a tuple ended in numpy's broadcast error or an
    AttributeError, and made-up energies passed."""
    from qannealq import quantize_layer
    from qannealq.errors import BackendError

    problem = _layer_problem()
    honest = quantize_layer(problem, "qubo", _WholeLayer(), "mine", seed=0)
    np.testing.assert_allclose(honest.errors, honest.warm_start_errors, rtol=1e-9)
    with pytest.raises(BackendError, match=r"layer 'layer', all 4 neurons \(whole-layer solve\): backend 'mine' .*"
                                           + words):
        quantize_layer(problem, "qubo", _WholeLayer(spoil), "mine", seed=0, warm_start="gptq-restricted")


class _PerNeuron(dimod.Sampler):
    """A user's per-BQM sampler: every assignment of the BQM (dimod's ``ExactSolver``), timed in ns; ``spoil``
    breaks its SampleSet one way."""

    parameters: dict = {}
    properties: dict = {}

    def __init__(self, spoil=None):
        self.spoil = spoil

    def sample(self, bqm, **kwargs):
        ss = dimod.ExactSolver().sample(bqm)
        ss.info["timing"] = {"sampling_ns": 7}
        return ss if self.spoil is None else self.spoil(ss)


def _with(ss, samples=None, energy=None, variables=None, info=None):
    return dimod.SampleSet.from_samples((ss.record.sample if samples is None else samples,
                                         list(ss.variables) if variables is None else variables), ss.vartype,
                                        ss.record.energy if energy is None else energy,
                                        info=ss.info if info is None else info)


@pytest.mark.parametrize("spoil, words", [
    (lambda ss: _with(ss, energy=-ss.record.energy), r"reported energy -[\d.e-]+ for sample 0 of neuron 0 where its "
                                                     r"BQM gives [\d.e-]+ \(\d+ of \d+ disagree\)"),
    (lambda ss: _with(ss, energy=np.full(len(ss), np.nan)), r"reported energy nan for sample 0 of neuron 0"),
    (lambda ss: _with(ss, variables=[f"x{v}" for v in ss.variables]), r"returned samples over other variables than "
                                                                      r"neuron 0's BQM: \d+ missing"),
    (lambda ss: _with(ss, samples=ss.record.sample * 2), r"a BINARY sample for neuron 0 with values \[2\]"),
    (lambda ss: ss.first.sample, r"returned dict for neuron 0: sample\(bqm\) must return a dimod.SampleSet"),
    (lambda ss: _with(ss, info={"timing": {"sampling_ns": float("nan")}}), r"\['sampling_ns'\]=nan .*finite number"),
])
def test_a_per_neuron_sampler_that_breaks_the_contract_is_named_with_what_is_wrong(spoil, words):
    """The solve loop took each neuron's best sample by the energies the sampler reported: made-up ones chose the
    wrong sample without a word (a layer error of 4.16 where the sampler's best reads had 0.95 on digits 4x4), NaN
    ones the first; other labels, a dict or a timing that is no number ended in an AttributeError or ValueError
    naming neither the backend nor the neuron."""
    from qannealq import quantize_layer
    from qannealq.errors import BackendError

    problem = _layer_problem()
    honest = quantize_layer(problem, "qubo", _PerNeuron(), "mine", seed=0)
    np.testing.assert_allclose(honest.errors, quantize_layer(problem, "qubo", get_sampler("exact")).errors, rtol=1e-9)
    spin = quantize_layer(problem, "qubo", _PerNeuron(lambda ss: ss.change_vartype("SPIN", inplace=False)), "mine")
    np.testing.assert_allclose(spin.errors, honest.errors, rtol=1e-9)
    with pytest.raises(BackendError, match=r"layer 'layer', neuron 0: backend 'mine' .*" + words):
        quantize_layer(problem, "qubo", _PerNeuron(spoil), "mine", seed=0)
    with pytest.raises(BackendError, match=r"layer 'layer', neuron 0: backend '_PerNeuron' "):
        quantize_layer(problem, "qubo", _PerNeuron(spoil), seed=0)  # no name given: the class's


def test_small_energies_are_checked_relative_to_their_size_and_float32_sums_still_pass():
    """The tolerance was 1e-5 of the larger of the energy and 1: absolute where energies are small, it let through
    any made-up energy within 1e-5 (a neuron's whole 8e-6 on MNIST's first layer at int8: energies all 0, or
    another read's, passed). Here int8 energies of about 5e-3 reported 5e-6 too high, by either path, are refused;
    the same energies summed in float32 (as a GPU sampler's are) are taken."""
    from helpers import random_layer
    from qannealq import quantize_layer
    from qannealq.errors import BackendError

    class Float32(_PerNeuron):
        def sample(self, bqm, **kwargs):
            ss = super().sample(bqm)
            single = dimod.BQM(bqm.linear, bqm.quadratic, bqm.offset, bqm.vartype, dtype=np.float32)
            return _with(ss, energy=single.energies(ss))

    problem = random_layer(np.random.default_rng(3), 10, 4, samples=100).problem(8)
    assert problem.offsets.max() < 0.02
    honest = quantize_layer(problem, "qubo", _PerNeuron(), "mine", seed=0)
    with pytest.raises(BackendError, match=r"neuron 0: backend 'mine' reported energy .* \(\d+ of \d+ disagree\)"):
        quantize_layer(problem, "qubo", _PerNeuron(lambda ss: _with(ss, energy=ss.record.energy + 5e-6)), "mine")
    with pytest.raises(BackendError, match=r"whole-layer solve\): backend 'mine' reported energy .* for neuron 0"):
        quantize_layer(problem, "qubo", _WholeLayer(lambda r: r.__class__(r.assignments, r.energies + 5e-6, r.info)),
                       "mine", seed=0)
    np.testing.assert_allclose(quantize_layer(problem, "qubo", Float32(), "mine", seed=0).errors, honest.errors,
                               rtol=1e-12)


@pytest.mark.parametrize("weighted", [False, True])
def test_the_per_neuron_check_builds_no_bqm_again_and_takes_any_variable_order(weighted, monkeypatch):
    """The check took a relu-aware neuron's energies from its BQM built again (5-7 ms on MNIST's first layer, a
    fifth of steepest's time per neuron): each neuron's BQM is built once, for its sampler. Samples in another
    order of the same variables are taken as they are."""
    from helpers import random_layer
    from qannealq import quantize_layer
    from qannealq.weighted import WeightedLayerStats, build_weighted_problem

    layer = random_layer(np.random.default_rng(5), 10, 4, samples=100)
    problem = layer.problem(3)
    if weighted:
        stats = WeightedLayerStats.from_arrays(layer.x, layer.y, np.where(layer.y > 0, 1.0, 0.0))
        problem = build_weighted_problem(stats, layer.weight, layer.bias, problem.grid)
        assert problem.per_neuron
    optimum = quantize_layer(problem, "qubo", _PerNeuron(), "mine").errors
    built = []
    bqm = type(problem).neuron_bqm
    monkeypatch.setattr(type(problem), "neuron_bqm", lambda self, i: built.append(i) or bqm(self, i))
    reversed_order = _PerNeuron(lambda ss: _with(ss, samples=ss.record.sample[:, ::-1],
                                                 variables=list(ss.variables)[::-1]))
    result = quantize_layer(problem, "qubo", reversed_order, "mine", seed=0)
    assert sorted(built) == list(range(problem.num_neurons))
    np.testing.assert_allclose(result.errors, optimum, rtol=1e-12)


@pytest.mark.parametrize("spoil, words", [
    (lambda ss: _with(ss, variables=[f"x{v}" for v in ss.variables]), r"other variables than neuron n0's BQM"),
    (lambda ss: None, r"returned NoneType for neuron n0: sample\(bqm\) must return a dimod.SampleSet"),
    (lambda ss: _with(ss, info={"timing": {"sampling_ns": "fast"}}), r"\['sampling_ns'\]='fast' .*finite number"),
])
def test_compare_names_a_sampler_that_breaks_the_contract(spoil, words):
    """``qannealq compare --backends`` with such a sampler (registered by entry point) ended in dimod's 'ValueError:
    unknown variable 0', an AttributeError or a ValueError from float('fast'), tracebacks naming no backend."""
    from qannealq.compare import CompareSettings, NeuronInstance, run_unit
    from qannealq.errors import BackendError

    instance = NeuronInstance("n0", _bqm(), {}, {})
    row = run_unit(_PerNeuron(), "mine", instance, 0, CompareSettings(reads=2))
    assert min(row["energies"]) == pytest.approx(dimod.ExactSolver().sample(_bqm()).first.energy)
    with pytest.raises(BackendError, match=r"backend 'mine' .*" + words):
        run_unit(_PerNeuron(spoil), "mine", instance, 0, CompareSettings(reads=2))
