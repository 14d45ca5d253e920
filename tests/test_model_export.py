"""The quantized model leaves the project: save/load round trip, checksum, integer forward pass, ONNX."""

from __future__ import annotations

import copy
import importlib.util
import json
import re
import subprocess
import sys
import zipfile

import numpy as np
import pytest
import torch

from backend_fixtures import tiny_digits
from qannealq import InvalidArgumentError, QuantizedModel, load_quantized, quantize_model
from qannealq.model_export import ModelFileError

CASES = [(bits, granularity) for bits in (8, 4, 2, 1) for granularity in ("tensor", "channel")]


@pytest.fixture(scope="module")
def saved(tmp_path_factory):
    """(result, path) of the tiny digits model quantized by GPTQ at every bit width and granularity."""
    exp = tiny_digits()
    folder = tmp_path_factory.mktemp("models")
    out = {}
    for bits, granularity in CASES:
        result = quantize_model(exp.model, exp.calibration, bits, "gptq", None, granularity=granularity, seed=0)
        out[bits, granularity] = result, result.save(folder / f"int{bits}-{granularity}.npz",
                                                      {"dataset": exp.name, "api_token": "DEV-do-not-write"})
    return out


def _logits(model: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    with torch.no_grad():
        return model(torch.as_tensor(x)).numpy()


@pytest.mark.parametrize("bits, granularity", CASES)
def test_round_trip_rebuilds_the_same_model(saved, bits, granularity):
    result, path = saved[bits, granularity]
    loaded = load_quantized(path)
    assert isinstance(loaded, QuantizedModel)
    for (name, a), (other, b) in zip(result.model.state_dict().items(), loaded.model.state_dict().items()):
        assert name == other and torch.equal(a, b)  # bit-identical weights
    for layer, stored in zip(result.layers, loaded.layers):
        assert stored.integers.dtype == np.int8
        np.testing.assert_array_equal(stored.integers, layer.integers)
        np.testing.assert_array_equal(stored.grid.weight_step, layer.grid.weight_step)
        assert (stored.grid.offset, stored.grid.lo, stored.grid.hi) == (layer.grid.offset, layer.grid.lo, layer.grid.hi)
        np.testing.assert_array_equal(stored.values, layer.values)
    assert loaded.meta["bits"] == bits and loaded.meta["method"] == "gptq"
    assert loaded.settings["granularity"] == granularity


def test_integer_weights_fit_int8_and_int1_sign_becomes_plus_minus_one(saved):
    sign = load_quantized(saved[1, "tensor"][1]).layers[0]
    assert sign.grid.offset == 0.5 and set(np.unique(sign.weight_integers)) <= {-1, 1}
    np.testing.assert_array_equal(sign.weight_integers * sign.weight_scale[:, None], sign.values[:, :-1])
    eight = load_quantized(saved[8, "channel"][1]).layers[0]
    assert eight.weight_integers.dtype == np.int8 and eight.weight_integers.min() >= -128
    np.testing.assert_array_equal(eight.weight_integers * eight.weight_scale[:, None], eight.values[:, :-1])


@pytest.mark.parametrize("bits, granularity", CASES)
def test_integer_forward_predicts_as_the_dequantized_model_on_the_test_set(saved, bits, granularity):
    exp = tiny_digits()
    loaded = load_quantized(saved[bits, granularity][1])
    x = exp.data.x_test
    reference = _logits(loaded.model.double(), x.astype(np.float64))  # the dequantized model, exact arithmetic
    expected = loaded.predict(x)
    np.testing.assert_array_equal(expected, _logits(saved[bits, granularity][0].model, x).argmax(1))
    np.testing.assert_array_equal(loaded.integer_predict(x), expected)
    np.testing.assert_allclose(loaded.integer_forward(x), reference, rtol=0, atol=1e-6 * np.abs(reference).max())
    np.testing.assert_array_equal(loaded.integer_predict(x, exact_inputs=False), expected)  # 16-bit inputs


def test_int32_accumulation_cannot_overflow(saved):
    layer = load_quantized(saved[8, "tensor"][1]).layers[0]
    bits = layer.activation_bits
    worst = np.abs(layer.weight_integers.astype(np.int64)).sum(axis=1).max()
    assert 2 <= bits <= 16 and worst * (2 ** (bits - 1) - 1) < 2 ** 31
    extreme = np.full((1, layer.in_features), 2 ** (bits - 1) - 1, dtype=np.int64) * np.sign(
        layer.weight_integers[[np.argmax(np.abs(layer.weight_integers.astype(np.int64)).sum(axis=1))]])
    wide = extreme @ layer.weight_integers.astype(np.int64).T
    narrow = extreme.astype(np.int32) @ layer.weight_integers.astype(np.int32).T
    np.testing.assert_array_equal(wide, narrow)


def test_tiny_inputs_keep_their_integers_in_range(tmp_path):
    """A row of tiny values (a float64 model's inputs near 1e-316) had a subnormal input scale ``max|x| / Q`` of
    few bits, or zero: the integer pass divided by zero, its int32 sums held garbage and 18 of 50 predictions
    differed from the model's (at 1e-310 the logits were off by 1.5e-4 relative). The logits scale with the input
    in a network without bias, to the last bit the integer pass keeps."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(6, 4, bias=False), torch.nn.ReLU(),
                                torch.nn.Linear(4, 3, bias=False)).double().eval()
    x = np.random.default_rng(0).normal(size=(50, 6))
    loaded = load_quantized(quantize_model(model, x, 4, "rtn", None).save(tmp_path / "m.npz"))
    for exact in (True, False):
        logits = loaded.integer_forward(x, exact)
        for tiny in (1e-310, 1e-316, 1e-320):
            with np.errstate(divide="raise", over="raise", invalid="raise"):  # underflow: the true logits
                scaled = loaded.integer_forward(x * tiny, exact)
            np.testing.assert_array_equal(scaled.argmax(1), loaded.predict(x * tiny))
            if tiny > 1e-317:  # the logits are subnormal: 1e-317 holds 7 digits
                np.testing.assert_allclose(scaled, logits * tiny, rtol=1e-5, atol=0)


def test_settings_are_redacted_and_the_file_holds_no_secret(saved):
    _, path = saved[4, "tensor"]
    assert b"DEV-do-not-write" not in path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        assert "DEV-do-not-write" not in archive.read("meta.npy").decode("latin-1")
    assert load_quantized(path).settings["api_token"] == "<redacted>"


def _rewrite(path, target, change) -> None:
    with np.load(path) as npz:
        arrays = {key: npz[key] for key in npz.files}
    change(arrays)
    np.savez(target, **arrays)


def test_a_changed_integer_fails_the_checksum(saved, tmp_path):
    _, path = saved[4, "tensor"]

    def flip(arrays):
        arrays["q0.integers"] = arrays["q0.integers"].copy()
        arrays["q0.integers"][0, 0] ^= 1

    _rewrite(path, tmp_path / "edited.npz", flip)
    with pytest.raises(ModelFileError, match="checksum mismatch"):
        load_quantized(tmp_path / "edited.npz")


def test_truncated_missing_and_foreign_files_are_clear_errors(saved, tmp_path):
    _, path = saved[4, "tensor"]
    data = path.read_bytes()
    (tmp_path / "cut.npz").write_bytes(data[: len(data) // 2])
    with pytest.raises(ModelFileError, match="truncated or another format"):
        load_quantized(tmp_path / "cut.npz")
    with pytest.raises(ModelFileError, match="no such model file"):
        load_quantized(tmp_path / "absent.npz")
    with pytest.raises(ModelFileError, match="is a folder, not a model file: give the .npz file"):
        load_quantized(tmp_path)  # "no such model file" for a folder that is there
    np.savez(tmp_path / "other.npz", meta=np.array(json.dumps({"format": "something else"})))
    with pytest.raises(ModelFileError, match="is not a qannealq-quantized-model file"):
        load_quantized(tmp_path / "other.npz")


@pytest.mark.parametrize("content, found", [
    (None, r"begins with b'\\x93NUM', not a zip archive's"),  # an .npy array, np.save's
    (b"dataset,accuracy\n", r"begins with b'data', not a zip archive's"),
    (b"", r"is empty \(truncated to nothing\)"),
])
def test_a_file_that_is_no_zip_archive_is_refused_by_name(tmp_path, content, found):
    """An ``.npy`` file ended in "TypeError: 'numpy.ndarray' object does not support the context manager protocol"
    (np.load reads a file by its content), and a text or ONNX file in np.load's advice to load it unsafely as a
    pickle ("If you trust the file you can load it unsafely using the `allow_pickle=` keyword argument")."""
    path = tmp_path / "not-a-model.npz"
    if content is None:
        with open(path, "wb") as fh:
            np.save(fh, np.arange(4))
    else:
        path.write_bytes(content)
    with pytest.raises(ModelFileError) as caught:
        load_quantized(path)
    assert re.search(f"is not a qannealq model file: it {found}", str(caught.value))
    assert "give the .npz file that ModelResult.save or qannealq run --save-model wrote" in str(caught.value)
    assert "pickle" not in str(caught.value)


def test_a_file_of_a_newer_version_says_so(saved, tmp_path):
    """A version 3 file (a newer qannealq's) was 'not a qannealq-quantized-model file of version 1 or 2', as a
    foreign file is: it is one, and the remedy is a newer qannealq, not saving the model again."""
    _, path = saved[4, "tensor"]

    def newer(arrays):
        meta = json.loads(str(arrays["meta"]))
        arrays["meta"] = np.array(json.dumps({**meta, "version": 3}, sort_keys=True))

    _rewrite(path, tmp_path / "newer.npz", newer)
    with pytest.raises(ModelFileError, match=r"is a qannealq-quantized-model file of version 3, written by a newer "
                       r"qannealq; this one reads versions 1 and 2: upgrade qannealq to load it"):
        load_quantized(tmp_path / "newer.npz")


def test_saving_onto_a_folder_names_the_path_and_a_file_to_give(saved, tmp_path):
    """``result.save("/tmp")`` said "cannot write /tmp: Is a directory; free disk space or choose another --out
    folder (units finished before this one are kept)": the results store's advice."""
    result, _ = saved[4, "tensor"]
    with pytest.raises(InvalidArgumentError, match=re.escape(f"path={str(tmp_path)!r} is a folder: give the file's "
                                                             f"path, e.g. {str(tmp_path / 'model.npz')!r}")):
        result.save(tmp_path)
    assert list(tmp_path.iterdir()) == []
    model = load_quantized(saved[4, "tensor"][1])
    if importlib.util.find_spec("onnx") is not None:
        with pytest.raises(InvalidArgumentError, match=re.escape(f"e.g. {str(tmp_path / 'model.onnx')!r}")):
            model.to_onnx(tmp_path)


@pytest.mark.parametrize("path", [None, 3, ""])
def test_a_path_that_is_not_one_is_refused_by_name(saved, path):
    """``save(None)``, ``load_quantized(3)``, ``to_onnx(None)`` and ``run_onnx(None, x)`` raised Python's
    "expected str, bytes or os.PathLike object, not NoneType" (onnxruntime's own TypeError for run_onnx), naming no
    argument; ``save("")`` said that ``''`` was a folder."""
    from qannealq.model_export import run_onnx

    result, file = saved[4, "tensor"]
    model = load_quantized(file)
    calls = [lambda: result.save(path), lambda: load_quantized(path), lambda: model.to_onnx(path),
             lambda: run_onnx(path, np.zeros((1, 16)))]
    for call in calls:
        with pytest.raises(InvalidArgumentError, match=re.escape(f"path={path!r} is not a file path: give one as "
                                                                 "text or a pathlib.Path")):
            call()


def test_integer_inputs_of_the_wrong_shape_or_not_finite_are_refused(saved):
    """A wrong width ended in numpy's matmul error, a single sample in an ``AxisError``, and NaN inputs gave
    predictions from undefined integers."""
    model = load_quantized(saved[4, "tensor"][1])
    x = tiny_digits().data.x_test[:3]
    assert (model.integer_predict(x) == model.predict(x)).all()
    with pytest.raises(InvalidArgumentError, match=r"layer '0' takes inputs \(N, 16\), and x gives it \(3, 15\)"):
        model.integer_predict(x[:, :15])
    with pytest.raises(InvalidArgumentError, match=r"x gives it \(16,\)"):
        model.integer_forward(x[0])
    bad = x.copy()
    bad[1, 2] = np.nan
    with pytest.raises(InvalidArgumentError, match="x contains NaN or infinity"):
        model.integer_predict(bad)


def test_mode_flags_that_are_not_true_or_false_are_refused(saved, tmp_path):
    """``integer_forward(x, exact_inputs="False")`` ran the exact mode and ``to_onnx(path,
    quantize_activations="False")`` wrote the QDQ activations: any text is true."""
    model = load_quantized(saved[4, "tensor"][1])
    x = tiny_digits().data.x_test[:5]
    with pytest.raises(InvalidArgumentError, match=re.escape("exact_inputs='False' must be True or False")):
        model.integer_forward(x, exact_inputs="False")
    with pytest.raises(InvalidArgumentError, match=re.escape("exact_inputs='no' must be True or False")):
        model.integer_predict(x, "no")
    with pytest.raises(InvalidArgumentError, match=re.escape("quantize_activations='False' must be True or False")):
        model.to_onnx(tmp_path / "m.onnx", quantize_activations="False")
    assert not (tmp_path / "m.onnx").exists()


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="needs the onnx extra")
def test_run_onnx_refuses_inputs_that_are_not_finite(saved, tmp_path):
    """A NaN input made the graph's input scale NaN, its ``Where`` took 1 instead, and ``run_onnx`` returned finite,
    meaningless logits for the row (hundreds, where the model's are below 1), where ``predict`` refuses it."""
    from qannealq.model_export import run_onnx

    model = load_quantized(saved[4, "tensor"][1])
    path = model.to_onnx(tmp_path / "m.onnx")
    x = tiny_digits().data.x_test[:3].copy()
    for bad in (np.nan, np.inf):
        x[0, 0] = bad
        with pytest.raises(InvalidArgumentError, match="x contains NaN or infinity"):
            run_onnx(path, x)


@pytest.mark.skipif(importlib.util.find_spec("onnxruntime") is None, reason="needs the onnx extra")
def test_run_onnx_refuses_inputs_of_another_shape_as_predict_does(saved, tmp_path):
    """Inputs of another width or rank reached onnxruntime, whose ``InvalidArgument`` ("Got invalid dimensions for
    input: input ... Got: 15 Expected: 16") is no qannealq error, where ``predict`` names the shape it takes."""
    from qannealq.model_export import run_onnx

    model = load_quantized(saved[4, "tensor"][1])
    path = model.to_onnx(tmp_path / "m.onnx")
    x = tiny_digits().data.x_test[:3]
    assert run_onnx(path, x).shape == (3, 10)
    for bad in (x[:, :-1], x[0], x.reshape(3, 1, -1)):
        with pytest.raises(InvalidArgumentError, match=re.escape(f"the ONNX model takes inputs (N, {x.shape[1]}), and "
                                                                 f"x has shape {bad.shape}")):
            run_onnx(path, bad)
        with pytest.raises(InvalidArgumentError, match="give x of the shape the model was quantized on"):
            model.predict(bad)


def test_run_onnx_names_a_missing_folder_or_foreign_file(saved, tmp_path):
    """``run_onnx`` passed the path to onnxruntime: a folder and a ``.npz`` model file said "INVALID_PROTOBUF : Load
    model from ... failed:Protobuf parsing failed" alike, a missing file raised onnxruntime's NoSuchFile, none of
    them a qannealq error."""
    pytest.importorskip("onnxruntime")
    from qannealq.model_export import run_onnx

    model = load_quantized(saved[4, "tensor"][1])
    path = model.to_onnx(tmp_path / "m.onnx")
    x = tiny_digits().data.x_test[:3]
    (tmp_path / "cut.onnx").write_bytes(path.read_bytes()[:100])
    folder = "is a folder, not an ONNX model file: give the file QuantizedModel.to_onnx wrote"
    for where, message in ((tmp_path, folder),
                           (tmp_path / "absent.onnx", "no such ONNX model file"),
                           (saved[4, "tensor"][1], r"is not an ONNX model onnxruntime can load \(InvalidProtobuf: "),
                           (tmp_path / "cut.onnx", "is not an ONNX model onnxruntime can load")):
        with pytest.raises(ModelFileError, match=message):
            run_onnx(where, x)
    np.testing.assert_array_equal(run_onnx(path, x).argmax(1), model.predict(x))


def test_predict_checks_its_inputs_as_the_integer_pass_does(saved):
    """``predict`` passed x to torch unchecked: one sample without its batch dimension ended in torch's
    'IndexError: Dimension out of range', a wrong width in 'mat1 and mat2 shapes cannot be multiplied', and a NaN
    sample was predicted as class 0."""
    model = load_quantized(saved[4, "tensor"][1])
    x = tiny_digits().data.x_test[:3]
    with pytest.raises(InvalidArgumentError, match=r"layer '0' takes inputs \(N, 16\), and x gives it \(16,\)"):
        model.predict(x[0])
    with pytest.raises(InvalidArgumentError, match=r"x gives it \(3, 15\): give x of the shape"):
        model.predict(x[:, :15])
    bad = x.copy()
    bad[1, 2] = np.inf
    with pytest.raises(InvalidArgumentError, match="x contains NaN or infinity"):
        model.predict(bad)
    np.testing.assert_array_equal(model.predict(x[:1]), model.integer_predict(x[:1]))


def test_a_model_with_other_modules_is_refused_by_name():
    exp = tiny_digits()
    result = quantize_model(exp.model, exp.calibration, 4, "rtn", None)
    result.model = torch.nn.Sequential(torch.nn.Unflatten(1, (1, 16)), torch.nn.Conv1d(1, 1, 1), *result.model)
    with pytest.raises(InvalidArgumentError, match=r"module 0 \(Unflatten\) cannot be saved: .*; save "
                                                   r"result.model.state_dict\(\) with torch.save instead"):
        result.save("never-written.npz")


def test_a_nested_sequential_is_refused_saying_to_quantize_it_flat(tmp_path):
    """``Sequential(Flatten(), Sequential(Linear, ReLU), Linear)`` got "module 1 (Sequential) cannot be saved: the
    format holds Sequential models of ...", which said neither what to do nor that its modules were all ones the
    format holds; the same modules in one flat Sequential save and load."""
    torch.manual_seed(0)
    inner = torch.nn.Sequential(torch.nn.Linear(8, 6), torch.nn.ReLU())
    outer = torch.nn.Sequential(torch.nn.Flatten(), inner, torch.nn.Linear(6, 3))
    x = np.random.default_rng(0).normal(size=(40, 8)).astype(np.float32)
    with pytest.raises(InvalidArgumentError, match=r"module 1 \(Sequential\) cannot be saved \(a Sequential inside "
                                                   r"the Sequential: quantize one flat Sequential, e\.g\. "
                                                   r"torch\.nn\.Sequential\(\*outer\[:k\], \*outer\[k\]"):
        quantize_model(outer, x, 4, "rtn", None).save(tmp_path / "m.npz")
    flat = torch.nn.Sequential(*outer[:1], *outer[1], *outer[2:])
    result = quantize_model(flat, x, 4, "rtn", None)
    np.testing.assert_array_equal(_logits(load_quantized(result.save(tmp_path / "m.npz")).model, x),
                                  _logits(result.model, x))


def test_loads_in_a_fresh_python_process(saved, tmp_path):
    _, path = saved[2, "channel"]
    exp = tiny_digits()
    np.save(tmp_path / "x.npy", exp.data.x_test)
    code = ("import sys, numpy as np, qannealq; m = qannealq.load_quantized(sys.argv[1]); "
            "x = np.load(sys.argv[2]); print(int((m.predict(x) == m.integer_predict(x)).all()), m.meta['bits'])")
    done = subprocess.run([sys.executable, "-c", code, str(path), str(tmp_path / "x.npy")], capture_output=True,
                          text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["1", "2"]


@pytest.mark.parametrize("quantize_activations", [True, False])
@pytest.mark.parametrize("bits, granularity", [(8, "tensor"), (2, "channel"), (1, "tensor")])
def test_onnx_predicts_as_torch(saved, tmp_path, bits, granularity, quantize_activations):
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from qannealq.model_export import run_onnx

    loaded = load_quantized(saved[bits, granularity][1])
    path = loaded.to_onnx(tmp_path / "model.onnx", quantize_activations)
    graph = onnx.load(path).graph
    ops = {node.op_type for node in graph.node}
    assert "DequantizeLinear" in ops and ("QuantizeLinear" in ops) == quantize_activations
    weights = {init.name: init for init in graph.initializer if init.name.endswith("w_int8")}
    assert weights and all(w.data_type == onnx.TensorProto.INT8 for w in weights.values())
    x = tiny_digits().data.x_test
    logits = run_onnx(path, x)
    np.testing.assert_array_equal(logits.argmax(1), loaded.predict(x))
    np.testing.assert_allclose(logits, loaded.integer_forward(x, exact_inputs=not quantize_activations),
                               atol=1e-3 * np.abs(logits).max())


@pytest.mark.slow
def test_mnist_integer_and_onnx_predictions_equal_torch_on_the_whole_test_set(tmp_path):
    pytest.importorskip("onnxruntime")
    from qannealq.experiment import calibrate, prepare
    from qannealq.model_export import run_onnx

    exp = prepare(dataset="mnist")
    stats = calibrate(exp)
    x = exp.data.x_test
    for bits, granularity in CASES:
        result = quantize_model(exp.model, exp.calibration, bits, "gptq", None, granularity=granularity,
                                float_stats=stats)
        loaded = load_quantized(result.save(tmp_path / "m.npz"))
        expected = loaded.predict(x)
        np.testing.assert_array_equal(loaded.integer_predict(x), expected)
        np.testing.assert_array_equal(loaded.integer_predict(x, exact_inputs=False), expected)
        np.testing.assert_array_equal(run_onnx(loaded.to_onnx(tmp_path / "m.onnx"), x).argmax(1), expected)


def test_run_save_model_writes_each_row_s_model(tmp_path, capsys):
    """Each row's model file holds the row's numbers and names its backend as the row does (the file said
    the built sampler's class: ``LayerSASampler``, ``SimulatedAnnealing``, ``DecomposingSampler`` for exact)."""
    from qannealq.cli import main

    out = tmp_path / "run"
    assert main(["run", "--dataset", "digits", "--input-size", "4", "--bits", "2", "--methods", "rtn,qubo",
                 "--save-model", "--out", str(out)]) == 0
    rows = {row["method"]: row for row in json.loads((out / "results.json").read_text())["results"]}
    x, y = tiny_digits().data.x_test, tiny_digits().data.y_test
    for method in ("rtn", "qubo"):
        loaded = load_quantized(out / "models" / f"int2-{method}.npz")
        assert loaded.meta["method"] == method and loaded.settings["dataset"] == "digits4x4"
        assert loaded.meta["backend"] == loaded.settings["backend"] == rows[method]["backend"]
        assert float(np.mean(loaded.integer_predict(x) == y)) == pytest.approx(rows[method]["accuracy"], abs=0)
        assert loaded.meta["layer_error"] == pytest.approx(rows[method]["layer_error"], rel=1e-12)


def test_flatten_dropout_and_a_layer_left_in_float_round_trip(tmp_path):
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(12, 8), torch.nn.ReLU(), torch.nn.Dropout(0.1),
                                torch.nn.Linear(8, 3)).eval()
    x = np.random.default_rng(0).normal(size=(300, 3, 4)).astype(np.float32)
    result = quantize_model(model, x, 3, "gptq", None, layers=["1"], seed=0)
    loaded = load_quantized(result.save(tmp_path / "m.npz"))
    assert [layer.name for layer in loaded.layers] == ["1"]
    assert torch.equal(loaded.model[4].weight, model[4].weight)  # left in float, stored as it was
    expected = _logits(result.model, x).argmax(1)
    np.testing.assert_array_equal(loaded.predict(x), expected)
    np.testing.assert_array_equal(loaded.integer_predict(x), expected)
    if importlib.util.find_spec("onnxruntime") is not None:
        from qannealq.model_export import run_onnx

        with pytest.raises(InvalidArgumentError, match="input_shape"):
            loaded.to_onnx(tmp_path / "m.onnx")
        onnx_path = loaded.to_onnx(tmp_path / "m.onnx", input_shape=("batch", 3, 4))
        np.testing.assert_array_equal(run_onnx(onnx_path, x).argmax(1), expected)


def test_recorded_settings_need_text_keys(saved, tmp_path):
    """``save(path, {1: 2})`` ended in json's "'<' not supported between instances of 'int' and 'str'"."""
    result, _ = saved[4, "tensor"]
    with pytest.raises(InvalidArgumentError, match=r"extra: the keys of the settings to record must be text, not 1 "
                                                   r"\(int\)"):
        result.save(tmp_path / "m.npz", {"epochs": 5, 1: 2})
    assert not (tmp_path / "m.npz").exists()
    result.save(tmp_path / "m.npz", {"epochs": 5, "accuracy": np.float32(0.5)})
    assert load_quantized(tmp_path / "m.npz").meta["settings"]["epochs"] == 5


def test_recorded_settings_cannot_contradict_the_model_s_own(saved, tmp_path):
    """``save(path, {"bits": 2, "method": "qubo"})`` of an int4 gptq model wrote a file whose settings said int2
    qubo beside its int4 grids: the extra settings replaced the recorded ones without a word."""
    result, _ = saved[4, "tensor"]
    for key, value in (("bits", 2), ("method", "qubo"), ("granularity", "channel"), ("seed", 1)):
        with pytest.raises(InvalidArgumentError, match=re.escape(f"extra: {key}={value!r} contradicts the model's "
                                                                 f"own setting {key}=")):
            result.save(tmp_path / "m.npz", {"dataset": "digits", key: value})
        assert not (tmp_path / "m.npz").exists()
    loaded = load_quantized(result.save(tmp_path / "m.npz", {"bits": np.int64(4), "seed": 0, "method": "gptq"}))
    assert (loaded.settings["bits"], loaded.settings["seed"], loaded.meta["layers"][0]["bits"]) == (4, 0, 4)


@pytest.mark.parametrize("extra", [["dataset"], "digits", [("dataset", "digits")]])
def test_recorded_settings_must_be_a_mapping(saved, tmp_path, extra):
    """``save(path, ["dataset"])`` and ``save(path, "digits")`` ended in dict's "dictionary update sequence element
    #0 has length 1; 2 is required", naming no argument; a list of pairs said its pair was a key that is not text."""
    result, _ = saved[4, "tensor"]
    with pytest.raises(InvalidArgumentError, match=re.escape(f"extra={extra!r} must be a mapping of the settings to "
                                                             "record, e.g. {'dataset': 'mnist'}")):
        result.save(tmp_path / "m.npz", extra)
    assert not (tmp_path / "m.npz").exists()


def test_recorded_settings_are_json_values_and_version_1_files_still_load(saved, tmp_path, monkeypatch):
    """Until version 2 each recorded setting was its ``repr`` text ("'mnist'", "5"): a reader of the JSON had
    to parse Python. Values JSON holds are now stored as themselves, anything else as its repr, secrets at any
    depth never; a version 1 file loads with its settings read back as values."""
    import qannealq.model_export as model_export
    from qannealq.contract import redact

    result, _ = saved[4, "tensor"]
    extra = {"dataset": "mnist", "epochs": np.int64(5), "accuracy": np.float32(0.5), "lr": 1e-3, "shuffle": True,
             "sizes": (784, 128), "missing": None, "lost": float("nan"), "where": tmp_path,
             "dwave": {"solver": "Advantage", "api_token": "DEV-do-not-write", "num_reads": 100}}
    path = result.save(tmp_path / "v2.npz", extra)
    with np.load(path, allow_pickle=False) as npz:
        meta = json.loads(str(npz["meta"]))
    assert meta["version"] == 2 and b"DEV-do-not-write" not in path.read_bytes()
    settings = meta["settings"]
    assert {k: settings[k] for k in ("dataset", "epochs", "accuracy", "lr", "shuffle", "sizes", "missing")} == {
        "dataset": "mnist", "epochs": 5, "accuracy": 0.5, "lr": 1e-3, "shuffle": True, "sizes": [784, 128],
        "missing": None}
    assert settings["lost"] == "nan" and settings["where"] == repr(tmp_path)  # not JSON: its repr
    assert settings["dwave"] == {"solver": "Advantage", "api_token": "<redacted>", "num_reads": 100}
    assert settings["method"] == "gptq" and settings["bits"] == 4 and settings["granularity"] == "tensor"
    assert load_quantized(path).settings == settings

    monkeypatch.setattr(model_export, "VERSION", 1)  # the file as the code before version 2 wrote it
    monkeypatch.setattr(model_export, "redact_values", redact)
    old = result.save(tmp_path / "v1.npz", extra)
    with np.load(old, allow_pickle=False) as npz:
        assert json.loads(str(npz["meta"]))["settings"]["dataset"] == "'mnist'"
    monkeypatch.undo()
    loaded = load_quantized(old)
    assert loaded.meta["version"] == 1
    assert {k: loaded.settings[k] for k in ("dataset", "epochs", "shuffle", "sizes", "missing", "method", "bits")} \
        == {"dataset": "mnist", "epochs": 5, "shuffle": True, "sizes": (784, 128), "missing": None, "method": "gptq",
            "bits": 4}
    assert loaded.settings["dwave"] == {"solver": "Advantage", "api_token": "<redacted>", "num_reads": 100}
    assert loaded.settings["lost"] == "nan" and loaded.settings["accuracy"] == 0.5  # "np.float32(0.5)": 0.5
    np.testing.assert_array_equal(loaded.integer_predict(tiny_digits().data.x_test),
                                  load_quantized(path).integer_predict(tiny_digits().data.x_test))


@pytest.mark.parametrize("dtype", [np.float16, np.float32, np.int64])
def test_integer_linear_takes_inputs_of_any_dtype_as_their_float64_values(saved, dtype):
    """In float16 the scale ``max|x| / Q`` (about 2**-29) was zero: the logits were garbage (1.0 off on logits of
    size 0.3); float32 rounded the scale (3e-8 off). Each dtype's values are exact in float64, and give float64's
    logits."""
    from qannealq._integer import integer_linear

    layer = load_quantized(saved[4, "tensor"][1]).layers[0]
    x = np.random.default_rng(0).normal(scale=4.0, size=(20, layer.in_features)).astype(dtype)
    out = integer_linear(layer, x)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, integer_linear(layer, x.astype(np.float64)))
    np.testing.assert_allclose(out, x.astype(np.float64) @ layer.values[:, :-1].T + layer.values[:, -1],
                               rtol=1e-6, atol=1e-6)


