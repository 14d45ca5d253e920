"""ONNX export of a :class:`~qannealq.model_export.QuantizedModel` with QuantizeLinear/DequantizeLinear nodes.

Called through ``QuantizedModel.to_onnx(path)``, which writes the file.

Each quantized ``Linear`` becomes, in opset 21:

* its int8 integer weights ``(z + offset) * r`` and int8 integer bias as initializers, each through a
  ``DequantizeLinear`` (weight scale ``step / r`` per tensor, or per output row on ``axis=0`` for a
  per-channel grid; the bias's own per-tensor scale);
* with ``quantize_activations`` (default) its input quantized per sample as the integer forward pass's
  one-pass mode does: ``s = max|x| / 32767`` (``Abs``, ``ReduceMax``), ``QuantizeLinear`` to int16 on
  ``axis=0`` (one scale per sample), ``DequantizeLinear`` back (the QDQ form that runtimes fuse into integer
  kernels); without it the activations stay float and only the weights are quantized;
* a ``Gemm`` (``transB=1``) of the two.

Float layers become a ``Gemm`` with float initializers; ``ReLU``, ``Tanh``, ``Sigmoid`` and ``Flatten``
map to their ONNX operators, ``Identity`` and ``Dropout`` to ``Identity``. :func:`load_session` and
:func:`run_session` run a file with onnxruntime. Needs the ``onnx`` extra (``pip install 'qannealq[onnx]'``).
"""

from __future__ import annotations

import itertools
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from qannealq.errors import BackendUnavailableError, InvalidArgumentError

__all__ = ["build_onnx", "load_session", "run_session", "OPSET"]

OPSET = 21
_OPS = {"ReLU": "Relu", "Tanh": "Tanh", "Sigmoid": "Sigmoid", "Identity": "Identity", "Dropout": "Identity"}


def _require(module: str) -> Any:
    try:
        return __import__(module)
    except ImportError as exc:
        raise BackendUnavailableError(f"ONNX export needs {module}, which is not installed: "
                                      "pip install 'qannealq[onnx]'") from exc


class _Graph:
    """Nodes and initializers being collected, with fresh names."""

    def __init__(self, onnx: Any) -> None:
        self.onnx, self.nodes, self.inits = onnx, [], []

    def const(self, name: str, value: np.ndarray) -> str:
        self.inits.append(self.onnx.numpy_helper.from_array(np.asarray(value), name))
        return name

    def node(self, op: str, inputs: list[str], output: str, **attrs: Any) -> str:
        self.nodes.append(self.onnx.helper.make_node(op, inputs, [output], name=output, **attrs))
        return output


def _quantized_linear(g: _Graph, layer: Any, h: str, k: int, quantize_activations: bool) -> str:
    per_row = layer.grid.granularity == "channel"
    scale = layer.weight_scale.astype(np.float32)
    w = g.node("DequantizeLinear", [g.const(f"l{k}.w_int8", layer.weight_integers),
                                    g.const(f"l{k}.w_scale", scale if per_row else scale[0])], f"l{k}.w",
               **({"axis": 0} if per_row else {}))
    inputs = [h, w]
    if layer.has_bias:
        inputs.append(g.node("DequantizeLinear", [g.const(f"l{k}.b_int8", layer.bias_integers),
                                                  g.const(f"l{k}.b_scale", np.float32(layer.bias_scale))],
                             f"l{k}.b"))
    if quantize_activations:
        qmax = g.const(f"l{k}.qmax", np.float32(2 ** (layer.activation_bits - 1) - 1))
        amax = g.node("ReduceMax", [g.node("Abs", [h], f"l{k}.abs"), g.const(f"l{k}.axes", np.array([1]))],
                      f"l{k}.amax", keepdims=0)
        positive = g.node("Greater", [amax, g.const(f"l{k}.zero", np.float32(0))], f"l{k}.positive")
        s = g.node("Where", [positive, g.node("Div", [amax, qmax], f"l{k}.s0"),
                             g.const(f"l{k}.one", np.float32(1))], f"l{k}.x_scale")
        xq = g.node("QuantizeLinear", [h, s], f"l{k}.x_int16", axis=0, output_dtype=g.onnx.TensorProto.INT16)
        inputs[0] = g.node("DequantizeLinear", [xq, s], f"l{k}.x", axis=0)
    return g.node("Gemm", inputs, f"l{k}.y", transB=1)


