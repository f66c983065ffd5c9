"""B-spline random regression (``sj.obs.BSplineRegression``) and the curves of a run
(``slamjax.curves``): each conditional of the link against its closed form, Geweke's test of the
whole sweep observed through it (and its failure with a planted bug), recovery of a known
coefficient-level G and coverage of the predicted curves, the curves against direct computation,
the store, and bad input."""

from __future__ import annotations

import types

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest
import scipy.interpolate

import slamjax as sj
from _geweke import run_geweke, worst
from _models import random_design
from _stats import Z_BOUND, inverse_gamma_pit, z_mean, z_uniform, z_variance_normal
from slamjax.observation.bspline import BSplineRegression

N_DRAWS = 20_000


def tall_data(n: int = 30, seed: int = 0, counts=(3, 6), span=(0.0, 10.0), coefficients=None,
              noise: float = 0.3) -> pd.DataFrame:
    """One row per observation: n individuals "i0".."i{n-1}", each with 3-6 points at uneven times
    (rows shuffled), values a smooth curve plus noise (or B(t) coefficients[i] + noise)."""
    rng = np.random.default_rng(seed)
    rows = []
    for i in range(n):
        times = rng.uniform(*span, size=rng.integers(counts[0], counts[1] + 1))
        rows += [(f"i{i}", t) for t in times]
    frame = pd.DataFrame(rows, columns=["id", "hours"])
    if coefficients is None:
        frame["angle"] = np.sin(frame["hours"] / 2.0) + rng.normal(size=len(frame)) * noise
    return frame.sample(frac=1.0, random_state=seed).reset_index(drop=True)


def small_link(n: int = 30, seed: int = 0, n_basis: int = 4) -> BSplineRegression:
    return sj.obs.BSplineRegression(tall_data(n, seed), time="hours", value="angle", individual="id",
                                    n_basis=n_basis)


def _draws(function, n_draws=N_DRAWS, seed=0):
    keys = jax.random.split(jax.random.key(seed), n_draws)
    with jax.enable_x64(True):
        return np.asarray(jax.jit(jax.vmap(function))(keys))


# ----------------------------------------------------------------------------- the link itself


def test_padding_basis_and_start():
    frame = tall_data(12, seed=1)
    frame.loc[frame.index[:2], "angle"] = np.nan  # dropped rows
    link = sj.obs.BSplineRegression(frame, time="hours", value="angle", individual="id", n_basis=5)
    kept = frame.dropna()
    assert link.latent_names == tuple(f"spline{j}" for j in range(5))
    assert link.individual_names == tuple(pd.unique(frame["id"]))
    assert np.asarray(link.observed).sum() == len(kept)
    low, high = kept["hours"].min(), kept["hours"].max()
    assert link.time_range == (low, high)
    for i, name in enumerate(link.individual_names):  # each individual's rows, by time, padded with 0
        rows = kept[kept["id"] == name].sort_values("hours")
        count = len(rows)
        np.testing.assert_array_equal(np.asarray(link.times)[i, :count], rows["hours"])
        np.testing.assert_array_equal(np.asarray(link.y)[i, :count], rows["angle"])
        assert not np.asarray(link.observed)[i, count:].any() and (np.asarray(link.design)[i, count:] == 0).all()
    knots = np.r_[[low] * 4, (low + high) / 2, [high] * 4]
    grid = np.linspace(low, high, 7)
    expected = scipy.interpolate.BSpline.design_matrix(grid, knots, 3).toarray()
    np.testing.assert_allclose(link.basis(grid), expected, atol=1e-14)
    np.testing.assert_allclose(link.basis(grid).sum(axis=1), 1.0, atol=1e-12)
    with pytest.raises(sj.SlamjaxInputError, match="times"):
        link.basis([low - 0.1, high])
    # individuals with fewer points than basis functions still get finite starts
    few = tall_data(10, seed=2, counts=(1, 2))
    start = sj.obs.BSplineRegression(few, time="hours", value="angle", individual="id", n_basis=6).latent_start()
    assert start.shape == (10, 6) and np.isfinite(start).all()


