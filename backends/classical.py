"""Classical Ocean solvers from dwave-samplers: simulated annealing, tabu search and steepest descent.

Each is the dwave-samplers sampler itself (every parameter it lists passes through unchanged) with these
additions: the seed used is drawn when none is given and recorded in ``info["seed"]``; ``info["timing"]``
always holds the nanosecond keys; ``properties["max_variables"]`` is None (any size); a keyword argument that
is not in ``parameters`` (a typo such as ``num_read``) is warned about and dropped, as dimod's
``remove_unknown_kwargs`` does, where dwave-samplers would ignore it silently. All three take
``initial_states``, so the solve loop warm-starts them.
"""

from __future__ import annotations

import dimod
import numpy as np
from dwave.samplers import SimulatedAnnealingSampler, SteepestDescentSolver, TabuSampler

from qannealq.backends._common import check_capacity, draw_seed, now_ns, record, solver_seed, warm_bits
from qannealq.checks import above, at_least, check_flag, check_given, check_range, check_values, is_number, one_of
from qannealq.errors import InvalidArgumentError

__all__ = ["SimulatedAnnealing", "Tabu", "SteepestDescent"]


class _Recorded:
    """Mixin: draw and record the seed, complete the timing, fill per-backend defaults for missing kwargs."""

    name = ""
    default_max_variables: int | None = None  # any size
    capacity_reason = ""
    option_rules: dict = {}  # each option's check (:mod:`qannealq.checks`); others are left to dwave-samplers
    seed_bound = 2 ** 32  # the dwave-samplers sampler takes seeds below it; the contract's beyond are hashed into
    # its range (solver_seed)

    def __init__(self) -> None:
        super().__init__()  # dwave-samplers sets properties and parameters on the instance
        self.properties = {**self.properties, "max_variables": self.default_max_variables}

    def __repr__(self) -> str:
        options = ", ".join(f"{k}={v!r}" for k, v in self._defaults(None).items())
        return f"{type(self).__name__}({options})"

    def _defaults(self, bqm: dimod.BinaryQuadraticModel | None) -> dict:
        return {}

    def _fit(self, bqm: dimod.BinaryQuadraticModel, kwargs: dict) -> None:
        """Fit the options ``kwargs`` to ``bqm`` in place where their range depends on its size (none here)."""

    def sample(self, bqm: dimod.BinaryQuadraticModel, seed: int | None = None, **kwargs) -> dimod.SampleSet:
        """Sample ``bqm``; ``kwargs`` are the dwave-samplers sampler's own (num_reads, initial_states...).

        Others are warned about (``dimod.exceptions.SamplerUnknownArgWarning``) and dropped.
        """
        kwargs = self.remove_unknown_kwargs(**kwargs)
        self.check_options(kwargs)
        check_capacity(self.name, bqm, self.properties["max_variables"])
        seed = draw_seed(seed)
        _check_given_states(kwargs)
        for key, value in self._defaults(bqm).items():
            if kwargs.get(key) is None:
                kwargs[key] = value
        self._fit(bqm, kwargs)
        start = now_ns()
        return record(super().sample(bqm, seed=solver_seed(seed, self.seed_bound), **kwargs), seed, start)

    def check_options(self, options: dict) -> None:
        """Refuse a bad value of an option this backend checks (:attr:`option_rules`), naming it: before any work,
        where dwave-samplers would raise later, or never (``tabu``'s ``timeout=-5`` ran without end)."""
        check_values(options, self.option_rules)

    def check_start_rows(self, options: dict, rows: int) -> None:
        """Refuse ``options`` that need more given initial states than the ``rows`` each BQM will get (the solve
        loop gives one warm row a neuron, none without a warm start): before training, with the refusal
        :meth:`sample` would make at the first neuron."""
        _check_start_rows(dict(options), rows)


def _check_given_states(kwargs: dict) -> None:
    """Refuse ``initial_states`` holding other values than bits or spins (:func:`warm_bits`), where dimod said
    only "given samples_like is of an unknown vartype".

    With ``initial_states_generator='none'`` every read starts from a given state: ``num_reads`` left out is
    their number (dwave-samplers' own default, where ``tabu`` and ``steepest`` default to 10 reads), and one above
    it is refused here, naming both options, where dimod raised a bare "insufficient number of initial states
    given" (after training: the solve loop gives one warm row a neuron)."""
    states = kwargs.get("initial_states")
    rows = 0
    if states is not None:
        arr = dimod.as_samples(states)[0]
        warm_bits(arr.ravel())  # every row bits, or every row spins, as dimod reads them
        rows = len(arr)
    _check_start_rows(kwargs, rows)


