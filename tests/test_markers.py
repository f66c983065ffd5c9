"""Markers as fixed effects of the factors (``slamjax.markers``): each sampler against its closed
form, Geweke's test of the whole sweep with markers (spike-and-slab, single-site; scale mixture,
joint draw, with the rotation step), recovery of simulated effects, prediction from genotypes,
the store and bad input.

The closed forms: given the factors' residual R (n x k, rows independent with precision w_l),
the effects of factor l have the Gaussian posterior N(A^-1 w M'R_l, A^-1), A = w M'M + tau D; for
BayesC one marker's inclusion odds are the ratio of two n-variate normal densities of its partial
residual, N(0, sigma2/tau x x' + I/w) against N(0, I/w), computed here without the sampler's
scalar algebra.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import scipy.stats

import slamjax as sj
from slamjax._errors import SlamjaxInputError
from slamjax.markers import sampler as marker_sampler
from slamjax.markers.sampler import marker_blocks, sample_joint, sample_single_site

from _geweke import run_geweke, worst
from _models import random_design
from _stats import Z_BOUND, z_mean, z_variance_normal

N_DRAWS = 20_000


SHAPES = [(12, 5), (6, 10)]  # m < n and m > n


def _residual_problem(seed=0, n=12, m=5, k=2, correlated=True):
    rng = np.random.default_rng(seed)
    M = rng.normal(size=(n, m))
    if correlated:  # linkage: neighbouring markers share variation
        M[:, 1:] = 0.7 * M[:, :-1] + 0.7 * M[:, 1:]
    R = rng.normal(size=(n, k)) * 1.5
    w = np.array([0.8, 2.0])[:k]
    tau = np.array([1.3, 0.6])[:k]
    precision = rng.uniform(0.5, 3.0, size=(m, k))
    return M, R, w, tau, precision


def _exact_posterior(M, R, w, tau, precision):
    """Mean (m, k) and covariance (k, m, m) of B_M given R: dense algebra."""
    means, covs = [], []
    for l in range(R.shape[1]):
        A = w[l] * M.T @ M + np.diag(tau[l] * precision[:, l])
        cov = np.linalg.inv(A)
        means.append(cov @ (w[l] * M.T @ R[:, l]))
        covs.append(cov)
    return np.stack(means, axis=1), np.stack(covs)


@pytest.mark.parametrize("n, m", SHAPES)
def test_joint_draw_follows_the_gaussian_posterior(n, m):
    M, R, w, tau, precision = _residual_problem(n=n, m=m)
    mean, cov = _exact_posterior(M, R, w, tau, precision)
    keys = jax.random.split(jax.random.key(1), N_DRAWS)
    draw = jax.jit(jax.vmap(lambda key: sample_joint(key, jnp.asarray(M), jnp.asarray(R), jnp.asarray(w),
                                                     jnp.asarray(tau), jnp.asarray(precision))))
    draws, ok = draw(keys)
    draws = np.asarray(draws)
    assert np.all(ok)
    sd = np.sqrt(np.stack([np.diag(c) for c in cov], axis=1))
    z = z_mean(draws, mean, sd)
    zv = z_variance_normal(draws, sd**2)
    # a correlation between neighbouring markers: the joint draw keeps it
    corr = np.array([np.corrcoef(draws[:, 0, l], draws[:, 1, l])[0, 1] for l in range(2)])
    exact = np.array([c[0, 1] / np.sqrt(c[0, 0] * c[1, 1]) for c in cov])
    z_corr = (np.arctanh(corr) - np.arctanh(exact)) * np.sqrt(N_DRAWS - 3)
    assert np.all(np.abs(np.concatenate([z.ravel(), zv.ravel(), z_corr])) < Z_BOUND)


@pytest.mark.parametrize("n, m, block", [(12, 5, 1), (12, 5, 2), (12, 5, 5), (6, 10, 3)])
def test_single_site_scan_leaves_the_posterior_invariant(n, m, block):
    """Start every chain at an exact posterior draw; one blocked single-site scan must leave the
    distribution unchanged (means and variances; m < n and m > n)."""
    M, R, w, tau, precision = _residual_problem(seed=2, n=n, m=m)
    mean, cov = _exact_posterior(M, R, w, tau, precision)
    rng = np.random.default_rng(3)
    start = np.stack([rng.multivariate_normal(mean[:, l], cov[l], size=N_DRAWS) for l in range(2)], axis=2)
    blocks = marker_blocks(M, block)
    m, k = mean.shape

    def one(key, effects):
        residual = jnp.asarray(R) - jnp.asarray(M) @ effects
        new, classes, new_residual = sample_single_site(
            key, blocks, effects, jnp.zeros((m, k), jnp.int32), residual, jnp.asarray(w), jnp.asarray(tau),
            jnp.asarray(precision)[..., None], jnp.zeros((1, 1, 1)), False)
        return new, new_residual - (jnp.asarray(R) - jnp.asarray(M) @ new)

    keys = jax.random.split(jax.random.key(4), N_DRAWS)
    draws, residual_error = jax.jit(jax.vmap(one))(keys, jnp.asarray(start))
    draws = np.asarray(draws)
    assert np.max(np.abs(np.asarray(residual_error))) < 1e-10  # the residual kept in step with the effects
    sd = np.sqrt(np.stack([np.diag(c) for c in cov], axis=1))
    z = z_mean(draws, mean, sd)
    zv = z_variance_normal(draws, sd**2)
    moved = np.mean(draws != start)  # a real move, not the identity
    assert moved > 0.99
    assert np.all(np.abs(np.concatenate([z.ravel(), zv.ravel()])) < Z_BOUND)


@pytest.mark.parametrize("n, m, block", [(30, 50, 7), (40, 13, 4)])
@pytest.mark.parametrize("prior", ["bayesc", "ard", "bayesr"])
def test_compiled_scan_equals_the_jax_scan(n, m, block, prior):
    """The CPU kernel (``markers._cpu_kernel``) and the JAX scan make the same draws from the same
    noise, site for site, for one chain and under vmap (a padded last block; m > n and m < n)."""
    if not marker_sampler._cpu_kernel.available():
        pytest.skip("the compiled scan needs numba and the CPU backend")
    rng = np.random.default_rng(11)
    k = 3
    M = rng.normal(size=(n, m))
    w, tau = jnp.asarray(rng.gamma(2.0, 1.0, k)), jnp.asarray(rng.gamma(2.0, 1.0, k))
    if prior == "ard":  # one class, a precision per marker
        precision, log_pi, spike = jnp.asarray(rng.gamma(2.0, 1.0, (m, k, 1)) * 5), jnp.zeros((1, k, 1)), False
    else:  # a spike and one (BayesC) or three (BayesR) slabs shared by the markers
        slabs = [4.0] if prior == "bayesc" else [100.0, 10.0, 1.0]
        precision = jnp.broadcast_to(jnp.asarray([np.inf, *slabs]), (1, k, len(slabs) + 1))
        pi = rng.dirichlet(np.ones(len(slabs) + 1), size=k)
        log_pi, spike = jnp.asarray(np.log(pi))[None], True
    effects = jnp.asarray(rng.normal(size=(m, k)) * 0.3)
    classes = jnp.ones((m, k), jnp.int32)
    residual = jnp.asarray(rng.normal(size=(n, k))) - jnp.asarray(M) @ effects
    blocks = marker_blocks(M, block)

    def scan(backend):
        return jax.jit(jax.vmap(lambda key, R: sample_single_site(
            key, blocks, effects, classes, R, w, tau, precision, log_pi, spike, backend=backend)))

    keys = jax.random.split(jax.random.key(12), 3)
    residuals = jnp.stack([residual, 1.5 * residual, residual + 1.0])
    compiled, reference = scan("kernel")(keys, residuals), scan("jax")(keys, residuals)
    np.testing.assert_array_equal(compiled[1], reference[1])  # the same classes
    np.testing.assert_allclose(compiled[0], reference[0], rtol=0, atol=1e-12)
    np.testing.assert_allclose(compiled[2], reference[2], rtol=0, atol=1e-10)
    if spike:  # classes really change (a real scan, not the identity)
        assert 0 < np.mean(np.asarray(compiled[1]) == 0) < 1
    one = sample_single_site(keys[0], blocks, effects, classes, residual, w, tau, precision, log_pi, spike,
                             backend="kernel")  # unbatched call
    np.testing.assert_allclose(one[0], compiled[0][0], rtol=0, atol=1e-12)


def _bayesc_inclusion(x, r, w, tau, sigma2, pi):
    """P(included | partial residual r) from the two n-variate normal densities."""
    n = len(x)
    noise = np.eye(n) / w
    slab = scipy.stats.multivariate_normal(np.zeros(n), noise + sigma2 / tau * np.outer(x, x)).logpdf(r)
    spike = scipy.stats.multivariate_normal(np.zeros(n), noise).logpdf(r)
    return 1.0 / (1.0 + (1 - pi) / pi * np.exp(spike - slab))


def test_bayesc_site_draw_follows_its_closed_form():
    """One marker, two factors: inclusion frequency against the ratio of n-variate densities,
    and the included effect's mean and variance."""
    rng = np.random.default_rng(5)
    n = 10
    x = rng.normal(size=n)
    r = np.column_stack([0.25 * x + rng.normal(size=n), rng.normal(size=n)])  # one with signal
    w, tau = np.array([1.5, 0.9]), np.array([0.8, 1.7])
    sigma2, pi = np.array([0.4, 0.3]), np.array([0.3, 0.6])
    precision = jnp.asarray(np.stack([np.full(2, np.inf), 1.0 / sigma2], axis=1))  # (k, C)
    log_pi = jnp.asarray(np.log(np.stack([1 - pi, pi], axis=1)))
    xtx, rhs = x @ x, x @ r

    def one(key):
        key_z, key_c = jax.random.split(key)
        z = jax.random.normal(key_z, (2,))
        return marker_sampler._class_draw(jax.random.gumbel(key_c, (2, 2)), z, jnp.asarray(rhs), jnp.asarray(xtx), jnp.asarray(w),
                                          jnp.asarray(tau), precision, log_pi, True)

    values, classes = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(6), N_DRAWS))
    values, classes = np.asarray(values), np.asarray(classes)
    p_in = np.array([_bayesc_inclusion(x, r[:, l], w[l], tau[l], sigma2[l], pi[l]) for l in range(2)])
    z_incl = (classes.mean(axis=0) - p_in) / np.sqrt(p_in * (1 - p_in) / N_DRAWS)
    assert np.all(values[classes == 0] == 0.0)
    P = w * xtx + tau / sigma2
    z_parts = []
    for l in range(2):
        included = values[classes[:, l] == 1, l]
        z_parts += [z_mean(included, w[l] * rhs[l] / P[l], np.sqrt(1 / P[l])),
                    z_variance_normal(included, 1 / P[l])]
    assert np.all(np.abs(np.concatenate([z_incl, np.ravel(z_parts)])) < Z_BOUND), (z_incl, z_parts)


