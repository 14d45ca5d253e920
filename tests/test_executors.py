"""--executor: threads, local processes and a Dask cluster give the serial run's results for a fixed seed."""

from __future__ import annotations

import pickle
import threading
from concurrent.futures import ThreadPoolExecutor

import dimod
import numpy as np
import pytest

from helpers import random_layer
from qannealq import InvalidArgumentError, quantize_layer
from qannealq.backends import get_sampler
from qannealq.executors import (DaskExecutor, ExecutorConnectionError, NamedSampler, ProcessExecutor,
                                describe_executor, make_executor, parse_executor, portable_sampler, run_tasks)


@pytest.fixture(scope="module")
def problem():
    return random_layer(np.random.default_rng(7), 24, 10).problem(3)


@pytest.fixture(scope="module")
def serial(problem):
    return quantize_layer(problem, "qubo", get_sampler("sa"), "sa", seed=5, num_reads=3)


def _assert_same(result, serial) -> None:
    np.testing.assert_array_equal(result.integers, serial.integers)
    np.testing.assert_array_equal(result.errors, serial.errors)
    assert [s.info["seed"] for s in result.samplesets] == [s.info["seed"] for s in serial.samplesets]


class _Unpicklable(dimod.Sampler):
    """``sa`` holding a lock, as a sampler with a licence or a cloud client would: it cannot be pickled."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.inner = get_sampler("sa")

    parameters = property(lambda self: self.inner.parameters)
    properties = property(lambda self: self.inner.properties)

    def sample(self, bqm, **kwargs):
        return self.inner.sample(bqm, **kwargs)


@pytest.mark.parametrize("text, kind, workers", [(None, "serial", None), ("serial", "serial", None),
                                                 ("threads:3", "threads", 3), ("processes:2", "processes", 2)])
def test_parse_executor_forms(text, kind, workers):
    spec = parse_executor(text)
    assert (spec.kind, spec.workers) == (kind, workers)
    assert make_executor(None) is None and make_executor("serial") is None


def test_parse_executor_dask_address():
    spec = parse_executor("dask://scheduler.lab:8786")
    assert (spec.kind, spec.address, str(spec)) == ("dask", "tcp://scheduler.lab:8786", "dask://scheduler.lab:8786")


@pytest.mark.parametrize("text", ["processes", "processes:0", "threads:x", "dask://host", "dask://h:99999",
                                  "mpi:4", "tcp://host:8786"])
def test_bad_executor_names_the_value(text):
    with pytest.raises(InvalidArgumentError, match="--executor=") as info:
        parse_executor(text)
    assert repr(text) in str(info.value)


def test_threads_equal_serial(problem, serial):
    with make_executor("threads:2") as pool:
        assert describe_executor(pool) == "threads:2"
        _assert_same(quantize_layer(problem, "qubo", get_sampler("sa"), "sa", seed=5, executor=pool, num_reads=3),
                     serial)


def test_processes_equal_serial_and_build_unpicklable_samplers_by_name(problem, serial):
    unpicklable = get_sampler("sa")
    unpicklable.lock = threading.Lock()  # as a licence or a cloud client would: it cannot be pickled
    with make_executor("processes:2", threads_per_worker=1) as pool:
        assert isinstance(pool, ProcessExecutor)
        assert describe_executor(pool) == "processes:2 (1 thread(s) per worker)"
        _assert_same(quantize_layer(problem, "qubo", get_sampler("sa"), "sa", seed=5, executor=pool, num_reads=3),
                     serial)
        sent = portable_sampler(unpicklable, "sa", pool)
        assert isinstance(sent, NamedSampler)
        assert portable_sampler(unpicklable, "sa", None) is unpicklable
        by_name = quantize_layer(problem, "qubo", sent, "sa", seed=5, executor=pool, num_reads=3)
    _assert_same(by_name, serial)


def test_an_unpicklable_sampler_goes_by_name_with_its_constructor_options():
    sampler = get_sampler("dwave-mock", num_reads=7, parallel=False)
    sampler.lock = threading.Lock()
    pool = ProcessExecutor(2)  # no process starts before a task is submitted
    try:
        sent = portable_sampler(sampler, "dwave-mock", pool)
        assert isinstance(sent, NamedSampler) and sent.options == {"num_reads": 7, "parallel": False}
        there = pickle.loads(pickle.dumps(sent)).sampler  # as a worker builds it
        assert (there.num_reads, there.parallel) == (7, False)
        with pytest.raises(InvalidArgumentError, match=r"_Unpicklable sampler \(backend 'sa'\) cannot be sent .*"
                                                        r"options it was built with are unknown"):
            portable_sampler(_Unpicklable(), "sa", pool)  # built by its class: the worker could not build the same
        with pytest.raises(InvalidArgumentError, match="options it was built with are unknown"):
            portable_sampler(sampler, "sa", pool)  # another backend's options do not apply
    finally:
        pool.shutdown()


def test_a_sampler_sent_by_name_leaves_its_token_behind(fake_dwave_token, monkeypatch):
    pytest.importorskip("dwave.system")
    secret = "DEV-secret123"
    sampler = get_sampler("dwave-hybrid", token=secret, time_limit=5)
    sampler.lock = threading.Lock()
    pool = ProcessExecutor(2)
    try:
        sent = portable_sampler(sampler, "dwave-hybrid", pool)
    finally:
        pool.shutdown()
    assert sent.options == {"time_limit": 5}
    assert secret.encode() not in pickle.dumps(sent)


def test_gurobi_pickles_with_its_options_after_a_solve():
    pytest.importorskip("gurobipy")
    sampler = get_sampler("gurobi", max_variables=5)
    sampler.sample(dimod.BQM({0: 1.0, 1: -1.0}, {(0, 1): 0.5}, 0, "BINARY")).resolve()  # starts its environment
    copy = pickle.loads(pickle.dumps(sampler))
    assert copy.max_variables == 5 and copy._env is None


def test_named_sampler_pickles_as_its_name_only():
    named = NamedSampler("sa")
    assert "seed" in named.parameters  # built here on first use
    clone = pickle.loads(pickle.dumps(named))
    assert clone._sampler is None and clone.name == "sa"


def test_named_sampler_rebuilds_the_senders_retries_and_decomposition_in_the_worker():
    import functools

    from qannealq.backends.retry import RetryComposite
    from qannealq.runner import wrap_backend

    def chain(sampler):
        while sampler is not None:
            yield sampler
            sampler = (getattr(sampler, "children", None) or [None])[0]

    here = wrap_backend("dwave-mock", get_sampler("dwave-mock"), retries=2, seed=1)
    named = NamedSampler("dwave-mock", wrap=functools.partial(wrap_backend, retries=2, seed=1))
    there = pickle.loads(pickle.dumps(named)).sampler  # as a process or Dask worker builds it
    assert [type(s) for s in chain(there)] == [type(s) for s in chain(here)]
    retry = next(s for s in chain(there) if isinstance(s, RetryComposite))
    assert retry.retries == 2
    assert not any(isinstance(s, RetryComposite) for s in chain(NamedSampler("dwave-mock").sampler))


def _square(x: int) -> int:
    return x * x


def _describe(i: int, mapping: dict, items: list) -> tuple:
    return i, mapping, items


def _slow_logged(args: tuple) -> int:
    """A slow task that writes a line to ``path`` when it starts (counted by the interrupt tests)."""
    import time

    path, x = args
    with open(path, "a") as log:
        log.write(f"{x}\n")
    time.sleep(0.4)
    return x


def _interrupt_after_first_result(pool, log) -> int:
    """Leave ``with pool`` by a KeyboardInterrupt once the first of 16 slow tasks is back; the tasks started."""
    import time

    with pytest.raises(KeyboardInterrupt):
        with pool:
            results = pool.map(_slow_logged, [(str(log), x) for x in range(16)])
            next(iter(results))
            raise KeyboardInterrupt  # Ctrl-C, or SIGTERM turned into one, in the solve loop
    time.sleep(1.0)  # a task still queued or still running after the exit would start or log by now
    return len(log.read_text().splitlines())


def test_an_interrupted_process_pool_stops_the_rest_of_the_batch(tmp_path):
    started = _interrupt_after_first_result(make_executor("processes:2", threads_per_worker=1), tmp_path / "log")
    assert started <= 8  # 16 tasks: the exit waited for every one, solving the whole batch for nothing


def test_an_interrupted_thread_pool_starts_no_more_of_the_batch(tmp_path):
    started = _interrupt_after_first_result(make_executor("threads:2"), tmp_path / "log")
    assert started <= 4  # 16 tasks: the exit ran every queued one, for nothing


def test_run_tasks_serial_and_pooled_give_every_result():
    assert list(run_tasks(_square, [1, 2, 3])) == [(0, 1), (1, 4), (2, 9)]
    with ThreadPoolExecutor(2) as pool:
        assert sorted(run_tasks(_square, range(5), pool)) == [(i, i * i) for i in range(5)]


@pytest.fixture(scope="module")
def local_cluster():
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp",
                                  host="127.0.0.1", dashboard_address=None) as cluster:
        yield cluster


def test_dask_local_cluster_equals_serial(local_cluster, problem, serial):
    address = local_cluster.scheduler_address
    assert address.startswith("tcp://127.0.0.1:")
    with make_executor("dask://" + address.removeprefix("tcp://")) as dask:
        assert isinstance(dask, DaskExecutor)
        assert "1 worker(s), 2 thread(s)" in describe_executor(dask)
        result = quantize_layer(problem, "qubo", get_sampler("sa"), "sa", seed=5, executor=dask, num_reads=3)
        assert sorted(run_tasks(_square, [3, 4], dask)) == [(0, 9), (1, 16)]
        empty, pair = {}, [1, 2]  # shared by every call: each scattered once, as the object itself
        assert list(dask.map(_describe, range(5), [empty] * 5, [pair] * 5)) == [(i, {}, [1, 2]) for i in range(5)]
        assert list(dask.map(_square, [7])) == [49]  # nothing shared
    _assert_same(result, serial)


def test_dask_sends_a_layers_problem_once_not_once_per_batch(local_cluster, problem, serial, monkeypatch):
    """Each batch's map scattered the layer's problem (its ``H``) to every worker again: a layer of 10 neurons in
    batches of 4 sent it 3 times (128 neurons in batches of 8: 16 times, 185 MB on a 785-input layer and 2
    workers). It is now sent once per layer; another problem, or one the workers lost, is sent again."""
    from qannealq.formulation import LayerProblem

    import qannealq._dask as dask_module

    digest, digested = dask_module._digest, []
    monkeypatch.setattr(dask_module, "_digest", lambda value: digested.append(value) or digest(value))
    with make_executor("dask://" + local_cluster.scheduler_address.removeprefix("tcp://")) as dask:
        scatter, sent = dask.client.scatter, []
        dask.client.scatter = lambda data, **kwargs: sent.extend(data) or scatter(data, **kwargs)
        result = quantize_layer(problem, "qubo", get_sampler("sa"), "sa", seed=5, executor=dask, num_reads=3,
                                checkpoint=_Batches())
        _assert_same(result, serial)
        assert sum(isinstance(value, LayerProblem) for value in sent) == 1
        # the same object in every batch: its digest taken once (0.3 s a batch on a 3073-input layer)
        assert sum(isinstance(value, LayerProblem) for value in digested) == 1
        dask.client.cancel([future for future, _ in dask._scattered.values()])  # as if every worker had died
        other = random_layer(np.random.default_rng(8), 24, 10).problem(3)
        for layer in (problem, other):
            quantize_layer(layer, "qubo", get_sampler("sa"), "sa", seed=5, executor=dask, num_reads=3,
                           checkpoint=_Batches())
        assert [value for value in sent if isinstance(value, LayerProblem)] == [problem, problem, other]


def test_an_interrupted_dask_executor_cancels_the_rest_of_the_batch(local_cluster, tmp_path):
    address = "dask://" + local_cluster.scheduler_address.removeprefix("tcp://")
    started = _interrupt_after_first_result(make_executor(address), tmp_path / "log")
    assert started <= 8  # 16: the client's shutdown waited for every task


def test_unreachable_dask_scheduler_is_a_clear_error():
    pytest.importorskip("distributed")
    with pytest.raises(ExecutorConnectionError, match=r"dask://127.0.0.1:9: no Dask scheduler answered"):
        make_executor("dask://127.0.0.1:9", connect_timeout=1)


def test_run_on_a_local_cluster_writes_the_serial_runs_results(local_cluster, tmp_path):
    from qannealq.config import ModelConfig, QuantizeConfig, RunConfig
    from qannealq.report import LogReporter
    from qannealq.runner import run

    model = ModelConfig(dataset="digits", input_size=4)
    quant = QuantizeConfig(bits=(2,), methods=("qubo",), backend="sa", sampler_options={"num_reads": 2})
    address = "dask://" + local_cluster.scheduler_address.removeprefix("tcp://")
    messages = []

    class Collect(LogReporter):
        def message(self, text):
            messages.append(text)

    spread = run(RunConfig(model, quant, tmp_path / "dask", executor=address), Collect())
    plain = run(RunConfig(model, quant, tmp_path / "serial"))
    assert any(m.startswith("neuron solves on dask tcp://127.0.0.1:") for m in messages)
    assert [(r.accuracy, r.layer_error) for r in spread.rows] == [(r.accuracy, r.layer_error) for r in plain.rows]
    assert [l["seed"] for l in spread.rows[0].layers] == [l["seed"] for l in plain.rows[0].layers]


def test_shared_pools_are_kept_per_size_and_fresh_in_a_forked_child():
    """``qannealq._pool.shared_pool``: one pool per size for the process, its threads kept between calls; a
    forked child (Dask's and multiprocessing's workers) gets a pool of its own, which runs its tasks (the
    parent's worker threads do not exist there: its pool would take the tasks and never run them)."""
    import os
    import signal

    from qannealq._pool import shared_pool

    pool = shared_pool(2)
    assert shared_pool(2) is pool and shared_pool(3) is not pool
    assert list(pool.map(lambda x: x * x, range(5))) == [0, 1, 4, 9, 16]
    pid = os.fork()
    if pid == 0:  # the child
        ok = False
        try:
            signal.alarm(20)  # a pool whose workers are gone would hang here
            ok = shared_pool(2) is not pool and list(shared_pool(2).map(abs, [-1, -2])) == [1, 2]
        finally:
            os._exit(0 if ok else 1)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


class _VendorError(Exception):
    """An SDK's exception whose class needs an argument its pickle does not carry."""

    def __init__(self, message: str, *, code: int) -> None:
        super().__init__(message)
        self.code = code


def _vendor_failure(x: int) -> int:
    if x == 3:
        raise _VendorError("quota exceeded", code=429)
    if x == 4:
        raise ValueError("a plain error")
    return x


def test_a_worker_error_that_cannot_travel_back_is_named_not_a_broken_pool():
    """The parent failed to unpickle such an error and reported "BrokenProcessPool: a process in the process pool
    was terminated abruptly"; it now gets a BackendError naming its type and text. Errors that travel keep their
    own type."""
    from qannealq.errors import BackendError

    with ProcessExecutor(2, 1) as pool:
        with pytest.raises(BackendError, match=r"test_executors\._VendorError in a worker: quota exceeded"):
            list(pool.map(_vendor_failure, [0, 1, 2, 3]))
        with pytest.raises(ValueError, match="a plain error"):
            list(pool.map(_vendor_failure, [4]))
        assert list(pool.map(_vendor_failure, [0, 1, 2])) == [0, 1, 2]


def _plant_closer(path: str) -> int:
    """In a worker: a build whose ``close`` writes the worker's pid to ``path`` when it is closed."""
    import os

    from qannealq import executors

    class Closing:
        def close(self) -> None:
            with open(path, "a") as log:
                log.write(f"{os.getpid()}\n")

    executors._remember(b"test-closer", Closing())
    return os.getpid()


def _built_by(named, i: int) -> tuple[int, int]:
    import os

    return os.getpid(), id(named.sampler)


def test_a_worker_builds_a_named_sampler_once_and_closes_it_when_it_exits(tmp_path):
    """Each chunk arrives with a new copy of the NamedSampler, and each copy built its sampler anew (for a cloud
    backend: a solver lookup and a client per chunk, never closed). A worker process now keeps one build per
    (name, options, wrap) and closes its builds when it exits."""
    path = tmp_path / "closed.txt"
    with ProcessExecutor(2, 1) as pool:
        planted = set(pool.map(_plant_closer, [str(path)] * 8))
        built = list(pool.map(_built_by, [NamedSampler("sa")] * 16, range(16)))
    per_worker: dict[int, set] = {}
    for pid, ident in built:
        per_worker.setdefault(pid, set()).add(ident)
    assert per_worker and all(len(ids) == 1 for ids in per_worker.values())  # 16 calls in 8 chunks
    assert set(map(int, path.read_text().split())) == planted
    here = NamedSampler("sa")
    assert pickle.loads(pickle.dumps(here)).sampler is not pickle.loads(pickle.dumps(here)).sampler  # this process


class _FailsOnSeed(dimod.Sampler):
    """``sa`` raising a backend error on the call given ``bad_seed`` (one neuron's seed), as a service would."""

    def __init__(self, bad_seed: int) -> None:
        self.bad_seed = bad_seed
        self.inner = get_sampler("sa")

    parameters = property(lambda self: self.inner.parameters)
    properties = property(lambda self: self.inner.properties)

    def sample(self, bqm, **kwargs):
        if kwargs.get("seed") == self.bad_seed:
            from qannealq.errors import BackendError

            raise BackendError("the solver refused the problem")
        return self.inner.sample(bqm, **kwargs)


@pytest.mark.parametrize("spec", [None, "threads:2", "processes:2", "dask"])
def test_a_neurons_backend_error_names_that_neuron(problem, spec, request):
    """Serially the error of a sampler that solves in ``sample()`` named no neuron at all; a process or Dask
    executor, which sends the calls in chunks, named the first neuron of the failing one's chunk (4, not 5)."""
    from qannealq.errors import BackendError

    if spec == "dask":
        spec = "dask://" + request.getfixturevalue("local_cluster").scheduler_address.removeprefix("tcp://")
    seeds = np.random.SeedSequence(5).generate_state(problem.num_neurons) & 0x7FFFFFFF
    failing = _FailsOnSeed(int(seeds[5]))
    with make_executor(spec) or ThreadPoolExecutor(1) as pool:
        executor = None if spec is None else pool
        with pytest.raises(BackendError, match=r"^layer 'layer', neuron 5: the solver refused the problem$"):
            quantize_layer(problem, "qubo", failing, "sa", seed=5, executor=executor, num_reads=1)


class _KillsOnSeed(_FailsOnSeed):
    """``sa`` whose worker process is killed (as the kernel's out-of-memory killer would) on ``bad_seed``'s call."""

    def sample(self, bqm, **kwargs):
        if kwargs.get("seed") == self.bad_seed:
            import os
            import signal

            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner.sample(bqm, **kwargs)


class _Batches:
    """An in-memory checkpoint of batches of 4 neurons."""

    batch_size = 4

    def __init__(self) -> None:
        self.saved: dict[int, np.ndarray] = {}

    def load(self, problem, start, stop, seed):
        return self.saved.get(start)

    def save(self, problem, start, rows, seed):
        self.saved[start] = rows


def test_a_killed_process_worker_is_a_backend_error_naming_the_batch_and_earlier_batches_are_kept(problem, serial):
    """A worker killed mid-batch raised BrokenProcessPool, which is no QannealqError: the command ended in a
    traceback naming neither the layer nor the neurons."""
    from qannealq.errors import BackendError

    seeds = np.random.SeedSequence(5).generate_state(problem.num_neurons) & 0x7FFFFFFF
    batches = _Batches()
    with pytest.raises(BackendError, match=r"^layer 'layer', neurons 4-7: the executor stopped abruptly"):
        with make_executor("processes:2", threads_per_worker=1) as pool:
            quantize_layer(problem, "qubo", _KillsOnSeed(int(seeds[5])), "sa", seed=5, executor=pool, num_reads=3,
                           checkpoint=batches)
    assert sorted(batches.saved) == [0]
    resumed = quantize_layer(problem, "qubo", get_sampler("sa"), "sa", seed=5, num_reads=3, checkpoint=batches)
    np.testing.assert_array_equal(resumed.integers, serial.integers)


class _OutOfMemoryOnSeed(_FailsOnSeed):
    """``sa`` whose allocation fails (numpy's ``MemoryError``) on ``bad_seed``'s call; on every call if it is -1."""

    def __init__(self, bad_seed: int = -1) -> None:
        super().__init__(bad_seed)

    def sample(self, bqm, **kwargs):
        if self.bad_seed in (-1, kwargs.get("seed")):
            raise MemoryError("Unable to allocate 3.20 GiB for an array with shape (20000, 20000)")
        return self.inner.sample(bqm, **kwargs)


@pytest.mark.parametrize("spec", [None, "processes:2", "dask"])
def test_a_solves_memory_error_names_the_layer_and_neuron_and_earlier_batches_are_kept(problem, serial, spec,
                                                                                        request):
    """A sampler's MemoryError (serial, in a process worker or a Dask worker) came back as a bare MemoryError
    naming neither the layer nor the neuron nor what to do; it is now a BackendError (and still a MemoryError)."""
    from qannealq.errors import BackendError

    seeds = np.random.SeedSequence(5).generate_state(problem.num_neurons) & 0x7FFFFFFF
    batches = _Batches()
    if spec == "dask":
        spec = "dask://" + request.getfixturevalue("local_cluster").scheduler_address.removeprefix("tcp://")
    with make_executor(spec) or ThreadPoolExecutor(1) as pool:
        with pytest.raises(BackendError, match=r"^layer 'layer', neuron 5: out of memory in the solve \(MemoryError: "
                                               r"Unable to allocate 3.20 GiB.*--resume.*more memory") as caught:
            quantize_layer(problem, "qubo", _OutOfMemoryOnSeed(int(seeds[5])), "sa", seed=5,
                           executor=None if spec is None else pool, num_reads=3, checkpoint=batches)
    assert isinstance(caught.value, MemoryError)
    assert sorted(batches.saved) == [0]
    resumed = quantize_layer(problem, "qubo", get_sampler("sa"), "sa", seed=5, num_reads=3, checkpoint=batches)
    np.testing.assert_array_equal(resumed.integers, serial.integers)


def test_a_memory_error_of_the_commands_own_code_stays_a_memory_error(problem):
    """Only a solve's MemoryError is named as one: the caller's own (here saving a batch) is not relabelled."""
    from qannealq.errors import QannealqError

    class FullSave(_Batches):
        def save(self, problem, start, rows, seed):
            raise MemoryError("saving")

    with pytest.raises(MemoryError, match="^saving$") as caught:
        quantize_layer(problem, "qubo", get_sampler("sa"), "sa", seed=5, num_reads=1, checkpoint=FullSave())
    assert not isinstance(caught.value, QannealqError)


def test_a_solves_memory_error_ends_the_command_with_its_message_and_exit_2(monkeypatch, tmp_path, capsys):
    import importlib.metadata

    from qannealq.cli import main

    real = importlib.metadata.entry_points
    eps = [importlib.metadata.EntryPoint("oom", f"{__name__}:_OutOfMemoryOnSeed", "qannealq.backends")]
    monkeypatch.setattr(importlib.metadata, "entry_points",
                        lambda **kw: eps if kw.get("group") == "qannealq.backends" else real(**kw))
    code = main(["run", "--dataset", "digits", "--input-size", "4", "--bits", "2", "--methods", "qubo",
                 "--backend", "oom", "--out", str(tmp_path / "r")])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "qannealq: error: layer '0', neuron 0: out of memory in the solve (MemoryError: Unable to allocate" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("reply", [None, b"HTTP/1.0 200 OK\r\nContent-Type: text/html\r\n\r\n<html>dashboard</html>"])
def test_a_server_that_is_not_a_dask_scheduler_is_a_clear_error_in_bounded_time(reply):
    """A server that accepts the connection and never answers kept Client() waiting forever (its timeout does not
    bound it); one of another protocol (e.g. an HTTP port) could raise numpy's MemoryError from its reply."""
    import socket

    pytest.importorskip("distributed")
    server = socket.create_server(("127.0.0.1", 0))
    port = server.getsockname()[1]
    done = threading.Event()

    def serve():
        server.settimeout(0.2)
        while not done.is_set():
            try:
                conn, _ = server.accept()
            except OSError:
                continue
            if reply is not None:
                conn.sendall(reply * 50)
                conn.close()

    threading.Thread(target=serve, daemon=True).start()
    try:
        with pytest.raises(ExecutorConnectionError, match=rf"dask://127.0.0.1:{port}: no Dask scheduler answered"):
            make_executor(f"dask://127.0.0.1:{port}", connect_timeout=1)
    finally:
        done.set()
        server.close()


@pytest.fixture(scope="module")
def worker_processes():
    """A Dask cluster of two worker processes (each restarted by its nanny when it is killed)."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True, protocol="tcp", host="127.0.0.1",
                                  dashboard_address=None, worker_dashboard_address=None) as cluster:
        yield cluster


def _dask_executor(cluster):
    """An executor on ``cluster`` once both of its workers are up (after a test killed one)."""
    import distributed

    with distributed.Client(cluster.scheduler_address, set_as_default=False) as client:
        client.wait_for_workers(2, timeout=60)
    return make_executor("dask://" + cluster.scheduler_address.removeprefix("tcp://"))


class _KillsAHolderOnce(_FailsOnSeed):
    """``sa`` that kills the Dask worker running it (SIGKILL, as an out-of-memory killer would) once in all: the first
    call on a worker that holds the layer's problem, which ``map`` sent to the cluster before the calls."""

    def __init__(self, marker: str) -> None:
        super().__init__(-1)
        self.marker = marker

    def sample(self, bqm, **kwargs):
        import os
        import signal

        from distributed import get_worker

        if not os.path.exists(self.marker) and any("LayerProblem" in str(key) for key in get_worker().data):
            open(self.marker, "w").close()
            os.kill(os.getpid(), signal.SIGKILL)
        return self.inner.sample(bqm, **kwargs)


def _solve_in_time(seconds: float, *args, **kwargs):
    """``quantize_layer(*args, **kwargs)`` in a thread; its result or error, or a failure if it still waits."""
    outcome = {}

    def solve():
        try:
            outcome["result"] = quantize_layer(*args, **kwargs)
        except BaseException as exc:  # noqa: BLE001 - returned to the test
            outcome["error"] = exc

    thread = threading.Thread(target=solve, daemon=True)
    thread.start()
    thread.join(seconds)
    assert not thread.is_alive(), f"the layer still waits on its Dask tasks after {seconds} s"
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


@pytest.mark.slow
def test_a_killed_dask_worker_costs_only_its_tasks(worker_processes, problem, serial, tmp_path):
    """A worker killed mid-layer holding the data that ``map`` scattered (to one worker) lost it: every chunk was
    then cancelled (CancelledError, naming nothing), or the layer waited for ever on a chunk finished on the dead
    worker (Client.get_executor's future never settled). The shared data is now on every worker: Dask runs the
    dead worker's chunks again elsewhere and the layer equals the serial one."""
    with _dask_executor(worker_processes) as dask:
        result = _solve_in_time(120, problem, "qubo", _KillsAHolderOnce(str(tmp_path / "killed")), "sa", seed=5,
                                executor=dask, num_reads=3)
    assert (tmp_path / "killed").exists()
    _assert_same(result, serial)


@pytest.mark.slow
def test_a_chunk_that_kills_every_dask_worker_is_a_backend_error_naming_the_batch(worker_processes, problem,
                                                                                 serial):
    """Dask gives up on a chunk whose every run kills its worker: that was a bare CancelledError (or KilledWorker)
    naming neither the layer nor the neurons, or a wait for ever; it is now the process pool's BackendError, and
    the batches finished before it are kept, so that the layer resumes to the serial result."""
    from qannealq.errors import BackendError

    seeds = np.random.SeedSequence(5).generate_state(problem.num_neurons) & 0x7FFFFFFF
    batches = _Batches()
    with pytest.raises(BackendError, match=r"^layer 'layer', neurons 4-7: the executor stopped abruptly.*"
                                           r"Dask lost task"):
        with _dask_executor(worker_processes) as dask:
            _solve_in_time(120, problem, "qubo", _KillsOnSeed(int(seeds[5])), "sa", seed=5, executor=dask,
                           num_reads=3, checkpoint=batches)
    assert sorted(batches.saved) == [0]
    resumed = quantize_layer(problem, "qubo", get_sampler("sa"), "sa", seed=5, num_reads=3, checkpoint=batches)
    np.testing.assert_array_equal(resumed.integers, serial.integers)


def test_dask_workers_without_qannealq_are_refused_when_connecting(tmp_path):
    """Workers that cannot import qannealq were accepted: the run trained its model, then ended in a traceback
    of Dask's ``Exception: ModuleNotFoundError("No module named 'qannealq'")`` at its first layer."""
    distributed = pytest.importorskip("distributed")
    from qannealq.errors import BackendUnavailableError

    without = tmp_path / "without_qannealq.py"  # a worker preload: this worker's Python cannot import qannealq
    without.write_text("import sys\nsys.modules['qannealq'] = None\n")
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True, protocol="tcp", host="127.0.0.1",
                                  dashboard_address=None, worker_dashboard_address=None,
                                  preload=[str(without)]) as cluster:
        address = "dask://" + cluster.scheduler_address.removeprefix("tcp://")
        said = rf"^--executor={address}: 1 of the 1 Dask worker\(s\) cannot import qannealq \(tcp://.*ModuleNotFound"
        with pytest.raises(BackendUnavailableError, match=said + r".*pip install"):
            make_executor(address)


