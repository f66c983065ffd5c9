"""The three-parameter beta (TPB) loadings prior: the GIG sampler against scipy, every full
conditional of TPB.sample by probability integral transforms, and the prior's implied laws."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
import scipy.stats

import slamjax as sj
from slamjax.priors.tpb import TPB, TPBState, _gig

from _stats import Z_BOUND, gamma_pit, ordered_delta_checks, z_uniform

N_DRAWS = 4000
# the two-sided p-value of a z-score at Z_BOUND: the KS tests fail as rarely as the z-tests
P_BOUND = 2 * scipy.stats.norm.sf(Z_BOUND)


def _keys(seed=0, n=N_DRAWS):
    return jax.random.split(jax.random.key(seed), n)


def _gig_reference(lam, chi, psi):
    """GIG(lam, chi, psi) (density ~ x^(lam-1) exp(-(chi/x + psi x)/2)) as a scipy distribution,
    or its Gamma / inverse-Gamma limit when chi or psi is 0."""
    if chi == 0:
        return scipy.stats.gamma(lam, scale=2.0 / psi)
    if psi == 0:
        return scipy.stats.invgamma(-lam, scale=chi / 2.0)
    return scipy.stats.geninvgauss(lam, np.sqrt(chi * psi), scale=np.sqrt(chi / psi))


def _cdf(reference, x):
    """reference.cdf at x by integrating reference.pdf on the log scale over a fine grid: scipy's
    geninvgauss.cdf integrates on the original scale and fails (values outside [0, 1]) when the
    density spans many orders of magnitude. Also checks that the grid holds all of the mass."""
    y_x = np.log(x)
    y = np.linspace(y_x.min() - 25.0, y_x.max() + 25.0, 400001)
    density = np.exp(reference.logpdf(np.exp(y)) + y)  # the density of log X
    mass = np.concatenate([[0.0], np.cumsum(0.5 * (density[1:] + density[:-1]) * np.diff(y))])
    assert abs(mass[-1] - 1.0) < 1e-6, mass[-1]
    return np.interp(y_x, y, mass)


# (lam, chi, psi): the TPB's lam = a - 1/2 is 0 by default; lam < 0, chi -> 0 (a loading near 0)
# and psi -> 0 (zeta near 0) are all reached by the sampler
GIG_CASES = [
    (0.0, 1.0, 1.0),
    (0.0, 1e-6, 2.0),
    (0.0, 50.0, 1e-4),
    (-0.5, 2.0, 0.3),
    (-0.3, 1e-8, 1.0),
    (-2.5, 0.5, 4.0),
    (0.5, 1e-12, 2.0),
    (0.5, 3.0, 1e-10),
    (1.7, 0.2, 0.2),
    (5.0, 100.0, 100.0),
    (0.3, 0.0, 2.0),   # chi = 0: Gamma(lam, psi / 2)
    (-3.0, 1.0, 0.0),  # psi = 0: InvGamma(-lam, chi / 2)
]


def test_gig_matches_scipy():
    """One vectorised call draws every case (a column each); each column by a KS test and a mean z-test."""
    n = 20000
    lam, chi, psi = (jnp.broadcast_to(jnp.asarray(c, jnp.float64), (n, len(GIG_CASES))) for c in zip(*GIG_CASES))
    draws = np.asarray(jax.jit(_gig)(jax.random.key(11), lam, chi, psi))
    assert draws.dtype == np.float64 and draws.shape == (n, len(GIG_CASES))
    assert np.all(np.isfinite(draws)) and np.all(draws > 0)
    for case, x in zip(GIG_CASES, draws.T):
        reference = _gig_reference(*case)
        assert scipy.stats.kstest(x, lambda v: _cdf(reference, v)).pvalue > P_BOUND, case
        z = (x.mean() - reference.mean()) / (reference.std() / np.sqrt(n))
        assert abs(z) < Z_BOUND, (case, z)


def test_gig_degenerate_inputs_stay_finite():
    """The improper limits (chi = 0 with lam <= 0, psi = 0 with lam >= 0) are regularised, not NaN;
    NaN and inf parameters give NaN; scalars broadcast; lam < 0 is the reciprocal of the mirrored case."""
    lam = jnp.array([0.0, -0.5, 0.0, 0.5, 1e-3, 0.0])
    chi = jnp.array([0.0, 0.0, 1.0, 1.0, 0.0, 1e300])
    psi = jnp.array([1.0, 1.0, 0.0, 0.0, 1e-300, 1e300])
    x = np.asarray(_gig(jax.random.key(0), lam, chi, psi))
    assert np.all(np.isfinite(x)) and np.all(x > 0)
    assert _gig(jax.random.key(0), 0.0, 1.0, jnp.ones(3)).shape == (3,)
    # non-finite parameters give NaN (the rejection loop would otherwise never end)
    x = np.asarray(_gig(jax.random.key(1), jnp.array([0.0, jnp.nan, 0.5]), jnp.array([1.0, 1.0, jnp.inf]), 1.0))
    assert np.isfinite(x[0]) and np.all(np.isnan(x[1:]))
    # 1 / GIG(lam, chi, psi) ~ GIG(-lam, psi, chi)
    n = 20000
    y = 1.0 / np.asarray(_gig(jax.random.key(2), jnp.full(n, 1.3), 0.7, 2.5))
    assert scipy.stats.kstest(y, lambda v: _cdf(_gig_reference(-1.3, 2.5, 0.7), v)).pvalue > P_BOUND


def _assert_uniform(pit, what):
    z_m, z_v = z_uniform(pit)
    assert np.all(np.abs(z_m) < Z_BOUND) and np.all(np.abs(z_v) < Z_BOUND), (what, z_m, z_v)


@pytest.mark.parametrize("a, b", [(0.5, 0.5), (1.0, 0.3), (0.2, 1.5)])
def test_tpb_conditionals(a, b):
    """psi | zeta (GIG), zeta | new psi, phi | new zeta, omega | new phi, then the ordered deltas."""
    prior = TPB(a=a, b=b)
    rng = np.random.default_rng(12)
    k, p = 3, 4
    coef = rng.normal(size=(k, p)) * 0.6
    if a > 0.5:
        coef[0, 0] = 0.0  # chi = 0: psi | zeta is Gamma(a - 1/2, zeta), proper when a > 1/2
    tau = rng.uniform(0.5, 2.0, p)
    state = TPBState(
        psi=jnp.ones((k, p)), zeta=jnp.asarray(rng.uniform(0.3, 3.0, (k, p))), phi=jnp.asarray(0.8),
        omega=jnp.asarray(1.7), delta=jnp.asarray([1.5, 2.0, 1.2]),
    )
    out = jax.device_get(jax.jit(jax.vmap(lambda key: prior.sample(key, state, jnp.asarray(coef), jnp.asarray(tau))))(_keys(seed=13)))
    assert np.all(np.isfinite(out.psi)) and np.all(out.psi > 0)

    global_prec = np.cumprod(np.asarray(state.delta))[:, None]
    chi = global_prec * tau * coef**2
    zeta_in = np.asarray(state.zeta)
    pit = np.column_stack([
        _cdf(_gig_reference(a - 0.5, chi[h, j], 2.0 * zeta_in[h, j]), out.psi[:, h, j])
        for h in range(k) for j in range(p)
    ])
    _assert_uniform(pit, "psi")
    _assert_uniform(gamma_pit(out.zeta, a + b, out.psi + float(state.phi)), "zeta")
    _assert_uniform(gamma_pit(out.phi, k * p * b + 0.5, out.zeta.sum(axis=(1, 2)) + float(state.omega)), "phi")
    _assert_uniform(gamma_pit(out.omega, 1.0, out.phi + 1.0), "omega")
    ordered_delta_checks(prior, np.asarray(state.delta), out.delta, 1.0 / out.psi, coef, tau)


def test_tpb_prior_laws():
    """sample_prior: psi / phi ~ BetaPrime(a, b) (the TPB law, independent of phi), sqrt(phi) ~ C+(0, 1),
    omega ~ Gamma(1/2, 1), deltas from their Gammas; precision = prod(delta) / psi."""
    a, b = 0.7, 1.3
    prior = TPB(a=a, b=b)
    k, p = 3, 5
    draws = jax.device_get(jax.jit(jax.vmap(lambda key: prior.sample_prior(key, k, p)))(_keys(seed=14)))
    ratio = draws.psi / draws.phi[:, None, None]
    assert scipy.stats.kstest(ratio.ravel(), scipy.stats.betaprime(a, b).cdf).pvalue > P_BOUND
    # psi / phi is independent of phi: its law does not change with the size of phi
    small = draws.phi < np.median(draws.phi)
    assert scipy.stats.ks_2samp(ratio[small].ravel(), ratio[~small].ravel()).pvalue > P_BOUND
    assert scipy.stats.kstest(np.sqrt(draws.phi), scipy.stats.halfcauchy().cdf).pvalue > P_BOUND
    assert scipy.stats.kstest(draws.omega, scipy.stats.gamma(0.5).cdf).pvalue > P_BOUND
    for h, (shape, rate) in enumerate([(prior.delta_1_shape, prior.delta_1_rate)] + [(prior.delta_2_shape, prior.delta_2_rate)] * (k - 1)):
        assert scipy.stats.kstest(draws.delta[:, h], scipy.stats.gamma(shape, scale=1 / rate).cdf).pvalue > P_BOUND
    one = jax.tree_util.tree_map(lambda x: x[0], draws)
    np.testing.assert_allclose(np.asarray(prior.precision(one)), np.cumprod(one.delta)[:, None] / one.psi, rtol=1e-14)


def test_tpb_half_half_is_the_horseshoe():
    """With a = b = 1/2 the standardised loading Lambda sqrt(tau prod(delta) / phi) ~ N(0, psi / phi) has the
    horseshoe law: the same as Horseshoe's Lambda sqrt(tau prod(delta)) ~ N(0, lambda2), lambda ~ C+(0, 1)."""
    k, p = 2, 3
    keys = _keys(seed=15)
    tpb = jax.device_get(jax.jit(jax.vmap(lambda key: TPB().sample_prior(key, k, p)))(keys))
    hs = jax.device_get(jax.jit(jax.vmap(lambda key: sj.priors.Horseshoe().sample_prior(key, k, p)))(_keys(seed=16)))
    z = np.random.default_rng(17).normal(size=(2, N_DRAWS, k, p))
    tpb_coef = z[0] * np.sqrt(tpb.psi / tpb.phi[:, None, None])
    hs_coef = z[1] * np.sqrt(hs.lambda2)
    assert scipy.stats.ks_2samp(tpb_coef.ravel(), hs_coef.ravel()).pvalue > P_BOUND
    assert scipy.stats.ks_2samp((tpb.psi / tpb.phi[:, None, None]).ravel(), hs.lambda2.ravel()).pvalue > P_BOUND