def test_bayesr_site_draw_follows_its_closed_form():
    """One marker under a spike and three normal classes: the class frequencies against the
    n-variate normal densities of the partial residual under each class."""
    rng = np.random.default_rng(7)
    n = 10
    x = rng.normal(size=n)
    r = 0.4 * x + rng.normal(size=n)
    w, tau, sigma2 = 1.2, 0.9, 0.5
    gammas = np.array([0.0, 0.01, 0.1, 1.0])
    pi = np.array([0.4, 0.3, 0.2, 0.1])
    precision = jnp.asarray(np.where(gammas > 0, 1.0 / (np.where(gammas > 0, gammas, 1.0) * sigma2), np.inf))[None, :]
    log_pi = jnp.asarray(np.log(pi))[None, :]

    def one(key):
        key_z, key_c = jax.random.split(key)
        return marker_sampler._class_draw(jax.random.gumbel(key_c, (1, 4)), jax.random.normal(key_z, (1,)),
                                          jnp.asarray([x @ r]),
                                          jnp.asarray(x @ x), jnp.asarray([w]), jnp.asarray([tau]), precision,
                                          log_pi, True)

    _, classes = jax.jit(jax.vmap(one))(jax.random.split(jax.random.key(8), N_DRAWS))
    log_density = np.array([scipy.stats.multivariate_normal(
        np.zeros(n), np.eye(n) / w + g * sigma2 / tau * np.outer(x, x)).logpdf(r) for g in gammas])
    expected = pi * np.exp(log_density - log_density.max())
    expected /= expected.sum()
    counts = np.bincount(np.asarray(classes)[:, 0], minlength=4) / N_DRAWS
    z = (counts - expected) / np.sqrt(expected * (1 - expected) / N_DRAWS)
    assert np.all(np.abs(z) < Z_BOUND), (counts, expected)


