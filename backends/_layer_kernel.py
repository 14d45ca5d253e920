"""Compiled annealing kernel of the ``layer-sa`` backend (numba), shared by all neurons of a layer.

Every row ``r`` of the state is one read of one neuron ``i = owner[r]``. With the shared symmetric matrix
``M`` (zero diagonal is *not* required), the per-neuron steps ``d_i`` and linear coefficients ``a_i``, a row's
energy is ``E(v) = e_i + Σ_j a_ij v_j + Σ_{j≠l} d_ij d_il M_jl v_j v_l``; for a layer ``M = H`` and this is
exactly the BQM of ARCHITECTURE.md §1 (``b_jl = 2 d_j d_l H_jl``). The kernel keeps each row's *up-field*

    h_rj = a_ij + 2 d_ij (G_rj − M_jj d_ij v_rj),   G_r = M (d_i ∘ v_r)   (one GEMM outside, :func:`up_fields`)

so flipping ``j`` costs ``ΔE = h_rj`` (``v_rj = 0``) or ``−h_rj`` (two loads), a pair ``(j, l)`` costs
``ΔE_j + ΔE_l + 2 M_jl δ_j δ_l`` (``δ = ±d``, the value changes), and on acceptance

    h_rk += 2 δ_j d_ik M_jk   (k ≠ j; h_rj is unchanged by its own flip):

one row of the shared matrix per accepted flip, never a per-neuron matrix. Each row has its own
xorshift64* generator seeded from the call's seed, so results do not depend on the thread schedule nor on
how the sweeps are cut into calls. Every entry point releases the GIL and checks ``stop[0]`` before each
sweep of each row: a watchdog thread sets it to end a run cleanly at a time limit.
"""

from __future__ import annotations

import numba
import numpy as np

from ._layer_dense import MAX_EXPONENT
from ._layer_rank import strongest_rows

__all__ = ["anneal_block", "polish_block", "up_fields", "row_energies", "anneal_rows", "load_signatures"]

#: The dtypes of the matrix ``M`` the kernels read: ``M`` itself, and the chain moves' copy of it (``layer-sa``'s
#: ``chain_precision``, float32 by default: :attr:`._layer_run._Run.chain_mat`), with hop tables of the same.
MAT_DTYPES = (np.float64, np.float32)

_MULT = np.uint64(0x2545F4914F6CDD1D)


@numba.njit(cache=True, inline="always")
def _uniform(state: np.ndarray, r: int) -> float:
    x = state[r]
    x ^= x >> np.uint64(12)
    x ^= x << np.uint64(25)
    x ^= x >> np.uint64(27)
    state[r] = x
    return float((x * _MULT) >> np.uint64(11)) * (1.0 / 9007199254740992.0)


@numba.njit(cache=True, inline="always")
def _delta(vr, dr, j):
    """The value change ``δ_j = ±d_j`` of flipping ``j`` (``+`` from 0 to 1)."""
    return dr[j] if vr[j] == 0 else -dr[j]


@numba.njit(cache=True, inline="always")
def _cost(vr, hr, dr, j):
    """``ΔE`` of flipping ``j``: ``δ_j h_j``."""
    return _delta(vr, dr, j) * hr[j]


@numba.njit(cache=True, inline="always")
def _flip(vr, hr, dr, mat, j):
    """Flip ``j`` of one row (state ``vr``, scaled up-field ``hr``, steps ``dr``)."""
    c = 2.0 * _delta(vr, dr, j)
    vr[j] = 1 - vr[j]
    keep = hr[j]
    row = mat[j]
    for k in range(hr.shape[0]):
        hr[k] += c * row[k]
    hr[j] = keep


