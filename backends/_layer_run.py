"""``layer-sa``'s run objects: the choice of device and the numba run (:class:`_Run`).

A run holds one solve's shared inputs and its :class:`~._layer_schedule.Clock`, and offers
``polish(starts, owner=None) -> Rows`` and ``anneal(rows, seed) -> Rows`` (:class:`._layer_dense.Rows`:
states, owners, energies); the numba one is
:class:`_Run` (blocks of rows in parallel threads over :func:`anneal_block` and :func:`polish_block`, the
schedule in chunks so that the clock can trace the energy and fit the schedule to a time limit), the torch
one :class:`._layer_torch.TorchRun` (imported only when a torch device is asked for). Both the whole-layer
solve (:mod:`.layer_sa`) and the single-BQM path (:mod:`._layer_single`) get theirs from :func:`make_run`.
"""

from __future__ import annotations

import time
from typing import Any, Callable

import numpy as np

from qannealq._near import add_rows
from qannealq._pool import kept_copy, shared_pool, thread_count
from qannealq.errors import BackendUnavailableError

from ._layer_dense import (DenseQubos, Rows, chain_hops, chain_partners, greedy_tolerance, pair_partners,
                           run_ranking)
from ._layer_kernel import anneal_block, polish_block, row_energies, up_fields
from ._layer_schedule import Clock, anneal_plan, chain_depth, effort, restricted

__all__ = ["resolve_device", "make_run"]


#: The hop tables of pair flips (none: :func:`._layer_dense.chain_hops`' empty tables).
_NO_HOPS = (np.zeros((0, 0, 0)), np.zeros((0, 0, 0, 0)))


def resolve_device(device: str) -> str:
    """The device a run uses: ``"cpu"`` (the numba kernel), ``"torch-cpu"`` or a CUDA device (torch).

    ``"auto"`` is CUDA when ``torch.cuda.is_available()``, else ``"cpu"`` (``layer-sa``'s default is ``"cpu"``:
    the torch path is launch-bound, slower than numba on an H200 on every layer measured).

    Raises:
        BackendUnavailableError: ``device`` asks for CUDA and torch sees no CUDA device.
    """
    if device in ("cpu", "torch-cpu"):
        return device
    import torch

    if device == "auto":
        return "cuda" if torch.cuda.is_available() else "cpu"
    if not torch.cuda.is_available():
        raise BackendUnavailableError(f"device={device!r}: torch {torch.__version__} sees no CUDA device; use "
                                      "device='cpu' (numba, the default), or install a CUDA build of torch")
    index = int(device.partition(":")[2] or 0)
    if index >= torch.cuda.device_count():
        raise BackendUnavailableError(f"device={device!r}: only {torch.cuda.device_count()} CUDA device(s)")
    return device


def make_run(dense: DenseQubos, params: dict[str, Any], clock: Clock | None = None,
             scale: np.ndarray | None = None, device: str | None = None,
             layer_fields: "Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None" = None
             ) -> tuple["_Run | Any", str]:
    """The run object for ``params["device"]`` (numba :class:`_Run` or torch ``TorchRun``) and the device used
    (``scale`` and ``layer_fields``: :class:`_Run`'s; the torch run sets its tolerance from ``lin``; ``device``:
    that device already resolved by :func:`resolve_device`, where the caller has it)."""
    device = resolve_device(params["device"]) if device is None else device
    if device == "cpu":
        return _Run(dense, params, clock, scale, layer_fields), device
    from ._layer_torch import TorchRun  # below this module: torch is loaded only when asked for

    return TorchRun(dense, params, "cpu" if device == "torch-cpu" else device, clock), device


