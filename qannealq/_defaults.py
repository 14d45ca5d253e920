"""Defaults and names that the command line's parser shows or checks (``--help``'s defaults, ``--sampler-option``'s
``KEY=VALUE`` for every backend), in a module that imports nothing: the modules they belong to load numpy, dimod or
torch, which ``qannealq --help`` and an argument error would wait for. Each is re-exported by its module."""

from __future__ import annotations

__all__ = ["DEFAULT_WARM_START", "DEFAULT_INACTIVE_WEIGHT", "DEFAULT_MEMORY_LIMIT", "DEFAULT_NEURONS",
           "OFFLINE_BACKENDS", "EVERY", "CALIBRATION_MODES", "GRANULARITIES", "GRANULARITY_CHOICES", "INT1_SCHEMES",
           "OBJECTIVES"]

#: The warm start of every sampler that takes one, unless told otherwise: GPTQ-restricted in pivot order, which
#: starts ``layer-sa``'s default anneal closest to the best known (the frontier tables of docs/layer-sa.md).
DEFAULT_WARM_START = "gptq-restricted-pivot"

#: The relu-aware objective's weight of the samples where the float neuron is off, and the bytes a layer's samples
#: and per-neuron ``H_i`` may hold (:mod:`qannealq.weighted`).
DEFAULT_INACTIVE_WEIGHT = 0.0
DEFAULT_MEMORY_LIMIT = 4 * 2 ** 30

class _DefaultNeurons(str):
    """The type of :data:`DEFAULT_NEURONS` alone: a ``0:8`` typed (``--neurons 0:8``, ``Selection(neurons=...)``)
    is a range like any other, refused past the layer's end as ``0:9`` is."""


DEFAULT_NEURONS = _DefaultNeurons("0:8")
"""``compare``'s default selection: the first 8 neurons, fewer on a smaller layer (the one range clipped). Only
this object is clipped, not the text ``"0:8"`` (:func:`qannealq._compare_instances.default_neurons` restores it from
stored settings)."""

#: ``--calibration``'s modes (:mod:`qannealq.calibration`); the grids (:mod:`qannealq.grid`); what a quantization
#: may ask for: a grid, or ``best``, both grids solved and the lower summed layer error kept
#: (:func:`qannealq.pipeline.quantize_model`); the int1 schemes; the per-neuron objectives (:mod:`qannealq.weighted`).
#: The parser's choices are these tuples, not copies of them.
CALIBRATION_MODES = ("float", "sequential")
GRANULARITIES = ("tensor", "channel")
GRANULARITY_CHOICES = (*GRANULARITIES, "best")
INT1_SCHEMES = ("sign", "paper")
OBJECTIVES = ("preact", "relu-aware")

#: The backends ``compare`` runs unless told otherwise (:mod:`qannealq.compare`).
OFFLINE_BACKENDS = ("sa", "tabu", "steepest", "exact", "gurobi", "qaoa", "dwave-mock", "layer-sa")

EVERY = "*"
"""The ``sampler_options`` entry for options given without a backend (``--sampler-option KEY=VALUE``): each
compared backend that takes the key gets them (:meth:`qannealq.compare.CompareSettings.options_for`)."""
