"""Torch implementation of ``layer-sa``'s anneal, for GPUs (``device="cuda"``; ``"torch-cpu"`` for tests).

Same maths as the numba kernel (:mod:`._layer_kernel`): one shared ``M`` ``(m, m)`` on the device; per
neuron its steps ``d``, linear coefficients ``a`` and free mask ``(n, m)``; per row (neuron x read, held as
``(n, reads, m)`` so that the per-neuron vectors broadcast without copies) only the state ``v`` and the field
``G = M (d ∘ v)``. Flipping ``j`` costs ``ΔE = (1 − 2 v_j) (a_j + 2 d_j (G_j − M_jj d_j v_j))``.

Where the numba kernel walks one row at a time, this walks one *coordinate* at a time for all rows at once:

- **Metropolis sweep**: for each free coordinate ``j``, in a random order per sweep shared by all rows, the
  ``ΔE`` of column ``j`` for every row, one Metropolis test per row (own inverse temperature), then the rank-1
  update ``G += (δ_j)[:, None] M_j`` (``δ_j = ±d_j`` where accepted, 0 elsewhere); then the pair flips of
  ``j`` with its partners (:func:`pair_partners`), each also tested and applied for all rows at once; where
  the run uses chain moves (:func:`chain_depth`: wide layers), one chain from ``j`` per row instead
  (:meth:`TorchRun._chain_sweep`, as the numba kernel's: each row picks its own partners, a few gathers per
  member), the cheapest prefix tested per row and applied one member's row of ``M`` after the other.
- **Greedy polish**: at each step every row takes its best improving move among all single flips and all
  pair flips, all rows in parallel, until no row improves (after an anneal of chain moves, greedy chain
  sweeps come first). Its candidate costs are temporaries of
  ``rows x m x pairs`` floats (~1 GB each for 8192 rows x 4096 inputs x 4 pairs): the one place where memory
  grows with more than the rows' state and fields.

Randomness comes from one ``torch.Generator`` on the device, seeded per call: deterministic for a seed on a
given device (not bit-identical to the numba kernel, nor across devices). Float64 throughout, on CUDA too:
the incremental fields must not drift over thousands of rank-1 updates (fp32 would lose the tiny ΔE near a
local minimum), and data-centre GPUs run fp64 at a useful rate.
"""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import torch

from qannealq._pool import thread_count

from ._layer_dense import MAX_EXPONENT, DenseQubos, Rows, chain_partners, greedy_tolerance, pair_partners, \
    run_ranking
from ._layer_schedule import Clock, anneal_schedule, chain_depth, restricted

__all__ = ["TorchRun"]


