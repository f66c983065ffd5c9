"""The marker effects of the factors, B_M (m x k), given everything else.

Given the factors' random effects U_F, the factors' residual is independent across individuals,

    R = F - X_F B_F - Z U_F = M B_M + E,   E[:, l] ~ N(0, (1 - h2_l) / tau_l I),

(rows in the random effect's coordinates, an orthogonal rotation of the individuals, under which E
stays independent), and the k columns are independent given their priors. Two exact samplers:

* ``single_site``: marker by marker, all k factors at once, each B_M[j, l] from its conditional
  given the other markers, by its class (spike, slab or mixture component) marginal over the
  effect, then the effect given the class (any ``MarkerPrior``). The residual is updated in
  blocks (BayesR3, Bolormaa et al.; JWAS' fast_blocks): for a block b of markers, r_b = M_b' R
  is one matrix product, each marker's update changes r_b by M_b' M_j (precomputed, b x b per
  block) at O(b k), and R is updated once per block. Cost per sweep: 4 n m k in matrix products
  and m sequential updates of O(b k). On the CPU the scan runs as one compiled loop
  (``_cpu_kernel``: numba through XLA's FFI), elsewhere as a JAX scan; both make the same draws.
* ``joint``: each factor's column at once, B_M[:, l] ~ N(A^-1 M' R_l w_l, A^-1) with
  A = w_l M'M + tau_l D_l, by Bhattacharya, Chakraborty & Mallick (2016): u ~ N(0, D^-1),
  v = M u + e, e ~ N(0, I / w_l), solve (M D^-1 M' + I / w_l) z = R_l - v, B = u + D^-1 M' z.
  Cost per sweep: k (n^2 m + n^3 / 3); Gaussian scale mixtures only (ARD, horseshoe, lasso).

``marker_sampler_cost`` is the cost model the model uses to choose between them.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
from jax import lax
from jaxtyping import Array, Bool, Float, Int, PRNGKeyArray

from .._linalg import jitter
from .._random import normal
from . import _cpu_kernel

__all__ = ["MarkerBlocks", "marker_blocks", "sample_single_site", "sample_joint", "marker_sampler_cost"]


class MarkerBlocks(eqx.Module):
    """The marker matrix in blocks of ``size`` markers (the last padded with zero columns), stored
    transposed: ``Mt.reshape(-1, n)`` is M' (markers as rows), so a block M_b' is contiguous and
    M B = (M')' B is one matrix product without a copy."""

    Mt: Float[Array, "nb b n"]  # rotated, centred markers, M_b' per block
    gram: Float[Array, "nb b b"]  # M_b' M_b
    valid: Bool[Array, "nb b"]  # False for the padding
    m: int = eqx.field(static=True)


def marker_blocks(M: np.ndarray, size: int) -> MarkerBlocks:
    """Blocks of ``size`` columns of M (n x m, rows in the sweep's coordinates) with their Gram matrices."""
    n, m = M.shape
    size = max(1, min(int(size), m))
    nb = -(-m // size)
    padded = np.zeros((n, nb * size))
    padded[:, :m] = M
    rows = np.ascontiguousarray(padded.T).reshape(nb, size, n)
    gram = np.einsum("bin,bjn->bij", rows, rows)
    valid = (np.arange(nb * size) < m).reshape(nb, size)
    return MarkerBlocks(Mt=jnp.asarray(rows), gram=jnp.asarray(gram), valid=jnp.asarray(valid), m=m)


def _class_draw(gumbel, z, rhs, xtx, w, tau, precision, log_pi, spike: bool):
    """One marker's effects on all k factors: the class c marginal over the effect, then the effect.

    rhs = M_j' (residual without marker j) (k,); w the residual precision (k,); precision and
    log_pi (k, C) the tau-free class precisions and log probabilities; gumbel (k, C) standard Gumbel
    and z (k,) standard normal noise. For class c with prior
    precision t = tau d_c and posterior precision P = w xtx + t:
        log P(c | .) = log pi_c + 1/2 log(t / P) + (w rhs)^2 / (2 P) + const,   B | c ~ N(w rhs / P, 1 / P);
    a spike class keeps log pi_0 and B = 0.
    """
    spike_class = jnp.isinf(precision)
    t = tau[:, None] * jnp.where(spike_class, 1.0, precision)
    P = (w * xtx)[:, None] + t
    score = (w * rhs)[:, None]
    log_weight = log_pi + jnp.where(spike_class, 0.0, 0.5 * jnp.log(t / P) + 0.5 * score**2 / P)
    if precision.shape[-1] == 1:
        c = jnp.zeros(rhs.shape, jnp.int32)
    else:  # the Gumbel-max draw of the class
        c = jnp.argmax(log_weight + gumbel, axis=-1).astype(jnp.int32)
    P_c = jnp.take_along_axis(P, c[:, None], axis=-1)[:, 0]
    value = (w * rhs + z * jnp.sqrt(P_c)) / P_c
    if spike:
        value = jnp.where(jnp.take_along_axis(spike_class, c[:, None], axis=-1)[:, 0], 0.0, value)
    return value, c


def sample_single_site(
    key: PRNGKeyArray,
    blocks: MarkerBlocks,
    effects: Float[Array, "m k"],
    classes: Int[Array, "m k"],
    residual: Float[Array, "n k"],
    w: Float[Array, " k"],
    tau: Float[Array, " k"],
    precision: Float[Array, "mm k C"],
    log_pi: Float[Array, "mm k C"],
    spike: bool,
    backend: str = "auto",
) -> tuple[Float[Array, "m k"], Int[Array, "m k"], Float[Array, "n k"]]:
    """One systematic scan over the markers (module docstring); ``residual`` = F - X_F B_F - Z U_F
    - M B_M with the current effects. Returns the new effects, classes and residual.

    ``backend``: "kernel" the compiled CPU scan (``_cpu_kernel``), "jax" the scan in JAX (any
    device and dtype), "auto" the kernel where it is available. Both use the same noise, so their
    draws agree up to rounding."""
    if backend not in ("auto", "kernel", "jax"):
        raise ValueError(f"sample_single_site: backend must be 'auto', 'kernel' or 'jax', got {backend!r}")
    m, k = effects.shape
    C = precision.shape[-1]
    key_value, key_class = jax.random.split(key)
    z = normal(key_value, (m, k), residual.dtype)
    gumbel = jax.random.gumbel(key_class, (m, k, C), z.dtype) if C > 1 else jnp.zeros((1, 1, 1), z.dtype)
    use_kernel = backend == "kernel" or (backend == "auto" and _cpu_kernel.available(z.dtype))
    if use_kernel:
        return _cpu_kernel.single_site_scan(blocks.Mt, blocks.gram, effects, classes, residual, w, tau,
                                            precision, log_pi, z, gumbel, spike)
    return _jax_scan(blocks, effects, classes, residual, w, tau, precision, log_pi, z, gumbel, spike)


def _jax_scan(blocks, effects, classes, residual, w, tau, precision, log_pi, z, gumbel, spike):
    """``sample_single_site`` in JAX: a scan over the blocks, a fori loop over each block's sites."""
    nb, b, n = blocks.Mt.shape
    m, k = effects.shape
    C = precision.shape[-1]
    pad = nb * b - m

    def padded(x):
        return jnp.pad(x, ((0, pad),) + ((0, 0),) * (x.ndim - 1)).reshape((nb, b) + x.shape[1:])

    per_marker = precision.shape[0] != 1
    table = (padded(jnp.broadcast_to(precision, (m, k, C))), padded(jnp.broadcast_to(log_pi, (m, k, C)))) \
        if per_marker else None
    shared = None if per_marker else (precision[0], log_pi[0])
    gumbel = padded(gumbel) if C > 1 else jnp.zeros((nb, b, k, 1), z.dtype)

    def block_step(R, inputs):
        Mt_b, gram_b, valid_b, beta_b, class_b, z_b, gumbel_b, table_b = inputs
        r = Mt_b @ R  # (b, k): M_j' R for every marker of the block

        def site(j, carry):
            r, beta_b, class_b = carry
            d, lp = shared if table_b is None else (table_b[0][j], table_b[1][j])
            xtx = gram_b[j, j]
            rhs = r[j] + xtx * beta_b[j]
            value, c = _class_draw(gumbel_b[j], z_b[j], rhs, xtx, w, tau, d, lp, spike)
            value = jnp.where(valid_b[j], value, 0.0)
            c = jnp.where(valid_b[j], c, 0)
            r = r - gram_b[:, j][:, None] * (value - beta_b[j])[None, :]
            return r, beta_b.at[j].set(value), class_b.at[j].set(c)

        _, new_beta, new_class = lax.fori_loop(0, b, site, (r, beta_b, class_b))
        R = R - Mt_b.T @ (new_beta - beta_b)
        return R, (new_beta, new_class)

    inputs = (blocks.Mt, blocks.gram, blocks.valid, padded(effects), padded(classes), padded(z), gumbel, table)
    residual, (new_effects, new_classes) = lax.scan(block_step, residual, inputs)
    return new_effects.reshape(nb * b, k)[:m], new_classes.reshape(nb * b, k)[:m], residual


def sample_joint(
    key: PRNGKeyArray,
    M: Float[Array, "n m"],
    residual_without_markers: Float[Array, "n k"],
    w: Float[Array, " k"],
    tau: Float[Array, " k"],
    precision: Float[Array, "m k"],
) -> tuple[Float[Array, "m k"], Bool[Array, ""]]:
    """Every factor's effects at once from their Gaussian conditional (Bhattacharya et al. 2016;
    module docstring); ``residual_without_markers`` = F - X_F B_F - Z U_F. Returns the effects and
    whether every n x n Cholesky succeeded."""
    n, m = M.shape
    k = w.shape[0]
    key_u, key_e = jax.random.split(key)
    D_inv = 1.0 / (precision * tau[None, :])  # (m, k) prior variances
    u = normal(key_u, (m, k), D_inv.dtype) * jnp.sqrt(D_inv)
    v = M @ u + normal(key_e, (n, k), w.dtype) / jnp.sqrt(w)[None, :]
    S = jnp.einsum("ij,jl,kj->lik", M, D_inv, M) + jax.vmap(jnp.diag)(jnp.broadcast_to(1.0 / w[:, None], (k, n)))
    chol = jnp.linalg.cholesky(jitter(S))
    ok = jnp.all(jnp.isfinite(chol))
    target = (residual_without_markers - v).T[..., None]  # (k, n, 1)
    z = jax.scipy.linalg.cho_solve((chol, True), target)[..., 0].T  # (n, k)
    return u + D_inv * (M.T @ z), ok


# Measured on a 2-core CPU (benchmarks/markers.py): matrix products at about 4e10 flop/s, and a
# sequential marker update of about 0.5 microseconds in the compiled scan (``_cpu_kernel``), 3 in
# the JAX scan (one thunk per operation); on a GPU, products are ~1000 times faster and a
# sequential update costs tens of microseconds (a few kernel launches).
_THROUGHPUT = {"cpu": 4e10, "gpu": 2e13, "tpu": 2e13}
_SITE_SECONDS = {"cpu": 3e-6, "cpu_kernel": 5e-7, "gpu": 3e-5, "tpu": 3e-5}


def marker_sampler_cost(n: int, m: int, k: int, block: int, platform: str) -> dict[str, float]:
    """Estimated seconds per sweep of each marker sampler on ``platform`` ("cpu", "gpu", "tpu")."""
    if platform not in _THROUGHPUT:
        platform = "cpu"
    rate = _THROUGHPUT[platform]
    compiled = platform == "cpu" == jax.default_backend() and _cpu_kernel.available()
    site = _SITE_SECONDS["cpu_kernel" if compiled else platform]
    return {
        "single_site": 4.0 * n * m * k / rate + m * (site + 4.0 * block * k / rate),
        "joint": (2.0 * k * n * n * m + k * n**3 / 3.0 + 4.0 * n * m * k) / rate,
    }
