"""``gurobi``: the neuron BQM as a convex binary quadratic program, solved to proven optimality by Gurobi.

For binary ``x``, ``x_j² = x_j``, so shifting the quadratic form by ``s I`` and the linear part by ``−s`` leaves
every energy unchanged: ``xᵀ(P + sI)x + (a − s)ᵀx == xᵀPx + aᵀx``. With ``s = max(0, −λ_min(P))`` the
quadratic form is positive semidefinite, so Gurobi solves a convex MIQP (a neuron BQM, ``2 d_j d_l H_jl``
off the diagonal and ``d_j² H_jj`` on it, is already convex). Gurobi is given that form divided by its largest
coefficient (:func:`_unit_scale`): its tolerances do not scale with the objective, and on a BQM of coefficients
near 1e-6 (an int8 grid's steps squared) it proved optima that were not. The pip wheel's licence is size-limited
(200 variables for quadratic models), hence the default capacity. The sampler holds a Gurobi environment
(a licence token): ``close()``, or leaving a ``with`` block, disposes of it.
"""

from __future__ import annotations

import dimod
import gurobipy as gp
import numpy as np

from qannealq.backends._common import (check_capacity, dense_binary, draw_seed, now_ns, record, solver_seed,
                                       warm_bits)
from qannealq.checks import above, at_least, check_positive, check_values
from qannealq.contract import Closeable
from qannealq.errors import InvalidArgumentError, ProblemTooLargeError

__all__ = ["GurobiSampler", "convex_form"]

_SIZE_LIMITED = 10010  # GurobiError.errno: "Model too large for size-limited license"
_GUROBI_SEEDS = 2_000_000_001  # its Seed parameter takes 0..2e9; the contract's beyond are hashed into it
#: Gurobi's PoolSolutions, which ``num_reads`` sets, takes up to 2e9: 2**31 failed after the model was built, with
#: an OverflowError naming no option ("value too large to convert to int"), past the CLI's option check.
_MAX_POOL = 2_000_000_000


def convex_form(bqm: dimod.BinaryQuadraticModel) -> tuple[np.ndarray, np.ndarray, float, list]:
    """``(P, a, offset, labels)`` with ``P`` symmetric PSD and ``xᵀPx + aᵀx + offset`` == the BQM's energy."""
    lin, p, offset, labels = dense_binary(bqm)
    m = len(labels)
    shift = max(0.0, -float(np.linalg.eigvalsh(p)[0])) if m else 0.0
    shift = shift * (1.0 + 1e-9) + (1e-12 if shift else 0.0)
    return p + shift * np.eye(m), lin - shift, offset, labels


def _unit_scale(p: np.ndarray, a: np.ndarray) -> float:
    """The largest coefficient of ``xᵀPx + aᵀx`` (1 where all are zero): Gurobi solves the form divided by it.

    Gurobi's tolerances do not scale with the objective: given the form as it is, 7 of 40 random 7-12 variable
    BQMs scaled by 1e-6 ended 7-71 % of that scale above the brute-force optimum, with ``proved_optimal`` True
    and an ``objective_bound`` equal to the energy returned; scaled, none of them (nor at 1e-9, 1e-12 or 1e3).
    """
    largest = max(float(np.abs(p).max(initial=0.0)), float(np.abs(a).max(initial=0.0)))
    return largest if largest > 0 and np.isfinite(largest) else 1.0


def _gap(energy: float, bound: float) -> float:
    """Gurobi's relative gap ``|bound - energy| / |energy|`` on the BQM's energies, offset included (0 where they
    are equal, inf where the energy alone is 0). Its own ``MIPGap`` is relative to the model's objective, which
    leaves the offset out: a digits neuron (int8) stopped by its time limit at energy 0.000252 with a bound of
    -0.00478 had ``mip_gap`` 0.029, a gap of 20 on the energy and bound reported beside it."""
    if bound == energy:
        return 0.0
    return abs(energy - bound) / abs(energy) if energy else float("inf")