def test_a_module_used_twice_is_saved_at_each_use(tmp_path):
    """``act = ReLU(); Sequential(Linear, act, Linear, act, Linear)`` was saved without its second ReLU (and a
    tied Linear left in float without its second use): named_children() yields an instance once. The file
    loaded, its checksum passed, and its predictions were wrong. The Linear's two uses are loaded as two modules
    holding one weight and one bias Parameter."""
    torch.manual_seed(0)
    act, tied = torch.nn.ReLU(), torch.nn.Linear(16, 16)
    model = torch.nn.Sequential(torch.nn.Linear(12, 16), act, tied, act, tied, act, torch.nn.Linear(16, 5)).eval()
    x = np.random.default_rng(0).normal(size=(300, 12)).astype(np.float32)
    result = quantize_model(model, x, 4, "rtn", None, layers=["0", "6"])  # a Linear run twice is not quantized
    loaded = load_quantized(result.save(tmp_path / "m.npz"))
    assert [type(m).__name__ for m in loaded.model] == [type(m).__name__ for m in model]
    assert loaded.model[2].weight is loaded.model[4].weight and loaded.model[2].bias is loaded.model[4].bias
    np.testing.assert_array_equal(_logits(loaded.model, x), _logits(result.model, x))
    np.testing.assert_array_equal(loaded.integer_predict(x), loaded.predict(x))