@numba.njit(cache=True, inline="always")
def _flip_pair(vr, hr, dr, mat, j, l):
    """Flip ``j`` and ``l`` together: one pass over the field instead of two."""
    cj = 2.0 * _delta(vr, dr, j)
    cl = 2.0 * _delta(vr, dr, l)
    vr[j] = 1 - vr[j]
    vr[l] = 1 - vr[l]
    hj = hr[j] + cl * mat[l, j]
    hl = hr[l] + cj * mat[j, l]
    row_j = mat[j]
    row_l = mat[l]
    for k in range(hr.shape[0]):
        hr[k] += cj * row_j[k] + cl * row_l[k]
    hr[j] = hj
    hr[l] = hl


@numba.njit(cache=True, inline="always")
def _accept(de, beta, tol, state, r):
    """Metropolis test; with ``beta = inf`` only moves improving by more than ``tol`` pass."""
    if beta == np.inf:
        return de < -tol
    if de <= 0.0:
        return True
    x = beta * de
    return x < MAX_EXPONENT and _uniform(state, r) < np.exp(-x)


@numba.njit(cache=True)
def _sweep(r, vr, hr, dr, fr, cols, nbr, coup, hop2, hop3, depth, mat, beta, tol, state):
    """One Metropolis sweep over ``cols``: with ``depth`` < 3, a single flip of ``j``, then pair flips of ``j``
    with its partners; with ``depth`` >= 3, one chain move from each ``j`` (:func:`_chain_sweep`).

    A pair flip moves along a strongly coupled direction that single flips cross only uphill; a chain follows
    several such couplings at once.

    Returns:
        ``(total ΔE, number of accepted moves)``.
    """
    if depth >= 3:
        return _chain_sweep(r, vr, hr, dr, fr, cols, nbr, coup, hop2, hop3, depth, mat, beta, tol, state)
    total = 0.0
    moves = 0
    for j in cols:
        de_j = _cost(vr, hr, dr, j)
        if _accept(de_j, beta, tol, state, r):
            _flip(vr, hr, dr, mat, j)
            total += de_j
            moves += 1
            de_j = -de_j
        for k in range(nbr.shape[1]):
            l = nbr[j, k]
            if l < 0 or not fr[l]:
                continue
            sj = _delta(vr, dr, j)
            sl = _delta(vr, dr, l)
            de = de_j + _cost(vr, hr, dr, l) + 2.0 * coup[j, k] * sj * sl
            if _accept(de, beta, tol, state, r):
                _flip_pair(vr, hr, dr, mat, j, l)
                total += de
                moves += 1
                de_j = _cost(vr, hr, dr, j)
    return total, moves