def test_explicit_knots_and_replicates():
    frame = tall_data(8, seed=3)
    frame = pd.concat([frame, frame.iloc[:3].assign(angle=frame["angle"].iloc[:3] + 0.5)], ignore_index=True)
    low, high = frame["hours"].min(), frame["hours"].max()
    link = sj.obs.BSplineRegression(frame, time="hours", value="angle", individual="id",
                                    knots=[low + 1.0, low + 2.5, high - 1.0], degree=2)
    assert len(link.latent_names) == 3 + 2 + 1
    assert np.asarray(link.observed).sum() == len(frame)


def balanced_link(n: int = 30, seed: int = 0) -> BSplineRegression:
    """Every individual observed at the same 5 times (one distinct B_i' B_i)."""
    rng = np.random.default_rng(seed)
    times = np.array([0.0, 1.5, 4.0, 7.0, 10.0])
    frame = pd.DataFrame({"id": np.repeat([f"i{i}" for i in range(n)], 5), "hours": np.tile(times, n)})
    frame["angle"] = np.sin(frame["hours"] / 2.0) + rng.normal(size=len(frame))
    return sj.obs.BSplineRegression(frame, time="hours", value="angle", individual="id", n_basis=4)


def _link_inputs(n=30, balanced=False):
    link = balanced_link(n) if balanced else small_link(n)
    assert np.asarray(link.distinct_grams).shape[0] == (1 if balanced else n)
    rng = np.random.default_rng(3)
    mean = rng.normal(size=(n, 4))
    resid_variance = np.array([0.7, 1.6, 0.4, 2.5])
    return link, mean, resid_variance, 0.35


@pytest.mark.parametrize("balanced", [False, True])
def test_coefficient_draw_matches_its_closed_form(balanced):
    link, mean, v, sigma2 = _link_inputs(balanced=balanced)
    model = jax.tree.map(jnp.asarray, link)
    draws = _draws(lambda key: model.sample_latent(key, {"variance": jnp.asarray(sigma2)}, jnp.asarray(mean),
                                                   jnp.asarray(v)))
    design, y, observed = np.asarray(link.design), np.asarray(link.y), np.asarray(link.observed)
    n, p = mean.shape
    centre, covariance = np.zeros((n, p)), np.zeros((n, p, p))
    for i in range(n):  # written out from the individual's own rows
        B_i = design[i][observed[i]]
        C = B_i.T @ B_i / sigma2 + np.diag(1 / v)
        covariance[i] = np.linalg.inv(C)
        centre[i] = covariance[i] @ (B_i.T @ y[i][observed[i]] / sigma2 + mean[i] / v)
    weights = np.array([1.0, -0.5, 2.0, 1.0])  # a combination: checks the off-diagonal covariances
    combination_var = np.einsum("p,npq,q->n", weights, covariance, weights)
    sd = np.sqrt(np.diagonal(covariance, axis1=1, axis2=2))
    z = np.concatenate([
        z_mean(draws, centre, sd).ravel(),
        z_variance_normal(draws, sd**2).ravel(),
        z_mean(draws @ weights, centre @ weights, np.sqrt(combination_var)),
        z_variance_normal(draws @ weights, combination_var),
    ])
    assert np.max(np.abs(z)) < Z_BOUND, np.max(np.abs(z))


def test_residual_variance_draw_matches_its_closed_form():
    link, mean, _, _ = _link_inputs()
    model = jax.tree.map(jnp.asarray, link)
    Eta = mean
    draws = _draws(lambda key: model.sample_parameters(key, {"variance": jnp.asarray(1.0)}, jnp.asarray(Eta))[
        "variance"])
    design, y, observed = np.asarray(link.design), np.asarray(link.y), np.asarray(link.observed)
    residual = np.where(observed, y - np.einsum("nmp,np->nm", design, Eta), 0.0)
    shape = float(link.prior_shape) + observed.sum() / 2
    scale = float(link.prior_rate) + (residual**2).sum() / 2
    assert float(link.prior_rate) == pytest.approx(0.1 * np.var(tall_data(30)["angle"], ddof=1))
    z = np.array(z_uniform(inverse_gamma_pit(draws, shape, scale)))
    assert np.max(np.abs(z)) < Z_BOUND, np.max(np.abs(z))


