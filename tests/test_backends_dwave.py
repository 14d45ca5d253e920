"""D-Wave backends offline: credentials, lazy QPU construction, the token never leaking, the QPU code path on
``MockDWaveSampler`` (submitting every problem before resolving any) and the hybrid path on a stand-in; live
tests behind the ``live`` marker (one neuron, and a whole layer many neurons per call within a QPU budget).
Fixtures ``no_dwave_token`` / ``fake_dwave_token`` come from conftest.py. Many neurons per call, the plan and
the budget on the mock: tests/test_qpu_parallel.py and tests/test_qpu_plan.py."""

from __future__ import annotations

import logging
from pathlib import Path

import dimod
import numpy as np
import pytest

pytest.importorskip("dwave.system")

from backend_fixtures import FAKE_TOKEN, digits_neurons, optimum  # noqa: E402
from dimod.exceptions import SamplerUnknownArgWarning  # noqa: E402
from dwave.system.testing import MockDWaveSampler  # noqa: E402

from qannealq.backends import available_backends, get_sampler  # noqa: E402
from qannealq.backends import dwave as dwave_backend  # noqa: E402
from qannealq.cli import main  # noqa: E402
from qannealq.contract import TIMING_KEYS  # noqa: E402
from qannealq.errors import CredentialsError, InvalidArgumentError  # noqa: E402


def _mock_child(self):
    return MockDWaveSampler(topology_type="pegasus", topology_shape=[6], parameter_warnings=False)


class _FakeHybrid:
    """Stands in for LeapHybridSampler: exact answers with hybrid-style microsecond timing."""

    properties = {"maximum_number_of_variables": 50}
    parameters = {"time_limit": [], "label": []}

    def __init__(self, **config):
        self.config = config
        self.closed = 0

    def close(self):
        self.closed += 1

    def sample(self, bqm, **kwargs):
        ss = dimod.ExactSolver().sample(bqm).truncate(1)
        ss.info.update(run_time=3_000_000, charge_time=3_000_000, qpu_access_time=40_000, problem_id="x")
        ss.info["kwargs"] = kwargs
        return ss


@pytest.mark.parametrize("name", ["dwave", "dwave-hybrid"])
def test_no_token_is_a_clear_error_before_any_sampler(no_dwave_token, monkeypatch, name):
    def forbidden(*args, **kwargs):
        raise AssertionError("a sampler was built without credentials")

    monkeypatch.setattr("dwave.system.DWaveSampler", forbidden)
    monkeypatch.setattr("dwave.system.LeapHybridSampler", forbidden)
    assert not dwave_backend.has_credentials()
    with pytest.raises(CredentialsError, match="DWAVE_API_TOKEN") as info:
        get_sampler(name)
    assert "dwave config create" in str(info.value) and name in str(info.value)


def test_an_unreachable_leap_leaves_the_hybrid_a_per_neuron_solver_and_says_why(fake_dwave_token, monkeypatch):
    """Reading the composites' properties built the Leap client (``dict(child.properties)``); when it failed,
    ``layer_solver`` took the hybrid for a whole-layer solver, ignored ``--executor`` and stopped after training
    with "HybridSampler does not solve whole layers". Properties are now read key by key: choosing the path builds
    nothing, and the capacity read says the solver could not be reached."""
    from qannealq.contract import layer_solver, warms_up
    from qannealq.errors import BackendError
    from qannealq.runner import wrap_backend

    built = []

    def unreachable(**config):
        built.append(config)
        raise ConnectionError("SAPI unreachable")

    monkeypatch.setattr("dwave.system.LeapHybridSampler", unreachable)
    sampler = wrap_backend("dwave-hybrid", get_sampler("dwave-hybrid"), retries=2, seed=0)
    assert layer_solver(sampler) is None and not warms_up(sampler) and built == []
    assert sampler.child.properties["retries"] == 2 and built == []  # the retry composite's own, read alone
    with pytest.raises(BackendError, match=r"dwave-hybrid could not give its capacity \(max_variables\): "
                                           r"ConnectionError: SAPI unreachable; the solver may be unreachable"):
        sampler.capacity
    assert len(built) == 1