@pytest.mark.parametrize("layers", [["0", "6"], ["0", "2", "6"]])
def test_a_tied_linear_left_in_float_is_loaded_tied(tmp_path, layers):
    """Two Linear modules sharing one weight Parameter (one or both left in float) were saved and loaded as two
    Parameters of equal values: the predictions were the same, but a change to one (fine-tuning the loaded model)
    no longer reached the other. The architecture names the tie (``weight_of``) and loading makes it again; the
    biases, not shared, stay apart."""
    torch.manual_seed(0)
    first, second = torch.nn.Linear(16, 16), torch.nn.Linear(16, 16)
    second.weight = first.weight
    model = torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.ReLU(), first, torch.nn.ReLU(), second,
                                torch.nn.ReLU(), torch.nn.Linear(16, 5)).eval()
    x = np.random.default_rng(0).normal(size=(300, 12)).astype(np.float32)
    result = quantize_model(model, x, 4, "rtn", None, layers=layers)
    assert result.model[2].weight is result.model[4].weight
    loaded = load_quantized(result.save(tmp_path / "m.npz"))
    assert [e.get("weight_of") for e in loaded.meta["architecture"] if e["type"] == "Linear"] == [None, None, "2",
                                                                                                  None]
    assert loaded.model[2].weight is loaded.model[4].weight and loaded.model[2].bias is not loaded.model[4].bias
    np.testing.assert_array_equal(_logits(loaded.model, x), _logits(result.model, x))
    np.testing.assert_array_equal(loaded.integer_predict(x), loaded.predict(x))