@numba.njit(cache=True)
def _chain_sweep(r, vr, hr, dr, fr, cols, nbr, coup, hop2, hop3, depth, mat, beta, tol, state):
    """One sweep of chain moves: from each ``j`` in ``cols``, the chain ``j = c_1, c_2, …, c_depth`` where each
    ``c_{t+1}`` is the partner of ``c_t`` (``nbr``: every coordinate's most correlated inputs, ``coup`` their
    ``M_jl``) whose flip costs least given the flips before it, ``ΔE(c | c_1..c_t) = s_c (h_c + 2 Σ_{u≤t} s_u
    M_{c_u c})`` (``s = ±d``, the value changes; no field is touched while the chain is built). The prefix of
    least total ``ΔE`` is one move, accepted by the Metropolis test and then applied to the field one member's
    row of ``mat`` after the other. Depth 2 with every partner tried is the pair flip; longer chains cross the
    wider ridges of strongly correlated inputs (neighbouring pixels, colour channels) that pairs cannot.

    The couplings of a candidate with the two members before the last are read from the hop tables
    (:func:`._layer_dense.chain_hops`, where not empty: one cache line for all partners, instead of a row of
    ``M`` each), older members' from ``M``. The candidates' costs are computed without branches (selects, the
    first least by a tree of them for 8 partners), each chain length spelled out in this body: the sums are
    those of the branching loop over ``M`` bit for bit, in 0.6x its time on CIFAR-10's first layer (int4, 4
    sweeps of 64 neurons; a helper function for the costs, even inlined, took 2.4x as long).

    Returns:
        ``(total ΔE, number of accepted moves)``.
    """
    chain = np.empty(depth, np.int64)
    slot = np.zeros(depth, np.int64)  # slot[t]: member t's index in the partner list of member t − 1
    sign = np.empty(depth)
    cost = np.empty(nbr.shape[1])
    partners = cost.size
    tabled = hop2.shape[0] > 0
    total = 0.0
    moves = 0
    for j in cols:
        sj = _delta(vr, dr, j)
        run = sj * hr[j]
        chain[0], sign[0] = j, sj
        best, length, size = run, 1, 1
        while size < depth:
            last = chain[size - 1]
            twice = 2.0 * sign[size - 1]
            if size == 1:
                for k in range(partners):
                    c = nbr[last, k]
                    cc = c if c >= 0 else 0
                    ok = (c >= 0) and fr[cc]
                    change = (dr[cc] if vr[cc] == 0 else -dr[cc]) * (hr[cc] + twice * coup[last, k])
                    cost[k] = change if ok else np.inf
            elif size == 2 and tabled:
                c0, g0, s1 = chain[0], 2.0 * sign[0], slot[1]
                for k in range(partners):
                    c = nbr[last, k]
                    cc = c if c >= 0 else 0
                    ok = (c >= 0) and fr[cc] and c0 != c
                    field = hr[cc] + twice * coup[last, k] + g0 * hop2[c0, s1, k]
                    change = (dr[cc] if vr[cc] == 0 else -dr[cc]) * field
                    cost[k] = change if ok else np.inf
            elif size == 3 and tabled:
                c0, c1, g0, g1, s1, s2 = chain[0], chain[1], 2.0 * sign[0], 2.0 * sign[1], slot[1], slot[2]
                for k in range(partners):
                    c = nbr[last, k]
                    cc = c if c >= 0 else 0
                    ok = (c >= 0) and fr[cc] and c0 != c and c1 != c
                    field = hr[cc] + twice * coup[last, k] + g0 * hop3[c0, s1, s2, k] + g1 * hop2[c1, s2, k]
                    change = (dr[cc] if vr[cc] == 0 else -dr[cc]) * field
                    cost[k] = change if ok else np.inf
            else:  # longer chains, or no tables: the older members' couplings from M
                for k in range(partners):
                    c = nbr[last, k]
                    cc = c if c >= 0 else 0
                    ok = (c >= 0) and fr[cc]
                    field = hr[cc] + twice * coup[last, k]
                    for t in range(size - 1):
                        ok = ok and chain[t] != c
                        if tabled and t == size - 3:
                            field += 2.0 * sign[t] * hop3[chain[t], slot[t + 1], slot[t + 2], k]
                        elif tabled and t == size - 2:
                            field += 2.0 * sign[t] * hop2[chain[t], slot[t + 1], k]
                        else:
                            field += 2.0 * sign[t] * mat[chain[t], cc]
                    change = (dr[cc] if vr[cc] == 0 else -dr[cc]) * field
                    cost[k] = change if ok else np.inf
            if partners == 8:  # the first least: a tree of selects (three levels, not eight dependent steps)
                a0 = 0 if cost[0] <= cost[1] else 1
                a1 = 2 if cost[2] <= cost[3] else 3
                a2 = 4 if cost[4] <= cost[5] else 5
                a3 = 6 if cost[6] <= cost[7] else 7
                b0 = a0 if cost[a0] <= cost[a1] else a1
                b1 = a2 if cost[a2] <= cost[a3] else a3
                pk = b0 if cost[b0] <= cost[b1] else b1
            else:
                pk = 0
                for k in range(1, partners):
                    pk = k if cost[k] < cost[pk] else pk
            cheapest = cost[pk]
            if cheapest == np.inf:  # no partner left
                break
            pick = nbr[last, pk]
            chain[size], sign[size], slot[size] = pick, _delta(vr, dr, pick), pk
            size += 1
            run += cheapest
            if run < best:
                best, length = run, size
        if _accept(best, beta, tol, state, r):
            _flip_chain(vr, hr, dr, mat, chain, sign, length)
            total += best
            moves += 1
    return total, moves


