"""Calibration: forward hooks on ``torch.nn.Linear`` layers accumulate ``H``, ``g`` and ``c``.

Two modes (ARCHITECTURE.md §1):

* ``"float"`` (the paper's): every layer sees the float network's inputs.
* ``"sequential"``: each layer sees the inputs produced by the already-quantized earlier layers; the
  targets stay the float network's pre-activations (as in AdaRound and GPTQ).

Statistics are accumulated in float64 batch by batch, so the calibration set is never held per layer.
Hooks are removed on every exit path.
"""

from __future__ import annotations

import contextlib
import inspect
import logging
from typing import Any, Callable, Iterator, Mapping, Sequence

import numpy as np
import torch

from qannealq._defaults import CALIBRATION_MODES
from qannealq.checks import as_values, check_distinct
from qannealq.errors import CalibrationError, InvalidArgumentError, NonFiniteError
from qannealq.formulation import LayerStats

__all__ = ["CALIBRATION_MODES", "as_calibration_tensor", "model_inputs", "linear_layers", "collect_stats",
           "Accumulator", "as_rows"]

logger = logging.getLogger(__name__)


def _loader_inputs(loader: torch.utils.data.DataLoader) -> torch.Tensor:
    """The inputs of every batch of ``loader``, concatenated: a batch is the inputs, or ``(inputs, labels...)``."""
    batches = []
    for batch in loader:
        inputs = batch[0] if isinstance(batch, (tuple, list)) else batch
        if isinstance(inputs, Mapping):  # which value is the input is the model's to say
            keys = ", ".join(repr(k) for k in inputs)
            first = next(iter(inputs), "input")
            raise CalibrationError(f"a DataLoader's batches are dicts (keys {keys}): which one holds the inputs is not "
                                   f"known; give the inputs alone, e.g. torch.cat([batch[{first!r}] for batch in "
                                   "loader])")
        if not isinstance(inputs, torch.Tensor):
            raise CalibrationError(f"a DataLoader's batches must hold input tensors (or (inputs, labels) pairs), "
                                   f"got {type(inputs).__name__}")
        batches.append(inputs)
    if not batches:
        raise CalibrationError("the calibration DataLoader yields no batch: give it at least one sample")
    return torch.cat(batches)


def model_inputs(model: torch.nn.Module, data: object) -> torch.Tensor:
    """``data`` as :func:`as_calibration_tensor` returns it for ``model``: in the dtype of its parameters, but integer
    data kept as they are where the model holds an ``Embedding`` or ``EmbeddingBag`` (token indices: cast to
    float, they failed in the embedding with "Expected tensor for argument #1 'indices' to have ... Long, Int")."""
    indices = any(isinstance(m, (torch.nn.Embedding, torch.nn.EmbeddingBag)) for m in model.modules())
    return as_calibration_tensor(data, dtype=next(model.parameters()).dtype, indices=indices)


def as_calibration_tensor(data: object, dtype: torch.dtype = torch.float32, indices: bool = False) -> torch.Tensor:
    """Validate calibration inputs (array or tensor, first axis = samples; or a ``DataLoader`` whose batches are
    inputs or ``(inputs, labels)``, every batch taken) and return a tensor of ``dtype`` (integer data left as they
    are if ``indices``: an embedding's inputs)."""
    try:
        if isinstance(data, torch.utils.data.DataLoader):
            tensor = _loader_inputs(data)
        else:
            tensor = torch.as_tensor(np.asarray(data) if not isinstance(data, torch.Tensor) else data)
    except CalibrationError:
        raise
    except (TypeError, ValueError) as exc:
        hint = (" (a pair (inputs, labels)? give the inputs alone)" if isinstance(data, tuple) and len(data) == 2
                else " (batches from a generator? give torch.cat(list(batches)))" if isinstance(data, Iterator)
                else "")
        raise CalibrationError(f"calibration data must be an array or tensor of inputs, or a DataLoader{hint}: "
                               f"{exc}") from None
    if tensor.ndim < 2 or tensor.shape[0] == 0:
        raise CalibrationError(
            f"calibration data must have shape (N, ...) with N >= 1 samples, got {tuple(tensor.shape)}"
        )
    if not torch.isfinite(tensor).all():
        raise NonFiniteError("calibration data contain NaN or infinity: clean them before calibrating")
    if indices and not tensor.is_floating_point() and not tensor.is_complex():
        return tensor
    converted = tensor.to(dtype)
    if not torch.isfinite(converted).all():  # finite data beyond the model's float16 range (was "NaN or infinity")
        raise NonFiniteError(f"calibration data reach {float(tensor.abs().max()):.6g} in magnitude, beyond the range "
                             f"of the model's {dtype} (largest {torch.finfo(dtype).max:.6g}): scale them as the "
                             "model's training inputs were")
    return converted


