"""``qaoa``: the BQM as a qiskit-optimization ``QuadraticProgram``, solved by QAOA + ``MinimumEigenOptimizer``.

Uses qiskit-optimization 0.7's own ``QAOA`` and optimizers (no qiskit-algorithms). The circuit runs on Aer's
``SamplerV2`` when qiskit-aer is installed (about 25x faster than ``StatevectorSampler`` at 18 qubits) and on
qiskit's ``StatevectorSampler`` otherwise. One qubit per variable, so the qubit limit is the capacity.
"""

from __future__ import annotations

import logging
import threading
import warnings
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext

import dimod
import numpy as np
from qiskit.primitives import StatevectorSampler
from qiskit_optimization import QuadraticProgram
from qiskit_optimization.algorithms import MinimumEigenOptimizer
from qiskit_optimization.minimum_eigensolvers import QAOA
from qiskit_optimization.optimizers import COBYLA, NELDER_MEAD, SPSA
from qiskit_optimization.utils import algorithm_globals

from qannealq.backends._common import check_capacity, draw_seed, now_ns, record
from qannealq.checks import at_least, check_choice, check_positive, check_values
from qannealq.errors import BackendUnavailableError, InvalidArgumentError
from qannealq.report import duration

__all__ = ["QAOASampler", "to_quadratic_program"]

logger = logging.getLogger(__name__)

OPTIMIZERS = {"cobyla": COBYLA, "nelder-mead": NELDER_MEAD, "spsa": SPSA}
MOST_QUBITS = 30
"""The largest ``max_qubits``: both simulators hold the full statevector, 16 bytes an amplitude (16 GiB at 30)."""
_GLOBAL_RANDOM = threading.Lock()  # held while a solve seeds and uses qiskit-optimization's global generator
STATEVECTOR_QUIET = 16
"""The most qubits a call simulates on qiskit's ``StatevectorSampler`` without a warning (about a minute at 16
with the default ``maxiter``); above, the sampler warns once, with an estimate of the call's time."""
STATEVECTOR_S_PER_AMPLITUDE = 25e-6
"""``StatevectorSampler``'s seconds per amplitude and circuit evaluation: 15-28 us measured at 16-19 qubits (dense
neuron BQMs, reps 1 and 2, x86_64, 2 shared cores, 2026-12-07), nearly independent of reps and couplings."""
_WARNING = threading.Lock()  # one warning per sampler, also from calls in threads


def to_quadratic_program(bqm: dimod.BinaryQuadraticModel) -> tuple[QuadraticProgram, list]:
    """The BINARY form of ``bqm`` as a ``QuadraticProgram`` (variables ``x0, x1, ...`` in ``labels`` order)."""
    binary = bqm.change_vartype("BINARY", inplace=False)
    labels = list(binary.variables)
    index = {v: k for k, v in enumerate(labels)}
    qp = QuadraticProgram("neuron")
    for k in range(len(labels)):
        qp.binary_var(f"x{k}")
    linear = {f"x{index[v]}": float(b) for v, b in binary.iter_linear() if b}
    quadratic = {(f"x{index[u]}", f"x{index[v]}"): float(b) for u, v, b in binary.iter_quadratic() if b}
    qp.minimize(constant=float(binary.offset), linear=linear, quadratic=quadratic)
    return qp, labels


def _aer() -> tuple | None:
    """``(AerSimulator, SamplerV2, generate_preset_pass_manager)``, or None where qiskit-aer is not installed."""
    try:
        from qiskit.transpiler import generate_preset_pass_manager
        from qiskit_aer import AerSimulator
        from qiskit_aer.primitives import SamplerV2
    except ImportError:
        return None
    return AerSimulator, SamplerV2, generate_preset_pass_manager


def _no_aer() -> BackendUnavailableError:
    return BackendUnavailableError("simulator='aer' needs qiskit-aer, which is not installed: pip install "
                                   "'qannealq[qiskit]', or give simulator='auto' (Aer when installed) or 'statevector'")


def _primitive(shots: int, seed: int, simulator: str):
    """Aer's SamplerV2 (with a matching pass manager) or StatevectorSampler, as ``(sampler, pass_manager)``."""
    aer = _aer() if simulator in ("auto", "aer") else None
    if aer is not None:
        simulator_class, sampler_class, pass_manager = aer
        pm = pass_manager(optimization_level=1, backend=simulator_class(seed_simulator=seed))
        return sampler_class(default_shots=shots, seed=seed), pm
    if simulator == "aer":
        raise _no_aer()
    return StatevectorSampler(default_shots=shots, seed=seed), None


@contextmanager
def _seeded(seed: int) -> Iterator[None]:
    """qiskit-optimization's global generator seeded with ``seed`` for the solve, then the caller's seed again.

    SPSA draws its perturbation directions (and its calibration's) from ``algorithm_globals.random``, which the
    sampler and the initial point do not touch: unseeded, two calls with the same seed fitted other angles and
    measured other counts. The generator is one per process, so the solve holds a lock: calls in threads
    (``--executor threads:N``) reseeded it under each other, and 4 calls fitted other angles than in series."""
    with _GLOBAL_RANDOM:
        before = algorithm_globals.random_seed
        algorithm_globals.random_seed = seed
        try:
            yield
        finally:
            algorithm_globals.random_seed = before


