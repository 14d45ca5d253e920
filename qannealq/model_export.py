"""The quantized model leaves the project: save/load with a checksum, an integer forward pass, ONNX export.

File format (``ModelResult.save(path)``; ``.npz``, readable with ``numpy.load(path, allow_pickle=False)``):

* ``meta``: JSON text: format name and version, the architecture (a ``torch.nn.Sequential`` of ``Linear``,
  ``ReLU``, ``Flatten``, ``Identity``, ``Dropout``, ``Tanh``, ``Sigmoid``), per quantized layer its bits,
  integer range ``[lo, hi]``, ``offset``, scheme and granularity; the method, backend, layer error and the
  settings (through :func:`qannealq.contract.redact_values`: JSON values, ``repr`` text where JSON cannot
  hold one, and no secret ever written; a version 1 file held every value's ``repr`` text, which loading reads
  back as a value where it is a Python literal);
* ``q<k>.integers`` (int8, ``(n, f + 1)`` with a bias), ``q<k>.weight_step`` (float64, ``(n,)``: one value
  repeated per tensor, or one per output channel), ``q<k>.bias_step`` (float64): the grid of layer ``k``,
  whose values are ``step * (integers + offset)``, exactly as the solve loop computed them;
* ``f<k>.weight`` / ``f<k>.bias``: Linear layers that were not quantized, in their float dtype (bfloat16,
  which numpy lacks, as float32: exact; loading casts it back); a Linear whose weight (or bias) is the
  Parameter of an earlier one (tied, or one instance used twice) says so in the architecture (``weight_of``,
  ``bias_of``: that one's name), and loading ties them again; its values are stored at each use all the same
  (a reader that does not know the keys loads it untied, with the same predictions);
* ``checksum``: SHA-256 of ``meta`` and every array (name, dtype, shape, bytes); checked on load.

Loading rebuilds the dequantized torch model; its weights are bit-identical to ``ModelResult.model``'s.

Integer forward pass (:meth:`QuantizedModel.integer_forward`), per quantized Linear layer:

* integer weights ``w = (z + offset) * r`` with ``r = 2`` when the offset is ½ (the int1 ``±alpha`` grid,
  whose integers become ``±1``) else ``1``, scale ``step / r`` per output row; int8;
* ``a`` = the widest width in 2..16 bits for which no int32 accumulation can overflow:
  ``(2**(a-1) - 1) * max_i Σ_j |w_ij| < 2**31``, from the weights alone
  (:attr:`~qannealq._integer.QuantizedLayer.activation_bits`; 16 on every model here);
* inputs quantized per sample, symmetric, round half to even: ``s = max_j |x_j| / Q``, ``x_q = round(x / s)``.
  Default (``exact_inputs=True``): ``Q = 2**(2a-3) - 1`` (29 bits at ``a = 16``), each ``x_q`` split into a
  high and a low ``(a-1)``-bit half, two int32 accumulations ``x_hi @ wᵀ`` and ``x_lo @ wᵀ`` combined
  exactly in int64; ``exact_inputs=False``: ``Q = 2**(a-1) - 1`` (int16), one int32 accumulation (what the
  ONNX graph's QuantizeLinear nodes do);
* one rescale ``y = acc * (s * step / r) + bias`` (the bias is its dequantized grid value, added after the
  rescale); ``ReLU`` and the other activations in float; layers left in float run in float.

Rounding: the inputs err by at most ``s / 2``, i.e. ``2**-30`` of each sample's largest input by default
(``2**-16`` in one pass). The default pass is more exact than the float32 torch model itself (its logits
differ from float64 arithmetic by ~1e-7 relative; the integer pass's by ~1e-9), so its predictions equal the
dequantized model's except where the float32 model's top two logits lie within its own rounding error. The
tests check equality on the whole test set (tiny digits at int8/4/2/1, per tensor and per channel, both
modes; MNIST the same in a ``slow`` test).
"""

from __future__ import annotations