def test_simulate_keeps_padding_and_takes_individuals():
    link = small_link()
    device = jax.tree.map(jnp.asarray, link)
    Eta = jnp.asarray(np.random.default_rng(0).normal(size=(30, 4)))
    with jax.enable_x64(True):
        simulated = device.simulate(jax.random.key(1), {"variance": jnp.asarray(0.01)}, Eta)
    y, observed = np.asarray(simulated.y), np.asarray(link.observed)
    assert (y[~observed] == 0).all()
    fitted = np.einsum("nmp,np->nm", np.asarray(link.design), np.asarray(Eta))
    assert np.abs(y - fitted)[observed].max() < 0.6
    moved = link.take_individuals(np.arange(30)[::-1])
    assert moved.individual_names == link.individual_names[::-1]
    np.testing.assert_array_equal(np.asarray(moved.gram), np.asarray(link.gram)[::-1])


# ----------------------------------------------------------------------------- Geweke's test


def geweke_model(n: int = 30, k: int = 2, seed: int = 0) -> sj.Model:
    """The link on 30 individuals with 3-6 uneven points each, p = 4 coefficients, under a tiny
    model (as tests/_links.link_model: one covariate for the traits and one for the factors)."""
    rng = np.random.default_rng(seed + 100)
    Z, K = random_design(n, n, seed)
    X = np.column_stack([np.ones(n), rng.normal(size=n)])
    X_F = rng.normal(size=(n, 1))
    return sj.Model(observation=small_link(n, seed), X=X, X_F=X_F, Z=Z, K=K, n_factors=k, h2_divisions=5,
                    priors=sj.Priors(intercept_precision=0.5), scale_Y=False, h2_draw="collapsed")


@pytest.mark.slow
def test_geweke_bspline():
    z, names = run_geweke(geweke_model(), n_prior=100_000, n_chains=64, n_steps=2000)
    print(f"Geweke, B-spline link: max |z| = {np.max(np.abs(z)):.2f} ({worst(z, names, 3)})")
    assert np.all(np.abs(z) < Z_BOUND), worst(z, names)


@pytest.mark.slow
def test_geweke_bspline_fails_with_a_planted_bug(monkeypatch):
    """The residual variance's rate with a quarter of the sum of squares."""
    original = BSplineRegression._residual_sum_of_squares
    monkeypatch.setattr(BSplineRegression, "_residual_sum_of_squares", lambda self, Eta: 0.25 * original(self, Eta))
    z, names = run_geweke(geweke_model(), n_prior=20_000, n_chains=32, n_steps=300)
    print(f"Geweke, B-spline link with the planted bug: max |z| = {np.max(np.abs(z)):.2f} ({worst(z, names, 3)})")
    assert np.max(np.abs(z)) > Z_BOUND, worst(z, names)


# ----------------------------------------------------------------------------- runs and curves


def curve_model(n: int = 30, ancestors: int = 3, seed: int = 0) -> sj.Model:
    """The link under a formula; K has ``ancestors`` levels without data; data's index in
    another order than the link's individuals."""
    link = small_link(n, seed)
    levels = list(link.individual_names) + [f"a{j}" for j in range(ancestors)]
    _, K = random_design(len(levels), len(levels), seed)
    data = pd.DataFrame({"id": list(link.individual_names)[::-1]}, index=list(link.individual_names)[::-1])
    data["x"] = np.random.default_rng(seed).normal(size=n)
    return sj.Model(observation=link, data=data, formula="~ 1 + x + (1|id)",
                    relmat={"id": pd.DataFrame(K, index=levels, columns=levels)}, n_factors=2, h2_divisions=5)


@pytest.fixture(scope="module")
def curve_run():
    return sj.sample(curve_model(), num_warmup=100, num_samples=60, num_chains=2, seed=2, progress=False,
                     chunk_size=20, record_genetic_values=True)


@pytest.mark.slow  # the first of these compiles the sampler for the model (~45 s)
def test_model_aligns_the_link_to_data(curve_run):
    model = curve_run.model
    assert model.observation.individual_names == tuple(model.individual_names)
    assert model.trait_names == [f"spline{j}" for j in range(4)]
    assert curve_run.draws["residual_variance"].shape == (2, 60)