def test_planted_site_weight_bug_fails_the_closed_form(monkeypatch):
    """The inclusion weights without the 1/2 log(t / P) term (a plausible slip): the closed-form
    check above fails."""
    original = marker_sampler._class_draw

    def planted(gumbel, z, rhs, xtx, w, tau, precision, log_pi, spike):
        # scaling the slab precision by the posterior precision cancels the determinant term
        spike_class = jnp.isinf(precision)
        t = tau[:, None] * jnp.where(spike_class, 1.0, precision)
        P = (w * xtx)[:, None] + t
        return original(gumbel, z, rhs, xtx, w, tau, jnp.where(spike_class, precision, P / tau[:, None]),
                        log_pi, spike)

    monkeypatch.setattr(marker_sampler, "_class_draw", planted)
    with pytest.raises(AssertionError):
        test_bayesc_site_draw_follows_its_closed_form()


# ----------------------------------------------------------------------------- the whole sweep


def marker_model(prior="bayesc", sampler="auto", n=30, p=4, k=3, m=8, seed=0, **changes):
    """A tiny model with markers (n = 30, p = 4, k = 3, m = 8) for Geweke's test."""
    rng = np.random.default_rng(seed)
    Z, K = random_design(n, n, seed)
    Y = rng.normal(size=(n, p))
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    genotypes = rng.binomial(2, 0.4, size=(n, m)).astype(float)
    genotypes[:, 1] = np.clip(genotypes[:, 0] + rng.integers(-1, 2, n), 0, 2)  # linked to marker 0
    return sj.Model(
        Y=Y, X=X, Z=Z, K=K, n_factors=k, h2_divisions=5, priors=sj.Priors(intercept_precision=0.5), scale_Y=False,
        markers=sj.markers.Markers(genotypes, sampler=sampler, block_size=3), marker_prior=prior, **changes,
    )