def test_a_bfloat16_layer_left_in_float_round_trips_bit_identically(tmp_path):
    """numpy has no bfloat16: saving such a layer ended in a raw TypeError from ``.numpy()``. It is stored as
    float32 (exact) and loaded back as bfloat16."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(12, 16), torch.nn.ReLU(), torch.nn.Linear(16, 5)).to(torch.bfloat16)
    x = np.random.default_rng(0).normal(size=(200, 12)).astype(np.float32)
    result = quantize_model(model.eval(), x, 4, "rtn", None, layers=["0"])
    loaded = load_quantized(result.save(tmp_path / "m.npz"))
    for original, back in zip(result.model.parameters(), loaded.model.parameters()):
        assert back.dtype == torch.bfloat16 and torch.equal(back, original)
    with torch.no_grad():
        inputs = torch.as_tensor(x, dtype=torch.bfloat16)
        assert torch.equal(loaded.model(inputs), result.model(inputs))


def test_one_changed_byte_in_the_file_is_a_checksum_mismatch(saved, tmp_path):
    """A byte changed in the file itself (not a rewritten array) was caught by the zip's own CRC-32 first, and said
    "truncated or another format"; a byte of the zip's directory could end in a raw RuntimeError."""
    _, path = saved[4, "tensor"]
    data = path.read_bytes()
    with zipfile.ZipFile(path) as archive:
        members = archive.infolist()
    for info in members:  # a byte in the middle of each member's stored bytes
        changed = bytearray(data)
        changed[info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size // 2] ^= 1
        (tmp_path / "changed.npz").write_bytes(bytes(changed))
        with pytest.raises(ModelFileError, match=f"checksum mismatch \\(.*{re.escape(info.filename)}.*\\): the file "
                                                 "is corrupt or was edited; save the model again"):
            load_quantized(tmp_path / "changed.npz")
    directory = max(info.header_offset + 30 + len(info.filename) + len(info.extra) + info.compress_size
                    for info in members)
    for k in range(directory, len(data)):  # the zip's directory: refused in our error, or not read at all
        changed = bytearray(data)
        changed[k] ^= 1
        (tmp_path / "changed.npz").write_bytes(bytes(changed))
        try:
            load_quantized(tmp_path / "changed.npz")
        except ModelFileError:
            pass


def test_onnx_of_a_model_starting_with_dropout_needs_no_input_shape(tmp_path):
    """to_onnx asked for input_shape whenever the first module was not a Linear (Dropout, ReLU, Identity...),
    though the (batch, f) input is right for every model but one that flattens before its first Linear."""
    pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from qannealq.model_export import run_onnx

    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Dropout(0.1), torch.nn.Identity(), torch.nn.Linear(12, 16),
                                torch.nn.ReLU(), torch.nn.Linear(16, 5)).eval()
    x = np.random.default_rng(0).normal(size=(300, 12)).astype(np.float32)
    loaded = load_quantized(quantize_model(model, x, 4, "rtn", None).save(tmp_path / "m.npz"))
    np.testing.assert_array_equal(run_onnx(loaded.to_onnx(tmp_path / "m.onnx"), x).argmax(1), loaded.predict(x))


