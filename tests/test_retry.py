"""Retries of transient backend failures (backends/retry.py), in the solve loop and through `qannealq run`."""

from __future__ import annotations

import csv
import errno

import dimod
import numpy as np
import pytest

from helpers import LazyCloud, Wrapper, random_layer
from qannealq.backends import BACKENDS, BackendSpec, composed, decomposed, get_sampler, retries_failures
from qannealq.backends.classical import SimulatedAnnealing
from qannealq.backends.retry import FATAL, TRANSIENT, RetryComposite, classify, with_retries
from qannealq.cli import main
from qannealq.errors import BackendError, InvalidArgumentError, ProblemTooLargeError
from qannealq.solve import quantize_layer


class Flaky(dimod.Sampler):
    """The exact solver behind a service that fails ``failures`` times (at submission or, as a QPU does, when
    the SampleSet is resolved), then answers; logs every submission and resolution."""

    parameters = {"seed": []}
    properties = {"max_variables": None}

    def __init__(self, failures: int, error: Exception, at: str = "resolve") -> None:
        self.failures, self.error, self.at = failures, error, at
        self.log: list[str] = []

    def _fail(self, bqm) -> bool:
        failed = sum(1 for e in self.log if e.endswith("failed"))
        return failed < self.failures

    def sample(self, bqm, seed=None):
        if self.at == "submit" and self._fail(bqm):
            self.log.append("submit failed")
            raise self.error
        self.log.append("submit")

        def resolve(_):
            if self.at == "resolve" and self._fail(bqm):
                self.log.append("resolve failed")
                raise self.error
            self.log.append("resolve")
            return dimod.ExactSolver().sample(bqm)

        return dimod.SampleSet.from_future(None, resolve)


@pytest.fixture(scope="module")
def problem():
    return random_layer(np.random.default_rng(7), 8, 3, samples=100).problem(3)


def _cloud_errors():
    cloud = pytest.importorskip("dwave.cloud.exceptions")
    api = pytest.importorskip("dwave.cloud.api.exceptions")
    requests = pytest.importorskip("requests")
    return cloud, api, requests


def test_classify_transient_fatal_and_foreign_errors():
    cloud, api, requests = _cloud_errors()
    transient = [ConnectionResetError(), TimeoutError("read timed out"), OSError(errno.ENETUNREACH, "unreachable"),
                 cloud.SolverFailureError("solver failed"), cloud.PollingTimeout(), api.RequestTimeout(),
                 api.InternalServerError(), api.ResourceLimitsExceededError(), cloud.SolverOfflineError(),
                 cloud.ProblemUploadError(), api.RequestError("bad gateway", error_code=502),
                 requests.ConnectionError("connection aborted"), requests.Timeout()]
    fatal = [cloud.SolverAuthenticationError(), cloud.SolverNotFoundError(), api.ResourceBadRequestError(),
             api.RequestError("unauthorized", error_code=401), OSError(errno.EACCES, "denied")]
    foreign = [ValueError("bad bqm"), KeyError("x"), ProblemTooLargeError("too big"), InvalidArgumentError("no")]
    assert [classify(e) for e in transient] == [TRANSIENT] * len(transient)
    assert [classify(e) for e in fatal] == [FATAL] * len(fatal)
    assert [classify(e) for e in foreign] == [None] * len(foreign)


@pytest.mark.parametrize("at", ["submit", "resolve"])
@pytest.mark.parametrize("error", [ConnectionError("reset by peer"), TimeoutError("timed out"),
                                   OSError(errno.ECONNREFUSED, "refused")], ids=["connection", "timeout", "oserror"])
def test_fails_n_times_then_succeeds_with_the_same_answer(problem, at, error):
    bqm = problem.neuron_bqm(0)
    child = Flaky(2, error, at)
    sleeps: list[float] = []
    sampler = RetryComposite(child, retries=3, backend="flaky", backoff=0.1, max_backoff=0.25, seed=5,
                             sleep=sleeps.append)
    sampleset = sampler.sample(bqm)
    assert sampleset.info["retries"] == 2
    assert sampleset.first.energy == pytest.approx(dimod.ExactSolver().sample(bqm).first.energy)
    assert sum(e.endswith("failed") for e in child.log) == 2 and child.log[-1] == "resolve"
    # exponential backoff with jitter in [0.5, 1), capped
    assert len(sleeps) == 2
    assert 0.05 <= sleeps[0] < 0.1 and 0.1 <= sleeps[1] < 0.2
    capped = RetryComposite(child, backoff=0.1, max_backoff=0.25, seed=5)
    assert 0.125 <= capped.delay(5) < 0.25


def test_jitter_is_seeded_and_leaves_the_global_rng_alone():
    state = np.random.get_state()[1].copy()
    a = RetryComposite(dimod.ExactSolver(), seed=1)
    b = RetryComposite(dimod.ExactSolver(), seed=1)
    c = RetryComposite(dimod.ExactSolver(), seed=2)
    da, db, dc = ([s.delay(k) for k in range(4)] for s in (a, b, c))
    assert da == db and da != dc
    assert np.array_equal(np.random.get_state()[1], state)