class _WrongWidth(Exception):
    """A Linear layer got inputs of another width than its ``in_features`` (raised by :func:`_forward`'s hooks)."""


def _check_width(name: str, module: torch.nn.Linear, args: tuple, kwargs: dict) -> None:
    x = args[0] if args else next(iter(kwargs.values()), None)
    if isinstance(x, torch.Tensor) and x.ndim and x.shape[-1] != module.in_features:
        raise _WrongWidth(f"layer {name!r} (Linear) takes {module.in_features} input features, and gets them of shape "
                          f"{tuple(x.shape)}")


def _more_than_one_input(model: torch.nn.Module) -> str | None:
    """The signature of ``model.forward`` where it cannot be called with one argument, else None."""
    try:
        signature = inspect.signature(model.forward)
        signature.bind(None)
    except ValueError:  # no signature to read (a builtin): not known to take more
        return None
    except TypeError:
        return str(signature)
    return None


def _forward(model: torch.nn.Module, batch: torch.Tensor) -> None:
    """Run ``model`` on ``batch``; a Linear layer given inputs of another width is named (torch's message, "mat1
    and mat2 shapes cannot be multiplied (1x240 and 12x6)", named neither the layer nor the widths)."""
    handles = [module.register_forward_pre_hook(lambda mod, args, kwargs, _n=name: _check_width(_n, mod, args, kwargs),
                                                with_kwargs=True)
               for name, module in model.named_modules() if isinstance(module, torch.nn.Linear)]
    shape = tuple(batch.shape[1:])
    try:
        model(batch)
    except _WrongWidth as exc:
        raise CalibrationError(f"the model cannot run on calibration data of shape {shape} per sample: {exc}; give "
                               "inputs of the shape the model was trained on") from None
    except RuntimeError as exc:
        raise CalibrationError(f"the model cannot run on calibration data of shape {shape} per sample: {exc}") from None
    except TypeError as exc:
        signature = _more_than_one_input(model)
        if signature is None:
            raise
        raise CalibrationError(f"the model's forward{signature} takes more than one input, and calibration runs "
                               f"model(batch) on the calibration data alone ({exc}): quantize a Module whose forward "
                               "takes one tensor (e.g. the inputs concatenated) and calls it") from None
    finally:
        for handle in handles:
            handle.remove()


@contextlib.contextmanager
def _hooks(model: torch.nn.Module, names: Sequence[str], fn) -> Iterator[None]:
    """``fn(name, inputs, output)`` after each named layer runs; ``inputs`` holds the layer's input also where
    ``forward`` passed it by keyword (``self.fc(input=x)``: the positional inputs alone were empty, an IndexError)."""
    modules = dict(model.named_modules())
    handles = []
    try:
        for name in names:
            handles.append(modules[name].register_forward_hook(
                lambda mod, args, kwargs, out, _n=name: fn(_n, args or tuple(kwargs.values()), out),
                with_kwargs=True))
        yield
    finally:
        for handle in handles:
            handle.remove()


