"""Random layers and direct (matrix-product) reconstruction errors shared by the core tests."""

from __future__ import annotations

from dataclasses import dataclass

import dimod
import numpy as np
import pytest

from qannealq.formulation import LayerProblem, LayerStats, build_problem
from qannealq.grid import make_grid


@dataclass
class RandomLayer:
    x: np.ndarray
    y: np.ndarray
    weight: np.ndarray
    bias: np.ndarray | None

    @property
    def x_aug(self) -> np.ndarray:
        if self.bias is None:
            return self.x
        return np.concatenate([self.x, np.ones((len(self.x), 1))], axis=1)

    def direct_errors(self, values: np.ndarray) -> np.ndarray:
        """mean_s (y_is - q_i . x̃_s)^2 per neuron, straight from the data."""
        return np.mean((self.y - self.x_aug @ values.T) ** 2, axis=0)

    def direct_error(self, i: int, row: np.ndarray) -> float:
        """Neuron ``i``'s error for one augmented row ``(m,)``."""
        return float(np.mean((self.y[:, i] - self.x_aug @ row) ** 2))

    def problem(self, bits: int, granularity: str = "tensor", int1: str = "sign") -> LayerProblem:
        stats = LayerStats.from_arrays(self.x, self.y, bias=self.bias is not None)
        grid = make_grid(self.weight, self.bias, bits, granularity, int1)
        return build_problem(stats, self.weight, self.bias, grid)


def random_layer(rng: np.random.Generator, f: int, n: int, samples: int = 300, dead: int = 2,
                 bias: bool = True, noise: float = 0.05) -> RandomLayer:
    """Correlated inputs with ``dead`` always-zero columns; weights with outliers so grids clip at both edges."""
    x = rng.normal(size=(samples, f)) @ rng.normal(size=(f, f)) / np.sqrt(f)
    x[:, :dead] = 0.0
    w = rng.normal(size=(n, f))
    if f >= 3:
        w[:, -1] = 4.0  # large positive outliers: clipped at the top edge under per-channel max scales
        w[0, -2] = -6.0  # the tensor's largest magnitude: the negative edge
        w[-1, -3] = 5.9  # just under the tensor's top level: floor at the top edge, fixed
    b = rng.normal(size=n) if bias else None
    y = x @ w.T + (0 if b is None else b) + noise * rng.normal(size=(samples, n))
    return RandomLayer(x, y, w, b)


GRIDS = [(bits, gran, int1) for bits in (1, 2, 3, 4, 8) for gran in ("tensor", "channel")
         for int1 in (("sign", "paper") if bits == 1 else ("sign",))]


def layer_problem(seed: int, f: int, n: int, bits: int, samples: int = 300) -> tuple[RandomLayer, LayerProblem]:
    """A random layer and its problem on a ``bits`` grid."""
    layer = random_layer(np.random.default_rng(seed), f, n, samples=samples)
    return layer, layer.problem(bits)


def smooth_layer(seed: int, f: int, n: int, bits: int) -> tuple[RandomLayer, LayerProblem]:
    """A layer whose inputs are smooth signals (neighbouring inputs correlated ~0.9+, as pixels are)."""
    rng = np.random.default_rng(seed)
    x = np.cumsum(rng.normal(size=(400, f + 40)), axis=1)
    x = np.stack([np.convolve(row, np.ones(40) / 40, mode="valid")[:f] for row in x])
    x /= x.std()
    w = rng.normal(size=(n, f)) / np.sqrt(f)
    layer = RandomLayer(x, x @ w.T + 0.01 * rng.normal(size=(400, n)), w, None)
    return layer, layer.problem(bits)


def check_reported_energies(problem: LayerProblem, sample, values: np.ndarray) -> None:
    """``layer-sa``'s energies are the errors of the decoded values on a shared ``H`` (``problem.errors``, which
    the solve loop's result reports), to the rounding of their product (the problem forms a product near one it
    remembers from that one's, :mod:`qannealq._near`: which ones it still remembers depends on the solves before;
    on a smooth layer whose errors are 5e-5 the two differ by up to 7e-12 relative), and exactly the QUBO
    energies on per-neuron ``H_i``; the QUBO energies to rounding either way (both sum terms far larger than a
    small error: on smooth layers whose errors are 5e-5 they differ by up to 1e-13)."""
    energies = problem.qubo_energies(sample.assignments)
    if problem.per_neuron:
        np.testing.assert_array_equal(sample.energies, energies)
    else:
        fresh = problem.errors_from_products(values, values @ problem.hessian, remember=False)
        np.testing.assert_allclose(sample.energies, fresh, rtol=1e-10, atol=1e-16)
    np.testing.assert_allclose(sample.energies, energies, rtol=1e-9, atol=1e-12)


def check_layer_energies(layer: RandomLayer, problem: LayerProblem, sample) -> None:
    """A LayerSample's energies equal qubo_energies, each neuron's BQM energy, and the error from the data."""
    assert np.all(sample.assignments[~problem.free] == 0), "a fixed coordinate was flipped"
    _, values = problem.decode_layer(sample.assignments)
    check_reported_energies(problem, sample, values)
    np.testing.assert_allclose(sample.energies, layer.direct_errors(values), rtol=1e-9, atol=1e-12)
    for i in range(problem.num_neurons):
        idx = problem.variables(i)
        bqm = problem.neuron_bqm(i)
        energy = bqm.energy(dict(zip(idx.tolist(), sample.assignments[i, idx].tolist()))) if idx.size else bqm.offset
        assert energy == pytest.approx(sample.energies[i], rel=1e-9, abs=1e-12)


class LazyCloud(dimod.Sampler):
    """A registry backend (by its name) whose ``child`` is a cloud client built on first reading: reading it fails."""

    name, parameters, properties = "dwave-hybrid", {}, {}

    @property
    def child(self):
        raise AssertionError("the cloud client was built")

    def sample(self, bqm, **kwargs):  # pragma: no cover - never called
        raise AssertionError


class Wrapper(dimod.Sampler):
    """A caller's own wrapper: a ``child``, no ``children``, no name."""

    name, parameters, properties = None, {}, {}

    def __init__(self, child):
        self.child = child

    def sample(self, bqm, **kwargs):  # pragma: no cover - never called
        raise AssertionError
