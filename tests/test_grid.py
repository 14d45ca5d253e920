from __future__ import annotations

import numpy as np
import pytest

from qannealq import InvalidArgumentError, NonFiniteError, QannealqError, make_grid
from qannealq.grid import ZERO_SIGN_STEP


@pytest.mark.parametrize("bits", [0, 9, -1, 2.5, "4", True])
def test_bits_outside_range_rejected(bits):
    with pytest.raises(InvalidArgumentError, match="bits"):
        make_grid(np.ones((2, 3)), None, bits)


def test_errors_share_root_and_builtin():
    with pytest.raises(QannealqError):
        make_grid(np.ones((2, 3)), None, 12)
    with pytest.raises(ValueError):
        make_grid(np.ones((2, 3)), None, 12)


@pytest.mark.parametrize("bad", [np.nan, np.inf])
def test_non_finite_weights_rejected(bad):
    w = np.ones((2, 3))
    w[1, 1] = bad
    with pytest.raises(NonFiniteError, match="weight"):
        make_grid(w, None, 4)
    with pytest.raises(NonFiniteError, match="bias"):
        make_grid(np.ones((2, 3)), np.array([0.0, bad]), 4)


@pytest.mark.parametrize("bits", range(2, 9))
def test_paper_grid_per_tensor(bits):
    rng = np.random.default_rng(bits)
    w = rng.normal(size=(4, 7))
    b = rng.normal(size=4)
    g = make_grid(w, b, bits)
    assert (g.lo, g.hi, g.offset) == (-(2 ** (bits - 1)), 2 ** (bits - 1) - 1, 0.0)
    np.testing.assert_allclose(g.weight_step, np.abs(w).max() / 2 ** (bits - 1))
    assert g.bias_step == pytest.approx(np.abs(b).max() / 2 ** (bits - 1))
    steps = g.steps(7)
    assert steps.shape == (4, 8)
    ints = g.nearest(np.concatenate([w, b[:, None]], axis=1), steps)
    assert ints.min() >= g.lo and ints.max() <= g.hi


def test_per_channel_steps_follow_rows():
    w = np.array([[1.0, -2.0], [0.5, 0.25], [0.0, 0.0]])
    g = make_grid(w, None, 3, granularity="channel")
    np.testing.assert_allclose(g.weight_step, [2.0 / 4, 0.5 / 4, 1.0])  # all-zero row: any positive step
    assert g.bias_step is None
    assert g.steps(2).shape == (3, 2)


def test_int1_sign_grid_is_plus_minus_alpha():
    w = np.array([[0.5, -1.5, 0.2, -0.1]])
    g = make_grid(w, None, 1)
    alpha = np.abs(w).mean()
    levels = g.dequantize(np.array([g.lo, g.hi]), g.steps(4)[0, :2])
    np.testing.assert_allclose(levels, [-alpha, alpha])


def test_int1_sign_grid_keeps_a_zero_bias_and_a_zero_row_at_zero():
    """The sign scheme has no 0 level: a step of 1 for an all-zero vector made a zero bias (a common
    initialisation) and a pruned row ±0.5, whatever the layer's scale."""
    import torch

    from qannealq import quantize_model

    torch.manual_seed(0)
    layer = torch.nn.Linear(8, 4)
    with torch.no_grad():
        layer.weight.mul_(0.01)
        layer.bias.zero_()
    x = torch.randn(128, 8)
    for granularity in ("tensor", "channel"):
        g = make_grid(np.vstack([layer.weight.detach().numpy(), np.zeros((1, 8))]), np.zeros(5), 1,
                      granularity=granularity)
        steps = g.steps(8)
        for z in (g.lo, g.hi):
            assert abs(g.dequantize(np.array([z]), steps[4, -1:])[0]) < 1e-12  # the zero bias's levels
            if granularity == "channel":  # the zero row's own step
                assert np.abs(g.dequantize(np.full(8, z), steps[4, :8])).max() < 1e-12
        result = quantize_model(torch.nn.Sequential(layer), x, 1, "rtn", granularity=granularity)
        assert np.abs(result.model[0].bias.detach().numpy()).max() < 1e-12
        with torch.no_grad():
            float_out, quant_out = layer(x), result.model[0](x)
        error = ((float_out - quant_out).double() ** 2).mean(0).sum().item()
        assert result.layers[0].errors.sum() == pytest.approx(error, rel=1e-5)
        assert error < 1e-3  # weights of 0.01 on ±alpha levels; a ±0.5 bias cost 1.0


def test_int1_paper_grid_is_minus_max_and_zero():
    w = np.array([[0.5, -1.5, 0.2, -0.1]])
    g = make_grid(w, None, 1, int1="paper")
    levels = g.dequantize(np.array([g.lo, g.hi]), g.steps(4)[0, :2])
    np.testing.assert_allclose(levels, [-1.5, 0.0])


