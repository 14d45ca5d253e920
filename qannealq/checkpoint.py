"""Neuron-batch checkpoints in the results store: a long layer solve resumes at its first unfinished batch.

:class:`StoreCheckpoint` is the solve loop's :class:`~qannealq.solve.NeuronCheckpoint` on a
:class:`~qannealq.store.ResultStore`: each finished batch of neuron rows of one (bits, method) unit is a unit of
its own, keyed ``bits=B_layer=L_method=M_neurons=START-END`` (plus the caller's other key parts; ``L`` the
layer's name, with a hash of it where it holds characters a key replaces: :func:`~qannealq.store.key_part`),
written atomically. Its record holds the binary rows (one ``"0101..."`` string per neuron over all coordinates), the
layer seed and a fingerprint of the batch's problem (the floor integers and the free mask), and is used only when
they and the layer's name match; a whole-layer solve's batch (the layer's one) also holds its warm start's name and
per-neuron errors, so that a resume that loads it computes no warm start (a batch stored before they were kept
resumes with its warm start computed again). Once the unit's own row is stored, :meth:`StoreCheckpoint.discard`
removes its batches. A batch stored before layer names were keyed by ``key_part`` (under ``layer=fc-1`` for
``fc 1``) is loaded from that key (its record names the layer, so it is used for that layer alone) and removed alike.
"""

from __future__ import annotations

import hashlib
import logging
import re
from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np

from qannealq._defaults import GRANULARITIES
from qannealq.formulation import LayerProblem
from qannealq.store import ResultStore, key_part, unit_key

__all__ = ["StoreCheckpoint", "is_batch_key", "DEFAULT_BATCH"]

logger = logging.getLogger(__name__)

_HASHED = re.compile(r".{100}-[0-9a-f]{16}")  # a key unit_key cut short, with a hash of the whole

DEFAULT_BATCH = 16
"""Neurons per saved batch: an interruption loses at most this many neuron solves."""


def is_batch_key(key: str) -> bool:
    """Whether a store key is a batch of neuron rows (not a finished unit)."""
    return "_neurons=" in key or key.startswith("neurons=")


def _fingerprint(problem: LayerProblem, start: int, stop: int) -> str:
    digest = hashlib.sha256()
    for part in (problem.base[start:stop], problem.free[start:stop]):
        digest.update(np.ascontiguousarray(part, dtype=np.int64).tobytes())
    digest.update(repr(problem.free.shape).encode())
    return digest.hexdigest()[:32]