@pytest.mark.parametrize("flatten, shape", [(False, ("batch", 11)), (False, ("batch", 3, 4)), (False, 12),
                                            (True, ("batch", 3, 5)), (True, ("batch",)), (True, ("batch", 0, 12)),
                                            (True, ("batch", True, 12)), (True, "batch")])
def test_onnx_refuses_an_input_shape_the_model_cannot_take(tmp_path, flatten, shape):
    """A wrong input_shape ended in onnx's shape inference error from inside the graph ('Input 0 expected to have
    rank 2 but has rank 3 in node Gemm (l0.y)'), and one that was no tuple (12) in "TypeError: 'int' object is not
    iterable"; the right ones still export, the logits' batch dimension the input's."""
    onnx = pytest.importorskip("onnx")
    pytest.importorskip("onnxruntime")
    from qannealq.model_export import run_onnx

    torch.manual_seed(0)
    model = torch.nn.Sequential(*([torch.nn.Flatten()] if flatten else []), torch.nn.Linear(12, 6), torch.nn.ReLU(),
                                torch.nn.Linear(6, 3)).eval()
    x = np.random.default_rng(0).normal(size=(40, 3, 4) if flatten else (40, 12)).astype(np.float32)
    loaded = load_quantized(quantize_model(model, x, 4, "rtn", None).save(tmp_path / "m.npz"))
    with pytest.raises(InvalidArgumentError, match=rf"input_shape={re.escape(repr(shape))} is not the input of this "
                       r"model, whose first Linear takes 12 features per sample.*the batch first, "
                       + (r"sizes whose product is 12" if flatten else r"e\.g\. \('batch', 12\)")):
        loaded.to_onnx(tmp_path / "m.onnx", input_shape=shape)
    for good in ([(40, 3, 4), ("n", "h", "w"), ["batch", 3, "w"]] if flatten else [(40, 12), ("n", "f")]):
        path = loaded.to_onnx(tmp_path / "m.onnx", input_shape=good)
        assert onnx.load(path).graph.output[0].type.tensor_type.shape.dim[0].dim_value == (40 if good[0] == 40 else 0)
        np.testing.assert_array_equal(run_onnx(path, x).argmax(1), loaded.predict(x))