def _check_start_rows(kwargs: dict, rows: int) -> None:
    """``initial_states_generator='none'`` with ``rows`` given initial states: none is refused, and so is a
    ``num_reads`` above ``rows`` (left out, it becomes ``rows``, in ``kwargs``)."""
    if kwargs.get("initial_states_generator") != "none":
        return
    if not rows:
        raise InvalidArgumentError("initial_states_generator='none' starts every read from a given state, and no "
                                   "initial_states were given: give some (a warm start), or leave the generator out")
    reads = kwargs.get("num_reads")
    if reads is None:
        kwargs["num_reads"] = rows
    elif reads > rows:
        raise InvalidArgumentError(f"initial_states_generator='none' starts every read from a given state: "
                                   f"num_reads={reads} needs {reads}, and {rows} initial_states were given: give "
                                   f"num_reads <= {rows}, or leave the generator out (the other reads start at "
                                   "random)")


class SimulatedAnnealing(_Recorded, SimulatedAnnealingSampler):
    """``sa`` (alias ``neal``): dwave-samplers' simulated annealing; every parameter passes through.

    A seed from ``2**31`` on (the contract's seeds go to ``2**32 - 1``) is hashed into ``0..2**31-1``
    (:func:`._common.solver_seed`): dwave-samplers' annealer refused it with a ``ValueError`` ("'seed' should be an
    integer between 0 and 2^32 - 1"), and taken modulo ``2**31`` seeds ``s`` and ``s + 2**31`` gave the same samples.
    """

    name = "sa"
    seed_bound = 2 ** 31
    option_rules = {"num_reads": at_least(1), "num_sweeps": at_least(0), "num_sweeps_per_beta": at_least(1),
                    "beta_range": check_range, "beta_schedule_type": one_of("linear", "geometric", "custom"),
                    "initial_states_generator": one_of("none", "tile", "random"), "randomize_order": check_flag,
                    "proposal_acceptance_criteria": one_of("Metropolis", "Gibbs")}

    def sample(self, bqm: dimod.BinaryQuadraticModel, seed: int | None = None, **kwargs) -> dimod.SampleSet:
        """As :meth:`_Recorded.sample`; ``initial_states`` of any integer or float dtype holding spins or bits
        are passed as int8: dwave-samplers' annealer takes int8 alone, and an ``np.array([[1, 0, 1]])`` (int64)
        ended in "Buffer dtype mismatch, expected 'int8_t' but got 'long'" where tabu and steepest took it."""
        states = kwargs.get("initial_states")
        if states is not None:
            arr, labels = dimod.as_samples(states)
            if arr.dtype != np.int8 and np.isin(arr, (-1, 0, 1)).all():
                kwargs["initial_states"] = (arr.astype(np.int8), labels)
        return super().sample(bqm, seed=seed, **kwargs)

    def check_options(self, options: dict) -> None:
        """:attr:`option_rules`, then the rules dwave-samplers applies across options only when it samples
        (after training, with its own ValueError): a ``beta_schedule`` (non-negative numbers) goes with
        ``beta_schedule_type='custom'`` and the reverse, ``num_sweeps`` and ``beta_range`` agree with it where
        given, and an ``interrupt_function`` is a callable."""
        super().check_options(options)
        schedule, kind = options.get("beta_schedule"), options.get("beta_schedule_type")
        if schedule is not None:
            if not isinstance(schedule, (list, tuple, np.ndarray)) or not len(schedule) or np.ndim(schedule) != 1 \
                    or not all(is_number(v) and v >= 0 for v in schedule):
                raise InvalidArgumentError(f"beta_schedule={schedule!r} must be a list of inverse temperatures "
                                           "(numbers >= 0), e.g. [0.1, 0.5, 1, 5] with beta_schedule_type=custom")
            if kind != "custom":
                raise InvalidArgumentError(f"beta_schedule is given with beta_schedule_type={kind or 'linear'!r}: "
                                           "add beta_schedule_type=custom, or leave beta_schedule out")
            per_beta = options.get("num_sweeps_per_beta") or 1
            sweeps = options.get("num_sweeps")
            if sweeps is not None and sweeps != len(schedule) * per_beta:
                raise InvalidArgumentError(f"num_sweeps={sweeps} disagrees with beta_schedule's {len(schedule)} "
                                           f"values x num_sweeps_per_beta={per_beta}: give "
                                           f"num_sweeps={len(schedule) * per_beta}, or leave it out")
            ends = options.get("beta_range")
            if ends is not None and (ends[0] != schedule[0] or ends[-1] != schedule[-1]):
                raise InvalidArgumentError(f"beta_range={list(ends)!r} disagrees with beta_schedule's ends "
                                           f"[{schedule[0]}, {schedule[-1]}]: leave beta_range out")
        elif kind == "custom":
            raise InvalidArgumentError("beta_schedule_type=custom needs a beta_schedule (a list of inverse "
                                       "temperatures, e.g. [0.1, 0.5, 1, 5])")
        hook = options.get("interrupt_function")
        if hook is not None and not callable(hook):
            raise InvalidArgumentError(f"interrupt_function={hook!r} must be a callable (from Python; the command "
                                       "line has no way to give one)")