@dataclass
class StoreCheckpoint:
    """Batches of finished neuron rows of one unit, kept in ``store`` (see the module docstring).

    Attributes:
        store: the run's results store.
        unit: the key parts of the unit the batches belong to, e.g. ``{"bits": 4, "method": "qubo"}``.
        batch_size: neurons per batch.
        loaded, saved: keys of the batches loaded from the store and written to it.
    """

    store: ResultStore
    unit: dict[str, Any]
    batch_size: int = DEFAULT_BATCH
    loaded: list[str] = field(default_factory=list)
    saved: list[str] = field(default_factory=list)

    def key(self, problem: LayerProblem, start: int, stop: int) -> str:
        """The store key of neurons ``start..stop-1`` of ``problem``'s layer."""
        return unit_key(**self.unit, layer=key_part(problem.name), neurons=f"{start}-{stop - 1}")

    def _record(self, problem: LayerProblem, start: int, stop: int) -> tuple[str, dict | None]:
        """The key and the stored record of this batch (None: none stored)."""
        key = self.key(problem, start, stop)
        record = self.store.get(key)
        legacy = unit_key(**self.unit, layer=problem.name, neurons=f"{start}-{stop - 1}")
        if record is None and legacy != key:  # a store written before key_part: the name as the key kept it
            old = self.store.get(legacy)  # for this layer alone (fc 1 and fc-1 shared it)
            key, record = (legacy, old) if old is not None and old.get("layer") == problem.name else (key, None)
        return key, record

    def load(self, problem: LayerProblem, start: int, stop: int, seed: int) -> np.ndarray | None:
        """The rows saved for this batch, or None (none saved, or saved for another problem or seed)."""
        key, record = self._record(problem, start, stop)
        if record is None:
            return None
        rows = record.get("rows") or []
        if (record.get("layer") != problem.name or record.get("seed") != seed
                or record.get("fingerprint") != _fingerprint(problem, start, stop)
                or len(rows) != stop - start or any(len(r) != problem.num_coordinates for r in rows)):
            logger.warning("%s: saved for another problem or seed; solving these neurons again", key)
            return None
        self.loaded.append(key)
        logger.info("resumed neurons %d-%d of layer %s from %s", start, stop - 1, problem.name, key)
        return np.array([[c == "1" for c in r] for r in rows], dtype=np.int64)

    def load_warm_start(self, problem: LayerProblem, start: int, stop: int, warm_start: str) -> np.ndarray | None:
        """The per-neuron errors of the warm start ``warm_start`` saved with this batch (call after :meth:`load`
        returned its rows), or None: a batch stored before they were kept (its warm start is computed again), one
        of a per-neuron solve, or one saved with another warm start."""
        record = self._record(problem, start, stop)[1] or {}
        errors = record.get("warm_start_errors")
        if record.get("warm_start") != warm_start or not isinstance(errors, list) or len(errors) != stop - start:
            return None
        return np.array(errors, dtype=np.float64)

    def save(self, problem: LayerProblem, start: int, rows: np.ndarray, seed: int,
             warm_start: tuple[str, np.ndarray] | None = None) -> None:
        """Keep the binary rows of neurons ``start..start+len(rows)-1`` (atomically), with ``warm_start``, the name
        and the per-neuron errors of the warm start they were solved from (a whole-layer solve's: a resume that
        loads the batch then needs no warm start, :meth:`load_warm_start`)."""
        stop = start + len(rows)
        key = self.key(problem, start, stop)
        text = ["".join("1" if v else "0" for v in row) for row in np.asarray(rows).tolist()]
        start_of = {} if warm_start is None else {"warm_start": warm_start[0],
                                                  "warm_start_errors": np.asarray(warm_start[1], float).tolist()}
        self.store.put(key, {"layer": problem.name, "start": start, "stop": stop, "seed": seed,
                             "fingerprint": _fingerprint(problem, start, stop), "rows": text, **start_of})
        self.saved.append(key)
        logger.info("solved and saved neurons %d-%d of layer %s as %s", start, stop - 1, problem.name, key)

    def discard_left(self, keys: Iterable[str]) -> list[str]:
        """Remove the batches of this unit among the store's ``keys`` (:attr:`ResultStore.resumed`): a run stopped
        between storing the unit and :meth:`discard` left them, and a resume, which skips the stored unit, kept
        them for good. Returns their keys."""
        mark = {"granularity": "QQGRIDQQ", "layer": "QQLAYERQQ", "neurons": "QQNEURONSQQ"}
        grid = {} if "granularity" in self.unit else {"granularity": mark["granularity"]}  # best: each grid's own
        pattern = re.escape(unit_key(**grid, **self.unit, layer=mark["layer"], neurons=mark["neurons"]))
        pattern = (pattern.replace(re.escape(f"granularity={mark['granularity']}_"), "(?:granularity=[A-Za-z]+_)?")
                   .replace(mark["layer"], ".+").replace(mark["neurons"], r"\d+-\d+"))
        left = [key for key in keys if is_batch_key(key) and re.fullmatch(pattern, key) or self._hashed_batch(key)]
        self.store.discard(*left)
        for key in left:
            logger.info("removed %s, a batch of the stored unit left by an interrupted run", key)
        return left

    def _hashed_batch(self, key: str) -> bool:
        """Whether ``key``, one that :func:`~qannealq.store.unit_key` cut short and hashed (a layer name of some 80
        characters or more: its ``_method=..._neurons=`` parts are gone, so :meth:`discard_left`'s pattern missed
        it and the batch stayed for good), is a batch of this unit: its record's layer and neurons give that key."""
        if not _HASHED.fullmatch(key):
            return False
        record = self.store.get(key) or {}
        layer, start, stop = (record.get(part) for part in ("layer", "start", "stop"))
        if not isinstance(layer, str) or not isinstance(start, int) or not isinstance(stop, int):
            return False
        grids = [{}] if "granularity" in self.unit else [{}, *({"granularity": g} for g in GRANULARITIES)]
        return any(unit_key(**grid, **self.unit, layer=name, neurons=f"{start}-{stop - 1}") == key
                   for grid in grids for name in (key_part(layer), layer))  # layer: a key of before key_part

    def discard(self) -> None:
        """Remove every batch this checkpoint loaded or saved (call once the unit itself is stored)."""
        self.store.discard(*dict.fromkeys(self.loaded + self.saved))
        self.loaded.clear()
        self.saved.clear()