def test_a_resumed_save_model_run_goes_on_saving_its_models(tmp_path, monkeypatch):
    """``qannealq run --resume DIR`` takes the run's stored options, but --save-model was not one: a run started
    with it and cut short (here in its first row, before any model was written) saved no more models."""
    import qannealq.runner as runner
    from qannealq.cli import main

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    out = tmp_path / "run"
    with monkeypatch.context() as patch:
        patch.setattr(runner, "quantize_model", interrupted)
        assert main(["run", "--dataset", "digits", "--input-size", "4", "--bits", "2,3", "--methods", "rtn",
                     "--save-model", "--out", str(out)]) == 130  # Ctrl-C
    assert main(["run", "--resume", str(out)]) == 0
    assert sorted(p.name for p in (out / "models").iterdir()) == ["int2-rtn.npz", "int3-rtn.npz"]


def test_sampler_options_are_recorded_as_json_values(tmp_path):
    """The sampler's options were stored as repr text ("'geometric'", "3") in ModelResult.settings and so in the
    model file, though the file holds the settings as JSON values."""
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(4, 3), torch.nn.ReLU(), torch.nn.Linear(3, 2)).eval()
    x = np.random.default_rng(0).normal(size=(50, 4)).astype(np.float32)
    result = quantize_model(model, x, 2, "qubo", "sa", seed=0, beta_schedule_type="geometric", num_reads=3)
    options = {"beta_schedule_type": "geometric", "num_reads": 3}
    assert result.settings["sampler_kwargs"] == options
    assert load_quantized(result.save(tmp_path / "m.npz")).settings["sampler_kwargs"] == options