def test_token_in_the_config_file_is_found(no_dwave_token, tmp_path, monkeypatch):
    conf = tmp_path / "with-token.conf"
    conf.write_text(f"[defaults]\ntoken = {FAKE_TOKEN}\n")
    monkeypatch.setenv("DWAVE_CONFIG_FILE", str(conf))
    assert dwave_backend.has_credentials()
    assert {r.name: r.status for r in available_backends()}["dwave"] == "ready"


def test_qpu_sampler_is_lazy(fake_dwave_token, monkeypatch):
    built = []
    monkeypatch.setattr(dwave_backend.QPUSampler, "_make_child", lambda self: built.append(1) or _mock_child(self))
    sampler = get_sampler("dwave", chain_strength=2.0)
    assert built == [] and sampler._child is None
    assert "num_reads" in sampler.parameters and built == []  # the solve loop reads parameters: no network
    sampler.sample(digits_neurons(9, 1)[0], num_reads=5)
    sampler.sample(digits_neurons(9, 1)[0], num_reads=5)
    assert built == [1]


def test_qpu_path_on_the_mock_reaches_the_optimum(fake_dwave_token, monkeypatch):
    monkeypatch.setattr(dwave_backend.QPUSampler, "_make_child", _mock_child)
    sampler = get_sampler("dwave")
    bqm = digits_neurons(7, 1)[0]
    ss = sampler.sample(bqm, num_reads=200, chain_strength=1.5)
    assert ss.first.energy == pytest.approx(optimum(bqm), abs=1e-9)
    assert ss.info["seed"] is None and ss.info["chain_strength"] == 1.5
    assert "qpu_access_time" in ss.info["timing"] and "sampling_ns" in ss.info["timing"]


def test_hybrid_path_with_a_stand_in(fake_dwave_token, monkeypatch):
    monkeypatch.setattr("dwave.system.LeapHybridSampler", _FakeHybrid)
    sampler = get_sampler("dwave-hybrid", time_limit=5)
    assert sampler._child is None
    bqm = digits_neurons(9, 1)[0]
    with pytest.warns(SamplerUnknownArgWarning, match="'seed'"):
        ss = sampler.sample(bqm, seed=4)
    assert ss.first.energy == pytest.approx(optimum(bqm))
    assert ss.info["kwargs"] == {"time_limit": 5}  # seed warned about and dropped: the hybrid solver takes none
    assert ss.info["timing"]["run_time"] == 3_000_000 and ss.info["timing"]["sampling_ns"] > 0
    with pytest.raises(ValueError, match="at most 50 variables"):
        sampler.sample(dimod.BinaryQuadraticModel({k: 1.0 for k in range(51)}, {}, 0.0, "BINARY"))


class _TimedHybrid(_FakeHybrid):
    """A stand-in whose solver states Leap's ``minimum_time_limit`` curve (seconds against variables)."""

    properties = {"maximum_number_of_variables": 5000, "minimum_time_limit": [[1, 3.0], [1000, 3.0], [5000, 5.0]]}

    def sample(self, bqm, **kwargs):
        ss = dimod.SampleSet.from_samples_bqm({v: 0 for v in bqm.variables}, bqm)  # the kwargs are what counts
        ss.info.update(run_time=3_000_000, kwargs=kwargs)
        return ss