def _let_python_run(model, where) -> None:
    """Gurobi's callback, a no-op: Python runs its signal handlers only between its own instructions, so
    without one a SIGTERM (a scheduler's stop, which Gurobi does not catch as it does Ctrl-C) waited for the
    solve's end, up to its time limit (24.7 s of a 30 s proof). A handler's exception raised here ends the solve
    (status ``INTERRUPTED``). About 1,300 calls in a 47 ms solve of 45 variables cost nothing measurable."""


class GurobiSampler(Closeable, dimod.Sampler):
    """Exact solver: returns the proven optimum (and other pool solutions up to ``num_reads``).

    The Gurobi environment is started at the first ``sample`` and kept for the next ones. ``close()`` (or the
    end of a ``with`` block) disposes of it; a closed sampler that samples again starts a new environment.

    Args:
        max_variables: refuse larger BQMs (200: the pip licence's limit; raise it with a full licence).
        time_limit: seconds per BQM (None: until proven optimal).
        threads: Gurobi threads per solve (1 keeps parallel neuron solves fair).
    """

    name = "gurobi"
    default_max_variables: int | None = 200
    capacity_reason = "Gurobi pip licence"

    def __init__(self, max_variables: int = default_max_variables, time_limit: float | None = None,
                 threads: int = 1) -> None:
        max_variables = check_positive("max_variables", max_variables, 0)
        threads = check_positive("threads", threads, 0)  # Gurobi's Threads: 0 lets it choose
        self.check_options({"time_limit": time_limit})
        self.max_variables = max_variables
        self.time_limit = time_limit
        self.threads = threads
        self._env = None

    def __getstate__(self) -> dict:
        """Pickled (sent to a worker) with its options, without its environment: the worker starts its own."""
        return {**self.__dict__, "_env": None}

    def __repr__(self) -> str:
        return f"GurobiSampler(max_variables={self.max_variables}, time_limit={self.time_limit})"

    @property
    def properties(self) -> dict:
        return {"max_variables": self.max_variables, "gurobi_version": gp.gurobi.version()}

    @property
    def parameters(self) -> dict:
        return {"num_reads": [], "seed": [], "initial_states": [], "time_limit": []}

    def check_options(self, options: dict) -> None:
        """Refuse a bad ``num_reads`` or ``time_limit`` before any work (:func:`qannealq.contract.check_options`)."""
        check_values(options, {"num_reads": at_least(1), "time_limit": above(0, "seconds")})
        reads = options.get("num_reads")
        if reads is not None and reads > _MAX_POOL:
            raise InvalidArgumentError(f"num_reads={reads!r} is above the {_MAX_POOL:,} solutions Gurobi's pool holds: "
                                       "give at most that")

    def _environment(self) -> gp.Env:
        if self._env is None:  # an empty env keeps Gurobi's licence banner off stdout
            env = gp.Env(empty=True)
            env.setParam("OutputFlag", 0)
            env.start()
            self._env = env
        return self._env

    def close(self) -> None:
        """Dispose of the Gurobi environment (releasing its licence); safe to call twice."""
        env, self._env = self._env, None
        if env is not None:
            env.dispose()

    def sample(self, bqm: dimod.BinaryQuadraticModel, num_reads: int | None = 1, seed: int | None = None,
               initial_states=None, time_limit: float | None = None, **kwargs) -> dimod.SampleSet:
        """Solve ``bqm`` to optimality; ``initial_states`` (first row) becomes Gurobi's MIP start.

        Unknown keyword arguments are warned about and dropped (``remove_unknown_kwargs``); ``num_reads=None``,
        the contract's "default", is 1.
        """
        self.remove_unknown_kwargs(**kwargs)
        self.check_options({"num_reads": num_reads, "time_limit": time_limit})
        num_reads = 1 if num_reads is None else int(num_reads)
        check_capacity(self.name, bqm, self.max_variables, "Gurobi's pip licence is limited to 200 "
                       "variables in quadratic models", "use 'sa', or a full licence with a larger max_variables")
        seed = draw_seed(seed)
        start = now_ns()
        p, a, offset, labels = convex_form(bqm)
        if not labels:  # the offset is the one energy: optimal without a model, reported as any other BQM's
            ss = dimod.SampleSet.from_samples_bqm([{}], bqm)
            ss.info.update(proved_optimal=True, objective_bound=float(offset), mip_gap=0.0,
                           status=int(gp.GRB.OPTIMAL))
            return record(ss, seed, start)
        scale = _unit_scale(p, a)
        model = self._model(p / scale, a / scale, seed, num_reads, time_limit)
        if initial_states is not None:
            self._warm(model, initial_states, labels)
        t1 = now_ns()
        try:
            model.optimize(_let_python_run)
        except gp.GurobiError as exc:
            if exc.errno == _SIZE_LIMITED:
                raise ProblemTooLargeError(f"backend 'gurobi': this BQM has {len(labels)} variables, more than "
                                           f"the installed Gurobi licence allows: {exc}") from None
            raise
        t2 = now_ns()
        if model.Status == gp.GRB.INTERRUPTED:  # Ctrl-C (Gurobi catches it) or a signal handler's exception
            model.dispose()
            raise KeyboardInterrupt
        ss = self._sampleset(model, bqm, labels, num_reads)
        bound = float(model.ObjBound) * scale + offset
        ss.info.update(proved_optimal=model.Status == gp.GRB.OPTIMAL, objective_bound=bound,
                       mip_gap=_gap(float(ss.record.energy.min()), bound), status=int(model.Status))
        ss.info["timing"] = {"preprocessing_ns": t1 - start, "sampling_ns": t2 - t1,
                             "postprocessing_ns": now_ns() - t2, "gurobi_runtime_s": float(model.Runtime)}
        model.dispose()
        return record(ss, seed, start)

    def _model(self, p: np.ndarray, a: np.ndarray, seed: int, num_reads: int, time_limit: float | None) -> gp.Model:
        model = gp.Model(env=self._environment())
        x = model.addMVar(len(a), vtype=gp.GRB.BINARY, name="x")
        model.setObjective(x @ p @ x + a @ x, gp.GRB.MINIMIZE)  # the offset is added back to its bound
        model.Params.Seed = solver_seed(seed, _GUROBI_SEEDS)
        model.Params.Threads = self.threads
        model.Params.MIPGap = 0.0
        model.Params.PoolSolutions = num_reads
        limit = time_limit if time_limit is not None else self.time_limit
        if limit is not None:
            model.Params.TimeLimit = float(limit)
        model.update()
        return model

    @staticmethod
    def _warm(model: gp.Model, initial_states, labels: list) -> None:
        arr, names = dimod.as_samples(initial_states)
        if len(arr) == 0:
            return
        row = dict(zip(names, warm_bits(arr[0]).tolist()))  # Gurobi drops an infeasible MIP start silently
        for var, label in zip(model.getVars(), labels):
            if label in row:
                var.Start = row[label]

    @staticmethod
    def _sampleset(model: gp.Model, bqm: dimod.BinaryQuadraticModel, labels: list, num_reads: int) -> dimod.SampleSet:
        rows = []
        for k in range(min(num_reads, model.SolCount)):
            model.Params.SolutionNumber = k
            rows.append(np.rint(model.getAttr("Xn", model.getVars())).astype(np.int8))
        if not rows:
            raise InvalidArgumentError(f"gurobi found no solution within time_limit (status {model.Status})")
        samples = np.array(rows)
        if bqm.vartype is dimod.SPIN:
            samples = 2 * samples - 1
        return dimod.SampleSet.from_samples_bqm((samples, labels), bqm)