@pytest.mark.slow  # the first of these compiles the sampler for the model (~45 s)
def test_predicted_curves_against_direct_computation(curve_run):
    run, model = curve_run, curve_run.model
    link = model.observation
    times = np.linspace(*link.time_range, 9)
    table = run.predict_curves(times, interval=0.8)
    assert list(table.columns) == ["individual", "time", "mean", "lower", "upper"]
    individuals = [model.individual_names[i] for i in model.Y_rows]
    assert individuals == list(small_link().individual_names)  # the link's order
    assert list(pd.unique(table["individual"])) == individuals + ["a0", "a1", "a2"]
    basis = link.basis(times)
    B, U = run.draws["B"], run.draws["U"]  # (chain, draw, fixed, p), (chain, draw, level, p)
    levels = list(model.level_names)
    X = pd.DataFrame(np.asarray(model.inputs.X), index=model.individual_names)
    for name in [individuals[0], individuals[7], "a1"]:
        if name.startswith("a"):  # no data: intercept + genetic value
            coefficients = B[:, :, 0] + U[:, :, levels.index(name)]
        else:
            coefficients = np.einsum("b,cdbp->cdp", X.loc[name].to_numpy(), B) + U[:, :, levels.index(name)]
        curves = (coefficients @ basis.T).reshape(-1, len(times))
        rows = table[table["individual"] == name]
        np.testing.assert_allclose(rows["time"], times)
        np.testing.assert_allclose(rows["mean"], curves.mean(axis=0), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(rows["lower"], np.quantile(curves, 0.1, axis=0), rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(rows["upper"], np.quantile(curves, 0.9, axis=0), rtol=1e-10, atol=1e-12)
    # the means are those of run.predict: fitted genetic values through the basis
    genetic = run.predict("genetic", levels=["a1"], fixed=True).to_numpy()[0]
    np.testing.assert_allclose(table[table["individual"] == "a1"]["mean"], basis @ genetic, rtol=1e-8)


@pytest.mark.slow  # the first of these compiles the sampler for the model (~45 s)
def test_covariance_and_h2_curves_against_direct_computation(curve_run):
    run = curve_run
    link = run.model.observation
    times = np.linspace(*link.time_range, 6)
    basis = link.basis(times)
    G = run.posterior_mean("G").to_numpy()
    covariance = run.genetic_covariance_curve(times)
    np.testing.assert_allclose(covariance.to_numpy(), basis @ G @ basis.T, rtol=1e-12)
    assert list(covariance.index) == list(times) and list(covariance.columns) == list(times)
    G_draws, P_draws = run.draws["G"], run.draws["G"] + run.draws["R"]
    per_draw = np.einsum("tp,cdpq,tq->cdt", basis, G_draws, basis) / np.einsum("tp,cdpq,tq->cdt", basis, P_draws,
                                                                               basis)
    np.testing.assert_allclose(run.h2_curve(times).to_numpy(), per_draw.mean(axis=(0, 1)), rtol=1e-12)
    # without per-draw covariances: the ratio of the posterior means
    means_only = types.SimpleNamespace(**vars(run))
    means_only.draws = {name: value for name, value in run.draws.items() if name not in ("G", "R")}
    means_only.posterior_mean = run.posterior_mean
    P = run.posterior_mean("P").to_numpy()
    expected = np.diag(basis @ G @ basis.T) / np.diag(basis @ P @ basis.T)
    np.testing.assert_allclose(sj.Run.h2_curve(means_only, times).to_numpy(), expected, rtol=1e-12)


@pytest.mark.slow  # the first of these compiles the sampler for the model (~45 s)
def test_curves_refuse_bad_requests(curve_run):
    run = curve_run
    low, high = run.model.observation.time_range
    with pytest.raises(sj.SlamjaxInputError, match="times"):
        run.predict_curves([low, high + 1.0])
    with pytest.raises(sj.SlamjaxInputError, match="interval"):
        run.predict_curves([low, high], interval=1.5)
    without = types.SimpleNamespace(model=run.model, draws={k: v for k, v in run.draws.items() if k != "U"})
    with pytest.raises(sj.SlamjaxInputError, match="record_genetic_values=True"):
        sj.Run.predict_curves(without, [low, high])
    gaussian = types.SimpleNamespace(model=types.SimpleNamespace(observation=sj.obs.Gaussian(np.ones((3, 2)))))
    for method in (sj.Run.predict_curves, sj.Run.genetic_covariance_curve, sj.Run.h2_curve):
        with pytest.raises(sj.SlamjaxInputError, match="BSplineRegression"):
            method(gaussian, [0.0, 1.0])


@pytest.mark.slow  # the first of these compiles the sampler for the model (~45 s)
def test_store_resumes_bit_for_bit(tmp_path):
    model = curve_model()
    settings = dict(num_warmup=10, num_chains=2, seed=1, progress=False, chunk_size=20, record_genetic_values=True)
    whole = sj.sample(model, num_samples=40, **settings)
    sj.sample(model, num_samples=20, store=tmp_path / "run", **settings)
    resumed = sj.open_run(tmp_path / "run").resume(num_samples=20, progress=False)
    for name, value in whole.draws.items():
        np.testing.assert_array_equal(resumed.draws[name], value, err_msg=name)
    rebuilt = resumed.model.observation
    assert isinstance(rebuilt, BSplineRegression)
    for field in ("y", "times", "design", "gram", "gram_index", "design_y", "sum_of_squares", "prior_rate"):
        expected = np.asarray(getattr(model.observation, field))
        np.testing.assert_array_equal(np.asarray(getattr(rebuilt, field)), expected, err_msg=field)


# ----------------------------------------------------------------------------- recovery


def _simulated_curves(n=200, p=5, seed=9):
    """200 individuals in 40 families of 5 full sibs (K = 1 on the diagonal, 1/2 within a family),
    4-10 points each at uneven times on [0, 10], coefficients eta_i = mu + u_i + e_i with
    u ~ N(0, K (x) G_true), e ~ N(0, R_true), noise sd 0.2. (With weakly related individuals
    u_i and e_i are hard to tell apart, R is overestimated and the curves' intervals are wider:
    coverage 0.93-0.96 over seeds 7-9. With these families it was 0.92-0.97 over seeds 7-10,
    r_G 0.91-0.995: the coverage of one data set varies, its checks are correlated.)"""
    rng = np.random.default_rng(seed)
    family = np.arange(n) // 5
    K = 0.5 * (family[:, None] == family[None, :]) + 0.5 * np.eye(n)
    A = rng.normal(size=(p, 2)) * np.array([1.0, 0.6])
    G_true = A @ A.T + np.diag(rng.uniform(0.05, 0.3, p))
    C = rng.normal(size=(p, 1)) * 0.5
    R_true = C @ C.T + np.diag(rng.uniform(0.05, 0.2, p))
    mu = np.array([0.0, 1.0, 2.0, 1.5, 0.5])
    U = np.linalg.cholesky(K) @ rng.normal(size=(n, p)) @ np.linalg.cholesky(G_true).T
    Eta = mu + U + rng.normal(size=(n, p)) @ np.linalg.cholesky(R_true).T
    names = [f"line{i}" for i in range(n)]
    rows = []
    knots = np.r_[[0.0] * 4, 5.0, [10.0] * 4]
    for i in range(n):
        times = np.r_[0.0, 10.0, rng.uniform(0, 10, size=rng.integers(2, 9))] if i == 0 else rng.uniform(
            0, 10, size=rng.integers(4, 11))
        basis = scipy.interpolate.BSpline.design_matrix(times, knots, 3).toarray()
        values = basis @ Eta[i] + 0.2 * rng.normal(size=len(times))
        rows += [(names[i], t, v) for t, v in zip(times, values)]
    frame = pd.DataFrame(rows, columns=["line", "day", "size"])
    return frame, names, K, G_true, mu, U


@pytest.mark.slow
def test_recovery_of_G_and_coverage_of_curves():
    frame, names, K, G_true, mu, U = _simulated_curves()
    link = sj.obs.BSplineRegression(frame, time="day", value="size", individual="line", n_basis=5)
    assert link.time_range == (0.0, 10.0)
    data = pd.DataFrame({"line": names}, index=names)
    model = sj.Model(observation=link, data=data, formula="~ 1 + (1|line)",
                     relmat={"line": pd.DataFrame(K, index=names, columns=names)}, n_factors=4)
    run = sj.sample(model, num_warmup=1500, num_samples=1000, num_chains=2, seed=5, progress=False,
                    record_genetic_values=True)
    G = run.posterior_mean("G").to_numpy()
    upper = np.triu_indices(5)
    r_G = np.corrcoef(G[upper], G_true[upper])[0, 1]
    times = np.linspace(0.0, 10.0, 21)
    table = run.predict_curves(times, interval=0.9)
    basis = link.basis(times)
    truth = ((mu + U) @ basis.T).ravel()  # individuals in the link's order = names, times inner
    assert list(pd.unique(table["individual"])) == names
    covered = (table["lower"] <= truth) & (truth <= table["upper"])
    coverage = float(covered.mean())
    G_curve = run.genetic_covariance_curve(times).to_numpy()
    true_curve = basis @ G_true @ basis.T
    r_curve = np.corrcoef(G_curve.ravel(), true_curve.ravel())[0, 1]
    print(f"coefficient G: r = {r_G:.3f}; G(t, t'): r = {r_curve:.3f}; 90 % curve intervals cover {coverage:.3f}")
    assert r_G >= 0.9, r_G
    assert 0.85 <= coverage <= 0.95, coverage


# ----------------------------------------------------------------------------- bad input


def _frame():
    return tall_data(6, seed=4)


def _with(column, values):
    frame = _frame()
    frame[column] = values(frame) if callable(values) else values
    return frame


def _make(frame=None, **changes):
    arguments = dict(time="hours", value="angle", individual="id", n_basis=4)
    arguments.update(changes)
    return lambda: sj.obs.BSplineRegression(_frame() if frame is None else frame, **arguments)


@pytest.mark.parametrize("make, argument", [
    (_make(time="minutes"), "time"),
    (_make(value="size"), "value"),
    (_make(individual="line"), "individual"),
    (_make(time=3), "time"),
    (_make(_with("hours", lambda f: f["hours"].astype(str))), "time"),
    (_make(_with("hours", lambda f: f["hours"].where(f.index != 2, np.nan))), "time"),
    (_make(_with("hours", lambda f: f["hours"].where(f.index != 2, np.inf))), "time"),
    (_make(_with("angle", lambda f: f["angle"].astype(str))), "value"),
    (_make(_with("angle", lambda f: f["angle"].where(f.index != 1, np.inf))), "value"),
    (_make(_with("angle", lambda f: f["angle"].where(f["id"] != "i3", np.nan))), "value"),
    (_make(_with("id", lambda f: f["id"].where(f.index != 0, None))), "individual"),
    (_make(n_basis=3), "n_basis"),
    (_make(n_basis=1, degree=1), "n_basis"),
    (_make(n_basis=4.5), "n_basis"),
    (_make(n_basis=None, knots=[2.0, 1.0]), "knots"),
    (_make(n_basis=None, knots=[-5.0, 1.0]), "knots"),
    (_make(n_basis=None, knots=[1.0, 99.0]), "knots"),
    (_make(knots=[2.0, 3.0]), "n_basis and knots"),
    (_make(degree=-1), "degree"),
    (_make(variance_shape=0.0), "variance_shape"),
    (_make(variance_scale=-1.0), "variance_scale"),
    (lambda: sj.obs.BSplineRegression(_frame().to_numpy(), time="hours", value="angle", individual="id"), "data"),
])
def test_bad_input_names_the_argument(make, argument):
    with pytest.raises(sj.SlamjaxInputError, match=argument):
        make()


def test_an_individual_without_values_is_named():
    frame = _with("angle", lambda f: f["angle"].where(f["id"] != "i3", np.nan))
    with pytest.raises(sj.SlamjaxInputError, match=r"'i3'.*NaN value are dropped"):
        sj.obs.BSplineRegression(frame, time="hours", value="angle", individual="id")