def linear_layers(model: torch.nn.Module, data: torch.Tensor, names: Sequence[str] | None = None) -> list[str]:
    """Names of the model's ``nn.Linear`` layers in the order a forward pass runs them.

    Args:
        model: the float network.
        data: calibration inputs (one sample is run).
        names: restrict to these layers (a name alone is one layer); each must be an ``nn.Linear``.
    """
    modules = dict(model.named_modules())
    if names is None:
        names = [n for n, m in modules.items() if isinstance(m, torch.nn.Linear)]
    else:
        given, names = names, as_values(names)  # one name, not its characters ("02" was layers "0" and "2")
        if not all(isinstance(n, str) for n in names):
            raise InvalidArgumentError(f"layers={given!r} must be module names, e.g. ['0', '2'] "
                                       "(model.named_modules())")
        check_distinct("layers", names)
    for name in names:
        if name not in modules:
            linear = [n for n, m in modules.items() if isinstance(m, torch.nn.Linear)]
            raise InvalidArgumentError(f"layers: the model has no layer named {name!r}; its torch.nn.Linear layers "
                                       f"are {linear} (model.named_modules())")
        if not isinstance(modules[name], torch.nn.Linear):
            raise InvalidArgumentError(
                f"layers: {name!r} is a {type(modules[name]).__name__}, not a torch.nn.Linear; "
                "only dense layers can be quantized"
            )
    if not names:
        raise InvalidArgumentError("the model has no torch.nn.Linear layer to quantize")
    order: list[str] = []
    with _hooks(model, names, lambda n, inp, out: order.append(n)), torch.no_grad():
        _forward(model, data[:1])
    shared = {n: order.count(n) for n in dict.fromkeys(order) if order.count(n) > 1}
    if shared:
        rest = [n for n in dict.fromkeys(order) if n not in shared]
        raise InvalidArgumentError(
            f"Linear layer(s) {', '.join(f'{n!r} ({k} times)' for n, k in shared.items())} run more than once per "
            "forward pass (shared weights): one rounding cannot be fitted to each use, so they are not supported; "
            + (f"quantize the others with layers={rest}" if rest else "no other Linear layer is left to quantize"))
    missing = [n for n in names if n not in order]
    if missing:
        reached = list(dict.fromkeys(order))
        raise CalibrationError(f"layers {missing} are not reached by a forward pass on the calibration data (their "
                               "forward() is not called: unused, or their weight read directly, as "
                               "MultiheadAttention reads its out_proj's, and not calibrated here): pass "
                               f"layers={reached}, the ones it reaches")
    _check_untied(model, order)
    return order


def _check_untied(model: torch.nn.Module, names: Sequence[str]) -> None:
    """Refuse two layers to quantize that share a weight or bias Parameter (``b.weight = a.weight``): the quantized
    copy keeps the tie, so the later layer's values replaced the earlier one's, whose reported errors no longer held.
    A tie to a module left in float (one of the pair quantized, a head tied to an embedding) is kept, with a
    warning: that module then holds the quantized values too."""
    owners: dict[int, list[str]] = {}
    for module_name, module in model.named_modules():
        for key, param in module.named_parameters(recurse=False):
            owners.setdefault(id(param), []).append(f"{module_name}.{key}")
    modules = dict(model.named_modules())
    tied: dict[str, list[str]] = {}
    for name in names:
        for key in ("weight", "bias"):
            param = getattr(modules[name], key, None)
            others = [] if param is None else [o for o in owners[id(param)] if o != f"{name}.{key}"]
            if others:
                tied.setdefault(name, []).extend(others)
    clashes = {name: others for name, others in tied.items() if any(o.rsplit(".", 1)[0] in names for o in others)}
    if clashes:
        one: list[str] = []  # the first layer of each tied group, and the untied ones
        for name in names:
            if not any(o.rsplit(".", 1)[0] in one for o in tied.get(name, [])):
                one.append(name)
        shown = "; ".join(f"{n!r} with {', '.join(others)}" for n, others in clashes.items())
        raise InvalidArgumentError(
            f"Linear layers to quantize share a Parameter (tied weights: {shown}): one rounding cannot be fitted to "
            "each, and the one written last replaced the other's; untie them (e.g. b.weight = "
            f"torch.nn.Parameter(b.weight.detach().clone())), or quantize one layer of each tied group: layers={one}")
    for name, others in tied.items():
        logger.warning("layer %r shares a Parameter with %s (tied): the quantized copy keeps the tie, so they hold "
                       "this layer's quantized values too", name, ", ".join(others))