MARKER_VARIANTS = {
    "bayesc single-site": dict(prior="bayesc"),
    "ard joint with rotation": dict(prior="ard", sampler="joint"),
}


def markers_geweke_z(variant: str, n_steps: int = 1000, seed: int = 0):
    return run_geweke(marker_model(**MARKER_VARIANTS[variant]), n_prior=100_000, n_chains=64, n_steps=n_steps,
                      seed=seed)


def test_marker_variants_are_what_they_say():
    model = marker_model(**MARKER_VARIANTS["bayesc single-site"])
    assert model.data.markers.sampler == "single_site" and not model.data.rotate_factors
    model = marker_model(**MARKER_VARIANTS["ard joint with rotation"])
    assert model.data.markers.sampler == "joint" and model.data.rotate_factors


@pytest.mark.parametrize("prior, sampler", [("ard", "single_site"), ("ard", "joint"), ("bayesc", "single_site")])
def test_the_carried_fitted_part_stays_m_b_m(prior, sampler):
    """The sweep carries M B_M (``MarkerState.fitted``) instead of recomputing it: after sweeps with
    the rotation step (scale mixtures) and the marker block it still equals M B_M."""
    from slamjax import sampler as sweeps
    from slamjax.state import init_state

    model = marker_model(prior=prior, sampler=sampler)
    data = model.data
    assert data.rotate_factors == (prior == "ard")
    state = init_state(jax.random.key(0), data)
    state, failed = jax.jit(lambda key, state: sweeps._sweeps(data, state, key, 0, 30))(jax.random.key(1), state)
    assert int(failed[0]) == -1
    markers = state.markers
    assert np.max(np.abs(np.asarray(markers.B_M))) > 1e-3  # effects really drawn
    np.testing.assert_allclose(markers.fitted, data.markers.product(markers.B_M), rtol=0, atol=1e-10)


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(MARKER_VARIANTS))
def test_geweke_with_markers(variant):
    z, names = markers_geweke_z(variant)
    assert np.all(np.abs(z) < Z_BOUND), worst(z, names)


