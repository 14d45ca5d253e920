"""The reference optimum of a neuron instance, and its provenance.

* ``proven``: exact enumeration when the BQM has at most ``exact_limit`` (24) variables; else Gurobi, when it
  is installed and the BQM fits its licence, warm-started from the best state found so far and proving
  optimality within ``proof_seconds`` (``info["proved_optimal"]``).
* ``best-known`` otherwise: the lowest energy of two long ``layer-sa`` runs (many reads and sweeps, from
  the warm start and from a random state), Gurobi's incumbent, a reference stored with the instance, and, in :func:`settle`, every read
  of every compared backend.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

import dimod
import numpy as np

from qannealq._compare_instances import NeuronInstance, Reference
from qannealq.checks import check_number, check_positive, check_seed
from qannealq.metrics import energy_noise

__all__ = ["ReferenceOptions", "reference_optimum", "better", "settle", "PROVEN", "BEST_KNOWN"]

logger = logging.getLogger(__name__)

PROVEN, BEST_KNOWN = "proven", "best-known"
_TOLERANCE = 1e-9  # relative: energies closer than this, or than the BQM's float noise, are the same optimum


@dataclass(frozen=True)
class ReferenceOptions:
    """How hard to look for the reference optimum.

    Attributes:
        exact_limit: enumerate BQMs up to this many variables (proof by exhaustion).
        proof_seconds: Gurobi's time limit per BQM (0: do not try Gurobi).
        long_reads, long_sweeps: the long ``layer-sa`` run on larger BQMs.
        seed: seed of the long run and of Gurobi.
    """

    exact_limit: int = 24
    proof_seconds: float = 10.0
    long_reads: int = 64
    long_sweeps: int = 2000
    seed: int = 0

    def __post_init__(self) -> None:  # named as the commands' flags (``export``, ``compare``)
        check_positive("exact_limit", self.exact_limit, minimum=0)
        check_number("--proof-time", self.proof_seconds, strict=False, unit="seconds")
        check_positive("--long-reads", self.long_reads)
        check_positive("--long-sweeps", self.long_sweeps)
        check_seed("seed", self.seed)


def _sample_dict(sampleset: dimod.SampleSet) -> tuple[float, dict]:
    best = sampleset.first
    return float(best.energy), {int(k): int(v) for k, v in best.sample.items()}


def _gurobi_ready() -> bool:
    from qannealq.backends import available_backends

    return any(row.name == "gurobi" and row.status == "ready" for row in available_backends())


def _long_run(instance: NeuronInstance, options: ReferenceOptions) -> Reference:
    """The better of two long ``layer-sa`` runs: from the warm start, and from a random state (its reheat
    anneals stay near their start, so the second explores another basin)."""
    from qannealq.backends import get_sampler

    t0 = time.perf_counter()
    sampler = get_sampler("layer-sa")
    best = None
    for start in (instance.initial_states(), None):
        ss = sampler.sample(instance.bqm, num_reads=options.long_reads, num_sweeps=options.long_sweeps,
                            initial_states=start, seed=options.seed)
        energy, sample = _sample_dict(ss)
        if best is None or energy < best[0]:
            best = (energy, sample)
    return Reference(best[0], BEST_KNOWN, f"layer-sa long runs (2 x {options.long_reads} reads x "
                     f"{options.long_sweeps} sweeps)", best[1], time.perf_counter() - t0)


def _gurobi(instance: NeuronInstance, start: Reference, options: ReferenceOptions) -> Reference | None:
    from qannealq.backends import get_sampler

    t0 = time.perf_counter()
    with get_sampler("gurobi") as solver:
        if instance.num_variables > solver.max_variables:
            return None
        labels = list(instance.bqm.variables)
        warm = (np.array([[start.sample.get(v, 0) for v in labels]], dtype=np.int8), labels)
        ss = solver.sample(instance.bqm, initial_states=warm, time_limit=options.proof_seconds, seed=options.seed)
    energy, sample = _sample_dict(ss)
    proved = bool(ss.info.get("proved_optimal"))
    return Reference(energy, PROVEN if proved else BEST_KNOWN, "gurobi" if proved else "gurobi incumbent",
                     sample, time.perf_counter() - t0)


def _tolerance(energy: float, other: float, noise: float) -> float:
    """How far two energies of one BQM may lie apart and be the same optimum: :data:`_TOLERANCE` of the larger,
    and at least ``noise`` (:func:`qannealq.metrics.energy_noise`). Relative alone, an optimum of 0 was beaten by
    the -1e-17 of a state whose terms summed in another order."""
    return _TOLERANCE * max(abs(energy), abs(other)) + noise


def better(a: Reference | None, b: Reference | None, noise: float = 0.0) -> Reference | None:
    """The lower of two references; on a tie (within :func:`_tolerance`, ``noise`` the BQM's float noise) the
    proven one, where only one is."""
    if a is None or b is None:
        return a or b
    if (a.provenance == PROVEN) != (b.provenance == PROVEN) and \
            abs(a.energy - b.energy) <= _tolerance(a.energy, b.energy, noise):
        return a if a.provenance == PROVEN else b
    return a if a.energy <= b.energy else b


def reference_optimum(instance: NeuronInstance, options: ReferenceOptions = ReferenceOptions()) -> Reference:
    """The reference optimum of ``instance`` before any compared backend ran (see the module docstring)."""
    from qannealq.backends import get_sampler

    stored, noise = instance.reference, energy_noise(instance.bqm)
    if instance.num_variables <= options.exact_limit:
        t0 = time.perf_counter()
        energy, sample = _sample_dict(get_sampler("exact", max_variables=max(options.exact_limit, 0))
                                      .sample(instance.bqm))
        return better(Reference(energy, PROVEN, "exact", sample, time.perf_counter() - t0), stored, noise)
    found = better(_long_run(instance, options), stored, noise)
    if options.proof_seconds > 0 and _gurobi_ready():
        found = better(_gurobi(instance, found, options), found, noise)
    return found


def settle(reference: Reference, found: dict[str, float], noise: float = 0.0) -> Reference:
    """The final reference: ``reference``, unless a compared backend found a lower energy (``found``: its
    lowest energy per backend) beyond float noise (:func:`_tolerance`, ``noise`` the BQM's). A proven optimum
    so beaten is logged as an inconsistency."""
    if not found:
        return reference
    backend = min(found, key=found.get)
    energy = found[backend]
    if energy >= reference.energy - _tolerance(reference.energy, reference.energy, noise):
        return reference
    if reference.provenance == PROVEN:
        logger.warning("backend %s found %.17g below the proven optimum %.17g (%s): keeping the lower energy",
                       backend, energy, reference.energy, reference.method)
    return Reference(energy, BEST_KNOWN, f"backend {backend}", {}, 0.0)

