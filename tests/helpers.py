"""Random layers and direct (matrix-product) reconstruction errors shared by the core tests."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

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