@pytest.mark.slow
def test_geweke_with_markers_fails_on_a_planted_bug(monkeypatch):
    """The marker block given the factors' residual precision tau_F instead of tau_F / (1 - h2_F)
    (the residual share forgotten)."""
    from slamjax import sampler

    original = sampler._sample_markers

    def planted(key, markers, marker_state, residual, F_markers, w, tau_F):
        return original(key, markers, marker_state, residual, F_markers, tau_F, tau_F)

    monkeypatch.setattr(sampler, "_sample_markers", planted)
    z, names = markers_geweke_z("bayesc single-site", seed=1)
    assert np.max(np.abs(z)) > Z_BOUND, worst(z, names)


# ----------------------------------------------------------------------------- recovery and prediction


def _simulated(seed=0, n=300, n_new=100, m=300, p=12, k=3, causal=6, size=0.6):
    rng = np.random.default_rng(seed)
    genotypes = rng.binomial(2, 0.3, size=(n + n_new, m)).astype(float)
    centred = genotypes - genotypes[:n].mean(axis=0)
    B = np.zeros((m, k))
    where = rng.choice(m, causal, replace=False)
    B[where, np.arange(causal) % k] = rng.choice([-1.0, 1.0], causal) * size
    Lambda = rng.normal(size=(k, p))
    genetic = centred @ B @ Lambda
    F = centred @ B + rng.normal(size=(n + n_new, k)) * 0.6
    Y = F @ Lambda + rng.normal(size=(n + n_new, p)) * 0.7
    ids = [f"i{i}" for i in range(n + n_new)]
    frame = pd.DataFrame(genotypes, index=ids, columns=[f"snp{j}" for j in range(m)])
    return pd.DataFrame(Y[:n], index=ids[:n]), frame, B @ Lambda, genetic, where