def test_hybrid_time_limit_below_the_solvers_minimum_is_refused_before_training(fake_dwave_token, monkeypatch,
                                                                                tmp_path, capsys):
    """``LeapHybridSampler`` raised a bare ValueError ("time limit for problem size 17 must be at least 3.0") at
    the first call, after training; the backend now reads the solver's curve before any training (the least
    limit of any problem) and at each call (that problem's)."""
    import qannealq.experiment

    monkeypatch.setattr("dwave.system.LeapHybridSampler", _TimedHybrid)
    hybrid = get_sampler("dwave-hybrid")
    assert hybrid.minimum_time_limit() == 3.0 and hybrid.minimum_time_limit(3000) == pytest.approx(4.0)
    hybrid.check_ranges(time_limit=3)
    hybrid.check_ranges()  # no limit given: each call takes its problem's minimum
    with pytest.raises(InvalidArgumentError, match=r"time_limit=2.5 is below the hybrid solver's least time limit "
                                                   r"of 3 s .*: give at least 3, or leave time_limit out"):
        hybrid.check_ranges(time_limit=2.5)
    wide = dimod.BinaryQuadraticModel({k: 1.0 for k in range(3000)}, {}, 0.0, "BINARY")
    with pytest.raises(InvalidArgumentError, match=r"time_limit=3.5 is below the hybrid solver's minimum of 4 s for "
                                                   r"a problem of 3000 variables .*: give at least 4"):
        hybrid.sample(wide, time_limit=3.5)
    assert hybrid.sample(wide, time_limit=4).info["kwargs"] == {"time_limit": 4}
    assert get_sampler("dwave-hybrid", time_limit=3).sample(digits_neurons(9, 1)[0]).info["kwargs"] == {
        "time_limit": 3}
    monkeypatch.setattr(_TimedHybrid, "properties", {"maximum_number_of_variables": 5000})
    assert get_sampler("dwave-hybrid").minimum_time_limit() is None  # no curve stated: the solver's to check
    get_sampler("dwave-hybrid").check_ranges(time_limit=0.1)
    monkeypatch.undo()

    monkeypatch.setenv("DWAVE_API_TOKEN", FAKE_TOKEN)
    monkeypatch.setattr("dwave.system.LeapHybridSampler", _TimedHybrid)
    monkeypatch.setattr(qannealq.experiment, "train_mlp", lambda *a, **k: pytest.fail("trained"))
    for argv in (["run", "--methods", "qubo", "--backend", "dwave-hybrid"],
                 ["compare", "--backends", "sa,dwave-hybrid", "--reads", "2"]):
        out = tmp_path / argv[0]
        assert main([*argv, "--sampler-option", f"{'dwave-hybrid:' if argv[0] == 'compare' else ''}time_limit=1",
                     "--out", str(out)]) == 2
        assert "time_limit=1 is below the hybrid solver's least time limit of 3 s" in capsys.readouterr().err
        assert not out.exists()


class _Answer:
    """A QPU answer that is not in yet: taking it is logged."""

    def __init__(self, answer: dimod.SampleSet, log: list, k: int) -> None:
        self.answer, self.log, self.k = answer, log, k

    def done(self) -> bool:
        return any(event == ("answer", self.k) for event in self.log)

    def take(self) -> dimod.SampleSet:
        self.log.append(("answer", self.k))
        return self.answer


class _LoggedMock(dwave_backend.MockQPUSampler):
    """The mock QPU whose solver logs each submission and hands its answers back only when resolved."""

    def __init__(self, log: list, **options) -> None:
        super().__init__(**options)
        self.log = log

    def _make_child(self):
        child = super()._make_child()
        submit = child.sample

        def sample(bqm, **kwargs):
            k = sum(event[0] == "submit" for event in self.log)
            self.log.append(("submit", k))
            return dimod.SampleSet.from_future(_Answer(submit(bqm, **kwargs), self.log, k), _Answer.take)

        child.sample = sample
        return child


def test_qpu_sample_returns_before_any_answer_is_resolved(monkeypatch):
    log: list = []
    real_finish = dwave_backend.finish

    def finish(answer, bqm, *args):  # the resolve hook's unembedding, logged once done
        out = real_finish(answer, bqm, *args)
        log.append(("hook", sum(event[0] == "hook" for event in log)))
        return out

    monkeypatch.setattr(dwave_backend, "finish", finish)
    sampler = _LoggedMock(log, topology_shape=[6])
    bqms = digits_neurons(12, 3, min_variables=5)
    pending = [sampler.sample(bqm, seed=10 + k, num_reads=50) for k, bqm in enumerate(bqms)]
    assert log == [("submit", k) for k in range(len(bqms))]  # every problem submitted, nothing resolved
    for ss in pending:
        ss.resolve()
    assert log[len(bqms):] == [event for k in range(len(bqms)) for event in (("answer", k), ("hook", k))]
    for k, (bqm, ss) in enumerate(zip(bqms, pending)):
        assert np.allclose(bqm.energies(ss), ss.record.energy)
        assert ss.vartype is bqm.vartype and set(ss.variables) == set(bqm.variables)
        assert "chain_break_fraction" in ss.record.dtype.names and 0.0 <= ss.info["chain_break_fraction"] <= 1.0
        assert set(TIMING_KEYS) <= set(ss.info["timing"]) and "qpu_access_time" in ss.info["timing"]
        assert all(ss.info["timing"][key] >= 0 for key in TIMING_KEYS)
        assert ss.info["seed"] == 10 + k


