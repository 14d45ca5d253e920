"""A deadline for a search that can shorten itself (the warm start's beam under ``layer-sa``'s ``time_limit``)."""

from __future__ import annotations

import time
from dataclasses import dataclass

from qannealq.errors import InvalidArgumentError

__all__ = ["Deadline"]


@dataclass
class Deadline:
    """The ``time.perf_counter()`` a search should end by, and whether it has shortened a search.

    Attributes:
        at: the time to end by.
        cut: set by the search it shortened (a narrower beam, neurons left to their own start): the result then
            depends on timing.
    """

    at: float
    cut: bool = False
    parent: "Deadline | None" = None

    def __post_init__(self) -> None:
        if isinstance(self.at, bool) or not isinstance(self.at, (int, float)):
            raise InvalidArgumentError(f"Deadline(at={self.at!r}): at must be a time.perf_counter() value")
        self.at = float(self.at)

    def left(self) -> float:
        """Seconds until the deadline (negative once passed)."""
        return self.at - time.perf_counter()

    def mark_cut(self) -> None:
        """Record that a search was shortened, here and in the deadline this one is a part of."""
        self.cut = True
        if self.parent is not None:
            self.parent.mark_cut()

    def part(self, fraction: float) -> "Deadline":
        """A deadline ``fraction`` of the time left from now (for one of several searches in a row, e.g. a
        beam's pilot before its other neurons); shortening a search under it marks this one cut too."""
        return Deadline(time.perf_counter() + max(0.0, self.left()) * float(fraction), parent=self)
