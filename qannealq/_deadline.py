"""A deadline for a search that can shorten itself (the warm start's beam under ``layer-sa``'s ``time_limit``)."""

from __future__ import annotations

import math
import time
from dataclasses import dataclass

from qannealq.errors import InvalidArgumentError

__all__ = ["Deadline", "TIGHT", "RESERVE", "KEEP_SECONDS", "KEEP_ROWS"]

#: Where the time a deadline leaves, once a search's fixed costs are paid, is under this many times those costs,
#: the search takes its deadline's ``tight_share`` of it (:meth:`Deadline.search`): too little is left for what
#: follows it (``layer-sa``'s population, whose own fixed costs are about those of the warm start's) to be worth
#: running, and the search is what the time buys. On CIFAR-10's first layer the warm start's fixed costs took
#: 1.1-1.6 s (1.4-2 GPTQ times) while its GPTQ starts came before its beam: a limit of 5 GPTQ times left about twice
#: them, 10 about 4-6 times. Since 2026-12-05 they are its factorizations alone (about 0.6 s), and ``layer-sa``
#: before a population takes thresholds of its own (:data:`qannealq.backends.layer_sa.POPULATION_TIGHT`,
#: :data:`qannealq.backends.layer_sa.THOROUGH_TIGHT`); this one is the rest's (a long anneal after the beam).
TIGHT = 3.5
#: Where the time left is tight, what a search leaves for what follows it, in units of its fixed costs
#: (:meth:`Deadline.search`): ``layer-sa``'s work after the warm start's beam whatever its search (the starts'
#: energies, their polish and the final energies) took 0.8-0.9 s on CIFAR-10's first layer, after fixed costs of
#: 1.2-1.5 s. There, under 5 GPTQ times, the default overran the limit by 0.2-0.6 GPTQ times with it and ended
#: 23-26 % above a fixed reference total, by 1.1-1.2 GPTQ times without it and 17-19 % above (2 runs each).
#: Where the time is not tight the search after the beam (a population) fits itself to the time left.
RESERVE = 0.6
#: What a search whose deadline keeps time for what follows it (:attr:`Deadline.keep`) keeps beyond ``keep`` times
#: its fixed costs: the calls after it whose time does not scale with the layer (the start's choice, the
#: sampler's set-up, the polish, the final errors; on MNIST's 129-input second layer 3.0-3.4 ms after the beam).
KEEP_SECONDS = 0.003
#: What it keeps per row of the layer per live input (the ``rows`` :meth:`Deadline.search` is given), in units
#: of the fixed costs' scale, beyond ``keep``: what follows the beam takes products of the layer's rows with
#: ``H`` (``n m²``) and their polish, where the factorizations take ``m³``. On MNIST's first layer (128 neurons,
#: 599 live inputs) it took 1.24 times the factorizations' time (median of 10 runs), on EMNIST-letters' (256
#: neurons) 1.6-2.0 times (5 runs). Since the solution's errors take their product from the start's
#: (:mod:`qannealq._near`) it grows with the neurons per live input and little else
#: (:data:`qannealq.backends.layer_sa.SHORT_SEARCH_KEEP`, 0.3 beside 3.6 here, until 2026-12-05 0.7 beside 2.6).
KEEP_ROWS = 3.6


def _share(name: str, value: float | None) -> None:
    if value is None and name == "tight_share":
        return
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= 1:
        raise InvalidArgumentError(f"Deadline({name}={value!r}): {name} must be a fraction in (0, 1]")