def test_floor_marks_clipped_and_top_edge_fixed():
    w = np.array([[-9.0, -1.0, 0.6, 1.0, 1.9]])
    g = make_grid(np.array([[2.0, -2.0]]), None, 2)  # step 1, integers [-2, 1]
    k, free = g.floor(w, np.ones_like(w))
    np.testing.assert_array_equal(k, [[-2, -1, 0, 1, 1]])
    # -9 clipped (fixed), -1 and 0.6 free, 1.0 sits on the top edge (k + 1 leaves), 1.9 clipped at the top
    np.testing.assert_array_equal(free, [[False, True, True, False, False]])


@pytest.mark.parametrize("kwargs, name", [({"granularity": "row"}, "granularity"), ({"int1": "ternary"}, "int1")])
def test_bad_choices_name_the_argument(kwargs, name):
    with pytest.raises(InvalidArgumentError, match=name):
        make_grid(np.ones((2, 2)), None, 1, **kwargs)


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("bits, granularity, calibration", [(8, "tensor", "float"), (8, "channel", "sequential"),
                                                             (4, "tensor", "sequential"), (1, "channel", "float")])
def test_a_half_precision_model_holds_its_grid_exactly(dtype, bits, granularity, calibration, caplog):
    """A float16 or bfloat16 model's quantized weights were the grid's levels cast to its dtype: up to 0.05
    (float16) and 0.4 (bfloat16) of a step off their level at int8, while the layer errors, the saved integers
    and the integer forward pass were those of the levels. Its grid's steps are now rounded up to ones whose levels
    the dtype holds exactly (bfloat16 at int8: powers of two); a zero bias at int1 stays a level (the dtype's
    smallest value)."""
    import torch

    from qannealq import quantize_model

    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(12, 6), torch.nn.ReLU(), torch.nn.Linear(6, 3))
    with torch.no_grad():
        model[0].bias.zero_()
    model = model.to(getattr(torch, dtype))
    result = quantize_model(model, torch.randn(64, 12), bits, "gptq", granularity=granularity,
                            calibration=calibration)
    for layer in result.layers:
        module = result.model.get_submodule(layer.name)
        held = torch.cat([module.weight.detach(), module.bias.detach()[:, None]], 1).double().numpy()
        np.testing.assert_array_equal(held, layer.values)  # the reported errors' values, the file's integers'
        float_module = model.get_submodule(layer.name)
        weight, bias = (p.detach().double().numpy() for p in (float_module.weight, float_module.bias))
        plain = make_grid(weight, bias, bits, granularity)
        assert np.all(layer.grid.weight_step >= plain.weight_step)
        assert np.all(layer.grid.weight_step <= plain.weight_step * (2 if dtype == "bfloat16" else 1.13))
        grown = layer.grid.weight_step / plain.weight_step
        if layer.grid.bias_step is not None and plain.bias_step != ZERO_SIGN_STEP:
            grown = np.append(grown, layer.grid.bias_step / plain.bias_step)
        grew = 100 * (np.max(grown) - 1)
        said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING" and f"'{layer.name}'" in
                r.getMessage()]
        assert said == ([f"layer '{layer.name}' (torch.{dtype}): grid steps rounded up, by up to {grew:.3g} %, to "
                         "ones whose levels it holds exactly; quantize a float32 copy (model.float()) for the "
                         "plain grid"] if grew > 0 else [])
    assert result.model[0].weight.dtype == getattr(torch, dtype)


def test_a_float32_or_float64_model_keeps_the_plain_grid():
    """float32 and float64 hold each level to their own rounding: their grids are make_grid's."""
    import torch

    from qannealq import quantize_model

    torch.manual_seed(1)
    for dtype in (torch.float32, torch.float64):
        model = torch.nn.Sequential(torch.nn.Linear(12, 6)).to(dtype)
        layer = quantize_model(model, torch.randn(64, 12), 8, "rtn").layers[0]
        weight, bias = (p.detach().double().numpy() for p in (model[0].weight, model[0].bias))
        plain = make_grid(weight, bias, 8)
        np.testing.assert_array_equal(layer.grid.weight_step, plain.weight_step)
        assert layer.grid.bias_step == plain.bias_step


