"""The sampler's own variate generators against scipy's distributions."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

from slamjax._random import normal, standard_gamma, standard_gamma_half_integer, uniform, von_mises
from slamjax.priors._base import gamma_draw

N = 100_000


@pytest.mark.parametrize("a", [0.05, 0.3, 1.0, 1.5, 2.5, 30.0, 5000.0])
def test_standard_gamma_matches_scipy(a):
    x = np.asarray(jax.jit(standard_gamma)(jax.random.key(1), jnp.full((N,), a)))
    assert np.all(np.isfinite(x)) and np.all(x > 0)
    assert scipy.stats.kstest(x, scipy.stats.gamma(a).cdf).pvalue > 1e-4
    assert abs(x.mean() - a) < 4.3 * np.sqrt(a / N)


def test_standard_gamma_elementwise_shapes():
    a = jnp.array([[0.5, 2.0], [10.0, 100.0]])
    x = np.asarray(jax.vmap(lambda k: standard_gamma(k, a))(jax.random.split(jax.random.key(2), 20_000)))
    assert x.shape == (20_000, 2, 2)
    np.testing.assert_allclose(x.mean(axis=0) / np.asarray(a), 1.0, atol=4.3 * np.sqrt(1 / (0.5 * 20_000)))


@pytest.mark.parametrize("a", [0.5, 1, 1.5, 2.0, 2.5, 4.0])
def test_half_integer_gamma_matches_scipy(a):
    """The rejection-free draw for known shapes (sums of exponentials and half a squared normal),
    also as gamma_draw's route for such a shape given as a Python number."""
    x = np.asarray(jax.jit(lambda key: standard_gamma_half_integer(key, a, (N,)))(jax.random.key(5)))
    assert np.all(np.isfinite(x)) and np.all(x > 0)
    assert scipy.stats.kstest(x, scipy.stats.gamma(a).cdf).pvalue > 1e-4
    assert abs(x.mean() - a) < 4.3 * np.sqrt(a / N)
    rate = jnp.full((N,), 3.0)
    y = np.asarray(jax.jit(lambda key: gamma_draw(key, a, rate))(jax.random.key(6)))
    assert scipy.stats.kstest(y, scipy.stats.gamma(a, scale=1 / 3.0).cdf).pvalue > 1e-4
    # power: the same test rejects a draw half a unit of shape off (e.g. the half-normal term lost)
    wrong = np.asarray(jax.jit(lambda key: standard_gamma_half_integer(key, a + 0.5 if a < 4 else a - 0.5, (N,)))(jax.random.key(5)))
    assert scipy.stats.kstest(wrong, scipy.stats.gamma(a).cdf).pvalue < 1e-4
    with pytest.raises(ValueError, match="one of 0.5, 1"):
        standard_gamma_half_integer(jax.random.key(0), a + 0.25, (3,))


def test_normal_and_uniform():
    z = np.asarray(normal(jax.random.key(3), (N,)))
    u = np.asarray(uniform(jax.random.key(4), (N,)))
    assert z.dtype == np.float64 and u.dtype == np.float64
    assert scipy.stats.kstest(z, "norm").pvalue > 1e-4
    assert scipy.stats.kstest(u, "uniform").pvalue > 1e-4
    assert u.min() > 0


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
@pytest.mark.parametrize("kappa", [0.0, 1e-3, 0.5, 3.0, 50.0, 1e4, 1e7])
def test_von_mises_matches_scipy(kappa, dtype):
    mu = 2.5
    x = jax.jit(von_mises)(jax.random.key(5), jnp.full((N,), mu, dtype), jnp.asarray(kappa, dtype))
    assert x.dtype == dtype
    x = np.asarray(x, np.float64)
    assert np.all(np.isfinite(x)) and np.all(np.abs(x - mu) <= np.pi + 1e-6)
    reference = scipy.stats.uniform(-np.pi, 2 * np.pi) if kappa == 0 else scipy.stats.vonmises(kappa)
    # float32 rounds mu + theta to ~2e-7: compare on the scale where that is far below the spread
    assert scipy.stats.kstest(x - mu, reference.cdf).pvalue > 1e-4


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
@pytest.mark.parametrize("kappa", [1e8, 1e13, 1e20, 1e30])
def test_von_mises_at_huge_concentration_is_normal_with_variance_one_over_kappa(kappa, dtype):
    """The textbook Best-Fisher form rounds r to 1 beyond kappa ~1e7 in float32 (~1e16 in float64)
    and never accepts (a float32 fit at n = p = 1000 stopped with NaN in the factor rotation). At
    such kappa the von Mises is N(mu, 1/kappa) up to O(1/kappa): sqrt(kappa) (x - mu) is standard
    normal (mu = 0 so that float32 rounding of mu + theta does not enter)."""
    x = jax.jit(von_mises)(jax.random.key(6), jnp.zeros((N,), dtype), jnp.asarray(kappa, dtype))
    z = np.asarray(x, np.float64) * np.sqrt(kappa)
    assert np.all(np.isfinite(z))
    assert scipy.stats.kstest(z, "norm").pvalue > 1e-4