def _coordinate_lists(free: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """CSR lists ``(indptr, indices)`` of each problem's coordinates in ``free`` ``(n, m)``: the coordinates the
    kernels visit (and flip) for each problem."""
    indptr = np.concatenate([[0], np.cumsum(free.sum(axis=1))]).astype(np.int64)
    return indptr, np.nonzero(free)[1].astype(np.int64)


def _each_problem(owner: np.ndarray, problems: int) -> bool:
    """Whether rows of these owners are one per problem, in order."""
    return owner.size == problems and bool(np.array_equal(owner, np.arange(problems)))


def _row_seeds(seed: int, rows: int) -> np.ndarray:
    return np.random.SeedSequence(seed).generate_state(rows, np.uint64) | np.uint64(1)


#: Under a time limit, the products of a layer's rows with ``M`` kept from the search's time for what follows it
#: whatever it found (:meth:`._layer_schedule.Clock.keep`): the final polish (after a recombination: its fields,
#: one such product, and its sweeps) and the layer's final errors (another). Each :meth:`_Run.start` that forms
#: fields times its product. On CIFAR-10's first layer (0.13-0.14 s a product) the default ended 0.3-0.5 s past a
#: limit of 10 GPTQ times (7.1 s) without it: the search stopped at the limit, these came after (0.3 s); keeping two
#: products it ended 0.06-0.07 s past (the polish's sweeps take 0.03 s more), keeping 2.5 at 7.10-7.11 s.
TAIL_PRODUCTS = 2.5
#: Where no product of the layer's rows was timed before an anneal (the caller gave its start's fields:
#: ``thorough`` on MNIST's first layer, which ended 5-13 ms past limits of 0.1-0.14 s), the anneal times one of
#: ``TAIL_SAMPLE_ROWS`` of its rows and keeps ``TAIL_SAMPLED`` products of the layer's rows at that rate. What
#: followed its anneal there took 3.7-4.8 ms, about 1.2-1.5 such estimates (16 rows run a product 1.3x slower a
#: row than 128, and the anneal's exact energies are skipped once the limit cut it); with 1.25 the runs still
#: ended a median 1.4 ms past 0.1 s, with 1.6 at 99.4 ms (docs/layer-sa.md, "What follows thorough's anneal").
#: On a layer of more neurons it times an eighth of them (:data:`TAIL_SAMPLE_SHARE`): on CIFAR-10's first layer
#: (512 neurons, 3073 inputs, one BLAS thread) 16 rows ran a product 2.2x slower a row than 512 (10.4 ms: the read
#: of ``M`` dominates), and the default's population anneal kept 0.54-0.56 s for what took 0.19 s; 64 rows run
#: 1.26x slower (24 ms).
TAIL_SAMPLE_ROWS = 16
TAIL_SAMPLE_SHARE = 1 / 8
#: Under a time limit, an anneal runs only where the time left before the reserve (:data:`TAIL_PRODUCTS`) holds
#: its set-up, this many products of the layer's rows (the latest timed) per read of every problem: the copies of
#: its rows (their fields) and its plan took 0.33-0.37 s for thorough's 8 reads on CIFAR-10's first layer (0.2 s
#: a product), and where a population's reads had taken the time up to the reserve, the anneal began there anyway
#: and ``thorough`` under 5.6 s ended at 5.7-5.9 s; an anneal begun past the reserve ran its set-up too.
ANNEAL_SETUP = 0.25
TAIL_SAMPLED = 1.6
#: Rows that differ from rows whose fields are known in at most this share of their coordinates take their fields
#: from those (:meth:`_Run.start_near`: a pass over a row of ``M`` per changed coordinate,
#: :func:`qannealq._near.add_rows`) instead of a product with ``M``. On CIFAR-10's first layer (int4, under 10 GPTQ
#: times) a population's reads from the beam's other survivors differ from the polished start in about 30 of 3073
#: coordinates (90th percentile 50): 15-19 ms a read of 512 rows against 160-165 ms for the product on one BLAS
#: thread (330 ms for the first, which forms the QUBO's linear terms too), the fields the same to 1e-12 relative.
NEAR_FIELDS_SHARE = 1 / 16


class _Run:
    """One solve of a :class:`DenseQubos` on the CPU: the shared inputs of the kernel calls, its threads and clock.

    Args:
        dense: the problems.
        params: the sampler's parameters.
        clock: the solve's time limit and trace (default: no limit).
        scale: ``(n, m)`` magnitudes of each problem's flip gains, from which the greedy moves' tolerance is set
            (:func:`greedy_tolerance`; default: ``dense.lin``, the gains at the all-down state). A caller that
            has its starts' fields and not ``lin`` passes their gains ``d ∘ h`` (``a`` at the all-down state),
            so that ``lin`` is never formed (a ``fast`` solve on a wide layer, :class:`.Deferred`).
        layer_fields: where the problems are a layer's neurons, in order: the fields and energies of one row per
            neuron ``(n, m)``, from the layer's own product of its values with ``H`` (``layer-sa``: the problem's
            errors, which it remembers), for :meth:`start` to take instead of its product and ``lin``.
    """

    def __init__(self, dense: DenseQubos, params: dict[str, Any], clock: Clock | None = None,
                 scale: np.ndarray | None = None,
                 layer_fields: "Callable[[np.ndarray], tuple[np.ndarray, np.ndarray]] | None" = None) -> None:
        self.dense, self.params, self.layer_fields = dense, params, layer_fields
        self.clock = Clock() if clock is None else clock
        self.diag = dense.diag
        self.depth = chain_depth(params, dense.mat.shape[0])
        self.threads = thread_count(params["num_threads"])
        ranked = run_ranking(dense.mat, params, self.depth, self.threads)  # one ranking for both partner lists
        self.partners, self.couplings = pair_partners(dense.mat, params["pairs"], ranked)
        self._ranked = ranked if self.depth >= 3 else None  # the chains' lists, formed where an anneal asks
        self._chains: tuple | None = None
        self._chain_mat: np.ndarray | None = None
        self.indptr, self.indices = _coordinate_lists(dense.free)
        self.tol = greedy_tolerance(dense.lin if scale is None else scale)
        self.stop = np.zeros(1, np.int64)
        self.product_seconds = 0.0  # the latest timed product of the layer's rows (:meth:`start`, :meth:`_keep_tail`)

    @property
    def chain_mat(self) -> np.ndarray | None:
        """The copy of ``M`` the chain moves read (``params["chain_precision"]``, float32 by default; ``M`` itself
        in float64), None where the run has no chain moves (:func:`chain_depth` below 3). Formed on first use,
        as are :attr:`chains`: a run whose search is the polish alone (``layer-sa`` late under a time limit)
        never forms them (their hop tables took 3 of its 20 ms after the beam on MNIST's first layer)."""
        if self._chain_mat is None and self._ranked is not None:
            mat, dtype = self.dense.mat, np.dtype(self.params["chain_precision"])
            # a copy in a kept work array (fresh pages otherwise: :func:`qannealq._pool.scratch`)
            self._chain_mat = mat if mat.dtype == dtype and mat.flags.c_contiguous else kept_copy(mat, dtype)
        return self._chain_mat

    @property
    def chains(self) -> tuple | None:
        """The chain moves' partners, their couplings (from :attr:`chain_mat`) and hop tables
        (:func:`chain_hops`), None where the run has no chain moves."""
        if self._chains is None and self._ranked is not None:
            nbr, coup = chain_partners(self.chain_mat, self.params["chain_partners"], self._ranked)
            self._chains = (nbr, coup.astype(np.float64), *chain_hops(self.chain_mat, nbr))
        return self._chains

    def __enter__(self) -> "_Run":
        """``with run:`` marks one solve's kernel calls; they all run in the process's pool of ``num_threads``
        threads (:func:`qannealq._pool.shared_pool`: a pool per solve started two threads, about 2 ms of a
        ``fast`` solve on MNIST's first layer; a pool per call, before that, a tenth of a default solve)."""
        return self

    def __exit__(self, *exc: object) -> None:
        return None

    def start(self, starts: np.ndarray, owner: np.ndarray | None = None, fields: np.ndarray | None = None,
              energies: np.ndarray | None = None) -> Rows:
        """Rows at the states ``starts`` ``(R, m)`` (row r of problem ``owner[r]``, default r): fields by one GEMM,
        or ``fields`` where the caller has them (:func:`._layer_kernel.fields_from_products`); energies from the
        fields, or ``energies`` where the caller has them too (a layer's: its errors, which the exact QUBO
        equals). With both given, neither ``lin`` nor ``offsets`` is formed; neither is where the run has
        ``layer_fields`` and the rows are one per problem, in order: the fields and energies are then theirs (the
        layer's product of its values with ``H``, which its final errors find again)."""
        d = self.dense
        owner = np.arange(starts.shape[0]) if owner is None else owner
        v = np.ascontiguousarray(np.where(d.free[owner], starts, 0), dtype=np.uint8)
        if fields is None and self.layer_fields is not None and _each_problem(owner, d.steps.shape[0]):
            begun = time.perf_counter()
            fields, exact = self.layer_fields(v)
            energies = exact if energies is None else energies
            self.product_seconds = time.perf_counter() - begun  # one product of the layer's rows (and its errors)
            self.clock.keep(TAIL_PRODUCTS * self.product_seconds)
        if fields is None:
            lin = d.lin[owner]  # formed on first use (a product of its own): not timed with the fields'
            begun = time.perf_counter()
            h = up_fields(d.mat, self.diag, lin, d.steps[owner], v)
            # what follows the search: about TAIL_PRODUCTS such products of the layer's rows (timed where the rows
            # are enough to tell: a product of a few runs far slower a row, and a population's few far rows,
            # _Run.start_near, read 0.17 s a row on CIFAR-10's first layer, 30 s a layer)
            if owner.size >= min(TAIL_SAMPLE_ROWS, d.steps.shape[0]):
                self.product_seconds = (time.perf_counter() - begun) * d.steps.shape[0] / owner.size
                self.clock.keep(TAIL_PRODUCTS * self.product_seconds)
        else:
            h = fields
        if energies is None:
            energies = row_energies(d.offsets[owner], d.lin[owner], d.steps[owner], v, h)
        else:  # a copy: the kernels update the rows' energies in place, and the caller keeps its own
            energies = np.array(energies, dtype=np.float64)
        return Rows(v, owner, energies, h)

    def start_near(self, base: Rows, starts: np.ndarray) -> Rows:
        """Rows at the states ``starts`` ``(R, m)``, one per row of ``base`` (of its problems): those that differ
        from their row of ``base`` in at most :data:`NEAR_FIELDS_SHARE` of the coordinates with fields and
        energies from its, no product: ``h' = h + 2 Σ_j δ_j (M_j − M_jj e_j)`` over the changed coordinates ``j``
        (``δ_j = d_j (v'_j − v_j)``; a row's field leaves out its own coupling, as the kernels' flips keep it;
        :func:`qannealq._near.add_rows`) and ``E' = E + Σ_j δ_j (h_j + h'_j) / 2`` (exact for a quadratic: the
        mean of the gradients at both ends); the others by :meth:`start` (one product of those rows; all of them
        where ``base`` has no fields)."""
        if base.h is None:
            return self.start(starts, base.owner)
        v = np.ascontiguousarray(np.where(self.dense.free[base.owner], starts, 0), dtype=np.uint8)
        changed = v != base.v
        far = np.count_nonzero(changed, axis=1) > NEAR_FIELDS_SHARE * v.shape[1]
        rows, cols = np.nonzero(changed & ~far[:, None])
        delta = self.dense.steps[base.owner[rows], cols] * (v[rows, cols].astype(np.float64) - base.v[rows, cols])
        h = np.array(base.h, dtype=np.float64, order="C")
        add_rows(h, self.dense.mat, rows, cols, 2.0 * delta)
        h[rows, cols] -= 2.0 * self.diag[cols] * delta
        energy = base.energy + 0.5 * np.bincount(rows, delta * (base.h[rows, cols] + h[rows, cols]),
                                                 minlength=v.shape[0])
        if far.any():
            rest = self.start(v[far], base.owner[far])
            h[far], energy[far] = rest.h, rest.energy
        return Rows(v, base.owner.copy(), energy, h)

    def _args(self, rows: Rows, chains: bool = False,
              movable: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None) -> tuple[tuple, np.ndarray, np.ndarray]:
        """The kernels' leading arguments for ``rows`` (updated in place), and the best energies and states;
        the moves are chains with ``chains`` where the run uses them (:func:`chain_depth`), else pair flips.

        Chain moves read ``M`` in float32 (``chain_mat``; ``chain_precision="float64"``: ``M`` itself): on
        CIFAR-10's first layer (``M`` 75 MB in float64) the field updates of accepted moves stream half the
        bytes, and a sweep runs 1.25x (cold end) to 1.6x (hot end) faster. The run is then exactly an anneal
        of the energy whose couplings are that copy's (the fields stay float64 and consistent: no drift); on
        the benchmark's layers its tracked energies differ from float64 ones by at most 1e-6 (MNIST) and 3e-4
        (CIFAR-10) relative per neuron, 1e-8 and 1e-5 summed over the layer. :meth:`anneal` returns energies
        recomputed in float64 (one GEMM), and the sampler keeps a neuron's warm start wherever the result is
        not lower. Pair flips and the polish of the starts read ``M`` itself.

        ``movable``: ``(mask (n, m), indptr, indices)``, the coordinates the moves may flip (default: the free
        ones); the others keep their values, whatever they are.
        """
        d = self.dense
        best_e, best_v = rows.energy.copy(), rows.v.copy()
        if chains and self.chains is not None:
            mat, moves = self.chain_mat, (*self.chains, self.depth)
        else:
            mat, moves = d.mat, (self.partners, self.couplings, *_NO_HOPS, 0)
        free, indptr, indices = (d.free, self.indptr, self.indices) if movable is None else movable
        return (mat, d.steps, free, *moves, indptr, indices, rows.owner,
                rows.v, rows.h, rows.energy, best_e, best_v, self.tol[rows.owner]), best_e, best_v

    def _parallel(self, kernel: Callable, args: tuple, rows: int | np.ndarray) -> None:
        """``kernel(*args, block)`` over blocks of rows (``rows``: a count, all of them, or the rows' indices) in
        ``num_threads`` threads (GIL released), those of the process's pool of that size
        (:func:`qannealq._pool.shared_pool`)."""
        which = np.arange(rows) if np.ndim(rows) == 0 else np.asarray(rows, dtype=np.int64)
        blocks = np.array_split(which, min(which.size, 4 * self.threads)) if which.size else []
        if self.threads == 1 or len(blocks) <= 1:
            for block in blocks:
                kernel(*args, block)
            return
        list(shared_pool(self.threads).map(lambda block: kernel(*args, block), blocks))

    def polish(self, starts: np.ndarray, owner: np.ndarray | None = None, fields: np.ndarray | None = None,
               energies: np.ndarray | None = None) -> Rows:
        """Greedy descent (single and pair flips) from every start ``(R, m)`` (row r of problem ``owner[r]``,
        default r; ``fields`` and ``energies``: theirs, where the caller has them, :meth:`start`).

        Not bounded by the time limit (as the torch run's): at most ``polish_sweeps`` sweeps of descent, 0.16 s on
        CIFAR-10's first layer, so that a run under any limit ends at least where ``fast`` does from its start."""
        rows = self.start(starts, owner, fields, energies)
        args, _, _ = self._args(rows)
        never = np.zeros(1, np.int64)  # the run's stop flag may have fired already
        self._parallel(polish_block, (*args, int(self.params["polish_sweeps"]), never), rows.owner.size)
        return rows  # a descent only goes down: its last state is its best

    def descend(self, rows: Rows) -> Rows:
        """Greedy sweeps of chain moves from ``rows`` (with their fields; the run's chains, :attr:`chains`), all rows
        a sweep at a time, each row until a sweep of it moves nothing, and under a time limit until the limit, less
        the time kept for what follows (:meth:`_keep_tail`); the rows it reached (the best of each: a descent only
        goes down), or none where the run has no chain moves or the time is already spent.

        The polish of the starts flips single coordinates and pairs; on a wide, strongly correlated layer every
        move that lowers the energy is a chain (on CIFAR-10's first layer each single flip costs thousands of the
        anneal's temperatures), and this descent is the search where no anneal fits (``layer-sa`` late)."""
        if self.chains is None or rows.h is None or rows.owner.size == 0:
            return rows.take(np.arange(0))
        start = rows.take(np.arange(rows.owner.size))  # copies: the caller keeps its rows
        self._keep_tail(start)
        if self.clock.expired():
            return rows.take(np.arange(0))
        args, best_e, best_v = self._args(start, chains=True)
        active = np.arange(start.owner.size)
        with self.clock.watch(self.stop):
            for _ in range(int(self.params["polish_sweeps"])):
                if active.size == 0 or self.stop[0]:
                    break
                before = start.energy[active].copy()
                self._parallel(polish_block, (*args, 1, self.stop), active)
                active = active[start.energy[active] != before]  # the rows a sweep still moved
                self.clock.record(float(best_e.sum()))
        return Rows(best_v, start.owner, best_e)

    def anneal(self, rows: Rows, seed: int, movable: np.ndarray | None = None, reads: int | None = None,
               sweeps: int | None = None, exact: bool = True) -> Rows:
        """``num_reads`` reheat anneals per problem from its polished row (``rows``: one per problem, in order;
        with ``reads=1``, any rows, each of its problem ``rows.owner``); the best state each anneal row has seen.

        The schedule runs in chunks of a 16th; after each, the clock records the best total energy. Under a
        time limit, a first short chunk measures the speed and every chunk then takes the schedule's steps in
        strides wide enough to reach its cold end before the limit (:meth:`_stride`): the anneal always
        cools, however short the time. An anneal asked for where the time left before the reserve for what
        follows the search would not hold its set-up (:data:`ANNEAL_SETUP`) runs nothing and returns no rows.

        ``movable`` ``(n, m)`` restricts the moves to those coordinates of each problem (the others keep the
        values of ``rows``, 1 included), and its schedule to their count (:func:`restricted`); ``reads`` and
        ``sweeps`` override the effort's. ``exact=False`` returns the energies the kernel tracked (of the float32
        couplings, where the chains read them: within about 1e-5 relative) instead of recomputing them in float64
        (one GEMM per row: 2 s for 4 reads of CIFAR-10's first layer), as does a run the time limit cut.
        """
        dense, params = restricted(self.dense, self.params, movable, reads, sweeps)
        planned = effort(params, dense.mat.shape[0], dense.layer_neurons, dense.layer_inputs, dense.beamed)
        if planned[1] == 0:
            return rows.take(np.arange(0))  # no sweeps (``fast`` on a wide layer): no schedule to plan
        per_problem = rows.v.shape[0] * planned[0] / max(1, self.dense.steps.shape[0])  # the reads of every problem
        if self.clock.expired(ANNEAL_SETUP * per_problem * self.product_seconds):  # not even time for its set-up
            return rows.take(np.arange(0))
        start, hot, cold, sweeps = anneal_plan(dense, params, rows)
        if sweeps == 0 or start.owner.size == 0:
            return rows.take(np.arange(0))
        problems = self.dense.steps.shape[0]

        def layer_best(energies: np.ndarray) -> float:  # the trace's value: each problem's best row, summed
            best = np.full(problems, np.inf)
            np.minimum.at(best, start.owner, energies)
            return float(best[np.isfinite(best)].sum())

        self._keep_tail(start)
        lists = None if movable is None else (dense.free, *_coordinate_lists(dense.free))
        args, best_e, best_v = self._args(start, chains=True, movable=lists)
        seeds, polish_sweeps = _row_seeds(seed, start.owner.size), int(self.params["polish_sweeps"])
        chunk, step, per_sweep = max(1, -(-sweeps // 16)), 0, None
        with self.clock.watch(self.stop):
            while step < sweeps and not self.stop[0]:
                stride = 1 if self.clock.limit is None else self._stride(sweeps - step, per_sweep)
                count = min(-(-chunk // stride), -(-(sweeps - step) // stride))
                count = count if per_sweep is not None or self.clock.limit is None else min(count, 2)
                t0 = time.perf_counter()
                self._parallel(anneal_block, (*args, hot, cold, sweeps, step, count, stride, seeds, self.stop),
                               start.owner.size)
                per_sweep = (time.perf_counter() - t0) / count
                step += count * stride
                self.clock.record(layer_best(best_e))
            self._parallel(polish_block, (*args, polish_sweeps, self.stop), start.owner.size)
        # of float32 couplings: in float64, unless the limit cut the run (the result then depends on timing anyway,
        # and the tracked energies are within about 1e-5 of the float64 ones on CIFAR-10): the product of every
        # read's rows ran past the limit (9 of thorough's 16-35 ms past 4 GPTQ times on MNIST's first layer)
        if exact and self.chain_mat is not None and self.chain_mat.dtype != np.float64 and not self.clock.cut:
            best_e = self.start(best_v, start.owner).energy
        self.clock.record(layer_best(best_e))
        return Rows(best_v, start.owner, best_e)

    def _keep_tail(self, rows: Rows) -> None:
        """Under a time limit where no product of the layer's rows was timed yet (:meth:`start` given the fields),
        time one of :data:`TAIL_SAMPLE_ROWS` of ``rows`` (or :data:`TAIL_SAMPLE_SHARE` of the layer's, where more)
        and keep :data:`TAIL_SAMPLED` products of the layer's rows at that rate for what follows the search."""
        d = self.dense
        k = min(rows.owner.size, max(TAIL_SAMPLE_ROWS, int(TAIL_SAMPLE_SHARE * d.steps.shape[0])))
        if self.clock.limit is None or self.product_seconds > 0 or k == 0:
            return
        u = d.steps[rows.owner[:k]] * rows.v[:k]
        begun = time.perf_counter()
        np.dot(u, d.mat)
        self.product_seconds = (time.perf_counter() - begun) * d.steps.shape[0] / k
        self.clock.keep(TAIL_SAMPLED * self.product_seconds)

    def _stride(self, steps_left: int, per_sweep: float | None) -> int:
        """Steps of the schedule per sweep so that the ``steps_left`` fit the time left (:meth:`Clock.stride`)."""
        return self.clock.stride(steps_left, per_sweep)