def test_a_dask_scheduler_without_workers_is_refused_when_connecting_and_a_starting_one_is_waited_for():
    """A scheduler without workers was accepted: the run trained, then its first layer waited 10 s and stopped with
    "the executor stopped abruptly (a worker killed, ... or a Dask scheduler gone: ... No valid workers found)"."""
    distributed = pytest.importorskip("distributed")
    with distributed.LocalCluster(n_workers=0, threads_per_worker=1, processes=False, protocol="tcp", host="127.0.0.1",
                                  dashboard_address=None, worker_dashboard_address=None) as cluster:
        address = "dask://" + cluster.scheduler_address.removeprefix("tcp://")
        said = rf"^--executor={address}: the Dask scheduler has no workers \(none joined within 1 s\); start some"
        with pytest.raises(ExecutorConnectionError, match=said + r" \(dask worker tcp://"):
            make_executor(address, connect_timeout=1)
        threading.Timer(0.5, cluster.scale, (1,)).start()
        with make_executor(address, connect_timeout=60) as dask:
            assert list(dask.map(_square, [2, 3])) == [4, 9]


@pytest.mark.slow  # the client tries to reach the scheduler for 10 s
def test_a_dask_scheduler_gone_mid_run_is_a_backend_error_naming_the_batch(problem, serial):
    """A scheduler that went away between two batches (stopped, its machine lost) ended the run in a traceback of
    Dask's ``CommClosedError`` (an OSError) from ``Client.scatter``, naming neither the layer nor the neurons."""
    distributed = pytest.importorskip("distributed")
    from qannealq.errors import BackendError

    batches = _Batches()

    class GoesAwayAfterTheFirstBatch(_Batches):
        def save(self, problem, start, rows, seed):
            batches.save(problem, start, rows, seed)
            cluster.close()

    with distributed.LocalCluster(n_workers=1, threads_per_worker=2, processes=False, protocol="tcp", host="127.0.0.1",
                                  dashboard_address=None, worker_dashboard_address=None) as cluster:
        with pytest.raises(BackendError, match=r"^layer 'layer', neurons 4-7: the executor stopped abruptly .*Dask "
                                               r"scheduler tcp://127\.0\.0\.1:\d+ did not take the tasks"):
            with make_executor("dask://" + cluster.scheduler_address.removeprefix("tcp://")) as executor:
                quantize_layer(problem, "qubo", get_sampler("sa"), "sa", seed=5, executor=executor, num_reads=3,
                               checkpoint=GoesAwayAfterTheFirstBatch())
    assert sorted(batches.saved) == [0]
    resumed = quantize_layer(problem, "qubo", get_sampler("sa"), "sa", seed=5, num_reads=3, checkpoint=batches)
    np.testing.assert_array_equal(resumed.integers, serial.integers)