@pytest.mark.parametrize("kappa", [1e39, np.inf, np.nan])
def test_von_mises_point_mass_for_infinite_or_undefined_concentration(kappa):
    x = np.asarray(jax.jit(von_mises)(jax.random.key(6), jnp.full((1000,), 0.3), jnp.asarray(kappa)))
    np.testing.assert_array_equal(x, 0.3)


def _draws(key):
    """Every kind of Threefry use in a sweep: split, fold_in, raw bits, normals, uniforms, gammas."""
    a, b = jax.random.split(jax.random.fold_in(key, 7))
    return (jax.random.bits(a, (5, 3)), normal(b, (1001,)), uniform(jax.random.fold_in(b, 1), (4, 4)),
            standard_gamma(a, jnp.full((300,), 0.7)))


def _compiled_text_and_draws(key):
    lowered = jax.jit(lambda k: _draws(k)).lower(key)  # a new function: JAX caches lowerings per function
    return lowered.as_text(), lowered.compile()(key)


def test_unrolled_threefry_gives_the_same_bits_and_is_restored():
    """slamjax's entry points lower Threefry unrolled on the CPU (_lowering.py): the switch works with
    the installed JAX, the compiled program has no Threefry loop, its draws equal the rolled
    program's bit for bit, and the rule is back after the block (the user's code compiles as before)."""
    from jax.extend.random import threefry_2x32

    from slamjax._lowering import active, unrolled_threefry

    assert active(), "this JAX names its lowering tables otherwise: update slamjax/_lowering.py"
    key = jax.random.key(42)
    with jax.enable_x64(True):
        rolled_text, rolled = _compiled_text_and_draws(key)
        with unrolled_threefry():
            unrolled_text, unrolled = _compiled_text_and_draws(key)
            # the known-answer vector of Threefry-2x32 (Salmon et al. 2011), 20 rounds
            answer = jax.jit(threefry_2x32)(jnp.array([0x13198A2E, 0x03707344], jnp.uint32),
                                            jnp.array([0x243F6A88, 0x85A308D3], jnp.uint32))
        restored_text, _ = _compiled_text_and_draws(key)
    if jax.default_backend() == "cpu":
        loops = [text.count("stablehlo.while") for text in (rolled_text, unrolled_text, restored_text)]
        # rolled: a loop per Threefry call and the gamma's rejection loop; unrolled: only the latter
        assert loops[0] > 1 and loops[1] == 1
        assert loops[2] == loops[0]  # the rolled rule is back after the block
    np.testing.assert_array_equal(np.asarray(answer), [0xC4923A9C, 0x483DF7A0])
    for x, y in zip(rolled, unrolled):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y))


@pytest.mark.parametrize("dtype", [jnp.float64, jnp.float32])
@pytest.mark.parametrize("a", [np.nan, np.inf])
def test_gamma_of_an_invalid_shape_is_nan_not_an_endless_loop(a, dtype):
    """A NaN or infinite shape never accepts a proposal: the rejection loop stops after
    REJECTION_MAX_ROUNDS rounds and gives NaN there (the sweep's guard then names the block; before,
    float32 M fits hung in such a loop), while the valid elements keep their draws."""
    shapes = jnp.asarray([2.5, a, 0.3], dtype)
    draws = standard_gamma(jax.random.key(0), shapes)
    assert draws.dtype == dtype
    draws = np.asarray(draws)
    assert np.isnan(draws[1]) and np.isfinite(draws[[0, 2]]).all()
    valid = np.asarray(standard_gamma(jax.random.key(0), jnp.asarray([2.5, 1.0, 0.3], dtype)))
    np.testing.assert_array_equal(draws[[0, 2]], valid[[0, 2]])  # the same proposals for the valid elements


def test_rejection_sample_gives_up_after_its_rounds():
    from slamjax._random import REJECTION_MAX_ROUNDS, rejection_sample

    rounds = []

    def never(round_key):
        rounds.append(1)  # traced once; the loop's length is checked through the value
        return jnp.zeros(3, bool), jnp.ones(3)

    value = rejection_sample(jax.random.key(1), never, jnp.zeros(3), jnp.asarray([True, False, False]))
    np.testing.assert_array_equal(np.isnan(value), [False, True, True])
    assert value[0] == 0.0 and REJECTION_MAX_ROUNDS == 1000