@numba.njit(cache=True, inline="always")
def _flip_chain(vr, hr, dr, mat, chain, sign, length):
    """Flip ``chain[:length]`` (value changes ``sign``); each member's own field takes the other members' flips
    only. The members' rows of ``mat`` are added to the field up to four at a time, in one pass over it
    (:func:`_add_rows`): a pass per member made the field's memory traffic, not the rows', the cost of a move."""
    if length == 1:
        _flip(vr, hr, dr, mat, chain[0])
        return
    keep = np.empty(length)
    for t in range(length):
        own = hr[chain[t]]
        for u in range(length):
            if u != t:
                own += 2.0 * sign[u] * mat[chain[u], chain[t]]
        keep[t] = own
    u = 0
    while u < length:
        take = min(length - u, 4)
        _add_rows(hr, mat, chain, sign, u, take)
        u += take
    for t in range(length):
        hr[chain[t]] = keep[t]
        vr[chain[t]] = 1 - vr[chain[t]]


@numba.njit(cache=True, inline="always")
def _add_rows(hr, mat, chain, sign, u, take):
    """``hr += Σ 2 sign[t] mat[chain[t]]`` over ``t = u .. u + take − 1`` (``take`` 1 to 4), spelled out per
    count so that the compiler vectorises the pass."""
    if take == 4:
        r0, r1, r2, r3 = mat[chain[u]], mat[chain[u + 1]], mat[chain[u + 2]], mat[chain[u + 3]]
        c0, c1, c2, c3 = 2.0 * sign[u], 2.0 * sign[u + 1], 2.0 * sign[u + 2], 2.0 * sign[u + 3]
        for k in range(hr.shape[0]):
            hr[k] += c0 * r0[k] + c1 * r1[k] + c2 * r2[k] + c3 * r3[k]
    elif take == 3:
        r0, r1, r2 = mat[chain[u]], mat[chain[u + 1]], mat[chain[u + 2]]
        c0, c1, c2 = 2.0 * sign[u], 2.0 * sign[u + 1], 2.0 * sign[u + 2]
        for k in range(hr.shape[0]):
            hr[k] += c0 * r0[k] + c1 * r1[k] + c2 * r2[k]
    elif take == 2:
        r0, r1 = mat[chain[u]], mat[chain[u + 1]]
        c0, c1 = 2.0 * sign[u], 2.0 * sign[u + 1]
        for k in range(hr.shape[0]):
            hr[k] += c0 * r0[k] + c1 * r1[k]
    else:
        r0 = mat[chain[u]]
        c0 = 2.0 * sign[u]
        for k in range(hr.shape[0]):
            hr[k] += c0 * r0[k]


@numba.njit(cache=True)
def _shuffle(cols, ordered, state, r):
    """``cols`` = ``ordered`` permuted uniformly at random (Fisher-Yates) with row ``r``'s generator: from the
    same order every sweep, so that the permutation depends on the random numbers only (not on how the
    schedule is cut into calls)."""
    cols[:] = ordered
    for a in range(cols.size - 1, 0, -1):
        b = int(_uniform(state, r) * (a + 1))
        cols[a], cols[b] = cols[b], cols[a]


@numba.njit(cache=True)
def _keep_best(r, energy, best_e, best_v, v):
    if energy[r] < best_e[r]:
        best_e[r] = energy[r]
        best_v[r] = v[r]


