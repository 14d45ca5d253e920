"""The exception hierarchy: one root, each subclass also a matching built-in."""

from __future__ import annotations

__all__ = [
    "QannealqError",
    "InvalidArgumentError",
    "NonFiniteError",
    "CalibrationError",
    "ProblemTooLargeError",
    "BackendUnavailableError",
    "CredentialsError",
    "StoreError",
    "BackendError",
    "SolveMemoryError",
]


class QannealqError(Exception):
    """Root of every error raised by qannealq."""


class InvalidArgumentError(QannealqError, ValueError):
    """An argument has a value qannealq cannot use; the message names it and what to do."""


class NonFiniteError(InvalidArgumentError):
    """Weights, biases or calibration data contain NaN or infinity."""


class CalibrationError(InvalidArgumentError):
    """Calibration data are empty, of the wrong shape, or do not reach a layer."""


class ProblemTooLargeError(QannealqError, ValueError):
    """A backend was given a problem larger than it can take; names both sizes."""


class BackendUnavailableError(QannealqError, ImportError):
    """A backend's SDK is not installed; the message gives the pip command."""


class CredentialsError(QannealqError, RuntimeError):
    """A cloud backend has no credentials; the message says how to set them (never shows one)."""


class StoreError(QannealqError, OSError):
    """The results folder cannot be written (permissions, full disk); the message names the folder."""


class BackendError(QannealqError, RuntimeError):
    """A backend call failed (after its retries, if the error was transient); names the backend and the cause."""


class SolveMemoryError(BackendError, MemoryError):
    """A solve ran out of memory (a sampler's ``MemoryError``, in this process or an executor's worker); names the
    layer and the neuron(s) and what to do. Still a ``MemoryError`` for code that catches one."""
