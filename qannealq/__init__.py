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

import importlib
import importlib.util

__version__ = "0.1.0"

#: The public names and the module of each, imported on first use (PEP 562 ``__getattr__``): importing them all
#: here loaded torch, numpy, dimod, scipy and the compiled kernels' modules (2.5 s), which every ``qannealq``
#: command then waited for before parsing its arguments (``--help`` and an argument error too), and Ctrl-C
#: during that import printed a traceback instead of the command's one line and exit 130.
_EXPORTS = {
    "baselines": ("gptq", "gptq_restricted", "rtn"),
    "contract": ("LayerComposite", "LayerSample", "LayerSampler", "draw_seed", "redact"),
    "errors": ("BackendUnavailableError", "CalibrationError", "CredentialsError", "InvalidArgumentError",
               "NonFiniteError", "ProblemTooLargeError", "QannealqError"),
    "formulation": ("DecodedRow", "LayerProblem", "LayerStats", "build_problem"),
    "grid": ("Grid", "make_grid"),
    "model_export": ("QuantizedModel", "load_quantized"),
    "pipeline": ("ModelResult", "formulate_layer", "quantize_model"),
    "solve": ("LayerResult", "quantize_layer"),
}
_HOME = {name: module for module, names in _EXPORTS.items() for name in names}

__all__ = sorted(_HOME)


def __getattr__(name: str):
    """A public name, imported from its module on first use; else a submodule, imported (``qannealq.solve``
    after ``import qannealq`` alone, as when this package imported its modules eagerly)."""
    if name in _HOME:
        value = getattr(importlib.import_module(f"{__name__}.{_HOME[name]}"), name)
        globals()[name] = value
        return value
    if not name.startswith("__") and importlib.util.find_spec(f"{__name__}.{name}") is not None:
        return importlib.import_module(f"{__name__}.{name}")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted({*globals(), *__all__})