@numba.njit(cache=True, nogil=True)
def polish_block(mat, steps, free, nbr, coup, hop2, hop3, depth, indptr, indices, owner, v, h, energy, best_e, best_v,
                 tol, max_sweeps, stop, rows):
    """Greedy sweeps (single and pair flips improving by more than ``tol[r]``) of each row in ``rows`` until
    none improves or ``max_sweeps``; adds the change to ``energy`` and keeps the best state in ``best_v``.

    Args are those of :func:`anneal_block`; ``max_sweeps`` caps the greedy sweeps of a row.
    """
    unused = np.ones(1, np.uint64)  # greedy moves draw no random numbers
    for r in rows:
        i = owner[r]
        cols = indices[indptr[i]:indptr[i + 1]]
        for _ in range(max_sweeps):
            if stop[0] != 0:
                break
            de, moves = _sweep(0, v[r], h[r], steps[i], free[i], cols, nbr, coup, hop2, hop3, depth, mat, np.inf,
                               tol[r], unused)
            energy[r] += de
            if moves == 0:
                break
        _keep_best(r, energy, best_e, best_v, v)


@numba.njit(cache=True, nogil=True)
def anneal_block(mat, steps, free, nbr, coup, hop2, hop3, depth, indptr, indices, owner, v, h, energy, best_e, best_v,
                 tol, hot, cold, num_sweeps, sweep_start, count, stride, seeds, stop, rows):
    """``count`` Metropolis sweeps of a ``num_sweeps`` geometric schedule, from its step ``sweep_start`` on in
    steps of ``stride`` (1: every step; more: a shortened schedule), for each row in ``rows``.

    Sweeps of single and pair flips visit a row's free coordinates in index order; sweeps of chain moves
    (``depth`` >= 3) in a fresh random order each (:func:`_shuffle`, the row's own generator). In index order,
    chains from consecutive coordinates (neighbouring pixels) pile up along the same direction: a random order
    cut the default preset's excess over the best-known energy from 22.0 to 20.2 % on MNIST's first layer and
    from 31.7 to 26.0 % on CIFAR-10's (``benchmarks/frontier.py``'s layers, int4), for 3-14 % more time; with
    pair flips it did not help.

    Row ``r``'s inverse temperature at step ``s`` is ``hot[r] (cold[r] / hot[r])^(s / (num_sweeps − 1))``
    (steps past the end stay at ``cold``). Rows are independent (callers run disjoint ``rows`` in threads); a
    row's state persists in the arrays, so a schedule may be run in several calls with the same result.

    Args:
        mat: shared matrix ``M`` ``(m, m)``, symmetric: float64, or for chain moves its float32 copy (then the
            run anneals the energy of those couplings; ``coup`` and the hop tables must come from the same copy).
        steps: ``d`` ``(n, m)``; free: ``(n, m)`` bool.
        nbr: ``(m, K)`` partner coordinates for pair flips (``-1`` = none); coup: ``M_jl`` of each pair.
        hop2, hop3: the chain partners' two- and three-hop couplings (:func:`._layer_dense.chain_hops`); empty:
            read from ``mat`` (and always for pair flips).
        depth: chain length of the moves (:func:`_chain_sweep`; then ``nbr`` lists every coordinate's
            partners, each pair from both ends); below 3, single and pair flips.
        indptr, indices: CSR lists of each neuron's free coordinates (only these are ever flipped).
        owner: neuron of every row ``(R,)``.
        v: binary states ``(R, m)`` uint8; h: up-fields ``(R, m)`` (:func:`up_fields`), both updated in place.
        energy: each row's energy ``(R,)`` (or its change since the start); best_e: the lowest seen; best_v:
            its state.
        tol: per row, the least decrease a greedy move must bring (guards against rounding cycles).
        hot, cold: ``(R,)`` inverse temperatures at both ends of the schedule.
        num_sweeps, sweep_start, count, stride: the schedule's length, the first step run, the sweeps to run and
            the steps between them.
        seeds: one nonzero uint64 generator state per row (advanced in place).
        stop: ``(1,)`` int64; nonzero ends the call before the next sweep of any row.
        rows: the rows to process.
    """
    span = max(num_sweeps - 1, 1)
    for r in rows:
        i = owner[r]
        ordered = indices[indptr[i]:indptr[i + 1]]
        cols = ordered.copy() if depth >= 3 else ordered  # chain sweeps: a fresh random order each
        ratio = cold[r] / hot[r]
        for k in range(count):
            if stop[0] != 0:
                break
            if depth >= 3:
                _shuffle(cols, ordered, seeds, r)
            beta = hot[r] * ratio ** (min(sweep_start + k * stride, span) / span)
            de, _ = _sweep(r, v[r], h[r], steps[i], free[i], cols, nbr, coup, hop2, hop3, depth, mat, beta, tol[r],
                           seeds)
            energy[r] += de
            _keep_best(r, energy, best_e, best_v, v)


