"""Random variates for the sampler, fast on XLA:CPU.

Standard normals are generated in float32 and returned as float64: the float64 inverse error
function costs about 3x more, and normal draws are a large share of a sweep. The arithmetic that
uses them stays in float64; float32 variates carry a relative quantisation of 6e-8 and normal tails
to 5.4 sd (probability 7e-8), far below the Monte Carlo error of any run.

Gamma variates use Marsaglia & Tsang's (2000) rejection sampler, vectorised over the whole array
(every round proposes for all elements, keeps the first acceptance of each): jax.random.gamma
runs a key-splitting loop per element and measured 23 ms for 40,000 draws here, this 1-2 ms.
Where the shape is a known multiple of 1/2 up to 4 (the ARD priors' (nu + 1) / 2, the horseshoe's
auxiliaries), ``standard_gamma_half_integer`` draws it exactly in one pass: the sum of floor(a)
exponentials plus half a squared normal (a chi-square with one degree of freedom over 2) for a
half-integer a; 200,000 draws of Gamma(2.5) cost 3 ms here against 15 ms by rejection.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from jax import lax
from jaxtyping import Array, Float, PRNGKeyArray

__all__ = ["normal", "uniform", "standard_gamma", "standard_gamma_half_integer", "rejection_sample", "von_mises"]


def normal(key: PRNGKeyArray, shape: tuple[int, ...]) -> Float[Array, "..."]:
    """Independent N(0, 1) variates of the given shape (drawn flat and reshaped: the same numbers as
    a draw of that shape, faster on XLA:CPU for small trailing axes)."""
    size = 1
    for length in shape:
        size *= length
    return jax.random.normal(key, (size,), dtype=jnp.float32).reshape(shape).astype(jnp.float64)


def uniform(key: PRNGKeyArray, shape: tuple[int, ...]) -> Float[Array, "..."]:
    """Independent U(0, 1) variates, never exactly 0."""
    u = jax.random.uniform(key, shape, dtype=jnp.float32, minval=jnp.finfo(jnp.float32).tiny)
    return u.astype(jnp.float64)


def standard_gamma(key: PRNGKeyArray, shape_parameter: Float[Array, "..."]) -> Float[Array, "..."]:
    """Independent Gamma(a, 1) variates, one per element of ``a`` (a > 0).

    Marsaglia-Tsang for a >= 1 (acceptance >= 0.95 per proposal); a < 1 through
    Gamma(a) = Gamma(a + 1) U^(1/a).
    """
    a = jnp.asarray(shape_parameter, jnp.float64)
    shape = a.shape
    boosted = a < 1.0
    d = jnp.where(boosted, a + 1.0, a) - 1.0 / 3.0
    c = 1.0 / jnp.sqrt(9.0 * d)
    key_boost, key_loop = jax.random.split(key)

    def propose(round_key):
        key_x, key_u = jax.random.split(round_key)
        x = normal(key_x, shape)
        u = uniform(key_u, shape)
        v = (1.0 + c * x) ** 3
        safe_v = jnp.where(v > 0, v, 1.0)
        accept = (v > 0) & (jnp.log(u) < 0.5 * x**2 + d - d * safe_v + d * jnp.log(safe_v))
        return accept, d * safe_v

    value = rejection_sample(key_loop, propose, jnp.zeros(shape), jnp.zeros(shape, bool))
    boost = jnp.where(boosted, uniform(key_boost, shape) ** (1.0 / a), 1.0)
    return jnp.maximum(value * boost, jnp.finfo(jnp.float64).tiny)


def is_small_half_integer(a) -> bool:
    """True for a Python number a in {0.5, 1, 1.5, ..., 4} (``standard_gamma_half_integer``'s shapes)."""
    return isinstance(a, (int, float)) and 0 < a <= 4 and float(2 * a).is_integer()


def standard_gamma_half_integer(key: PRNGKeyArray, a: float, shape: tuple[int, ...]) -> Float[Array, "..."]:
    """Independent Gamma(a, 1) variates for a in {0.5, 1, 1.5, ..., 4}, exactly and without rejection:
    -log(U_1 ... U_floor(a)) (a sum of exponentials) plus Z^2 / 2 when a is a half-integer."""
    if not is_small_half_integer(a):
        raise ValueError(f"standard_gamma_half_integer: a must be one of 0.5, 1, ..., 4, got {a!r}")
    whole, half = int(a), not float(a).is_integer()
    keys = jax.random.split(key, whole + 1)
    value = jnp.zeros(shape)
    if whole:  # separate draws multiplied elementwise: faster on XLA:CPU than a product over a stacked axis
        product = uniform(keys[0], shape)
        for i in range(1, whole):
            product = product * uniform(keys[i], shape)
        value = -jnp.log(product)
    if half:
        value = value + 0.5 * normal(keys[whole], shape) ** 2
    return jnp.maximum(value, jnp.finfo(jnp.float64).tiny)


def von_mises(key: PRNGKeyArray, mu: Float[Array, "..."], kappa: Float[Array, "..."]) -> Float[Array, "..."]:
    """Independent von Mises(mu, kappa) angles, density propto exp(kappa cos(x - mu)), in (mu - pi, mu + pi].

    Best & Fisher's (1979) wrapped-Cauchy rejection sampler (acceptance >= 0.66 for every kappa);
    kappa below 1e-8 gives a uniform angle, kappa above 1e12 (sd below 1e-6) or NaN gives mu.
    """
    mu = jnp.asarray(mu, jnp.float64)
    kappa = jnp.broadcast_to(jnp.asarray(kappa, jnp.float64), mu.shape)
    shape = mu.shape
    tiny = kappa < 1e-8
    huge = ~(kappa < 1e12)  # also NaN: the point mass at mu (the loop would not end otherwise)
    k = jnp.where(tiny | huge, 1.0, kappa)
    t = 1.0 + jnp.sqrt(1.0 + 4.0 * k**2)
    rho = (t - jnp.sqrt(2.0 * t)) / (2.0 * k)
    r = (1.0 + rho**2) / (2.0 * rho)
    key_loop, key_sign, key_uniform = jax.random.split(key, 3)

    def propose(round_key):
        key_z, key_u = jax.random.split(round_key)
        z = jnp.cos(jnp.pi * jax.random.uniform(key_z, shape, jnp.float64))
        u = uniform(key_u, shape)
        f = (1.0 + r * z) / (r + z)
        c = k * (r - f)
        accept = (c * (2.0 - c) - u > 0) | (jnp.log(c / u) + 1.0 - c >= 0)
        return accept, jnp.clip(f, -1.0, 1.0)

    f = rejection_sample(key_loop, propose, jnp.zeros(shape), jnp.zeros(shape, bool))
    sign = jnp.where(jax.random.bernoulli(key_sign, 0.5, shape), 1.0, -1.0)
    angle = mu + sign * jnp.arccos(f)
    angle = jnp.where(huge, mu, angle)
    return jnp.where(tiny, mu + jnp.pi * (2.0 * jax.random.uniform(key_uniform, shape, jnp.float64) - 1.0), angle)


def rejection_sample(key, propose, value, done):
    """Vectorised rejection sampling: rounds of ``propose(round_key) -> (accept, proposal)`` until
    every element has accepted once; elements already ``done`` keep ``value``. Round i uses
    ``fold_in(key, i)``."""

    def body(carry):
        i, value, done = carry
        accept, proposal = propose(jax.random.fold_in(key, i))
        return i + 1, jnp.where(done, value, proposal), done | accept

    _, value, _ = lax.while_loop(lambda carry: ~jnp.all(carry[2]), body, (0, value, done))
    return value