def test_the_delay_of_a_late_try_is_the_cap_not_an_overflow():
    sampler = RetryComposite(dimod.ExactSolver(), retries=5000, backoff=0.1, max_backoff=2.0, seed=3)
    for attempt in (1023, 1024, 5000):
        assert 1.0 <= sampler.delay(attempt) < 2.0  # 2.0 ** 1024 raised OverflowError
    assert RetryComposite(dimod.ExactSolver(), backoff=0.0, seed=3).delay(5000) == 0.0


def test_copies_sent_to_workers_do_not_retry_in_step():
    """Each pickled copy, and each worker's build by name with the sender's seed, draws its own jitter."""
    import functools
    import pickle

    from qannealq.executors import NamedSampler
    from qannealq.runner import wrap_backend

    sampler = RetryComposite(dimod.ExactSolver(), retries=3, seed=7)
    copies = [pickle.loads(pickle.dumps(sampler)) for _ in range(4)]
    first = [c.delay(0) for c in copies]
    assert len(set(first)) == 4
    named = NamedSampler("dwave-mock", wrap=functools.partial(wrap_backend, retries=3, seed=0))
    built = [pickle.loads(pickle.dumps(named)).sampler for _ in range(3)]  # as each worker builds it

    def retry_of(s):
        while not isinstance(s, RetryComposite):
            s = s.child
        return s

    assert len({retry_of(s).delay(0) for s in built}) == 3
    # the sender's own generator is still the seed's
    assert RetryComposite(dimod.ExactSolver(), seed=7).delay(0) == sampler.delay(0)


def test_always_failing_names_backend_tries_and_cause(problem):
    child = Flaky(100, ConnectionError("connection reset by peer"))
    sampler = RetryComposite(child, retries=2, backend="dwave", backoff=0.0)
    with pytest.raises(BackendError, match=r"backend 'dwave' failed on a BQM of \d+ variables after 3 tries: "
                                           r"ConnectionError: connection reset by peer") as info:
        sampler.sample(problem.neuron_bqm(0)).resolve()
    assert isinstance(info.value.__cause__, ConnectionError)
    assert child.log.count("resolve failed") == 3


def test_fatal_errors_fail_at_once_and_foreign_errors_pass_through(problem):
    cloud, _, _ = _cloud_errors()
    child = Flaky(100, cloud.SolverAuthenticationError("Invalid token or access denied"))
    with pytest.raises(BackendError, match="not retried: not a transient error"):
        RetryComposite(child, retries=3, backoff=0.0).sample(problem.neuron_bqm(0)).resolve()
    assert child.log == ["submit", "resolve failed"]
    bug = Flaky(100, ValueError("a bug in the sampler"), at="submit")
    with pytest.raises(ValueError, match="a bug in the sampler"):
        RetryComposite(bug, retries=3, backoff=0.0).sample(problem.neuron_bqm(0))
    assert bug.log == ["submit failed"]


def test_solve_loop_submits_every_neuron_before_resolving_and_names_the_failing_neuron(problem):
    n = problem.num_neurons
    child = Flaky(1, TimeoutError("timed out"))
    result = quantize_layer(problem, "qubo", RetryComposite(child, backoff=0.0), warm_start=None, seed=1)
    assert child.log[:n] == ["submit"] * n  # the calls still overlap: all submitted, then resolved
    exact = quantize_layer(problem, "qubo", get_sampler("exact"), warm_start=None)
    np.testing.assert_allclose(result.errors, exact.errors, rtol=1e-12)

    class DownForNeuron2(Flaky):
        def _fail(self, bqm):
            return bqm == problem.neuron_bqm(2)  # its calls fail for good

    third = DownForNeuron2(0, ConnectionError("no route to host"))
    with pytest.raises(BackendError, match=r"layer 'layer', neuron 2: backend 'qpu' failed .* after 2 tries: "
                                           r"ConnectionError: no route to host"):
        quantize_layer(problem, "qubo", RetryComposite(third, retries=1, backend="qpu", backoff=0.0),
                       warm_start=None)


class _FlakyLayer(dimod.Sampler):
    """A whole-layer solver (layer-sa underneath) whose first ``failures`` calls time out."""

    parameters = {"seed": [], "initial_states": []}
    properties = {"whole_layer": True, "max_variables": None}

    def __init__(self, failures):
        self.failures, self.calls = failures, 0
        self.inner = get_sampler("layer-sa", num_threads=1)

    def sample(self, bqm, **kwargs):  # pragma: no cover - the whole-layer path is used
        raise AssertionError("per-neuron path used")

    def sample_layer(self, problem, initial_states=None, seed=None, **kwargs):
        self.calls += 1
        if self.calls <= self.failures:
            raise TimeoutError("gateway timeout")
        return self.inner.sample_layer(problem, initial_states=initial_states, seed=seed, **kwargs)