@dataclass
class Deadline:
    """The ``time.perf_counter()`` a search should end by, and whether it has shortened a search.

    Attributes:
        at: the time to end by.
        cut: set by the search it shortened (a narrower beam, neurons left to their own start): the result then
            depends on timing.
        parent: the deadline this one is a part of (:meth:`part`): shortening a search under this one marks it
            cut too.
        share: where ``at`` is the end of more than the search (``layer-sa``'s whole layer), the fraction of the
            time left, once the search's fixed costs are paid, that the search proper may take
            (:meth:`search`); 1: all of it.
        tight_share: that fraction where the time left is under ``tight`` times those fixed costs (None:
            ``share``).
        tight: that threshold (:data:`TIGHT` by default; ``layer-sa`` before a population takes its own,
            :data:`qannealq.backends.layer_sa.POPULATION_TIGHT` and ``thorough``'s
            :data:`qannealq.backends.layer_sa.THOROUGH_TIGHT`).
        late: set by a warm start that left its search out for lack of time
            (:data:`qannealq.baselines.SKIP_BEAM`): what follows it should be the polish alone, whose fixed costs
            are the least (``layer-sa``'s ``late``).
        keep: where it is not tight and the search's fixed costs were measured (a ``scale`` above 0), the search
            takes all the time left but ``keep`` (and :data:`KEEP_ROWS` per row per input) times that scale and
            :data:`KEEP_SECONDS`, kept for what follows it, instead of ``share`` of it (:meth:`search`); 0: the
            share, whose rest is what follows.
        polish: set on the deadline :meth:`search` gives where the time left was tight (``tight_share``): what
            follows the search is the polish alone, so a warm start forms one start per neuron (the beam's other
            survivors, the starts of a population's reads, would go unused: on CIFAR-10's first layer their eight
            rows a neuron took 0.1-0.2 s to gather, encode and check after the beam, where the tight path keeps
            about 0.3 s).
        searched_tight: set on this deadline where :meth:`search` found the time left tight (the deadline it gave
            is :attr:`polish`): ``layer-sa`` then searches by its polish and, on a population's layer, a greedy
            descent by chains, whatever time the beam leaves.
    """

    at: float
    cut: bool = False
    parent: "Deadline | None" = None
    share: float = 1.0
    tight_share: float | None = None
    keep: float = 0.0
    late: bool = False
    tight: float = TIGHT
    polish: bool = False
    searched_tight: bool = False

    def __post_init__(self) -> None:
        if isinstance(self.at, bool) or not isinstance(self.at, (int, float)):
            raise InvalidArgumentError(f"Deadline(at={self.at!r}): at must be a time.perf_counter() value")
        self.at = float(self.at)
        _share("share", self.share)
        _share("tight_share", self.tight_share)
        if isinstance(self.tight, bool) or not isinstance(self.tight, (int, float)) or not 0 <= self.tight < math.inf:
            raise InvalidArgumentError(f"Deadline(tight={self.tight!r}): tight must be a finite number >= 0 (times the "
                                       "search's fixed costs)")
        if isinstance(self.keep, bool) or not isinstance(self.keep, (int, float)) or not 0 <= self.keep < math.inf:
            raise InvalidArgumentError(f"Deadline(keep={self.keep!r}): keep must be a finite number >= 0 (times the "
                                       "search's fixed costs)")

    def left(self) -> float:
        """Seconds until the deadline (negative once passed)."""
        return self.at - time.perf_counter()

    def mark_cut(self) -> None:
        """Record that a search was shortened, here and in the deadline this one is a part of."""
        self.cut = True
        if self.parent is not None:
            self.parent.mark_cut()

    def mark_late(self) -> None:
        """Record that the search was left out for lack of time (:attr:`late`), and that it was shortened
        (:meth:`mark_cut`), here and in the deadline this one is a part of."""
        self.late = self.cut = True
        if self.parent is not None:
            self.parent.mark_late()

    def part(self, fraction: float) -> "Deadline":
        """A deadline ``fraction`` of the time left from now (for one of several searches in a row, e.g. a
        beam's pilot before its other neurons); shortening a search under it marks this one cut too."""
        return Deadline(time.perf_counter() + max(0.0, self.left()) * float(fraction), parent=self)

    def search(self, fixed: float, scale: float | None = None, rows: float = 0.0) -> "Deadline":
        """The search proper's deadline, now that its fixed costs (``fixed`` seconds: the warm start's
        factorizations; GPTQ's own starts follow the beam under a deadline) are paid: ``share`` of the time left (where
        ``keep`` is set and ``scale`` above 0, all of it less ``keep`` plus :data:`KEEP_ROWS` times ``rows``, times
        ``scale``, and :data:`KEEP_SECONDS`), or where that is under :data:`TIGHT` times ``fixed``, ``tight_share``
        of it less :data:`RESERVE` times ``scale`` (default ``fixed``: what follows the search is then its fixed
        costs alone, ``layer-sa``'s polish, without a population). ``scale``: the part of the fixed costs what
        follows scales with (the factorizations; where GPTQ's own starts came first, until 2026-12-05 on a
        rank-deficient layer, their energies took no products after the beam, and on CIFAR-10's first layer under 5
        GPTQ times RESERVE times all the fixed costs left 0.47 s of 3.6 unused). ``rows``: the layer's rows per live
        input (0: not given). Shortening a search under it marks this one cut too; where tight, it is marked
        :attr:`polish`."""
        seconds, tight = self._search(fixed, scale, rows)
        owner: Deadline | None = self
        while tight and owner is not None:  # and the deadlines this one is a part of
            owner.searched_tight, owner = True, owner.parent
        return Deadline(time.perf_counter() + seconds, parent=self, polish=tight)

    def search_seconds(self, fixed: float, scale: float | None = None, rows: float = 0.0) -> float:
        """The seconds :meth:`search` gives the search proper from now, with the same arguments (a warm start
        asks before it pays its fixed costs whether a search would get enough of them:
        :data:`qannealq.baselines.SKIP_BEAM`)."""
        return self._search(fixed, scale, rows)[0]

    def _search(self, fixed: float, scale: float | None, rows: float) -> tuple[float, bool]:
        """:meth:`search_seconds`' seconds, and whether the time left was tight (the search's deadline then
        :attr:`polish`), from one reading of the clock."""
        fixed = max(0.0, float(fixed))
        scale = fixed if scale is None else max(0.0, float(scale))
        left = self.left()
        if self.tight_share is not None and left < self.tight * fixed:  # what follows is the polish: its time kept
            return max(0.0, left - RESERVE * scale) * self.tight_share, True
        if self.keep and scale > 0:  # what follows kept, measured by the fixed costs; the search the rest
            kept = (self.keep + KEEP_ROWS * max(0.0, float(rows))) * scale + KEEP_SECONDS
            return max(0.0, left - kept), False
        return max(0.0, left) * self.share, False