def as_rows(x: torch.Tensor, y: torch.Tensor, bias: bool) -> tuple[torch.Tensor, torch.Tensor]:
    """A batch of a layer's inputs and outputs as float64 rows ``(N, m)`` and ``(N, n)`` (a ones column if ``bias``)."""
    x = x.detach().reshape(-1, x.shape[-1]).double()
    y = y.detach().reshape(-1, y.shape[-1]).double()
    if bias:
        x = torch.cat([x, torch.ones(x.shape[0], 1, dtype=x.dtype)], dim=1)
    return x, y


class Accumulator:
    """Running sums of ``X̂ᵀX̂``, ``Yᵀ X̂`` and ``Σ y²`` of one layer; :meth:`stats` divides by ``N``."""

    def __init__(self, bias: bool) -> None:
        self.bias = bias
        self.hessian = self.cross = self.target_sq = None
        self.count = 0

    def add(self, x: torch.Tensor, y: torch.Tensor) -> None:
        x, y = as_rows(x, y, self.bias)
        if self.hessian is None:
            self.hessian, self.cross, self.target_sq = x.T @ x, y.T @ x, (y * y).sum(0)
        else:
            self.hessian += x.T @ x
            self.cross += y.T @ x
            self.target_sq += (y * y).sum(0)
        self.count += x.shape[0]

    def stats(self) -> LayerStats:
        n = self.count
        return LayerStats((self.hessian / n).numpy(), (self.cross / n).numpy(), (self.target_sq / n).numpy(), n)


def collect_stats(input_model: torch.nn.Module, target_model: torch.nn.Module, names: Sequence[str],
                  data: torch.Tensor, batch_size: int = 256,
                  accumulator: Callable[[str, torch.nn.Linear], Any] | None = None) -> dict[str, Any]:
    """Accumulate per-layer statistics: inputs from ``input_model``, targets from ``target_model``.

    Pass the same model twice for float calibration; for sequential calibration pass the partially
    quantized copy as ``input_model`` and the float network as ``target_model``. ``accumulator(name, layer)``
    makes another accumulator (``add(x, y)``, ``stats()``) than :class:`Accumulator`'s :class:`LayerStats`
    (e.g. :mod:`qannealq.weighted_calibration`'s).
    """
    if batch_size < 1:
        raise InvalidArgumentError(f"batch_size={batch_size} must be >= 1")
    modules = dict(target_model.named_modules())
    make = accumulator or (lambda name, layer: Accumulator(layer.bias is not None))
    acc = {n: make(n, modules[n]) for n in names}
    xs: dict[str, torch.Tensor] = {}
    ys: dict[str, torch.Tensor] = {}
    same = input_model is target_model
    with contextlib.ExitStack() as stack, torch.no_grad():
        # copies: an in-place op after the layer (``ReLU(inplace=True)``) rewrites the tensors the hooks see
        # before the batch's statistics are added, which made the targets post-activation
        stack.enter_context(_hooks(input_model, names, lambda n, inp, out: xs.__setitem__(n, inp[0].clone())))
        stack.enter_context(_hooks(target_model, names, lambda n, inp, out: ys.__setitem__(n, out.clone())))
        for start in range(0, data.shape[0], batch_size):
            batch = data[start:start + batch_size]
            _forward(input_model, batch)
            if not same:
                _forward(target_model, batch)
            for n in names:
                _check_activations(n, xs[n], "inputs")
                _check_activations(n, ys[n], "outputs")
                acc[n].add(xs[n], ys[n])
    return {n: a.stats() for n, a in acc.items()}


def _check_activations(name: str, tensor: torch.Tensor, kind: str) -> None:
    """Refuse a layer's inputs or outputs holding NaN or infinity (a float16 model's activations past 65504, on
    finite data within its range): the statistics were NaN, and rtn reported NaN errors, gptq a ZeroDivisionError."""
    if not bool(torch.isfinite(tensor).all()):
        raise NonFiniteError(f"layer {name!r}: its {kind} on the calibration data contain NaN or infinity (the "
                             f"model's {tensor.dtype} reaches {torch.finfo(tensor.dtype).max:.6g} at most): scale "
                             "the data as the model's training inputs were, or quantize a float32 copy "
                             "(model.float())")
