"""Multiply-adds of one chain's sweep and of its records: the dominant terms, from the shapes.

Used to choose what is recorded at a size (``_records.py``) and by the benchmarks to say which
fraction of a machine's matmul throughput a sweep reaches. Terms are multiply-adds per chain;
a factorisation's multiply-adds (the batched q x q Choleskys of the regressions and of the
factor scores) are counted ``FACTORISATION_WEIGHT`` times, since they run that much slower than
a matrix product (measured on the 2-core CPU: small batched Choleskys about 2 GFLOP/s in XLA
against 30-90 GFLOP/s for a float64 GEMM).
"""

from __future__ import annotations

from ._sampler_data import SamplerData
from .blocks.exchange import EXCHANGE_STEPS, SHRINKAGE_STEPS, SHRINKAGE_STEPS_WITH_EXCHANGE

__all__ = ["FACTORISATION_WEIGHT", "covariance_record_cost", "record_cost", "sweep_cost"]

FACTORISATION_WEIGHT = 10.0


def _whiten(data: SamplerData) -> float:
    """Multiply-adds to whiten one column at one grid point in the backend's coordinates."""
    n, r = data.shapes["n"], data.shapes["r"]
    backend = type(data.re).__name__
    if backend.startswith("Eigen"):
        return float(n)  # diagonal
    if backend.startswith("Cholesky"):
        return n * n / 2.0  # a triangular solve
    return float(n * max(r - data.re.sizes[0], 1))  # woodbury: the low-rank correction


def _columns(data: SamplerData, c: int, q: int, weight: float) -> dict[str, float]:
    """Steps 1-3 (or 4-6) on c columns with q regressors."""
    n, grid = data.shapes["n"], data.h2_grid.shape[0]
    whiten, chol = _whiten(data), weight * q**3 / 6.0
    if data.collapsed_h2:  # statistics and one q x q Cholesky per column and grid point
        regression = grid * c * (whiten + n * q + chol)
    else:  # the statistics at the trait's h2, a Cholesky, and the log-likelihood at every grid point
        regression = c * (whiten + n * q + chol) + grid * c * n
    return {"regression": regression + n * q * c, "random effects": c * whiten}


def sweep_cost(data: SamplerData, factorisation_weight: float = FACTORISATION_WEIGHT) -> dict[str, float]:
    """Weighted multiply-adds of one chain's sweep, by term (see the module's docstring); with
    ``factorisation_weight=1`` the plain multiply-adds."""
    s = data.shapes
    n, p, k, b, b_F = s["n"], s["p"], s["k"], s["b"], s["b_F"]
    weight = factorisation_weight
    traits = _columns(data, p, b + k, weight)
    factors = _columns(data, k, b_F, weight)
    cost = {
        "trait regressions": traits["regression"],
        "trait random effects": traits["random effects"],
        "factor regressions and effects": factors["regression"] + factors["random effects"],
        # residual times Lambda', Lambda D Lambda', one k x k Cholesky per row
        "factor scores": n * p * k + p * k * k + n * weight * k**3 / 6.0,
        "factor rotation": p * k * k + n * k * k,
    }
    G = data.h2_grid.shape[0]
    if data.marginal_factor_h2:  # M, the grid's k x k sums C_g, the row-wise A_i, then O(n G) per factor,
        # and the residual Eta - X B - F Lambda for the draw of U_R after it
        cost["factor h2 marginal over F"] = 2 * n * p * k + G * p * k * k + G * n * k * k + G * n * k
    if data.exchange_factors:  # per factor: about 6 + steps passes over the n x p residual
        steps = EXCHANGE_STEPS + data.rescale_factors * SHRINKAGE_STEPS_WITH_EXCHANGE
        cost["factor-trait variance exchange"] = (6 + steps) * n * p * k
    elif data.rescale_factors:  # M and A_i as in step 5m, then O(n k) per factor (blocks/exchange.py)
        cost["factor loadings rescaling"] = n * p * k + G * p * k * k + G * n * k * k + n * k * (k + SHRINKAGE_STEPS)
    if not data.latent_is_data or data.groups is not None:
        cost["latent traits"] = n * p * (k + b)
    return cost


def covariance_record_cost(data: SamplerData) -> float:
    """Multiply-adds of one chain's G (every random effect) and R from Lambda: (R + 1) p^2 k."""
    s = data.shapes
    return (data.h2_grid.shape[1] + 1) * s["p"] ** 2 * s["k"]


def record_cost(data: SamplerData) -> float:
    """Multiply-adds of one chain's records other than G and R: Eta_mean and the genetic values."""
    s = data.shapes
    return s["n"] * s["p"] * (s["k"] + s["b"]) + s["r"] * s["k"] * s["p"]