def test_version_1_settings_read_numpy_scalars_back_at_any_depth(saved, tmp_path, monkeypatch):
    """A version 1 file's ``np.True_`` and the numpy scalars inside a tuple or list stayed text: only a whole
    ``np.float64(0.5)`` was read back as a value."""
    import qannealq.model_export as model_export

    def redact_v1(options):  # as version 1 stored settings: every value as its repr, numpy scalars' included
        return {key: repr(value) for key, value in options.items()}

    result, _ = saved[4, "tensor"]
    monkeypatch.setattr(model_export, "VERSION", 1)  # the file as the code before version 2 wrote it
    monkeypatch.setattr(model_export, "redact_values", redact_v1)
    old = result.save(tmp_path / "v1.npz", {"shuffle": np.True_, "sizes": (np.int64(784), np.int64(128)),
                                            "rates": [np.float32(0.5), np.False_], "note": "np.int64(3)",
                                            "lost": np.float64("nan")})
    monkeypatch.undo()
    settings = load_quantized(old).settings
    assert {k: settings[k] for k in ("shuffle", "sizes", "rates", "note", "lost")} == {
        "shuffle": True, "sizes": (784, 128), "rates": [0.5, False], "note": "np.int64(3)",
        "lost": "np.float64(nan)"}
    assert type(settings["shuffle"]) is bool and type(settings["sizes"][0]) is int