class TorchRun:
    """One solve of a :class:`DenseQubos` on a torch device; the interface of ``_layer_run._Run``.

    Args:
        dense: the problems (shared matrix kept once on the device).
        params: the sampler's parameters (``pairs``, ``polish_sweeps``, schedule options; ``num_threads``: torch's
            threads on the CPU within ``with run:``).
        device: a torch device (or its name: "cpu", "cuda", "cuda:1").
        clock: the solve's time limit and trace (checked and recorded after every sweep and polish step).
    """

    def __init__(self, dense: DenseQubos, params: dict[str, Any], device: torch.device | str,
                 clock: Clock | None = None) -> None:
        self.dense, self.params, self.device = dense, params, torch.device(device)
        self.clock = Clock() if clock is None else clock
        self._threads: int | None = None  # torch's own thread count while a ``with run:`` sets num_threads

        def put(a: np.ndarray, dtype: torch.dtype = torch.float64) -> torch.Tensor:
            return torch.tensor(np.asarray(a), dtype=dtype, device=self.device)  # a copy: never aliases numpy

        self.mat = put(dense.mat)
        self.diag = put(dense.diag)
        self.lin, self.steps = put(dense.lin)[:, None, :], put(dense.steps)[:, None, :]
        self.free = put(dense.free, torch.bool)[:, None, :]
        self.depth = chain_depth(params, dense.mat.shape[0])
        ranked = run_ranking(dense.mat, params, self.depth)  # one ranking for both partner lists
        partners, couplings = pair_partners(dense.mat, params["pairs"], ranked)
        self.partners, self.couplings = put(np.maximum(partners, 0), torch.long), put(couplings)
        if self.depth >= 3:
            nbr, coup = chain_partners(dense.mat, params["chain_partners"], ranked)
            self.chain_nbr, self.chain_coup = put(np.maximum(nbr, 0), torch.long), put(coup)
            self.chain_live = put(nbr >= 0, torch.bool)
        self.pair_live = put(partners >= 0, torch.bool)
        self.cols = np.nonzero(dense.free.any(axis=0))[0]
        self.pairs_of = [[(int(l), float(c)) for l, c in zip(partners[j], couplings[j]) if l >= 0]
                         for j in range(dense.mat.shape[0])]
        self.tol = put(greedy_tolerance(dense.lin))[:, None]

    # -- the interface of _layer_run._Run, used by layer_sa._solve ------------------------------------------------------------

    def __enter__(self) -> "TorchRun":
        """``with run:`` as for ``_Run`` (which shares a thread pool within it): on the CPU, torch's threads are
        ``num_threads`` (capped at the cores) within it, where given, and torch's own again after."""
        self._threads = None
        if self.device.type == "cpu" and self.params.get("num_threads") is not None:
            self._threads = torch.get_num_threads()
            torch.set_num_threads(thread_count(self.params["num_threads"], cap=True))
        return self

    def __exit__(self, *exc: object) -> None:
        if self._threads is not None:
            torch.set_num_threads(self._threads)
            self._threads = None

    def polish(self, starts: np.ndarray, owner: np.ndarray | None = None, fields: np.ndarray | None = None,
               energies: np.ndarray | None = None) -> Rows:
        """Greedy descent from every start ``(R, m)`` (``fields``, ``energies``: unused, this run keeps no
        up-fields and computes its energies). Not bounded by the time limit, as the numba run's (``_Run.polish``):
        a limited run ends at least where ``fast`` does from its start.

        Row ``r`` belongs to problem ``owner[r]`` (default ``r``); ``owner`` lists the problems in order, once
        per start (``np.tile(np.arange(n), k)``), as :func:`layer_sa._solve` passes them.
        """
        n = self.dense.lin.shape[0]
        k = 1 if owner is None else owner.size // n
        owner = np.tile(np.arange(n), k) if owner is None else owner
        if not np.array_equal(owner, np.tile(np.arange(n), k)):
            raise ValueError("TorchRun.polish takes the problems in order, once per start")
        arr = np.where(self.dense.free, starts.reshape(k, n, -1), 0).transpose(1, 0, 2)
        v = torch.as_tensor(np.ascontiguousarray(arr), dtype=torch.float64, device=self.device)
        g = self._field(v)
        self._polish(v, g, bounded=False)
        states = v.transpose(0, 1).reshape(k * n, -1).to(torch.uint8).cpu().numpy()
        return Rows(states, owner, self.dense.energies(states, owner))

    def descend(self, rows: Rows) -> Rows:
        """Greedy sweeps of chain moves from ``rows`` (one per problem, in order) until no row improves,
        ``polish_sweeps`` or the time limit (:meth:`_chain_polish`; a greedy sweep cut short only went down): the
        search where no anneal fits, as ``_layer_run._Run.descend``. No rows where the run has no chain moves or the
        time is already spent."""
        n = self.dense.lin.shape[0]
        if self.depth < 3 or rows.owner.size == 0 or self.clock.expired():
            return rows.take(np.arange(0))
        if not np.array_equal(rows.owner, np.arange(n)):
            raise ValueError("TorchRun.descend takes one row per problem, in order")
        v = torch.as_tensor(rows.v, dtype=torch.float64, device=self.device)[:, None, :]
        self._chain_polish(v, self._field(v))
        states = v[:, 0].to(torch.uint8).cpu().numpy()
        down = Rows(states, rows.owner.copy(), self.dense.energies(states, rows.owner))
        self.clock.record(float(down.energy.sum()))
        return down

    def start(self, starts: np.ndarray, owner: np.ndarray | None = None) -> Rows:
        """Rows at the states ``starts`` ``(R, m)`` (row r of problem ``owner[r]``, default r) and their energies."""
        owner = np.arange(starts.shape[0]) if owner is None else owner
        v = np.ascontiguousarray(np.where(self.dense.free[owner], starts, 0), dtype=np.uint8)
        return Rows(v, owner, self.dense.energies(v, owner))

    def anneal(self, rows: Rows, seed: int, movable: np.ndarray | None = None, reads: int | None = None,
               sweeps: int | None = None, exact: bool = True) -> Rows:
        """``num_reads`` reheat anneals per problem from its polished row; the best state of each anneal row.
        ``movable``, ``reads`` and ``sweeps`` as for ``_layer_run._Run.anneal`` (the energies are always exact:
        ``exact`` is accepted for that interface)."""
        dense, params = restricted(self.dense, self.params, movable, reads, sweeps)
        start, betas = anneal_schedule(dense, params, rows)
        n, m = rows.v.shape
        reads = start.owner.size // max(n, 1)
        if betas.shape[1] == 0 or reads == 0:
            return rows.take(np.arange(0))
        gen = torch.Generator(device=self.device)
        gen.manual_seed(int(seed))
        state = torch.as_tensor(start.v, dtype=torch.float64, device=self.device).reshape(n, reads, m)
        beta = torch.as_tensor(betas.reshape(n, reads, -1), dtype=torch.float64, device=self.device)
        base = torch.as_tensor(rows.energy, device=self.device)[:, None]
        free = self.free
        if movable is not None:  # the moves' mask only: the energies below are the full problems'
            self.free = torch.as_tensor(dense.free, device=self.device)[:, None, :]
        try:
            best = self._anneal_rows(state.clone(), beta, gen, base)
        finally:
            self.free = free
        states = best.reshape(n * reads, m).to(torch.uint8).cpu().numpy()
        return Rows(states, start.owner, self.dense.energies(states, start.owner))

    # -- kernels --------------------------------------------------------------------------------------------

    def _field(self, v: torch.Tensor) -> torch.Tensor:
        """``G = (d ∘ v) M`` for states ``(n, k, m)``: one GEMM for all rows."""
        return (self.steps * v) @ self.mat

    def _anneal_rows(self, v: torch.Tensor, beta: torch.Tensor, gen: torch.Generator,
                     base: torch.Tensor) -> torch.Tensor:
        """``S`` Metropolis sweeps then a polish (stopping at the clock's limit); the best state of each row.

        Under a time limit, as the numba anneal: each sweep is timed, and the schedule's steps are taken in
        strides wide enough to reach its cold end before the limit, two sweeps' time kept for the polish
        (:meth:`Clock.stride`; cut where they stood, a short limit left the rows near the hot end, unpolished).
        ``base`` ``(n, 1)``: the problems' energies at the start, for the clock's trace.
        """
        g = self._field(v)
        energy = torch.zeros(v.shape[:2], dtype=torch.float64, device=self.device)
        best_e = energy.clone()
        best = v.clone()
        sweeps, step = beta.shape[2], 0
        while True:
            if self.clock.expired():
                break
            begun = time.perf_counter()
            if step >= sweeps:
                change = self._chain_polish(v, g) + self._polish(v, g)
            else:
                b = beta[:, :, step]
                change = self._chain_sweep(v, g, b, gen) if self.depth >= 3 else self._sweep(v, g, b, gen)
            energy = energy + change
            better = energy < best_e
            best_e = torch.where(better, energy, best_e)
            best = torch.where(better[:, :, None], v, best)
            self.clock.record(float((base + best_e).min(dim=1).values.sum()))
            if step >= sweeps:
                break
            per_sweep = time.perf_counter() - begun
            # the cold end (the last step) always runs, then the polish
            step = sweeps if step == sweeps - 1 else min(step + self.clock.stride(sweeps - 1 - step, per_sweep),
                                                         sweeps - 1)
        return best

    def _delta(self, v: torch.Tensor, g: torch.Tensor, j: int) -> torch.Tensor:
        """``ΔE`` of flipping coordinate ``j`` in every row ``(n, k)`` (ignores the free mask)."""
        return _flip_costs(v[:, :, j], self.steps[:, :, j], self.lin[:, :, j], g[:, :, j], self.diag[j])

    def _flip(self, v: torch.Tensor, g: torch.Tensor, j: int, accept: torch.Tensor) -> None:
        """Flip ``j`` in the rows where ``accept``; rank-1 update of their fields with row ``j`` of ``M``."""
        vj = v[:, :, j]
        step = torch.where(accept, self.steps[:, :, j] * (1.0 - 2.0 * vj), 0.0)
        v[:, :, j] = torch.where(accept, 1.0 - vj, vj)
        g.addcmul_(step[:, :, None], self.mat[j])

    def _sweep(self, v: torch.Tensor, g: torch.Tensor, beta: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        """One Metropolis sweep of single and pair flips, columns in a random order; returns each row's ΔE.

        After a move the ``ΔE`` of ``j`` is updated, not recomputed: a single flip negates it; a pair flip
        ``(j, l)`` makes it ``−ΔE_j − 2 M_jl δ_j δ_l``. Past the clock's limit it stops between coordinates.
        """
        total = torch.zeros(v.shape[:2], dtype=torch.float64, device=self.device)
        order = torch.randperm(self.cols.size, generator=gen, device=self.device).cpu().numpy()
        rand = torch.rand((self.cols.size, 1 + self.partners.shape[1]) + v.shape[:2], generator=gen,
                          dtype=torch.float64, device=self.device)
        for t, j in enumerate(self.cols[order].tolist()):
            if self.clock.expired():  # a sweep may take long on a busy CPU: stop between coordinates
                break
            free_j = self.free[:, :, j]
            de_j = self._delta(v, g, j)
            accept = free_j & _metropolis(de_j, beta, rand[t, 0])
            self._flip(v, g, j, accept)
            total += torch.where(accept, de_j, 0.0)
            de_j = torch.where(accept, -de_j, de_j)
            d_j = self.steps[:, :, j] * (1.0 - 2.0 * v[:, :, j])
            for k, (l, c) in enumerate(self.pairs_of[j]):
                d_l = self.steps[:, :, l] * (1.0 - 2.0 * v[:, :, l])
                coupling = 2.0 * c * d_j * d_l
                de = de_j + self._delta(v, g, l) + coupling
                accept = free_j & self.free[:, :, l] & _metropolis(de, beta, rand[t, k + 1])
                self._flip(v, g, j, accept)
                self._flip(v, g, l, accept)
                total += torch.where(accept, de, 0.0)
                de_j = torch.where(accept, -de_j - coupling, de_j)
                d_j = torch.where(accept, -d_j, d_j)
        return total

    def _chain_sweep(self, v: torch.Tensor, g: torch.Tensor, beta: torch.Tensor | None,
                     gen: torch.Generator | None) -> torch.Tensor:
        """One sweep of chain moves (as :func:`._layer_kernel._chain_sweep`), columns in a random order (the
        given order without ``gen``); returns each row's ΔE.

        From coordinate ``j``, in every row at once: the chain ``j = c_1, c_2, …`` where ``c_{t+1}`` is the
        partner of ``c_t`` (:func:`chain_partners`) whose flip costs least given the flips before it,
        ``ΔE(c | c_1..c_t) = ΔE_c + 2 u_c Σ_u u_{c_u} M_{c_u c}`` (``u = ±d``, the value changes), up to
        ``depth`` members; the prefix of least total ``ΔE`` is one move, tested per row (``beta`` None: greedy,
        improving by more than the row's tolerance) and applied one member's row of ``M`` after the other.
        """
        total = torch.zeros(v.shape[:2], dtype=torch.float64, device=self.device)
        cols = self.cols if gen is None else \
            self.cols[torch.randperm(self.cols.size, generator=gen, device=self.device).cpu().numpy()]
        rand = None if gen is None else torch.rand((self.cols.size,) + v.shape[:2], generator=gen,
                                                   dtype=torch.float64, device=self.device)
        steps = self.steps.expand_as(v)
        lin = self.lin.expand_as(v)
        free = self.free.expand_as(v)
        for t, j in enumerate(cols.tolist()):
            if self.clock.expired():  # a sweep may take long on a busy CPU: stop between coordinates
                break
            first = torch.full(v.shape[:2], j, dtype=torch.long, device=self.device)
            chain, change = [first], [self.steps[:, :, j] * (1.0 - 2.0 * v[:, :, j])]
            run = self._delta(v, g, j)
            best, length = run, torch.ones_like(first)
            alive = self.free[:, :, j].expand_as(first)
            for size in range(1, self.depth):
                last = chain[-1]
                cand = self.chain_nbr[last]  # (n, k, K)
                ok = self.chain_live[last] & torch.gather(free, 2, cand.flatten(2)).view_as(cand)
                for member in chain[:-1]:
                    ok &= cand != member[..., None]
                vc = torch.gather(v, 2, cand.flatten(2)).view_as(cand)
                dc = torch.gather(steps, 2, cand.flatten(2)).view_as(cand)
                gc = torch.gather(g, 2, cand.flatten(2)).view_as(cand)
                ac = torch.gather(lin, 2, cand.flatten(2)).view_as(cand)
                uc = dc * (1.0 - 2.0 * vc)
                own = _flip_costs(vc, dc, ac, gc, self.diag[cand])
                pull = change[-1][..., None] * self.chain_coup[last]
                for member, u in zip(chain[:-1], change[:-1]):
                    pull = pull + u[..., None] * self.mat[member[..., None], cand]
                cost = torch.where(ok, own + 2.0 * uc * pull, torch.inf)
                cheapest, pick = cost.min(dim=-1)
                alive = alive & torch.isfinite(cheapest)
                chain.append(torch.gather(cand, 2, pick[..., None])[..., 0])
                change.append(torch.gather(uc, 2, pick[..., None])[..., 0])
                run = run + torch.where(alive, cheapest, 0.0)
                better = alive & (run < best)
                best = torch.where(better, run, best)
                length = torch.where(better, size + 1, length)
            if rand is None:
                accept = self.free[:, :, j] & (best < -self.tol)
            else:
                accept = self.free[:, :, j] & _metropolis(best, beta, rand[t])
            for size, member in enumerate(chain):
                self._flip_at(v, g, member, accept & (size < length))
            total += torch.where(accept, best, 0.0)
        return total

    def _chain_polish(self, v: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """Greedy chain sweeps (the columns in order) until no row improves or ``polish_sweeps``; each row's ΔE."""
        total = torch.zeros(v.shape[:2], dtype=torch.float64, device=self.device)
        if self.depth < 3:
            return total
        for _ in range(int(self.params["polish_sweeps"])):
            if self.clock.expired():
                break
            change = self._chain_sweep(v, g, None, None)
            total += change
            if not bool((change < 0).any()):
                break
        return total

    def _move_costs(self, v: torch.Tensor, g: torch.Tensor) -> torch.Tensor:
        """``ΔE`` of every single flip ``(n, k, m)`` then every pair flip ``(n, k, m·pairs)``; inf where barred."""
        d = self.steps
        single = torch.where(self.free, _flip_costs(v, d, self.lin, g, self.diag), torch.inf)
        delta = d * (1.0 - 2.0 * v)
        p = self.partners
        pair = (single[..., None] + single[..., p] + 2.0 * self.couplings * delta[..., None] * delta[..., p])
        pair = torch.where(self.pair_live, pair, torch.inf)
        return torch.cat([single, pair.flatten(-2)], dim=-1)

    def _polish(self, v: torch.Tensor, g: torch.Tensor, bounded: bool = True) -> torch.Tensor:
        """Best-improvement descent, all rows in parallel, until no row gains more than its ``tol``, or (where
        ``bounded``) the clock's limit.

        At most ``polish_sweeps x m`` moves per row (the numba kernel's cap of ``polish_sweeps`` sweeps).
        Returns each row's energy change.
        """
        m = self.mat.shape[0]
        total = torch.zeros(v.shape[:2], dtype=torch.float64, device=self.device)
        for _ in range(int(self.params["polish_sweeps"]) * m):
            if bounded and self.clock.expired():
                break
            cost, idx = self._move_costs(v, g).min(dim=-1)
            move = cost < -self.tol
            if not bool(move.any()):
                break
            j = torch.where(idx < m, idx, (idx - m) // self.partners.shape[1])
            l = self.partners.flatten()[torch.clamp(idx - m, min=0)]
            pair = move & (idx >= m)
            self._flip_at(v, g, j, move)
            self._flip_at(v, g, l, pair)
            total += torch.where(move, cost, 0.0)
        return total

    def _flip_at(self, v: torch.Tensor, g: torch.Tensor, j: torch.Tensor, move: torch.Tensor) -> None:
        """Flip coordinate ``j[r]`` of each row ``r`` where ``move``; ``G += δ M_j`` (rows of ``M`` gathered)."""
        vj = torch.gather(v, 2, j[..., None])[..., 0]
        d = torch.gather(self.steps.expand_as(v), 2, j[..., None])[..., 0]
        step = torch.where(move, d * (1.0 - 2.0 * vj), 0.0)
        v.scatter_(2, j[..., None], torch.where(move, 1.0 - vj, vj)[..., None])
        g.addcmul_(step[..., None], self.mat[j])


def _flip_costs(v: torch.Tensor, d: torch.Tensor, a: torch.Tensor, g: torch.Tensor,
                diag: torch.Tensor) -> torch.Tensor:
    """``ΔE`` of flipping coordinates at states ``v`` with steps ``d``, linear coefficients ``a``, fields
    ``G = M (d ∘ v)`` and diagonal entries ``M_jj`` (broadcasting shapes): ``±(a + 2 d (G − M_jj d v))``,
    ``+`` from 0 to 1. The one formula behind single flips, the polish's candidates and chain members."""
    field = a + 2.0 * d * (g - diag * d * v)
    return torch.where(v == 0, field, -field)


def _metropolis(de: torch.Tensor, beta: torch.Tensor, rand: torch.Tensor) -> torch.Tensor:
    """Accept downhill moves, and uphill ones with probability ``exp(−β ΔE)`` (never beyond ``MAX_EXPONENT``)."""
    x = beta * de
    return (de <= 0.0) | ((x < MAX_EXPONENT) & (rand < torch.exp(-x)))