def up_fields(mat: np.ndarray, diag: np.ndarray, lin: np.ndarray, steps: np.ndarray, v: np.ndarray) -> np.ndarray:
    """The scaled up-fields ``h = a / d + 2 (M (d ∘ v) − diag(M) ∘ d ∘ v)`` of rows ``v`` (one GEMM for all rows).

    Where ``d = 0`` the flip costs nothing whatever ``h`` (``a = d² M_jj + … = 0``): ``h`` is set to 0 there.
    """
    u = steps * v
    with np.errstate(divide="ignore", invalid="ignore"):
        scaled = np.where(steps != 0, lin / steps, 0.0)
    return np.ascontiguousarray(scaled + 2.0 * (u @ mat - diag * u))


@numba.njit(cache=True, nogil=True)
def fields_from_products(products: np.ndarray, cross: np.ndarray, diag: np.ndarray, steps: np.ndarray,
                         v: np.ndarray, live: np.ndarray) -> np.ndarray:
    """:func:`up_fields` of rows ``v`` ``(n, k)`` on the coordinates ``live`` ``(k,)`` from the products ``q H``
    ``(n, m)`` of their values ``q = b + d ∘ v`` (``b`` the base values), which the errors of ``q`` needed
    already: with ``a = d² diag(H) + 2 d (H b − c)``, ``h = 2 (q H − c) + diag(H) ∘ (d − 2 d ∘ v)``, no product
    of its own (0 where ``d = 0``). ``cross`` ``(n, m)``: ``c`` of each row's neuron; ``diag`` and ``steps``
    ``(n, k)`` on ``live`` already. One pass, no temporaries (numpy's took 60 ms on CIFAR-10's first layer)."""
    n, k = v.shape
    h = np.empty((n, k))
    for i in range(n):
        for t in range(k):
            d = steps[i, t]
            if d == 0.0:
                h[i, t] = 0.0
            else:
                j = live[t]
                h[i, t] = 2.0 * (products[i, j] - cross[i, j]) + diag[t] * (d - 2.0 * (d * v[i, t]))
    return h


def row_energies(offsets: np.ndarray, lin: np.ndarray, steps: np.ndarray, v: np.ndarray,
                 h: np.ndarray) -> np.ndarray:
    """Energies of rows ``v`` from their up-fields ``h`` (no matrix product): ``e + (a·v + (d ∘ v)·h) / 2``.

    With ``Q = Σ_{j≠l} u_j M_jl u_l`` (``u = d ∘ v``), ``(d ∘ v)·h = a·v + 2Q``, so the sum is ``2 (a·v + Q)``.
    ``offsets``, ``lin`` and ``steps`` are those of each row's problem.
    """
    vf = v.astype(np.float64)
    return offsets + 0.5 * (np.einsum("ij,ij->i", lin, vf) + np.einsum("ij,ij->i", steps * vf, h))


