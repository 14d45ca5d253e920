"""qannealq: post-training quantization of dense networks as exact per-neuron rounding QUBOs.

Pipeline (ARCHITECTURE.md): accumulate (hooks) -> formulate (BQM) -> solve (sampler) -> decode -> evaluate.
"""

from __future__ import annotations

import os

#: numpy and scipy each load their own OpenBLAS, and each one's threads spin for about 0.1 s after a call
#: (``OPENBLAS_THREAD_TIMEOUT``'s default, 2^28 cycles), holding a core the other library's threads and the
#: compiled kernels' threads then wait for. On MNIST's first layer on 2 cores (BLAS on 2 threads) GPTQ took
#: 32-212 ms with the default spin and 19-28 ms with a short one (2^4 cycles), ``layer-sa``'s ``fast`` 53-140 ms
#: against 24-44 (the README's "Benchmarks"). OpenBLAS reads it when it loads: so it is set here (unless already
#: set) only where qannealq is imported before numpy and scipy, as by the ``qannealq`` command and the
#: benchmarks; elsewhere set it in the environment.
BLAS_SPIN = "4"
os.environ.setdefault("OPENBLAS_THREAD_TIMEOUT", BLAS_SPIN)

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