def test_hybrid_sample_returns_before_its_answer_is_resolved(fake_dwave_token, monkeypatch):
    log: list = []

    class Pending(_FakeHybrid):
        def sample(self, bqm, **kwargs):
            log.append("submit")
            answer = super().sample(bqm, **kwargs)
            return dimod.SampleSet.from_future(_Answer(answer, log, 0), _Answer.take)

    monkeypatch.setattr("dwave.system.LeapHybridSampler", Pending)
    bqm = digits_neurons(9, 1)[0]
    ss = get_sampler("dwave-hybrid").sample(bqm)
    assert log == ["submit"]
    assert ss.first.energy == pytest.approx(optimum(bqm)) and log == ["submit", ("answer", 0)]
    assert ss.info["timing"]["run_time"] == 3_000_000 and ss.info["seed"] is None


def test_qpu_and_hybrid_close_their_clients(fake_dwave_token, monkeypatch):
    closed: list = []

    def child(self):
        mock = _mock_child(self)
        mock.close = lambda: closed.append(type(self).__name__)
        return mock

    monkeypatch.setattr(dwave_backend.QPUSampler, "_make_child", child)
    monkeypatch.setattr("dwave.system.LeapHybridSampler", _FakeHybrid)
    bqm = digits_neurons(7, 1)[0]
    with get_sampler("dwave") as qpu:
        qpu.sample(bqm, num_reads=5).resolve()
        assert qpu._child is not None
    assert closed == ["QPUSampler"] and qpu._child is None
    qpu.close()  # idempotent
    assert closed == ["QPUSampler"]
    assert len(qpu.sample(bqm, num_reads=5)) >= 1  # used again: a new client
    qpu.close()
    assert closed == ["QPUSampler", "QPUSampler"]
    hybrid = get_sampler("dwave-hybrid")
    hybrid.sample(bqm).resolve()
    fake = hybrid._child
    hybrid.close()
    hybrid.close()
    assert fake.closed == 1 and hybrid._child is None


def _all_output(capsys, caplog, out: Path) -> str:
    captured = capsys.readouterr()
    texts = [captured.out, captured.err, caplog.text]
    texts += [p.read_bytes().decode("utf-8", "replace") for p in out.rglob("*") if p.is_file()]
    return "\n".join(texts)


def test_the_token_never_leaks(fake_dwave_token, monkeypatch, capsys, caplog, tmp_path):
    caplog.set_level(logging.DEBUG)
    monkeypatch.setattr(dwave_backend.QPUSampler, "_make_child", _mock_child)
    monkeypatch.setattr("dwave.system.LeapHybridSampler", _FakeHybrid)
    assert main(["backends"]) == 0
    samplers = [get_sampler("dwave"), get_sampler("dwave-hybrid"),
                get_sampler("dwave", token=FAKE_TOKEN), get_sampler("dwave-hybrid", token=FAKE_TOKEN)]
    bqm = digits_neurons(7, 1)[0]
    results = [s.sample(bqm) for s in samplers]
    texts = [repr(s) + str(s) for s in samplers]
    texts += [repr(r.info) + str(r) for r in results]
    texts += [repr(r) for r in available_backends()]
    out = tmp_path / "run"
    code = main(["run", "--dataset", "digits", "--input-size", "4", "--bits", "2", "--methods", "qubo",
                 "--backend", "dwave", "--sampler-option", "num_reads=5", "--sampler-option",
                 f"token={FAKE_TOKEN}", "--out", str(out), "-v"])
    texts.append(_all_output(capsys, caplog, out))
    assert code == 2  # the per-call token option is refused ...
    assert "token" in texts[-1]  # ... by name, without its value
    code = main(["run", "--dataset", "digits", "--input-size", "4", "--bits", "2", "--methods", "qubo",
                 "--backend", "dwave", "--sampler-option", "num_reads=5", "--out", str(out), "-v"])
    assert code == 0 and (out / "results.json").is_file()
    texts.append(_all_output(capsys, caplog, out))
    monkeypatch.delenv("DWAVE_API_TOKEN")
    with pytest.raises(CredentialsError) as info:
        get_sampler("dwave")
    texts.append(str(info.value))
    leaks = [t for t in texts if FAKE_TOKEN in t]
    assert not leaks, "the API token appeared in an output"