def test_whole_layer_solves_are_retried_and_named(problem):
    direct = quantize_layer(problem, "qubo", get_sampler("layer-sa", num_threads=1), seed=4)
    retried = quantize_layer(problem, "qubo", RetryComposite(_FlakyLayer(2), backoff=0.0), seed=4)
    np.testing.assert_array_equal(retried.integers, direct.integers)
    assert retried.info["retries"] == 2
    with pytest.raises(BackendError, match=r"layer 'layer', all 3 neurons \(whole-layer solve\): backend 'x' "
                                           r"failed on layer 'layer' after 2 tries"):
        quantize_layer(problem, "qubo", RetryComposite(_FlakyLayer(5), retries=1, backend="x", backoff=0.0))


def test_cloud_backends_are_wrapped_and_local_ones_are_not():
    pytest.importorskip("dwave.system")
    sa = get_sampler("sa")
    assert with_retries("sa", sa, 3) is sa
    mock = with_retries("dwave-mock", get_sampler("dwave-mock"), 2)
    assert isinstance(mock, RetryComposite) and mock.retries == 2 and mock.backend == "dwave-mock"
    with pytest.raises(InvalidArgumentError, match="retries=-1"):
        RetryComposite(sa, retries=-1)


def test_retries_are_found_under_wrappers_but_not_past_a_registry_backend():
    """``retries_failures`` walked ``children`` and compare's name checks ``child``: one walk now
    (:func:`qannealq.backends.composed`), which stops at one of the registry's backends, whose next ``child`` is its
    cloud client, built on first reading (``dwave-hybrid``'s reached for the network)."""

    cloud = LazyCloud()
    outer = Wrapper(cloud)
    assert list(composed(outer)) == [outer, cloud]
    assert not retries_failures(cloud) and not retries_failures(Wrapper(cloud))
    retried = RetryComposite(cloud, retries=1, backend="dwave-hybrid")
    assert retries_failures(retried) and retries_failures(Wrapper(retried))
    assert retries_failures(decomposed(retried, capacity=4))
    assert not retries_failures(decomposed("sa", capacity=4))


class FlakyCloudSA(SimulatedAnnealing):
    """``sa`` posing as a cloud backend: every neuron from ``fail_from`` on fails with a solver-side error."""

    name = "flaky-cloud"
    fail_from: int | None = None
    calls: list = []

    def sample(self, bqm, **kwargs):
        FlakyCloudSA.calls.append(bqm.num_variables)
        if self.fail_from is not None and len(FlakyCloudSA.calls) > self.fail_from:
            from dwave.cloud.exceptions import SolverFailureError

            raise SolverFailureError("Internal error (503)")
        return super().sample(bqm, **kwargs)


@pytest.fixture
def flaky_cloud(monkeypatch):
    pytest.importorskip("dwave.cloud")
    monkeypatch.setitem(BACKENDS, "flaky-cloud", BackendSpec("flaky-cloud", f"{__name__}:FlakyCloudSA",
                                                             "sa behind a flaky service", None, "D-Wave", True))
    monkeypatch.setattr(RetryComposite, "backoff", 0.0)
    monkeypatch.setattr(FlakyCloudSA, "calls", [])
    return FlakyCloudSA


def _rows(out):
    with open(out / "results.csv") as fh:
        return [{k: v for k, v in r.items() if k != "seconds"} for r in csv.DictReader(fh)]


def test_run_with_a_failing_cloud_backend_keeps_finished_units_and_resumes(flaky_cloud, tmp_path, capsys,
                                                                          monkeypatch):
    argv = ["run", "--bits", "4", "--methods", "rtn,qubo", "--backend", "flaky-cloud", "--retries", "2",
            "--sampler-option", "num_reads=1", "--sampler-option", "num_sweeps=50"]
    assert main([*argv, "--out", str(tmp_path / "full")]) == 0
    full_calls = len(flaky_cloud.calls)
    assert full_calls == 32 + 10  # digits MLP 64-32-10: one call per neuron
    flaky_cloud.calls.clear()
    monkeypatch.setattr(flaky_cloud, "fail_from", 20)  # the service goes down at the 21st neuron
    out = tmp_path / "failed"
    assert main([*argv, "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert "layer '0', neuron 20: backend 'flaky-cloud' failed on a BQM of" in err
    assert "after 3 tries: SolverFailureError: Internal error (503)" in err
    assert len(flaky_cloud.calls) == 16 + 16 + 2  # batch 0-15 solved; 16-31 submitted, neuron 20 retried twice
    assert [r["method"] for r in _rows(out)] == ["rtn"]  # the row finished before is intact
    units = sorted(p.stem for p in (out / "units").glob("*.json"))
    assert units == ["bits=4_layer=0_method=qubo_neurons=0-15", "bits=4_method=rtn"]  # and the finished batch
    # the service is back: --resume solves only the neurons not yet saved, with --retries free to change
    flaky_cloud.calls.clear()
    monkeypatch.setattr(flaky_cloud, "fail_from", None)
    resume = [a if a != "2" else "5" for a in argv]
    assert main([*resume, "--resume", str(out)]) == 0
    assert len(flaky_cloud.calls) == full_calls - 16
    assert _rows(out) == _rows(tmp_path / "full")
    assert sorted(p.stem for p in (out / "units").glob("*.json")) == ["bits=4_method=qubo", "bits=4_method=rtn"]
