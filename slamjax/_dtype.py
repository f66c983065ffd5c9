"""The floating-point type a run computes in: float64 (the default) or float32 (an option for GPUs).

slamjax's entry points always run inside ``jax.enable_x64(True)`` (``_x64.float64``); the dtype of
a run is the dtype of the arrays its sweeps see. A float32 run casts the floating leaves of the
model's ``SamplerData`` and of the chain states to float32 before the compiled loops
(``cast_floats``); integers, booleans and PRNG keys are left as they are. The fixed
decompositions (eigen of K, the Cholesky factor of V_g per grid point) are computed once in
float64 when the model is built and only cast. Every operation of a sweep follows the dtype of
the arrays it works with (``tests/test_float32.py`` checks that a float32 sweep holds no float64
value), so the same code serves both. Recorded draws come back to the host as NumPy float64.
"""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np
from jaxtyping import PyTree

from ._errors import SlamjaxInputError

__all__ = ["DTYPES", "check_dtype", "cast_floats", "matmul_precision", "float64_sum", "clamp_precision",
           "PRECISION_MAX_FLOAT32"]

DTYPES = ("float64", "float32")

# The largest prior precision of a float32 run: sqrt of float32's largest number (1.8e19, a prior sd of
# 2e-10 on the standardised scale: a loading shrunk to zero either way), so that products with
# tau, squares and cumulative products of the column shrinkage stay finite.
PRECISION_MAX_FLOAT32 = float(np.sqrt(np.finfo(np.float32).max))


def check_dtype(dtype, name: str = "dtype") -> str:
    """The name ("float64" or "float32") of ``dtype`` (a string, or a NumPy / JAX dtype or scalar
    type); anything else is refused naming the argument and the allowed values."""
    try:
        named = np.dtype(dtype).name if not isinstance(dtype, (str, bool)) and dtype is not None else dtype
    except TypeError:
        named = None
    if not isinstance(named, str) or named not in DTYPES:
        raise SlamjaxInputError(f"{name}: must be 'float64' (the default) or 'float32', got {dtype!r}")
    return named


def cast_floats(tree: PyTree, dtype: str) -> PyTree:
    """``tree`` with every floating-point leaf cast to ``dtype``: arrays, and Python floats (prior
    hyperparameters, which would enter a trace as float64 scalars) as 0-d arrays; other leaves
    (integers, booleans, PRNG keys; static fields are not leaves) unchanged. A no-op (the same
    tree) for float64."""
    target = jnp.dtype(dtype)

    def cast(x):
        if isinstance(x, float) or (isinstance(x, (jax.Array, np.ndarray)) and jnp.issubdtype(x.dtype, jnp.floating)
                                    and x.dtype != target):
            return jnp.asarray(x, target)
        return x

    if target == jnp.float64:
        return tree
    return jax.tree.map(cast, tree)


def matmul_precision(dtype: str):
    """The matmul precision a run compiles under: "highest" for float32, so that TF32 (10-bit
    mantissas in the GPU's tensor cores) never replaces float32 products, which the sweep's Gram
    matrices and quadratic forms cannot afford; nothing changes for float64 (exact already).
    Chosen once around the compiled loops rather than per matmul (``precision=`` at every dot)."""
    if dtype == "float32":
        return jax.default_matmul_precision("highest")
    return contextlib.nullcontext()


def float64_sum(x, axis=None):
    """The sum of ``x`` over ``axis``, accumulated in float64 and returned in ``x``'s dtype: for
    sums of many log terms (log-determinants over n rows) that decide a discrete draw, where
    float32 accumulation errors of n * eps * |terms| could shift the draw. The identity on float64
    (the same operations as ``jnp.sum``)."""
    if x.dtype == jnp.float64:
        return jnp.sum(x, axis=axis)
    return jnp.sum(x.astype(jnp.float64), axis=axis).astype(x.dtype)


def clamp_precision(x):
    """Prior precisions clamped at ``PRECISION_MAX_FLOAT32`` in float32; float64 unchanged (its
    range, 1e308, is never reached by a sound run: an overflow there is reported by the guard).

    The multiplicative column shrinkage of the loadings grows without bound on factors the data do
    not need (their deltas keep drawing values near p (k - h) / 2); a product of a few such columns
    passes float32's 3.4e38 within hundreds of sweeps."""
    if x.dtype != jnp.float32:
        return x
    return jnp.minimum(x, PRECISION_MAX_FLOAT32)