import hashlib
import io
import json
import os
import zipfile
from collections import OrderedDict
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
import torch

from qannealq._integer import QuantizedLayer, integer_linear
from qannealq.checks import check_flag
from qannealq.contract import read_repr, redact_values
from qannealq.errors import InvalidArgumentError, QannealqError, StoreError
from qannealq.grid import Grid
from qannealq.store import atomic_write

__all__ = ["ModelFileError", "QuantizedLayer", "QuantizedModel", "save_quantized", "load_quantized",
           "run_onnx", "FORMAT", "VERSION"]

FORMAT = "qannealq-quantized-model"
VERSION = 2
_READS = (1, 2)  # the versions load_quantized reads (1: settings as repr text)
# what reading a damaged or foreign file raises (RuntimeError, NotImplementedError: zipfile's "is encrypted" and
# "compression method is not supported" for a changed byte of its directory)
_UNREADABLE = (OSError, ValueError, EOFError, RuntimeError, zipfile.BadZipFile)
_ZIP_MAGIC = b"PK\x03\x04"  # how np.savez's archive begins: its first member's local header
_ACTIVATIONS = {"ReLU": torch.nn.ReLU, "Flatten": torch.nn.Flatten, "Identity": torch.nn.Identity,
                "Tanh": torch.nn.Tanh, "Sigmoid": torch.nn.Sigmoid}


class ModelFileError(QannealqError, ValueError):
    """A model file is missing, truncated, not a qannealq model, or fails its checksum."""


@dataclass
class QuantizedModel:
    """A loaded quantized model.

    Attributes:
        model: the dequantized float network (``torch.nn.Sequential``, eval mode).
        layers: the quantized Linear layers, in forward order.
        meta: the file's metadata (architecture, method, bits, settings...).
        checksum: the verified SHA-256.
    """

    model: torch.nn.Sequential
    layers: list[QuantizedLayer]
    meta: dict = field(default_factory=dict)
    checksum: str = ""

    @property
    def settings(self) -> dict:
        return self.meta.get("settings", {})

    def predict(self, x: np.ndarray) -> np.ndarray:
        """Class predictions of the dequantized torch model; ``x`` is checked as :meth:`integer_forward` checks it
        (one sample without its batch dimension ended in torch's 'Dimension out of range', NaN gave class 0)."""
        h = torch.as_tensor(_check_finite(x), dtype=next(self.model.parameters()).dtype)
        with torch.no_grad():
            for name, module in self.model.named_children():
                _check_width(name, module, h.shape)
                h = module(h)
        return h.argmax(1).numpy()

    def integer_forward(self, x: np.ndarray, exact_inputs: bool = True) -> np.ndarray:
        """Logits (float64) of the integer-arithmetic forward pass described in the module docstring.

        Args:
            x: inputs ``(N, f)`` (or what the model's first modules flatten to that), finite.
            exact_inputs: each layer's inputs as 29-bit integers in two int32 passes (default), or as
                16-bit integers in one pass (``False``: what the ONNX graph's QuantizeLinear nodes do).

        Raises:
            InvalidArgumentError: ``x`` of another width or not finite, or ``exact_inputs`` not True or False.
        """
        check_flag("exact_inputs", exact_inputs)  # "False" was true: the other mode, silently
        h = _check_finite(x)
        quantized = {layer.name: layer for layer in self.layers}
        for name, module in self.model.named_children():
            _check_width(name, module, h.shape)
            if name in quantized:
                h = integer_linear(quantized[name], h, exact_inputs)
            elif isinstance(module, torch.nn.Linear):
                h = h @ module.weight.detach().double().numpy().T
                h = h if module.bias is None else h + module.bias.detach().double().numpy()
            else:
                with torch.no_grad():
                    h = module(torch.from_numpy(h)).numpy()
        return h

    def integer_predict(self, x: np.ndarray, exact_inputs: bool = True) -> np.ndarray:
        """Class predictions of :meth:`integer_forward`."""
        return self.integer_forward(x, exact_inputs).argmax(1)

    def to_onnx(self, path: str | Path, quantize_activations: bool = True,
                input_shape: Sequence[int | str] | None = None) -> Path:
        """Write an ONNX model with QuantizeLinear/DequantizeLinear nodes (see :mod:`qannealq._onnx`).

        ``input_shape`` (default ``("batch", f)``) is needed when the model flattens before its first ``Linear``:
        sizes (``>= 1``) or names of the dimensions, the batch first; the logits' batch dimension is the same.

        Raises:
            BackendUnavailableError: the ``onnx`` package is missing (``pip install 'qannealq[onnx]'``).
            InvalidArgumentError: ``path`` is a folder or not a path, ``quantize_activations`` not True or False,
                or ``input_shape`` missing where needed, or not an input the first Linear takes.
        """
        from qannealq._onnx import build_onnx

        _not_a_folder(path, "model.onnx")
        check_flag("quantize_activations", quantize_activations)
        return _atomic_bytes(Path(path), build_onnx(self, quantize_activations, input_shape).SerializeToString())