@pytest.mark.slow
def test_bayesc_finds_5_causal_markers_among_2000_and_predicts_as_well_as_gblup():
    """5 causal markers on 2 factors among 2,000, 400 fitted and 100 new individuals: every causal
    marker's inclusion probability > 0.5 (on some factor), the nulls' < 0.05 on average; the
    effects recovered; new individuals predicted from genotypes at least as well as by GBLUP
    (genomic relationship of all 500, one GBLUP per trait) and with intervals that are not too narrow."""
    Y, genotypes, effects, genetic, causal = _simulated(n=400, n_new=100, m=2000, p=10, k=2, causal=5, size=0.5)
    n = len(Y)
    model = sj.Model(Y=Y, n_factors=4, markers=genotypes.iloc[:n], marker_prior=sj.markers.BayesC(a=1, b=99))
    run = sj.sample(model, num_warmup=300, num_samples=300, num_chains=2, seed=0, progress=False)
    by_factor = run.inclusion_probabilities("factor").max(axis=1)
    assert by_factor.iloc[causal].min() > 0.5
    assert run.inclusion_probabilities("factor").drop(by_factor.index[causal]).to_numpy().mean() < 0.05
    assert np.corrcoef(run.marker_effects().to_numpy().ravel(), effects.ravel())[0, 1] >= 0.9
    new = genotypes.iloc[n:]
    predicted = run.predict(genotypes=new, interval=0.9)
    K = sj.grm(genotypes)
    blup = sj.gblup(Y.reindex(genotypes.index), K).predict(levels=list(new.index))
    ours = np.mean([np.corrcoef(predicted["mean"].to_numpy()[:, t], genetic[n:, t])[0, 1] for t in range(Y.shape[1])])
    theirs = np.mean([np.corrcoef(blup.to_numpy()[:, t], genetic[n:, t])[0, 1] for t in range(Y.shape[1])])
    assert ours >= theirs, (ours, theirs)
    # not too narrow; with exactly sparse true effects the intervals are conservative
    cover = np.mean((predicted["lower"].to_numpy() <= genetic[n:]) & (genetic[n:] <= predicted["upper"].to_numpy()))
    assert cover >= 0.85
    # the mean from the running mean of B_M Lambda equals the mean of the per-draw predictions
    np.testing.assert_allclose(run.predict(genotypes=new).to_numpy(), predicted["mean"].to_numpy(), atol=1e-8)


def test_rescaling_is_off_by_default_with_a_spike_prior():
    """``rescale_factors="auto"`` leaves step 0e's rescaling move out with BayesC (the factors keep
    their labels, which per-factor inclusion probabilities pool chains by: the BayesC test above
    split each causal marker's probability 0.50 / 0.50 over two factors with it), keeps it with a
    prior without a spike, and ``True`` still adds it."""
    Y, genotypes, *_ = _simulated(n=50, n_new=5, m=15, p=3, k=2)
    bayesc = sj.markers.BayesC(a=1, b=99)
    assert not sj.Model(Y=Y, n_factors=2, markers=genotypes.iloc[:50], marker_prior=bayesc).rescale_factors
    assert sj.Model(Y=Y, n_factors=2, markers=genotypes.iloc[:50]).rescale_factors
    assert sj.Model(Y=Y, n_factors=2, markers=genotypes.iloc[:50], marker_prior=bayesc,
                    rescale_factors=True).rescale_factors


def test_predict_from_genotypes_is_m_b_lambda_plus_the_k_part():
    """Per draw: (g - training means) B_M* Lambda* (the trait scale), plus the draw's U for
    individuals that are levels of K."""
    Y, genotypes, *_ = _simulated(n=50, n_new=5, m=15, p=3, k=2)
    model = sj.Model(Y=Y, n_factors=2, markers=genotypes.iloc[:50])
    run = sj.sample(model, num_warmup=5, num_samples=4, num_chains=1, seed=1, progress=False,
                    record_genetic_values=True)
    rows = genotypes.iloc[[50, 51, 3]]  # two new individuals and one of the fitted (a level of K)
    draws = np.asarray(run.predict(genotypes=rows, draws=True))
    centred = rows.to_numpy() - genotypes.iloc[:50].to_numpy().mean(axis=0)
    expected = np.einsum("im,cdmk,cdkp->cdip", centred, run.draws["B_M"], run.draws["Lambda"])
    expected[:, :, 2] += np.asarray(run.predict(levels=["i3"], draws=True))[:, :, 0]
    np.testing.assert_allclose(draws, expected, atol=1e-10)
    # B_M* and Lambda* on the expanded scale cancel: the product is the model's own B_M Lambda
    state = run.final_states
    direct = centred @ np.asarray(state.markers.B_M[0]) @ np.asarray(state.Lambda[0]) * np.asarray(model.Y_scale)
    np.testing.assert_allclose(draws[0, -1, :2], direct[:2], atol=1e-8)