SAPI_SHAPED_TOKEN = "DEV-0123456789abcdef0123456789abcdef01234567"


@pytest.mark.parametrize("where", ["environment", "config file"])
def test_the_token_never_reaches_a_debug_or_trace_record(no_dwave_token, monkeypatch, caplog, capsys, tmp_path,
                                                         where):
    """dwave-cloud-client logs its configuration and request headers at DEBUG and TRACE (level 5), token and all:
    with the root logger at DEBUG (``logging.basicConfig``, a notebook), 30 of 44 records of building the real
    ``DWaveSampler`` carried the token. Every record of a run with no network (the HTTP layer refuses each
    request at once) is redacted as it is made, whatever handler prints it, and the failure's message and the
    run's files hold no token either. Both tokens: a SAPI-shaped one and the tests' unshaped fake."""
    import traceback

    import requests

    tokens = [SAPI_SHAPED_TOKEN, FAKE_TOKEN]
    if where == "environment":
        monkeypatch.setenv("DWAVE_API_TOKEN", FAKE_TOKEN)
        secret = FAKE_TOKEN
    else:
        conf = tmp_path / "with-token.conf"
        conf.write_text(f"[defaults]\ntoken = {SAPI_SHAPED_TOKEN}\n")
        monkeypatch.setenv("DWAVE_CONFIG_FILE", str(conf))
        secret = SAPI_SHAPED_TOKEN
    sent: list = []

    def no_network(adapter, request, **kwargs):
        sent.append(request.headers.get("X-Auth-Token"))
        raise requests.exceptions.ConnectionError("no network here")

    monkeypatch.setattr("requests.adapters.HTTPAdapter.send", no_network)
    caplog.set_level(5)  # dwave-cloud-client's TRACE
    texts = []
    sampler = get_sampler("dwave")
    with pytest.raises(Exception) as info:
        sampler.sample(digits_neurons(7, 1)[0], num_reads=5).resolve()
    texts.append("".join(traceback.format_exception(info.value)))
    out = tmp_path / "run"
    code = main(["run", "--dataset", "digits", "--input-size", "4", "--bits", "2", "--methods", "qubo", "--backend",
                 "dwave", "--retries", "0", "--out", str(out), "-v"])
    assert code == 2 and sent and set(sent) == {secret}  # the token was handed over, and nothing connected
    records = [r for r in caplog.records if r.name.startswith("dwave")]
    assert any(r.levelno == 5 for r in records) and any("<redacted>" in r.getMessage() for r in records)
    texts += [r.getMessage() + repr(r.args) + str(r.exc_text) + str(r.stack_info) for r in caplog.records]
    texts.append(_all_output(capsys, caplog, out))
    for token in tokens:
        for part in (token, token[-12:]):
            assert not [t for t in texts if part in t], f"the API token ({part!r}) appeared in a record or output"