def _check_finite(x: np.ndarray) -> np.ndarray:
    """``x`` as float64, refused where it holds NaN or infinity, or is no array of numbers (text, ragged rows:
    numpy's "could not convert string to float: 'abc'" named no argument)."""
    try:
        h = np.asarray(x, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise InvalidArgumentError(f"x must be an array of numbers (N, features), got {type(x).__name__} ({exc}): "
                                   "give the inputs as a numpy array or tensor") from exc
    if not np.isfinite(h).all():
        raise InvalidArgumentError("x contains NaN or infinity: the integer inputs of a layer have no value for "
                                   "them, and the float model's predictions no meaning; clean the inputs first")
    return h


def _check_width(name: str, module: torch.nn.Module, shape: Sequence[int]) -> None:
    if isinstance(module, torch.nn.Linear) and (len(shape) != 2 or shape[1] != module.in_features):
        raise InvalidArgumentError(f"layer {name!r} takes inputs (N, {module.in_features}), and x gives it "
                                   f"{tuple(shape)}: give x of the shape the model was quantized on")


def _architecture(model: torch.nn.Module, quantized: set[str]) -> list[dict]:
    if not isinstance(model, torch.nn.Sequential):
        raise InvalidArgumentError(f"saving needs a torch.nn.Sequential model, got {type(model).__name__}: "
                                   "save its state_dict with torch.save instead")
    arch = []
    owners: dict[int, str] = {}  # id of a Parameter -> the first Linear holding it
    # model._modules, not named_children(): that skips an instance met before (one ReLU, or a tied Linear left in
    # float, used twice), and the file lost it; each use is stored (a tied Linear's weights once per use)
    for name, module in model._modules.items():
        kind = type(module).__name__
        if isinstance(module, torch.nn.Linear):
            entry = {"name": name, "type": "Linear", "in": module.in_features, "out": module.out_features,
                     "bias": module.bias is not None, "quantized": name in quantized,
                     "dtype": str(module.weight.dtype).removeprefix("torch.")}
            for key in ("weight", "bias"):  # a tie: loaded as one Parameter again (see _rebuild)
                param = getattr(module, key)
                if param is not None and owners.setdefault(id(param), name) != name:
                    entry[f"{key}_of"] = owners[id(param)]
            arch.append(entry)
        elif isinstance(module, torch.nn.Dropout):
            arch.append({"name": name, "type": "Dropout", "p": module.p})
        elif kind in _ACTIVATIONS and type(module) is _ACTIVATIONS[kind]:
            if isinstance(module, torch.nn.Flatten) and (module.start_dim, module.end_dim) != (1, -1):
                raise InvalidArgumentError(f"module {name}: only Flatten(1, -1) can be saved")
            arch.append({"name": name, "type": kind})
        else:
            nested = (" (a Sequential inside the Sequential: quantize one flat Sequential, e.g. "
                      "torch.nn.Sequential(*outer[:k], *outer[k], *outer[k + 1:]), to save it)"
                      if isinstance(module, torch.nn.Sequential) else "")
            raise InvalidArgumentError(f"module {name} ({kind}) cannot be saved{nested}: the format holds Sequential "
                                       f"models of Linear, Dropout and {', '.join(_ACTIVATIONS)}; save "
                                       "result.model.state_dict() with torch.save instead (the quantized values, in "
                                       "float)")
    return arch


def save_quantized(result: Any, path: str | Path, extra: Mapping[str, Any] | None = None) -> Path:
    """Write ``result`` (a :class:`~qannealq.pipeline.ModelResult`) to ``path`` (see the module docstring).

    Args:
        result: the quantized model and its per-layer results (each with its grid).
        path: the file to write (atomically: a temporary file, then a rename).
        extra: more settings to record (dataset, accuracy...), redacted like the others; one the result records
            already (``bits``, ``method``, ``seed``...) only with the same value.

    Raises:
        InvalidArgumentError: ``path`` is a folder or not a path, a module the format cannot hold, a layer result
            without its grid or whose module in ``result.model`` no longer holds its values, ``extra`` that is no
            mapping, a key of it that is not text, or one the result records with another value (``bits``,
            ``method``, ``seed``...).
        StoreError: the file cannot be written (disk full, no permission).
    """
    _not_a_folder(path, "model.npz")
    if extra is not None and not isinstance(extra, Mapping):  # a list's words passed the key check below
        raise InvalidArgumentError(f"extra={extra!r} must be a mapping of the settings to record, e.g. "
                                   "{'dataset': 'mnist'}")
    bad = [key for key in (extra or {}) if not isinstance(key, str)]
    if bad:  # json's sort_keys failed on them with "'<' not supported between instances of 'int' and 'str'"
        raise InvalidArgumentError(f"extra: the keys of the settings to record must be text, not {bad[0]!r} "
                                   f"({type(bad[0]).__name__}): name each setting, e.g. {{'epochs': 5}}")
    names = {layer.name for layer in result.layers}
    arch = _architecture(result.model, names)
    modules = dict(result.model._modules)
    arrays: dict[str, np.ndarray] = {}
    layers_meta = []
    for k, layer in enumerate(result.layers):
        if layer.grid is None or layer.name not in modules:
            raise InvalidArgumentError(f"layer {layer.name!r} has no grid or is not a child of the model")
        _check_holds(layer, modules[layer.name])
        grid = layer.grid
        if layer.integers.min() < grid.lo or layer.integers.max() > grid.hi or not -128 <= grid.lo <= grid.hi <= 127:
            raise InvalidArgumentError(f"layer {layer.name}: integers outside the int8 grid [{grid.lo}, {grid.hi}]")
        arrays[f"q{k}.integers"] = np.ascontiguousarray(layer.integers, dtype=np.int8)
        arrays[f"q{k}.weight_step"] = np.asarray(grid.weight_step, dtype=np.float64)
        arrays[f"q{k}.bias_step"] = np.asarray(np.nan if grid.bias_step is None else grid.bias_step, np.float64)
        layers_meta.append({"name": layer.name, "bits": grid.bits, "lo": grid.lo, "hi": grid.hi,
                            "offset": grid.offset, "scheme": grid.scheme, "granularity": grid.granularity,
                            "in_features": modules[layer.name].in_features, "error": layer.error})
    for entry in arch:
        if entry["type"] == "Linear" and not entry["quantized"]:
            module = modules[entry["name"]]
            arrays[f"f{entry['name']}.weight"] = _numpy(module.weight)
            if module.bias is not None:
                arrays[f"f{entry['name']}.bias"] = _numpy(module.bias)
    settings = {"method": result.method, "backend": result.backend, "bits": result.bits,
                "calibration": result.calibration, "granularity": result.granularity, **result.settings}
    _check_extra(extra or {}, settings)
    settings.update(extra or {})
    meta = {"format": FORMAT, "version": VERSION, "architecture": arch, "layers": layers_meta,
            "method": result.method, "backend": result.backend, "bits": result.bits,
            "layer_error": result.layer_error, "settings": redact_values(settings)}
    meta_text = json.dumps(meta, sort_keys=True)
    buffer = io.BytesIO()
    np.savez(buffer, meta=np.array(meta_text), checksum=np.array(_checksum(meta_text, arrays)), **arrays)
    return _atomic_bytes(Path(path), buffer.getvalue())


def _check_holds(layer: Any, module: torch.nn.Module) -> None:
    """Refuse a quantized layer whose module in ``result.model`` no longer holds its grid values, as loading would
    rebuild them (``result.model[0]`` replaced or edited after quantizing): the file stores the grid, and it was
    written all the same, then failed to load (a shape: torch's "The size of tensor a (20) must match ...") or
    loaded a model other than ``result.model`` (edited weights, a bias dropped)."""
    name, values, bias = layer.name, layer.values, layer.grid.bias_step is not None
    n, width = values.shape
    fits = isinstance(module, torch.nn.Linear) and (module.out_features, module.in_features + (
        module.bias is not None)) == (n, width)
    if fits:
        parts = [(module.weight, values[:, :module.in_features])] + ([] if module.bias is None else
                                                                    [(module.bias, values[:, -1])])
        fits = all(torch.equal(param.detach().cpu(), torch.as_tensor(part, dtype=param.dtype)) for param, part in parts)
    if not fits:
        raise InvalidArgumentError(f"layer {name!r}: result.model's module {name} ({type(module).__name__}) does not "
                                   f"hold the quantized values of the layer result (a Linear({width - bias}, {n}, "
                                   f"bias={bias}) of weights step * (z + offset)): it was replaced or changed after "
                                   "quantizing, and the file, which stores the grid, would not load as result.model; "
                                   "quantize the model as it is now, or save the result unchanged")


def _check_extra(extra: Mapping[str, Any], recorded: Mapping[str, Any]) -> None:
    """Refuse a setting of ``extra`` that the result records with another value: ``{"bits": 2}`` replaced an int4
    model's recorded ``bits``, and the file said int2 beside its int4 grids."""
    for key, value in extra.items():
        if key in recorded and redact_values({key: value}) != redact_values({key: recorded[key]}):
            raise InvalidArgumentError(f"extra: {key}={value!r} contradicts the model's own setting {key}="
                                       f"{recorded[key]!r}, which the file records: leave it out, or record it under "
                                       f"another name (e.g. {'asked_' + key!r})")


def _numpy(tensor: torch.Tensor) -> np.ndarray:
    """A float layer's tensor as numpy; bfloat16, which numpy lacks, as float32 (exact: loading casts it back to
    the architecture's dtype)."""
    tensor = tensor.detach().cpu()
    return (tensor.float() if tensor.dtype == torch.bfloat16 else tensor).numpy()


def _checksum(meta_text: str, arrays: Mapping[str, np.ndarray]) -> str:
    digest = hashlib.sha256(meta_text.encode())
    for key in sorted(arrays):
        array = np.ascontiguousarray(arrays[key])
        digest.update(f"{key}|{array.dtype.str}|{array.shape}|".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def _check_path(path: Any, example: str) -> None:
    """Refuse a ``path`` that is not one (``None``, a number): ``Path`` raised "expected str, bytes or os.PathLike
    object, not NoneType", naming no argument."""
    if not isinstance(path, (str, os.PathLike)) or not str(path):
        raise InvalidArgumentError(f"path={path!r} is not a file path: give one as text or a pathlib.Path, e.g. "
                                   f"{example!r}")


def _not_a_folder(path: str | Path, example: str) -> None:
    _check_path(path, example)
    if Path(path).is_dir():
        raise InvalidArgumentError(f"path={str(path)!r} is a folder: give the file's path, e.g. "
                                   f"{str(Path(path) / example)!r}")


def _atomic_bytes(path: Path, data: bytes) -> Path:
    """Write ``data`` atomically (:func:`qannealq.store.atomic_write`), creating the folder if needed."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise StoreError(f"cannot create the folder of {path}: {exc.strerror or exc}") from exc
    atomic_write(path, data, remedy="free disk space or choose another path for the model file")
    return path


def load_quantized(path: str | Path) -> QuantizedModel:
    """Read a file written by :func:`save_quantized`, check its checksum and rebuild the torch model.

    Raises:
        ModelFileError: missing, unreadable or truncated file, another format, a newer version of the format, a
            checksum mismatch, or metadata that disagrees with the arrays (layers, shapes, integers off the grid).
        InvalidArgumentError: ``path`` is not a path (``None``, a number, empty text).
    """
    path = _existing_file(path, "model.npz", "a model file", "give the .npz file (qannealq run --save-model writes "
                          "OUT/models/int{bits}-{method}.npz)")
    _check_zip(path)
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in npz.files}
    except _UNREADABLE as exc:
        changed = _failing_crc(path)  # a changed byte: the zip's CRC-32 of that member sees it first
        if changed is not None:
            raise _mismatch(path, f"the zip's check of {changed} fails") from exc
        raise ModelFileError(f"{path} is not a readable qannealq model file (truncated or another format: "
                             f"{exc}); save it again with ModelResult.save") from exc
    meta_text, stored = str(arrays.pop("meta", "")), str(arrays.pop("checksum", ""))
    try:
        meta = json.loads(meta_text)
    except ValueError:
        meta = {}
    version = meta.get("version")
    if meta.get("format") == FORMAT and isinstance(version, int) and version > max(_READS):
        raise ModelFileError(f"{path} is a {FORMAT} file of version {version}, written by a newer qannealq; this one "
                             f"reads versions {' and '.join(map(str, _READS))}: upgrade qannealq to load it")
    if meta.get("format") != FORMAT or version not in _READS:
        raise ModelFileError(f"{path} is not a {FORMAT} file of version {' or '.join(map(str, _READS))}")
    computed = _checksum(meta_text, arrays)
    if computed != stored:
        raise _mismatch(path, f"stored {stored[:16]}..., computed {computed[:16]}...")
    if meta["version"] == 1:  # its settings were each value's repr: read back as values, as version 2 holds them
        meta["settings"] = _literal_values(meta.get("settings", {}))
    try:
        layers = [_layer(entry, arrays, k) for k, entry in enumerate(meta["layers"])]
        _check_layers(meta["architecture"], layers)
        model = _rebuild(meta["architecture"], layers, arrays)
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        detail = f"no {exc}" if isinstance(exc, KeyError) else str(exc)
        raise ModelFileError(f"{path}: its metadata and arrays disagree ({detail}), though its checksum holds: it "
                             f"was not written by ModelResult.save as a {FORMAT} file of version {version}; save "
                             "the model again") from exc
    return QuantizedModel(model, layers, meta, computed)


def _check_layers(arch: list[dict], layers: list[QuantizedLayer]) -> None:
    """Each quantized layer a quantized Linear of ``arch`` whose shape its integers have, within its grid's range:
    a file whose metadata disagreed with its arrays (one written by another program, its checksum computed anew)
    loaded a Linear of 15 inputs from 16 columns of integers (its bias the 16th weight), integers 100 on an int3
    grid, or ended in a bare ``KeyError: 'q2.bias_step'``."""
    linears = {entry["name"]: entry for entry in arch if entry["type"] == "Linear" and entry["quantized"]}
    if sorted(linears) != sorted(layer.name for layer in layers):
        raise ValueError(f"the architecture's quantized Linear layers {sorted(linears)} are not the layers stored, "
                         f"{[layer.name for layer in layers]}")
    for layer in layers:
        entry, ints = linears[layer.name], layer.integers
        shape = (entry["out"], entry["in"] + bool(entry["bias"]))
        if ints.dtype != np.int8 or ints.shape != shape or layer.in_features != entry["in"] or \
                layer.has_bias != entry["bias"] or layer.grid.weight_step.shape != (entry["out"],):
            raise ValueError(f"layer {layer.name!r}: {ints.dtype} integers of shape {ints.shape} and "
                             f"{layer.grid.weight_step.shape[0]} weight steps, where its Linear({entry['in']}, "
                             f"{entry['out']}, bias={entry['bias']}) takes int8 {shape} and {entry['out']}")
        if ints.size and (ints.min() < layer.grid.lo or ints.max() > layer.grid.hi):
            raise ValueError(f"layer {layer.name!r}: integers in [{ints.min()}, {ints.max()}], outside its grid's "
                             f"range [{layer.grid.lo}, {layer.grid.hi}]")


def _existing_file(path: Any, example: str, name: str, remedy: str) -> Path:
    """``path`` as a Path, refused where it is not one, is a folder or is missing (``name``: "a model file")."""
    _check_path(path, example)
    path = Path(path)
    if path.is_dir():
        raise ModelFileError(f"path={str(path)!r} is a folder, not {name}: {remedy}")
    if not path.is_file():
        raise ModelFileError(f"path={str(path)!r}: no such {name.split(' ', 1)[1]}")
    return path


def _check_zip(path: Path) -> None:
    """Refuse a file that does not begin as a zip archive (an ``.npz``) before ``np.load`` reads it by its content:
    an ``.npy`` array came back as an ndarray ("'numpy.ndarray' object does not support the context manager
    protocol"), and any other file (ONNX, text) was a pickle that it advised loading unsafely with allow_pickle."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(len(_ZIP_MAGIC))
    except OSError as exc:
        raise ModelFileError(f"{path} cannot be read: {exc.strerror or exc}") from exc
    if head != _ZIP_MAGIC:
        found = "is empty (truncated to nothing)" if not head else (
            f"begins with {head!r}, not a zip archive's {_ZIP_MAGIC!r} (another format, e.g. an .npy array, an ONNX "
            "model or text, or its first bytes damaged)")
        raise ModelFileError(f"{path} is not a qannealq model file: it {found}; give the .npz file that "
                             "ModelResult.save or qannealq run --save-model wrote")


def _failing_crc(path: Path) -> str | None:
    """The first member of the zip at ``path`` whose bytes fail its CRC-32; None when all pass or it is no zip."""
    try:
        with zipfile.ZipFile(path) as archive:
            return archive.testzip()
    except _UNREADABLE:
        return None


def _mismatch(path: Path, detail: str) -> ModelFileError:
    return ModelFileError(f"{path}: checksum mismatch ({detail}): the file is corrupt or was edited; save the model "
                          "again")


def _literal_values(settings: Mapping[str, str]) -> dict[str, Any]:
    """A version 1 file's settings (``repr`` text, :func:`qannealq.contract.redact`) as values where each text is
    a Python literal (a nested mapping's values in turn), the text itself otherwise (``<redacted>``, an object's
    repr)."""
    values: dict[str, Any] = {}
    for key, text in settings.items():
        values[key] = read_repr(text)  # np.float64(0.5): 0.5, also inside a tuple or list
        if isinstance(values[key], dict) and all(isinstance(v, str) for v in values[key].values()):
            values[key] = _literal_values(values[key])
    return values


def _layer(entry: dict, arrays: Mapping[str, np.ndarray], k: int) -> QuantizedLayer:
    bias_step = float(arrays[f"q{k}.bias_step"])
    grid = Grid(entry["bits"], entry["lo"], entry["hi"], entry["offset"], arrays[f"q{k}.weight_step"],
                None if np.isnan(bias_step) else bias_step, entry["scheme"], entry["granularity"])
    return QuantizedLayer(entry["name"], arrays[f"q{k}.integers"], grid, entry["in_features"])


def _rebuild(arch: list[dict], layers: list[QuantizedLayer], arrays: Mapping[str, np.ndarray]) -> torch.nn.Sequential:
    quantized = {layer.name: layer for layer in layers}
    modules: OrderedDict[str, torch.nn.Module] = OrderedDict()
    linears: dict[str, torch.nn.Linear] = {}
    for entry in arch:
        kind = entry["type"]
        if kind == "Linear":
            dtype = getattr(torch, entry["dtype"])
            module = torch.nn.Linear(entry["in"], entry["out"], bias=entry["bias"], dtype=dtype)
            if entry["name"] in quantized:
                values = quantized[entry["name"]].values
                weight, bias = values[:, :entry["in"]], values[:, entry["in"]] if entry["bias"] else None
            else:
                weight, bias = arrays[f"f{entry['name']}.weight"], arrays.get(f"f{entry['name']}.bias")
            with torch.no_grad():
                module.weight.copy_(torch.as_tensor(weight, dtype=dtype))
                if bias is not None:
                    module.bias.copy_(torch.as_tensor(bias, dtype=dtype))
            for key in ("weight", "bias"):  # tied: one Parameter again, where the values stored at each use agree
                source = linears.get(entry.get(f"{key}_of"))
                if source is not None and torch.equal(getattr(module, key), getattr(source, key)):
                    setattr(module, key, getattr(source, key))
            linears[entry["name"]] = module
        elif kind == "Dropout":
            module = torch.nn.Dropout(entry["p"])
        elif kind in _ACTIVATIONS:
            module = _ACTIVATIONS[kind]()
        else:
            raise ValueError(f"module {entry['name']} of type {kind!r}, none that the format holds")
        modules[entry["name"]] = module
    return torch.nn.Sequential(modules).eval()


def run_onnx(path: str | Path, x: np.ndarray) -> np.ndarray:
    """Logits of an exported ONNX model on inputs ``x``, computed by onnxruntime (CPU).

    ``x`` is refused where it holds NaN or infinity, as :meth:`QuantizedModel.predict` refuses it: the graph's
    input scale ``max|x| / 32767`` is NaN there, its ``Where`` takes 1 instead, and the row's logits came back
    finite and meaningless (``[748, 1683, -8977]`` for one NaN among six inputs).

    Raises:
        ModelFileError: ``path`` is missing, a folder, or no ONNX model onnxruntime can load (onnxruntime's own
            errors said "Protobuf parsing failed" for a folder and for a ``.npz`` model file alike).
        InvalidArgumentError: ``path`` is not a path, or ``x`` holds NaN or infinity or has another shape than
            the model's input.
    """
    from qannealq._onnx import load_session, run_session

    path = _existing_file(path, "model.onnx", "an ONNX model file", "give the file QuantizedModel.to_onnx wrote")
    x = _check_finite(x)
    try:
        session = load_session(path)
    except QannealqError:
        raise
    except Exception as exc:  # onnxruntime's InvalidProtobuf, InvalidGraph, Fail...: plain Exception subclasses
        raise ModelFileError(f"{path} is not an ONNX model onnxruntime can load ({type(exc).__name__}: {exc}); "
                             "write it again with QuantizedModel.to_onnx") from exc
    _check_onnx_shape(session.get_inputs()[0].shape, x.shape)
    return run_session(session, x)


def _check_onnx_shape(declared: Sequence[Any], shape: Sequence[int]) -> None:
    """Refuse ``x`` of another shape than the graph's input (``declared``: its dimensions, text for the batch's),
    as :meth:`QuantizedModel.predict` refuses it, rather than with onnxruntime's own ``InvalidArgument``."""
    fixed = [d if isinstance(d, int) else None for d in declared]
    if len(shape) != len(fixed) or any(d is not None and d != k for d, k in zip(fixed, shape)):
        wanted = ", ".join("N" if d is None else str(d) for d in fixed)
        raise InvalidArgumentError(f"the ONNX model takes inputs ({wanted}), and x has shape {tuple(shape)}: give x "
                                   "of the shape the model was quantized on")