# ----------------------------------------------------------------------------- store and input


def test_a_run_with_markers_resumes_from_its_store(tmp_path):
    Y, genotypes, *_ = _simulated(n=60, n_new=0, m=20, p=4)
    model = sj.Model(Y=Y, n_factors=2, markers=sj.markers.Markers(genotypes, map=pd.DataFrame(
        {"chromosome": [1] * 10 + [2] * 10, "position": np.arange(20) % 10 * 1.0}, index=genotypes.columns),
        window=5.0), marker_prior="bayesc")
    # chunks of 100 draws throughout: one compiled loop for the three calls
    whole = sj.sample(model, num_warmup=10, num_samples=200, num_chains=1, seed=3, progress=False)
    part = sj.sample(model, num_warmup=10, num_samples=100, num_chains=1, seed=3, progress=False,
                     store=tmp_path / "run")
    reopened = sj.open_run(tmp_path / "run")
    reopened.resume(num_samples=100, progress=False)
    np.testing.assert_array_equal(reopened.draws["B_M"], whole.draws["B_M"])
    assert reopened.inclusion_probabilities("window").shape == (4, 2)
    sj.plot.inclusion(reopened, by="factor", save=tmp_path / "inclusion.png")
    assert (tmp_path / "inclusion.png").stat().st_size > 0
    del part


def test_grav2_has_a_marker_map_for_every_marker():
    grav2 = sj.datasets.load_grav2()
    assert list(grav2.marker_map.index) == list(grav2.markers.columns)
    assert grav2.marker_map["chromosome"].nunique() == 5 and grav2.marker_map["position"].notna().all()


def test_bad_marker_input_is_refused_with_a_clear_error():
    Y, genotypes, *_ = _simulated(n=40, n_new=0, m=10, p=3)
    holes = genotypes.copy()
    holes.iloc[3, 2] = np.nan
    with pytest.raises(SlamjaxInputError, match="missing='mean'"):
        sj.Model(Y=Y, n_factors=2, markers=holes)
    filled = sj.Model(Y=Y, n_factors=2, markers=sj.markers.Markers(holes, missing="mean"))
    assert filled.markers.names == list(genotypes.columns)
    sparse = genotypes.copy()
    sparse.iloc[:20, 4] = np.nan  # half missing
    with pytest.raises(SlamjaxInputError, match="max_missing"):
        sj.Model(Y=Y, n_factors=2, markers=sj.markers.Markers(sparse, missing="mean"))
    with pytest.raises(SlamjaxInputError, match="no genotypes"):
        sj.Model(Y=Y, n_factors=2, markers=genotypes.iloc[1:])
    with pytest.raises(SlamjaxInputError, match="not numeric"):
        sj.Model(Y=Y, n_factors=2, markers=genotypes.assign(snp0="AA"))
    with pytest.raises(SlamjaxInputError, match="rows"):
        sj.Model(Y=Y, n_factors=2, markers=genotypes.to_numpy()[1:])
    with pytest.raises(SlamjaxInputError, match="spike"):
        sj.Model(Y=Y, n_factors=2, markers=sj.markers.Markers(genotypes, sampler="joint"), marker_prior="bayesc")
    with pytest.raises(SlamjaxInputError, match="marker_prior"):
        sj.Model(Y=Y, n_factors=2, markers=genotypes, marker_prior="bayes-z")
    with pytest.warns(UserWarning, match="do not vary"):
        model = sj.Model(Y=Y, n_factors=2, markers=genotypes.assign(snp0=1.0))
    assert "snp0" not in model.marker_names and model.markers.dropped == ["snp0"]