def test_redaction_keeps_records_whole(fake_dwave_token, caplog):
    """A redacted record keeps its text and its non-string arguments' values; a record whose arguments do not fit
    its message, and one with a traceback, are redacted too; records of other loggers are left as they are."""
    from qannealq.backends._dwave_cloud import guard_logs, redact_text

    guard_logs({"token": "plain-secret-value"})
    caplog.set_level(logging.DEBUG)
    log = logging.getLogger("dwave.cloud.client.base")
    log.debug("config=%r n=%d x=%.1f obj=%s", {"token": FAKE_TOKEN, "solver": None}, 3, 2.5, [1, None])
    log.debug("headers %s", {"X-Auth-Token": SAPI_SHAPED_TOKEN})
    log.debug("two %s %s", FAKE_TOKEN)  # one argument short
    try:
        raise ValueError(f"bad token {SAPI_SHAPED_TOKEN}")
    except ValueError:
        log.debug("failed", exc_info=True)
    logging.getLogger("other").debug("kept %s", "plain-secret-value")
    messages = [r.getMessage() for r in caplog.records]
    assert messages[0] == "config={'token': '<redacted>', 'solver': None} n=3 x=2.5 obj=[1, None]"
    assert messages[1] == "headers {'X-Auth-Token': '<redacted>'}"
    assert FAKE_TOKEN not in messages[2] and "two %s %s" in messages[2]
    assert SAPI_SHAPED_TOKEN not in caplog.text and "<redacted>\n" in caplog.text
    assert caplog.records[-1].args == ("plain-secret-value",)  # not a dwave record
    assert redact_text("problem 1f4d0b1e-6c7a-4d55-9a51-0a3cd1b2c3d4") == "problem 1f4d0b1e-6c7a-4d55-9a51-0a3cd1b2c3d4"


@pytest.mark.live
def test_live_qpu_and_hybrid_on_a_neuron():
    if not dwave_backend.has_credentials():
        pytest.skip("no D-Wave API token configured")
    bqm = digits_neurons(9, 1)[0]
    qpu = get_sampler("dwave")
    ss = qpu.sample(bqm, num_reads=100)
    assert np.allclose(bqm.energies(ss), ss.record.energy)
    assert "qpu_access_time" in ss.info["timing"] and 170 <= qpu.max_variables <= 190
    hybrid = get_sampler("dwave-hybrid")
    assert hybrid.sample(bqm).first.energy == pytest.approx(optimum(bqm), rel=1e-6)


@pytest.mark.live
def test_live_qpu_layer_many_neurons_per_call_within_a_budget():
    """The tiny model's second layer (10 neurons of up to 11 variables) in one QPU call, reverse-annealed from the
    warm start, planned first and refused over budget before any call."""
    if not dwave_backend.has_credentials():
        pytest.skip("no D-Wave API token configured")
    from backend_fixtures import tiny_digits

    from qannealq.backends._dwave_plan import QPUBudgetError
    from qannealq.experiment import formulate
    from qannealq.solve import quantize_layer

    problem = formulate(tiny_digits(), 4)[1]
    with get_sampler("dwave", num_reads=50) as qpu:
        plan = qpu.plan([problem], warm_start=True)
        with pytest.raises(QPUBudgetError):
            plan.check_budget(plan.estimate_us / 2e6)
        plan.check_budget(1.0)
        result = quantize_layer(problem, "qubo", qpu, "dwave", seed=0)
    info = result.info["qpu"]
    assert info["calls"] == len(plan.layers[0].calls) == 1 and info["anneal"] == plan.layers[0].settings.anneal
    assert 0.5 < info["qpu_access_time_us"] / info["estimated_qpu_access_time_us"] < 2.0
    assert np.all(result.errors <= result.warm_start_errors + 1e-12)