def _evaluations(optimizer: str, maxiter: int) -> int:
    """Circuit evaluations of one call, about: COBYLA's ``maxiter``, Nelder-Mead's about 2 an iteration, SPSA's 2
    an iteration plus its 50 to calibrate (measured 111 at ``maxiter=30``); plus the final sampling."""
    return {"cobyla": maxiter, "nelder-mead": 2 * maxiter, "spsa": 2 * maxiter + 50}[optimizer] + 1


def _depth(ansatz, pass_manager) -> int | None:
    """Depth of the circuit as run: transpiled by ``pass_manager`` (Aer), else decomposed to basic gates."""
    if ansatz is None:
        return None
    circuit = pass_manager.run(ansatz) if pass_manager is not None else ansatz.decompose(reps=3)
    return int(circuit.depth())


class QAOASampler(dimod.Sampler):
    """QAOA on a simulator, as a ``dimod.Sampler``.

    Args:
        reps: QAOA layers ``p``.
        optimizer: ``"cobyla"`` (default), ``"nelder-mead"`` or ``"spsa"``.
        maxiter: optimiser iterations.
        shots: measurements per circuit evaluation.
        max_qubits: refuse larger BQMs (statevector memory and time double per qubit).
        simulator: ``"auto"`` (Aer when installed), ``"aer"`` or ``"statevector"``.
    """

    name = "qaoa"
    default_max_variables: int | None = 20
    capacity_reason = "one qubit per variable"

    def __init__(self, reps: int = 1, optimizer: str = "cobyla", maxiter: int = 50, shots: int = 1024,
                 max_qubits: int = default_max_variables, simulator: str = "auto") -> None:
        check_choice("optimizer", optimizer, tuple(OPTIMIZERS))  # a tuple: a list given is refused, not unhashable
        if simulator not in ("auto", "aer", "statevector"):
            raise InvalidArgumentError(f"simulator={simulator!r} must be 'auto', 'aer' or 'statevector'")
        if simulator == "aer" and _aer() is None:  # the first sample refused it, after a run's training
            raise _no_aer()
        reps, maxiter, shots, max_qubits = (check_positive(name, value) for name, value in (
            ("reps", reps), ("maxiter", maxiter), ("shots", shots), ("max_qubits", max_qubits)))
        if max_qubits > MOST_QUBITS:  # the first call failed in the simulator's allocation, after training
            raise InvalidArgumentError(f"max_qubits={max_qubits}: a statevector of 2^{max_qubits} amplitudes needs "
                                       f"{16 * 2.0 ** max_qubits / 2 ** 30:.3g} GiB; give at most {MOST_QUBITS} "
                                       f"(16 GiB), or leave it at {self.default_max_variables} and let larger "
                                       "neurons be decomposed")
        self.reps, self.optimizer, self.maxiter, self.shots = reps, optimizer, maxiter, shots
        self.max_qubits, self.simulator = max_qubits, simulator
        self._warned = False
        self._check_cobyla(reps, maxiter)

    def __repr__(self) -> str:
        return (f"QAOASampler(reps={self.reps}, optimizer={self.optimizer!r}, maxiter={self.maxiter}, "
                f"shots={self.shots}, max_qubits={self.max_qubits}, simulator={self.simulator!r})")

    @property
    def max_variables(self) -> int:
        return self.max_qubits

    @property
    def properties(self) -> dict:
        return {"max_variables": self.max_qubits, "simulator": self.simulator}

    @property
    def parameters(self) -> dict:
        return {"seed": [], "reps": [], "maxiter": [], "shots": []}

    def check_options(self, options: dict) -> None:
        """Refuse a bad ``reps``, ``maxiter`` or ``shots`` before any work (:func:`qannealq.contract.check_options`):
        ``reps=0`` used to run the default reps silently."""
        check_values(options, {"reps": at_least(1), "maxiter": at_least(1), "shots": at_least(1)})
        self._check_cobyla(options.get("reps") or self.reps, options.get("maxiter") or self.maxiter)

    def _check_cobyla(self, reps: int, maxiter: int) -> None:
        """COBYLA needs ``2 reps + 2`` evaluations (the angles plus two) before its first step: scipy raised a
        smaller ``maxiter`` to that with a warning, and the run recorded more evaluations than it was given."""
        if self.optimizer == "cobyla" and maxiter < 2 * reps + 2:
            least = 2 * reps + 2
            raise InvalidArgumentError(f"maxiter={maxiter} is below COBYLA's {least} evaluations for reps={reps} (2 "
                                       f"angles a layer, plus 2): give maxiter >= {least}")

    def sample(self, bqm: dimod.BinaryQuadraticModel, seed: int | None = None, reps: int | None = None,
               maxiter: int | None = None, shots: int | None = None, **kwargs) -> dimod.SampleSet:
        """Run QAOA on ``bqm``; every distinct measured bitstring becomes a record with its count.

        Unknown keyword arguments are warned about and dropped (``remove_unknown_kwargs``).
        """
        self.remove_unknown_kwargs(**kwargs)
        self.check_options({"reps": reps, "maxiter": maxiter, "shots": shots})
        check_capacity(self.name, bqm, self.max_qubits, self.capacity_reason,
                       "raise max_qubits (time and memory double per qubit) or use 'sa'")
        seed = draw_seed(seed)
        shots = shots or self.shots
        start = now_ns()
        qp, labels = to_quadratic_program(bqm)
        if not (qp.objective.linear.to_dict() or qp.objective.quadratic.to_dict()):
            return record(self._constant(bqm, labels, shots, reps or self.reps), seed, start, sampling_ns=0,
                          preprocessing_ns=now_ns() - start)
        evals = [0]
        sampler, pm = _primitive(shots, seed, self.simulator)
        if pm is None:
            self._warn_slow(len(labels), maxiter or self.maxiter)
        qaoa = QAOA(sampler, OPTIMIZERS[self.optimizer](maxiter=maxiter or self.maxiter), reps=reps or self.reps,
                    initial_point=np.random.default_rng(seed).uniform(-np.pi, np.pi, 2 * (reps or self.reps)),
                    pass_manager=pm, callback=lambda *_: evals.__setitem__(0, evals[0] + 1))
        t1 = now_ns()
        seeded = _seeded(seed) if self.optimizer == "spsa" else nullcontext()  # the others do not draw from it
        with warnings.catch_warnings(), seeded:
            warnings.simplefilter("ignore", DeprecationWarning)
            result = MinimumEigenOptimizer(qaoa).solve(qp)
        t2 = now_ns()
        ss = self._sampleset(result, bqm, labels, shots)
        mes = result.min_eigen_solver_result
        ss.info.update(circuit_depth=_depth(qaoa.ansatz, pm), qubits=len(labels),
                       optimizer_evals=evals[0], optimizer_time_s=float(mes.optimizer_time),
                       optimal_parameters=[float(t) for t in mes.optimal_point], shots=shots,
                       reps=reps or self.reps, simulator=type(sampler).__module__ + "." + type(sampler).__name__)
        ss.info["timing"] = {"preprocessing_ns": t1 - start, "sampling_ns": t2 - t1,
                             "postprocessing_ns": now_ns() - t2}
        return record(ss, seed, start)

    def _warn_slow(self, qubits: int, maxiter: int) -> None:
        """Warn once above :data:`STATEVECTOR_QUIET` qubits on ``StatevectorSampler``: a 20-qubit call (the default
        ``max_qubits``) ran for about 20 minutes without a word, and a run of 42 neurons of 17 variables for hours."""
        if qubits <= STATEVECTOR_QUIET:
            return
        with _WARNING:
            if self._warned:
                return
            self._warned = True
        evaluations = _evaluations(self.optimizer, maxiter)
        seconds = 2.0 ** qubits * evaluations * STATEVECTOR_S_PER_AMPLITUDE
        logger.warning("qaoa: a call of %d qubits on qiskit's StatevectorSampler (simulator=%r%s) takes about %s "
                       "(2^%d amplitudes x %d circuit evaluations x ~%.0f us), and each such neuron as long: use "
                       "qiskit-aer (simulator='auto' or 'aer'; pip install 'qannealq[qiskit]'), or lower max_qubits "
                       "(larger neurons are decomposed) or maxiter", qubits, self.simulator,
                       ", qiskit-aer missing" if self.simulator == "auto" else "", duration(seconds), qubits,
                       evaluations, STATEVECTOR_S_PER_AMPLITUDE * 1e6)

    @staticmethod
    def _constant(bqm: dimod.BinaryQuadraticModel, labels: list, shots: int, reps: int) -> dimod.SampleSet:
        """A BQM without biases (no variable, or all biases zero): every assignment's energy is the offset, and
        QAOA's cost operator would be the identity (its ansatz has no cost angle, and qiskit refused the initial
        point). All ``shots`` read the all-zeros (all -1 for SPIN) sample; no circuit runs and no angle is fitted,
        so ``info`` has the keys of a run with no depth, evaluations or parameters."""
        low = -1 if bqm.vartype is dimod.SPIN else 0
        samples = np.full((1, len(labels)), low, dtype=np.int8)
        ss = dimod.SampleSet.from_samples_bqm((samples, labels), bqm, num_occurrences=[shots])
        ss.info.update(circuit_depth=None, qubits=len(labels), optimizer_evals=0, optimizer_time_s=0.0,
                       optimal_parameters=[], shots=shots, reps=reps, simulator=None)
        return ss

    @staticmethod
    def _sampleset(result, bqm: dimod.BinaryQuadraticModel, labels: list, shots: int) -> dimod.SampleSet:
        samples = np.array([np.rint(s.x) for s in result.samples], dtype=np.int8)
        counts = np.array([max(1, int(round(s.probability * shots))) for s in result.samples])
        if bqm.vartype is dimod.SPIN:
            samples = 2 * samples - 1
        ss = dimod.SampleSet.from_samples_bqm((samples, labels), bqm, num_occurrences=counts)
        return ss.aggregate() if len(ss) > 1 else ss