def test_a_half_precision_warning_leaves_out_an_all_zero_rows_step(caplog):
    """An all-zero row's int1 sign step (2**-40, levels of ±2**-41 standing for zero) goes to 2**-23 in float16:
    the warning said the steps grew 'by up to 13107100.0 %' where the other rows' grew by 0.02 % at most."""
    import torch

    from qannealq import quantize_model

    torch.manual_seed(1)
    model = torch.nn.Sequential(torch.nn.Linear(12, 6))
    with torch.no_grad():
        model[0].weight[2].zero_()
    plain = make_grid(model[0].weight.detach().half().double().numpy(), None, 1, "channel").weight_step
    grid = quantize_model(model.half(), torch.randn(64, 12), 1, "rtn", granularity="channel").layers[0].grid
    assert grid.weight_step[2] == 2 ** -23
    grew = 100 * (np.max(np.delete(grid.weight_step / plain, 2)) - 1)
    said = [r.getMessage() for r in caplog.records if r.levelname == "WARNING"]
    assert len(said) == 1 and f"by up to {grew:.3g} %" in said[0] and grew < 1


def test_a_half_precision_bias_step_grown_alone_is_said(caplog):
    """The warning measured the weight steps only: a bfloat16 layer whose weight step (2**-7) needed no rounding
    while its bias step grew 33 % (0.75 / 128 to 2**-7) said nothing."""
    import torch

    from qannealq import quantize_model

    model = torch.nn.Sequential(torch.nn.Linear(2, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.5], [-0.25, 0.125]]))
        model[0].bias.copy_(torch.tensor([0.75, -0.3]))
    grid = quantize_model(model.to(torch.bfloat16), torch.randn(32, 2), 8, "rtn").layers[0].grid
    assert grid.weight_step.tolist() == [2 ** -7] * 2 and grid.bias_step == 2 ** -7
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "layer '0' (torch.bfloat16): grid steps rounded up, by up to 33.3 %, to ones whose levels it holds exactly; "
        "quantize a float32 copy (model.float()) for the plain grid"]


def test_a_half_precision_grid_past_its_dtypes_range_is_refused():
    """float16 weights at -65504: the rounded-up step (512) put them on level -128, -65536, past float16's range:
    -inf in the model. 65504 on level 127 (65024) is held."""
    import torch

    from qannealq import quantize_model

    model = torch.nn.Sequential(torch.nn.Linear(2, 1, bias=False)).half()
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[65504.0, 1.0]]))
    assert quantize_model(model, torch.full((4, 2), 1e-4), 8, "rtn").model[0].weight[0, 0] == 65024
    with torch.no_grad():
        model[0].weight.neg_()
    with pytest.raises(InvalidArgumentError, match=r"layer '0': its quantized weight reaches 65536, past the range "
                                                   r"of its torch.float16: quantize a float32 copy"):
        quantize_model(model, torch.full((4, 2), 1e-4), 8, "rtn")


@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
@pytest.mark.parametrize("bits, int1", [(8, "sign"), (6, "sign"), (5, "sign"), (4, "sign"), (3, "sign"), (2, "sign"),
                                        (1, "sign"), (1, "paper")])
def test_a_half_precision_grid_is_the_least_coarse_one_its_dtype_holds(dtype, bits, int1):
    """held_grid rounded a unit up to ``p - bits(widest level integer)`` significand bits: at bfloat16 int4 a unit
    of 1.03 went to 1.0625 where 1.03125 (33/32: 33 * 7 = 231 fits 8 bits) holds every level; steps up to 6 %
    (int5) coarser than needed. Every float of the dtype between the plain step and the held one is now shown
    not to hold some level (also for subnormal steps)."""
    import torch

    from qannealq.grid import held_grid

    kind = getattr(torch, dtype)
    info = torch.finfo(kind)
    p, smallest = 1 - int(np.log2(info.eps)), float(info.tiny) * float(info.eps)

    def holds(step, grid):
        levels = torch.as_tensor(step * (np.arange(grid.lo, grid.hi + 1) + grid.offset), dtype=torch.float64)
        return bool(torch.equal(levels.to(kind).double(), levels))

    rng = np.random.default_rng(bits)
    scales = np.exp(rng.uniform(-2, 2, (24, 1))) * np.r_[[1.0] * 20, [smallest * 2 ** 8] * 4][:, None]
    plain = make_grid(rng.normal(size=(24, 6)) * scales, None, bits, "channel", int1)
    held = held_grid(plain, p, p, smallest, smallest)
    ratio = 1 if float(plain.offset).is_integer() else 2
    for step, rounded in zip(plain.weight_step, held.weight_step):
        assert rounded >= step and holds(rounded, plain)
        unit = float(torch.tensor(step / ratio, dtype=torch.float64).to(kind).double())
        unit = unit if unit >= step / ratio else unit + max(2.0 ** (np.floor(np.log2(unit)) + 1 - p), smallest)
        while unit * ratio < rounded:  # every float of the dtype in [step, rounded) as a unit
            assert not holds(unit * ratio, plain), (step, unit * ratio, rounded)
            unit += max(2.0 ** (np.floor(np.log2(unit)) + 1 - p), smallest)
    assert held_grid(make_grid(np.array([[1.03 * 8, 0.0]]), None, 4), 8, 8).weight_step[0] == 33 / 32