def test_tpb_init_and_protocol():
    prior = TPB()
    state = prior.init(3, 4)
    assert isinstance(prior, sj.priors.CoefficientPrior)
    assert state.psi.shape == state.zeta.shape == (3, 4) and state.delta.shape == (3,)
    assert state.phi.shape == state.omega.shape == ()
    np.testing.assert_allclose(np.asarray(prior.precision(state)), np.cumprod(np.asarray(state.delta))[:, None] * np.ones((3, 4)))
    new = prior.sample(jax.random.key(0), state, jnp.zeros((3, 4)).at[0, 0].set(0.3), jnp.ones(4))
    assert jax.tree_util.tree_structure(new) == jax.tree_util.tree_structure(state)
    for leaf in jax.tree_util.tree_leaves(new):
        assert leaf.dtype == jnp.float64 and np.all(np.isfinite(leaf)) and np.all(np.asarray(leaf) > 0)


def test_tpb_plugs_into_the_sampler():
    """The third loadings prior runs in the unchanged sampler, chosen through sj.Priors."""
    import slamjax as sj

    from _models import tiny_model

    model = tiny_model(n=20, p=4, k=2, priors=sj.Priors(Lambda=sj.priors.TPB(), intercept_precision=0.5))
    run = sj.sample(model, num_warmup=15, num_samples=10, progress=False)
    assert np.all(np.isfinite(run.draws["Lambda"]))
    assert "TPB(" in repr(model.priors) and "a=0.5, b=0.5" in repr(model.priors)
