"""qannealq: post-training quantization of dense networks as exact per-neuron rounding QUBOs.

Pipeline (ARCHITECTURE.md): accumulate (hooks) -> formulate (BQM) -> solve (sampler) -> decode -> evaluate.
"""

from __future__ import annotations

from qannealq.baselines import gptq, gptq_restricted, rtn
from qannealq.contract import LayerComposite, LayerSample, LayerSampler, draw_seed, redact
from qannealq.errors import (BackendUnavailableError, CalibrationError, CredentialsError, InvalidArgumentError,
                             NonFiniteError, ProblemTooLargeError, QannealqError)
from qannealq.formulation import DecodedRow, LayerProblem, LayerStats, build_problem
from qannealq.grid import Grid, make_grid
from qannealq.model_export import QuantizedModel, load_quantized
from qannealq.pipeline import ModelResult, formulate_layer, quantize_model
from qannealq.solve import LayerResult, quantize_layer

__version__ = "0.1.0"

__all__ = [
    "BackendUnavailableError", "CalibrationError", "CredentialsError", "DecodedRow", "Grid",
    "InvalidArgumentError", "LayerComposite", "LayerProblem", "LayerResult", "LayerSample", "LayerSampler", "LayerStats", "ModelResult", "QuantizedModel",
    "NonFiniteError", "ProblemTooLargeError", "QannealqError", "build_problem", "draw_seed", "redact", "formulate_layer", "gptq",
    "gptq_restricted", "load_quantized", "make_grid", "quantize_layer", "quantize_model", "rtn",
]