def build_onnx(quantized: Any, quantize_activations: bool = True,
               input_shape: Sequence[int | str] | None = None) -> Any:
    """``quantized`` (a :class:`~qannealq.model_export.QuantizedModel`) as a checked ``onnx.ModelProto``
    (input ``input`` float32 of ``input_shape``, by default ``(batch, f)``; output ``logits``).

    Raises:
        BackendUnavailableError: the ``onnx`` package is missing.
    """
    onnx = _require("onnx")
    g = _Graph(onnx)
    layers = {layer.name: layer for layer in quantized.layers}
    h, first, last = "input", None, None
    for k, (entry, module) in enumerate(zip(quantized.meta["architecture"], quantized.model.children())):
        kind = entry["type"]
        if kind == "Linear":
            first = entry["in"] if first is None else first
            last = entry["out"]
            if entry["name"] in layers:
                h = _quantized_linear(g, layers[entry["name"]], h, k, quantize_activations)
            else:
                inputs = [h, g.const(f"l{k}.w", module.weight.detach().float().numpy())]
                if module.bias is not None:
                    inputs.append(g.const(f"l{k}.b", module.bias.detach().float().numpy()))
                h = g.node("Gemm", inputs, f"l{k}.y", transB=1)
        elif kind == "Flatten":
            h = g.node("Flatten", [h], f"l{k}.flat", axis=1)
        else:
            h = g.node(_OPS[kind], [h], f"l{k}.{kind.lower()}")
    g.nodes[-1].output[0] = "logits"
    helper, tensor = onnx.helper, onnx.TensorProto
    leading = itertools.takewhile(lambda entry: entry["type"] != "Linear", quantized.meta["architecture"])
    flattens = any(entry["type"] == "Flatten" for entry in leading)
    if input_shape is None and flattens:  # else (batch, f) is right
        raise InvalidArgumentError("the model flattens its input before its first Linear: give to_onnx the input's "
                                   "shape, e.g. input_shape=('batch', 1, 28, 28)")
    shape = ["batch", first] if input_shape is None else _checked_shape(input_shape, flattens, first)
    graph = helper.make_graph(g.nodes, "qannealq", [helper.make_tensor_value_info("input", tensor.FLOAT, shape)],
                              [helper.make_tensor_value_info("logits", tensor.FLOAT, [shape[0], last])], g.inits)
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", OPSET)], producer_name="qannealq")
    model.ir_version = 10
    model.doc_string = f"qannealq {quantized.meta.get('method')} int{quantized.meta.get('bits')}, checksum " \
                       f"{quantized.checksum}"
    onnx.checker.check_model(model, full_check=True)
    return model


def _checked_shape(input_shape: Any, flattens: bool, features: int) -> list[int | str]:
    """``input_shape`` as a list of dimensions (a size >= 1, or a name for one that varies), checked against the
    first Linear's ``features``: onnx's checker refused a wrong one with a shape inference error from inside the
    graph, and a shape that was no sequence ended in a TypeError."""
    dims = list(input_shape) if isinstance(input_shape, (list, tuple)) else None
    valid = dims is not None and len(dims) >= 2 and all(
        (isinstance(d, str) and d) or (isinstance(d, (int, np.integer)) and not isinstance(d, bool) and d >= 1)
        for d in dims)
    sizes = [int(d) for d in dims[1:] if not isinstance(d, str)] if valid else []
    fits = valid and (len(dims) == 2 or flattens) and (len(sizes) < len(dims) - 1 or np.prod(sizes) == features)
    if not fits:
        example = f"sizes whose product is {features}, e.g. ('batch', 1, 28, 28) for 784" if flattens else \
            f"e.g. ('batch', {features})"
        raise InvalidArgumentError(
            f"input_shape={input_shape!r} is not the input of this model, whose first Linear takes {features} "
            f"features per sample{', flattened from the dimensions after the batch' if flattens else ''}: give a "
            f"tuple of sizes >= 1 or names, the batch first, {example}")
    return [d if isinstance(d, str) else int(d) for d in dims]


def load_session(path: str | Path) -> Any:
    """An onnxruntime session (CPU) of the ONNX model at ``path``; onnxruntime's own error where it cannot load it.

    Raises:
        BackendUnavailableError: onnxruntime is missing.
    """
    ort = _require("onnxruntime")
    return ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def run_session(session: Any, x: np.ndarray) -> np.ndarray:
    """Logits of a :func:`load_session` session on inputs ``x``."""
    return session.run(["logits"], {"input": np.asarray(x, dtype=np.float32)})[0]