@pytest.mark.parametrize("change", ["reshaped", "replaced by ReLU", "weights edited", "bias dropped"])
def test_a_model_changed_after_quantizing_is_refused_when_saving(saved, tmp_path, change):
    """``result.model[0]`` replaced or edited after quantizing was saved all the same: the file stores the grid, so
    a reshaped layer's file failed to load (torch's "The size of tensor a (20) must match the size of tensor b ..."),
    a layer turned into a ReLU ended in "'ReLU' object has no attribute 'in_features'", and edited weights or a
    dropped bias loaded as a model other than ``result.model``."""
    result = copy.deepcopy(saved[4, "tensor"][0])
    first = result.model[0]
    if change == "reshaped":
        result.model[0], result.model[2] = torch.nn.Linear(16, 20), torch.nn.Linear(20, 10)
    elif change == "replaced by ReLU":
        result.model[0] = torch.nn.ReLU()
    elif change == "weights edited":
        with torch.no_grad():
            first.weight[0, 0] += 1e-3
    else:
        result.model[0] = torch.nn.Linear(16, first.out_features, bias=False)
    with pytest.raises(InvalidArgumentError, match=r"layer '0': result.model's module 0 \((Linear|ReLU)\) does not "
                                                   r"hold the quantized values of the layer result \(a Linear\(16, "
                                                   r"16, bias=True\).*quantize the model as it is now"):
        result.save(tmp_path / "m.npz")
    assert not (tmp_path / "m.npz").exists()


def _rewritten(path, out, edit_meta=lambda meta: None, edit_arrays=lambda arrays: None):
    """``path``'s file with its metadata or arrays changed and its checksum computed anew (as another program
    writing the format would), written to ``out``."""
    from qannealq.model_export import _checksum

    with np.load(path, allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files if key not in ("meta", "checksum")}
        meta = json.loads(str(npz["meta"]))
    edit_meta(meta)
    edit_arrays(arrays)
    text = json.dumps(meta, sort_keys=True)
    np.savez(out, meta=np.array(text), checksum=np.array(_checksum(text, arrays)), **arrays)
    return out


@pytest.mark.parametrize("meta_edit, arrays_edit, detail", [
    (lambda m: m["layers"].append(dict(m["layers"][0], name="9")), lambda a: None, r"no 'q2\.bias_step'"),
    (lambda m: m["architecture"][0].update({"in": 15}), lambda a: None,
     r"layer '0': int8 integers of shape \(16, 17\) and 16 weight steps, where its Linear\(15, 16, bias=True\) "
     r"takes int8 \(16, 16\)"),
    (lambda m: None, lambda a: a.update({"q0.integers": np.full_like(a["q0.integers"], 100)}),
     r"layer '0': integers in \[100, 100\], outside its grid's range \[-8, 7\]"),
    (lambda m: m["architecture"][1].update(type="GELU"), lambda a: None,
     r"module 1 of type 'GELU', none that the format holds"),
], ids=["a layer without arrays", "a Linear of other inputs", "integers off the grid", "an unknown module"])
def test_a_file_whose_metadata_and_arrays_disagree_is_refused(saved, tmp_path, meta_edit, arrays_edit, detail):
    """Only the checksum was checked: a file whose metadata disagreed with its arrays (checksum computed anew) ended
    in a bare ``KeyError: 'q2.bias_step'`` or ``'GELU'``, or loaded silently wrong: a Linear of 15 inputs took the
    16th weight column as its bias, and integers 100 on an int4 grid became weights far off it."""
    path = _rewritten(saved[4, "tensor"][1], tmp_path / "other.npz", meta_edit, arrays_edit)
    with pytest.raises(ModelFileError, match=rf"other\.npz: its metadata and arrays disagree \({detail}.*\), though "
                                             r"its checksum holds: .*save the model again"):
        load_quantized(path)


@pytest.mark.parametrize("x", ["abc", [[1.0, 2.0], [3.0]], [{"a": 1}]], ids=["text", "ragged rows", "objects"])
def test_inputs_that_are_no_array_of_numbers_are_refused_by_name(saved, tmp_path, x):
    """``predict``, ``integer_forward`` and ``run_onnx`` of text or ragged rows ended in numpy's own "could not
    convert string to float: 'abc'" or "setting an array element with a sequence", naming no argument."""
    from qannealq.model_export import run_onnx

    model = load_quantized(saved[4, "tensor"][1])
    calls = [model.predict, model.integer_forward, model.integer_predict]
    if importlib.util.find_spec("onnxruntime") and importlib.util.find_spec("onnx"):
        onnx_path = model.to_onnx(tmp_path / "m.onnx")
        calls.append(lambda x: run_onnx(onnx_path, x))
    for call in calls:
        with pytest.raises(InvalidArgumentError, match=r"x must be an array of numbers \(N, features\), got "
                                                       r"(str|list) \(.*\): give the inputs as a numpy array"):
            call(x)
