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

from qannealq._lazy import lazy_exports

__version__ = "0.1.0"

#: The public names by module, each imported on first use (PEP 562, :func:`qannealq._lazy.lazy_exports`), so that
#: ``import qannealq`` loads neither torch nor numpy: every ``qannealq`` command, ``--help`` and argument errors
#: included, waited 2.5 s for them before parsing its arguments, and Ctrl-C then printed a traceback.
__all__, __getattr__, __dir__ = lazy_exports(__name__, {
    "baselines": ("gptq", "gptq_restricted", "rtn"),
    "contract": ("LayerComposite", "LayerSample", "LayerSampler", "draw_seed", "redact"),
    "errors": ("BackendUnavailableError", "CalibrationError", "CredentialsError", "InvalidArgumentError",
               "NonFiniteError", "ProblemTooLargeError", "QannealqError"),
    "formulation": ("DecodedRow", "LayerProblem", "LayerStats", "build_problem"),
    "grid": ("Grid", "make_grid"),
    "model_export": ("QuantizedModel", "load_quantized"),
    "pipeline": ("ModelResult", "formulate_layer", "quantize_model"),
    "solve": ("LayerResult", "quantize_layer"),
})