@pytest.mark.parametrize("name", ["dwave", "dwave-hybrid"])
def test_a_pickled_cloud_sampler_leaves_its_token_and_client_behind(no_dwave_token, monkeypatch, name):
    """A sampler sent to a process or Dask worker (pickled) never carries the API token given to its constructor;
    the worker connects with its own credentials, and says so clearly where it has none."""
    import pickle

    secret = "DEV-secret123"
    configs: list = []

    def qpu_child(self):
        configs.append(dict(self._config))
        return _mock_child(self)

    class Hybrid(_FakeHybrid):
        def __init__(self, **config):
            super().__init__(**config)
            configs.append(config)

    monkeypatch.setattr(dwave_backend.QPUSampler, "_make_child", qpu_child)
    monkeypatch.setattr("dwave.system.LeapHybridSampler", Hybrid)
    sampler = get_sampler(name, token=secret, solver="some-solver")
    bqm = digits_neurons(7, 1)[0]
    sampler.sample(bqm).resolve()  # the cloud client is built (and would not pickle if it were a real one)
    assert configs[-1]["token"] == secret
    data = pickle.dumps(sampler)
    assert secret.encode() not in data
    copy = pickle.loads(data)
    assert copy._child is None and copy._config == {"solver": "some-solver"}
    with pytest.raises(CredentialsError, match=r"without its token .* no D-Wave API token is configured here"):
        copy.sample(bqm)  # a worker without credentials of its own
    monkeypatch.setenv("DWAVE_API_TOKEN", "worker-token")
    assert copy.sample(bqm).first.energy == pytest.approx(optimum(bqm), abs=1e-9)
    assert configs[-1] == {"solver": "some-solver"}  # built from the worker's own credentials


def test_the_record_factory_leaves_make_log_record_working(fake_dwave_token):
    """logging.makeLogRecord (distributed's Client.forward_logging, socket log receivers, dill) builds a record
    with no name, then sets its fields: once guard_logs had run (available_backends does), it raised
    AttributeError: 'NoneType' object has no attribute 'startswith' in every process-wide caller."""
    from qannealq.backends._dwave_cloud import guard_logs

    guard_logs()
    for name in ("dwave.cloud.client", "other"):
        record = logging.makeLogRecord({"name": name, "msg": "forwarded %s", "args": (1,)})
        assert record.name == name and record.getMessage() == "forwarded 1"


def test_redaction_is_linear_in_the_message():
    """The secret-key pattern was tried from every secret word inside a word, each try running to the word's end
    and back: 8 kB of ``token`` repeated took about a second, 40 kB 20 s, a 1 MB message hours (a record is
    redacted as it is made, so the logging call hung). A key is now tried from a word's start only: the 1 MB
    message takes well under a second (a hang, not a speed, is what the limit catches; re holds the GIL, hence
    a process)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)}  # the qannealq under test
    code = ("from qannealq.backends._dwave_cloud import redact_text\n"
            "text = 'token' * 200000\n"
            "assert redact_text(text) == text and redact_text(text + \"='S'\") == text + \"='<redacted>'\"\n")
    try:
        subprocess.run([sys.executable, "-c", code], check=True, timeout=120, env=env)
    except subprocess.TimeoutExpired:
        pytest.fail("redact_text hung on a 1 MB message")


def test_mock_calls_of_two_threads_at_once_keep_their_own_seeds(monkeypatch):
    """One ``dwave-mock`` sampler shared by two threads (``--executor threads:N``, a user's own threads): each
    call set the seed of the mock's next sample on the shared mock, so a call whose seed the other thread set
    again before it sampled returned the other seed's reads under its own recorded seed (7 of 20 calls of two
    threads at once). Here both threads seed before either samples: each gets its serial reads."""
    import threading

    sampler = get_sampler("dwave-mock", topology_type="pegasus", topology_shape=[6], num_reads=20)
    bqms = digits_neurons(12, 2, min_variables=5)
    serial = [sampler.sample(bqm, seed=11 + k) for k, bqm in enumerate(bqms)]
    real_check, meet = dwave_backend.check_solver_ranges, threading.Barrier(2, timeout=30)

    def seeded_together(*args):  # between a call's seeding and its submission
        meet.wait()
        return real_check(*args)

    monkeypatch.setattr(dwave_backend, "check_solver_ranges", seeded_together)
    both: list = [None, None]

    def call(k):
        both[k] = sampler.sample(bqms[k], seed=11 + k)
        both[k].resolve()

    threads = [threading.Thread(target=call, args=(k,)) for k in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for alone, together in zip(serial, both):
        assert together.info["seed"] == alone.info["seed"]
        assert np.array_equal(together.record.sample, alone.record.sample)
        assert np.array_equal(together.record.num_occurrences, alone.record.num_occurrences)