def anneal_rows(mat, diag, lin, steps, free, nbr, coup, indptr, indices, owner, v, u, g, betas, tol,
                seeds, polish_sweeps, best_v, row_start, row_stop):
    """The former single entry point, kept for callers outside ``layer-sa``: polish, ``betas.shape[1]`` sweeps
    at the given inverse temperatures ``(R, S)``, polish; the best state of each row of ``row_start:row_stop``
    goes into ``best_v``. ``v``, ``u = d ∘ v`` and ``g = (d ∘ v) M`` are left at each row's final state; ``lin``
    is per problem ``(n, m)``, indexed through ``owner``.
    """
    rows = np.arange(row_start, row_stop)
    own = owner[rows]
    local = np.arange(rows.size)
    vv = np.ascontiguousarray(v[rows])
    h = up_fields(mat, diag, lin[own], steps[own], vv)
    energy, best_e, stop = np.zeros(rows.size), np.zeros(rows.size), np.zeros(1, np.int64)
    best = vv.copy()
    state = seeds[rows].copy()
    steps_r, free_r = np.ascontiguousarray(steps[own]), np.ascontiguousarray(free[own])
    ptr = np.concatenate([[0], np.cumsum(indptr[own + 1] - indptr[own])]).astype(np.int64)
    idx = np.concatenate([indices[indptr[i]:indptr[i + 1]] for i in own]) if rows.size else indices[:0]
    hop2, hop3 = np.zeros((0, 0, 0), mat.dtype), np.zeros((0, 0, 0, 0), mat.dtype)  # pair flips: no chains
    common = (mat, steps_r, free_r, nbr, coup, hop2, hop3, 0, ptr, idx.astype(np.int64), local, vv, h, energy, best_e,
              best)
    polish_block(*common, tol[rows], polish_sweeps, stop, local)
    for s in range(betas.shape[1]):
        b = np.ascontiguousarray(betas[rows, s])
        anneal_block(*common, tol[rows], b, b, 1, 0, 1, 1, state, stop, local)
    if betas.shape[1] > 0:
        polish_block(*common, tol[rows], polish_sweeps, stop, local)
    seeds[rows] = state
    v[rows], best_v[rows] = vv, best
    u[rows] = steps[own] * vv
    g[rows] = u[rows] @ mat


def load_signatures() -> None:
    """Load (from numba's on-disk cache, or compile) every signature of this module's kernels, and of
    :func:`._layer_rank.strongest_rows`, that a ``layer-sa`` run on the CPU calls, by calling each once on a
    two-coordinate problem: :func:`polish_block` and :func:`anneal_block` with ``M`` in each of :data:`MAT_DTYPES`
    (pair flips read ``M``, chain moves its float32 copy: ``chain_mat``), :func:`fields_from_products` on
    writable and read-only products. A solve loads each on its first call, which its time limit would count:
    :func:`qannealq.solve.warm_up` calls this (through ``LayerSASampler.load_compiled``) so that none is left
    to a stand-in solve that a loaded machine cuts before the phases that run it (the chains' descent and the
    anneal's final polish read the float32 copy)."""
    m = 2
    steps, free = np.ones((1, m)), np.ones((1, m), np.bool_)
    indptr, indices, owner, rows = np.array([0, m]), np.arange(m), np.zeros(1, np.int64), np.zeros(1, np.int64)
    one, stop = np.ones(1), np.zeros(1, np.int64)
    for dtype in MAT_DTYPES:
        mat = np.eye(m, dtype=dtype)
        nbr, coup = np.full((m, 1), -1, np.int64), np.zeros((m, 1))
        hop2, hop3 = np.zeros((0, 0, 0), dtype), np.zeros((0, 0, 0, 0), dtype)
        v, h = np.zeros((1, m), np.uint8), np.ones((1, m))
        energy, best_e, best_v = np.zeros(1), np.zeros(1), v.copy()
        common = (mat, steps, free, nbr, coup, hop2, hop3, 0, indptr, indices, owner, v, h, energy, best_e, best_v,
                  one)
        polish_block(*common, 1, stop, rows)
        anneal_block(*common, one, one, 1, 0, 1, 1, np.ones(1, np.uint64), stop, rows)
    products = np.zeros((1, m))
    fields_from_products(products, products, np.ones(m), steps, np.zeros((1, m), np.uint8), indices)
    products.setflags(write=False)  # a layer's remembered product (its errors'), read-only
    fields_from_products(products, np.zeros((1, m)), np.ones(m), steps, np.zeros((1, m), np.uint8), indices)
    strongest_rows(np.eye(m), np.ones(m), np.zeros((m, 1), np.int64), np.zeros((m, 1)), 0, m)
