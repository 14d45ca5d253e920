"""Neuron QUBO instances: what ``compare`` runs and ``export`` writes, each with its metadata and baselines.

A :class:`NeuronInstance` is one neuron's exact rounding BQM (energy = the neuron's mean squared
pre-activation error, ARCHITECTURE.md §1) with where it came from (dataset, layer, neuron, grid, calibration),
the errors of the RTN, GPTQ and GPTQ-restricted baselines on the same grid, the GPTQ-restricted warm start and,
when known, a reference optimum. :func:`instances_from_experiment` makes them from a trained model;
:mod:`qannealq.export` writes and reads them as files.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass, field
from typing import Any, Sequence

import dimod
import numpy as np

from qannealq._defaults import DEFAULT_NEURONS
from qannealq.baselines import BASELINES
from qannealq.errors import InvalidArgumentError
from qannealq.formulation import LayerProblem

__all__ = ["NeuronInstance", "Reference", "instances_from_layer", "instances_from_experiment", "parse_neurons",
           "layer_index", "DEFAULT_NEURONS", "default_neurons"]


@dataclass
class Reference:
    """The reference optimum of an instance.

    Attributes:
        energy: its energy (the neuron's error).
        provenance: ``proven`` (exact enumeration, or Gurobi with a proof) or ``best-known``.
        method: what found it (``exact``, ``gurobi``, ``layer-sa long run``, ``backend sa``, ``file``...).
        sample: the assignment, ``{variable: 0/1}`` (may be empty when only the energy is known).
        seconds: time spent computing it.
    """

    energy: float
    provenance: str
    method: str
    sample: dict = field(default_factory=dict)
    seconds: float = 0.0

    def to_dict(self) -> dict:
        return {"energy": self.energy, "provenance": self.provenance, "method": self.method,
                "sample": {str(k): int(v) for k, v in self.sample.items()}, "seconds": self.seconds}

    @classmethod
    def from_dict(cls, data: dict) -> "Reference":
        sample = {int(k): int(v) for k, v in (data.get("sample") or {}).items()}
        return cls(float(data["energy"]), str(data["provenance"]), str(data["method"]), sample,
                   float(data.get("seconds", 0.0)))


@dataclass
class NeuronInstance:
    """One neuron's QUBO with its metadata (see the module docstring).

    Attributes:
        name: unique, file-safe (``digits4x4-L0-int2-n3``).
        bqm: the BINARY BQM over the neuron's free coordinates (labels: coordinate indices, the bias last).
        meta: dataset, layer, neuron, bits, grid, calibration and the number of variables.
        baselines: error of ``rtn``, ``gptq`` and ``gptq-restricted`` on the same grid and ``H``.
        warm_start: the GPTQ-restricted assignment ``{variable: 0/1}`` (a valid QUBO state).
        reference: the reference optimum, when known.
    """

    name: str
    bqm: dimod.BinaryQuadraticModel
    meta: dict
    baselines: dict[str, float]
    warm_start: dict[int, int] | None = None
    reference: Reference | None = None

    @property
    def num_variables(self) -> int:
        return self.bqm.num_variables

    def digest(self) -> str:
        """SHA-256 of what a call's results depend on: the BQM (vartype, variables, biases, offset) and the warm
        start. A stored comparison records it, so that its resume on other neurons of the same names (an
        ``--instances`` folder exported again from another model) is refused instead of mixing their results."""
        bqm = self.bqm
        labels = sorted(bqm.variables, key=repr)
        linear, (rows, cols, values), offset = bqm.to_numpy_vectors(variable_order=labels)
        # fixed dtypes, the ones stored digests were made of (dimod ignores to_numpy_vectors' dtype arguments, with
        # a DeprecationWarning each call, and gives int32 indices): the same BQM, the same digest
        linear, values = np.asarray(linear, np.float64), np.asarray(values, np.float64)
        rows, cols = np.minimum(rows, cols).astype(np.int32), np.maximum(rows, cols).astype(np.int32)
        order = np.lexsort((cols, rows))
        h = hashlib.sha256(json.dumps([bqm.vartype.name, [repr(v) for v in labels]]).encode())
        for array in (linear, rows[order], cols[order], values[order], np.array([offset], dtype=np.float64)):
            h.update(np.ascontiguousarray(array).tobytes())
        warm = None if self.warm_start is None else [int(self.warm_start[v]) for v in labels]
        h.update(json.dumps(warm).encode())
        return h.hexdigest()

    def initial_states(self, reads: int = 1) -> tuple[np.ndarray, list] | None:
        """The warm start as ``initial_states`` for a sampler: ``reads`` copies of its row over the BQM's
        variables (dwave-samplers start the reads beyond the given rows from random states)."""
        if self.warm_start is None:
            return None
        labels = list(self.bqm.variables)
        row = np.array([[self.warm_start[v] for v in labels]], dtype=np.int8)
        return np.repeat(row, max(int(reads), 1), axis=0), labels


def default_neurons(text: Any) -> Any:
    """``text``, or :data:`DEFAULT_NEURONS` where it is the default's text stored by a comparison (which took the
    default: a typed range past the layer's end was refused before anything was stored)."""
    return DEFAULT_NEURONS if text == DEFAULT_NEURONS else text


def parse_neurons(text: str | Sequence[int] | None, count: int) -> list[int]:
    """Neuron indices from ``"0:16"``, ``"3"``, ``"0,4,7"`` or a list; None means all ``count`` neurons.

    A range reaching past the layer's end is refused, as an index is (``0:99`` on a 16-neuron layer compared 16
    without a word, where the study asked for 99); only :data:`DEFAULT_NEURONS` is clipped to the layer.

    Raises:
        InvalidArgumentError: a malformed text, an index or range outside ``0..count-1`` or an index given twice.
    """
    if text is None:
        return list(range(count))
    if isinstance(text, str):
        try:
            if ":" in text:
                parts = [int(p) if p.strip() else None for p in text.split(":")]
                picked = list(range(count))[slice(*parts)]
            else:
                parts, picked = [], [int(t) for t in text.split(",") if t.strip()]
        except (TypeError, ValueError):
            raise InvalidArgumentError(f"--neurons={text!r} must look like 0:16, 0:16:4, 3 or 0,4,7") from None
        clipped = isinstance(text, type(DEFAULT_NEURONS))  # the default alone: fewer neurons on a smaller layer
        if any(p is not None and not -count <= p <= count for p in parts[:2]) and not clipped:
            raise InvalidArgumentError(f"--neurons={text!r} reaches past the layer's end: this layer has {count} "
                                       f"neurons, 0..{count - 1}; give a range within them, e.g. 0:{count}")
    else:
        picked = [int(t) for t in text]
    bad = [i for i in picked if not 0 <= i < count]
    if bad or not picked:
        raise InvalidArgumentError(f"--neurons={text!r} selects {bad or 'no neuron'}; this layer has neurons "
                                   f"0..{count - 1}")
    twice = sorted({i for i in picked if picked.count(i) > 1})
    if twice:  # two instances of one name: the second file overwrote the first, and compare refused the folder
        raise InvalidArgumentError(f"--neurons={text!r} names neuron(s) {twice} more than once: give each once")
    return picked


def layer_index(names: Sequence[str], layer: int | str) -> int:
    """Position of ``layer`` (a position 0.. in forward order, -1.. from the end, or a module name) among the
    Linear ``names``."""
    if isinstance(layer, str) and not layer.lstrip("-").isdigit():
        if layer not in names:
            raise InvalidArgumentError(f"--layer={layer!r} is not a Linear layer of the model: give a position "
                                       f"0..{len(names) - 1} or one of {list(names)}")
        return list(names).index(layer)
    index = int(layer)
    if -len(names) <= index < 0:  # from the end, as Python counts: -1 is the output layer
        return index + len(names)
    if not 0 <= index < len(names):
        named = str(layer) in names  # a Sequential's module names are digits too: '0', '2' for positions 0, 1
        raise InvalidArgumentError(
            f"--layer={layer!r} is out of range: a number is a position among the model's Linear layers, 0.."
            f"{len(names) - 1} (or -1..-{len(names)} from the end; modules {', '.join(repr(n) for n in names)} in "
            "forward order)"
            + (f"; module {str(layer)!r} is position {list(names).index(str(layer))}: give --layer "
               f"{list(names).index(str(layer))}" if named else ""))
    return index


def _baseline_errors(problem: LayerProblem) -> tuple[dict[str, np.ndarray], np.ndarray]:
    """Per-neuron errors of every baseline, and the GPTQ-restricted binary assignments ``(n, m)``."""
    errors, warm = {}, None
    for name, method in BASELINES.items():
        ints = method(problem)
        errors[name] = problem.errors(problem.grid.dequantize(ints, problem.steps))
        if name == "gptq-restricted":
            warm = problem.encode(ints)
    return errors, warm


_DECODE = ("coordinate j = variables[k]: integer_j = base_integers[k] + x_k, value_j = steps[k] * (integer_j + "
           "grid.offset); coordinate j = fixed.coordinates[k] (not a variable): integer_j = fixed.integers[k], "
           "value_j = fixed.steps[k] * (integer_j + grid.offset); a bias is the last coordinate")


def instances_from_layer(problem: LayerProblem, neurons: Sequence[int], meta: dict[str, Any],
                         prefix: str) -> list[NeuronInstance]:
    """The instances of ``neurons`` of one layer; ``meta`` (dataset, layer...) is copied into each."""
    errors, warm = _baseline_errors(problem)
    out = []
    for i in neurons:
        bqm = problem.neuron_bqm(i)
        idx = problem.variables(i)
        fixed = np.flatnonzero(~problem.free[i])  # on the grid already, clipped, or a dead input: not variables
        grid = problem.grid
        info = {**meta, "neuron": int(i), "bits": grid.bits, "num_variables": int(idx.size),
                "coordinates": int(problem.num_coordinates), "variables": idx.tolist(),
                "base_integers": problem.base[i, idx].tolist(), "steps": problem.steps[i, idx].tolist(),
                "fixed": {"coordinates": fixed.tolist(), "integers": problem.base[i, fixed].tolist(),
                          "steps": problem.steps[i, fixed].tolist()},
                "grid": {"lo": grid.lo, "hi": grid.hi, "offset": grid.offset, "scheme": grid.scheme,
                         "granularity": grid.granularity},
                "decode": _DECODE}
        out.append(NeuronInstance(f"{prefix}-n{i}", bqm, info, {k: float(v[i]) for k, v in errors.items()},
                                  {int(j): int(warm[i, j]) for j in idx}))
    return out


def instances_from_experiment(experiment: Any, layer: int | str, bits: int, neurons: str | Sequence[int] | None,
                              granularity: str = "tensor", int1: str = "sign") -> list[NeuronInstance]:
    """The neuron instances of one layer of a prepared experiment (:func:`qannealq.experiment.prepare`)."""
    from qannealq.experiment import formulate

    names = experiment.layer_names()
    index = layer_index(names, layer)
    problem = formulate(experiment, bits, granularity, int1)[index]
    picked = parse_neurons(neurons, problem.num_neurons)
    config = experiment.config
    size = f"{config.input_size}x{config.input_size}" if config.input_size else ""
    meta = {"dataset": experiment.name, "input_size": config.input_size, "model": experiment.sizes,
            "model_seed": config.seed, "layer": index, "layer_name": names[index],
            "calibration": {"mode": "float", "num_samples": int(len(experiment.calibration)),
                            "seed": config.seed}}
    prefix = f"{config.dataset}{size}-L{index}-int{bits}" + ("" if granularity == "tensor" else "-channel")
    return instances_from_layer(problem, picked, meta, prefix)