class Tabu(_Recorded, TabuSampler):
    """``tabu``: dwave-samplers' tabu search (MST2 restarts).

    Defaults differ from dwave-samplers' where neuron BQMs need it: its tenure ``min(20, m // 4)`` often
    stalls above the optimum on these ill-conditioned problems, so the default here is ``min(20, m // 2)``; a
    given tenure above ``m - 1`` is taken as ``m - 1`` on that BQM. Its ``lower_bound_z`` 500000 (each search
    runs at least that many iterations before a restart) is 0 here, leaving the coefficients' own budget,
    ``10000 m`` iterations for the first search and ``2500 m`` after a restart: a 20 ms read of a 17-variable
    neuron restarted about 3 times with 500000, about 40 with 0. Measured on the 36 instances of ``qannealq export
    --library``, 10 seeds (MNIST 5), 1, 2 and 10 reads, settings interleaved: on the 16 of 14-17 variables the
    proven optimum was reached in 312 of 480 calls from random starts (287 with 500000) and 395 of 480 with one
    warm read and the rest random (388), no instance less often; with every read warm (``compare``) nothing
    changed (120 of 160 both). On 58-61 variables (best-known never reached) paired calls from random starts
    ended lower in 45 of 480, higher in 10 (mean relative change below 0 in every reads cell), warm-started 1 of
    640 higher; on MNIST (599 variables) both budgets exceed 500000, so nothing changes.

    Args:
        timeout: default time per read in ms (dwave-samplers uses 100; neuron problems need far less).
        num_reads: default number of reads (starts beyond the given ``initial_states`` are random).
    """

    name = "tabu"
    option_rules = {"num_reads": at_least(1), "timeout": above(0, "milliseconds"), "num_restarts": at_least(0),
                    "tenure": at_least(0), "initial_states_generator": one_of("none", "tile", "random"),
                    "coefficient_z_first": at_least(0), "coefficient_z_restart": at_least(0),
                    "lower_bound_z": at_least(0),
                    "energy_threshold": above(-np.inf)}

    def __init__(self, timeout: int = 20, num_reads: int = 10) -> None:
        super().__init__()
        check_given(Tabu.__init__, timeout=timeout, num_reads=num_reads)
        self.check_options({"timeout": timeout, "num_reads": num_reads})
        self.timeout = timeout
        self.num_reads = num_reads

    def _defaults(self, bqm: dimod.BinaryQuadraticModel | None) -> dict:
        defaults = {"timeout": self.timeout, "num_reads": self.num_reads, "lower_bound_z": 0}
        if bqm is not None:
            defaults["tenure"] = min(20, len(bqm) // 2)
        return defaults

    def sample(self, bqm: dimod.BinaryQuadraticModel, seed: int | None = None, **kwargs) -> dimod.SampleSet:
        """As :meth:`_Recorded.sample`; a BQM without variables gets ``num_reads`` empty samples at its offset, as
        from ``sa`` and ``steepest``: dwave-samplers' tabu returned none (``.first`` raised)."""
        if bqm.num_variables:
            return super().sample(bqm, seed=seed, **kwargs)
        kwargs = self.remove_unknown_kwargs(**kwargs)
        self.check_options(kwargs)
        seed, start = draw_seed(seed), now_ns()
        reads = self.num_reads if kwargs.get("num_reads") is None else int(kwargs["num_reads"])
        return record(dimod.SampleSet.from_samples_bqm((np.empty((reads, 0), np.int8), []), bqm), seed, start)

    def _fit(self, bqm: dimod.BinaryQuadraticModel, kwargs: dict) -> None:
        """A ``tenure`` above a BQM's ``num_variables - 1``, tabu's range, is that BQM's largest: the neurons of
        a layer differ in size (fixed coordinates), and dwave-samplers raised a ``ValueError`` on the first
        smaller one, after training."""
        kwargs["tenure"] = min(kwargs["tenure"], max(0, len(bqm) - 1))


class SteepestDescent(_Recorded, SteepestDescentSolver):
    """``steepest``: greedy single-flip descent to a local minimum, from the warm start and random starts.

    Args:
        num_reads: default number of descents (dwave-samplers uses 1); starts beyond the given
            ``initial_states`` (a warm start) are drawn at random.
    """

    name = "steepest"
    option_rules = {"num_reads": at_least(1), "initial_states_generator": one_of("none", "tile", "random"),
                    "large_sparse_opt": check_flag}

    def __init__(self, num_reads: int = 10) -> None:
        super().__init__()
        check_given(SteepestDescent.__init__, num_reads=num_reads)
        self.check_options({"num_reads": num_reads})
        self.num_reads = num_reads

    def _defaults(self, bqm: dimod.BinaryQuadraticModel | None) -> dict:
        return {"num_reads": self.num_reads}
