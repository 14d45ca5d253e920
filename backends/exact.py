"""Exact brute force over all 2^m assignments, vectorised in chunks (m <= 24 by default)."""

from __future__ import annotations

import time

import dimod
import numpy as np

from qannealq.backends._common import check_capacity, dense_binary
from qannealq.checks import at_least, check_values, is_count
from qannealq.errors import InvalidArgumentError

__all__ = ["ExactSampler"]

_CHUNK_BITS = 16


class ExactSampler(dimod.Sampler):
    """Enumerates every assignment of a BQM and returns the ``num_reads`` lowest (ties broken by order).

    Args:
        max_variables: refuse larger problems (2^24 assignments take a few seconds).
    """

    name = "exact"
    default_max_variables: int | None = 24
    capacity_reason = "2^m assignments"

    def __init__(self, max_variables: int = default_max_variables) -> None:
        if not is_count(max_variables, 0) or max_variables > 30:
            raise InvalidArgumentError(f"max_variables={max_variables!r} must be an integer within 0..30")
        self.max_variables = max_variables

    @property
    def properties(self) -> dict:
        return {"max_variables": self.max_variables}

    @property
    def parameters(self) -> dict:
        return {"num_reads": []}

    def check_options(self, options: dict) -> None:
        """Refuse a bad ``num_reads`` before any work (:func:`qannealq.contract.check_options`)."""
        check_values(options, {"num_reads": at_least(1)})

    def sample(self, bqm: dimod.BinaryQuadraticModel, num_reads: int | None = 1, **kwargs) -> dimod.SampleSet:
        """Return the ``num_reads`` lowest-energy assignments of ``bqm`` (unknown kwargs: warned and dropped;
        ``num_reads=None``, the contract's "default", is 1)."""
        self.remove_unknown_kwargs(**kwargs)
        self.check_options({"num_reads": num_reads})
        num_reads = 1 if num_reads is None else int(num_reads)
        check_capacity(self.name, bqm, self.max_variables, f"2^{self.max_variables} assignments",
                       "use 'sa' or a larger max_variables")
        m = bqm.num_variables
        t0 = time.perf_counter_ns()
        lin, q, offset, labels = dense_binary(bqm)
        t1 = time.perf_counter_ns()
        keep = min(num_reads, 2 ** m)
        best_e = np.empty(0)
        best_x = np.empty((0, m), dtype=np.int8)
        chunk = 2 ** min(m, _CHUNK_BITS)
        low = ((np.arange(chunk)[:, None] >> np.arange(min(m, _CHUNK_BITS))) & 1).astype(np.float64)
        for high_value in range(2 ** max(0, m - _CHUNK_BITS)):
            high = np.broadcast_to(((high_value >> np.arange(m - low.shape[1])) & 1).astype(np.float64),
                                   (chunk, m - low.shape[1]))
            x = np.concatenate([low, high], axis=1)
            e = x @ lin + np.einsum("ij,ij->i", x @ q, x) + offset
            cand_e = np.concatenate([best_e, e])
            cand_x = np.concatenate([best_x, x.astype(np.int8)])
            order = np.argsort(cand_e, kind="stable")[:keep]
            best_e, best_x = cand_e[order], cand_x[order]
        t2 = time.perf_counter_ns()
        samples = best_x.astype(np.int8)
        if bqm.vartype is dimod.SPIN:
            samples = 2 * samples - 1
        ss = dimod.SampleSet.from_samples_bqm((samples, labels), bqm)
        ss.info["timing"] = {"preprocessing_ns": t1 - t0, "sampling_ns": t2 - t1, "postprocessing_ns": 0}
        ss.info["seed"] = None  # deterministic: no seed is used
        return ss
