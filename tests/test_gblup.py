"""Single-trait GBLUP / REML baseline (slamjax.gblup), checked against explicit full-matrix formulas."""

import numpy as np
import pandas as pd
import pytest
import scipy.optimize

import slamjax as sj
from slamjax._errors import SlamjaxInputError


def _small_case(seed=1, n_levels=50, n_obs=60, n_obs_levels=40, h2=0.6):
    """K on n_levels levels; n_obs records (ids repeat) on the first n_obs_levels levels; X = 1 + covariate."""
    rng = np.random.default_rng(seed)
    W = rng.normal(size=(n_levels, 8))
    K = W @ W.T / 8 + 0.05 * np.eye(n_levels)
    levels = [f"L{i}" for i in range(n_levels)]
    ids = np.r_[np.arange(n_obs_levels), rng.integers(0, n_obs_levels, n_obs - n_obs_levels)]
    u = np.linalg.cholesky(K) @ rng.normal(size=n_levels) * np.sqrt(h2)
    x = rng.normal(size=n_obs)
    y = 1.0 + 0.5 * x + u[ids] + rng.normal(size=n_obs) * np.sqrt(1 - h2)
    index = pd.Index([levels[i] for i in ids], name="id")
    Kdf = pd.DataFrame(K, index=levels, columns=levels)
    X = pd.DataFrame({"(Intercept)": 1.0, "x": x}, index=index)
    return pd.Series(y, index=index, name="t"), Kdf, X, ids


def _restricted_ll(y, X, V):
    """-1/2 [(n - p) log 2 pi + log|V| + log|X'V^-1X| + y'Py], with explicit matrices."""
    n, p = X.shape
    Vi = np.linalg.inv(V)
    XVX = X.T @ Vi @ X
    P = Vi - Vi @ X @ np.linalg.solve(XVX, X.T @ Vi)
    return -0.5 * (
        (n - p) * np.log(2 * np.pi) + np.linalg.slogdet(V)[1] + np.linalg.slogdet(XVX)[1] + y @ P @ y
    )


def _explicit(y, X, K, ids, s2g, s2e):
    """V, GLS b_hat and u_hat = s2g K Z' V^-1 (y - X b_hat) for all levels, with explicit matrices."""
    Z = np.zeros((len(y), K.shape[0]))
    Z[np.arange(len(y)), ids] = 1.0
    V = s2g * Z @ K @ Z.T + s2e * np.eye(len(y))
    Vi = np.linalg.inv(V)
    b = np.linalg.solve(X.T @ Vi @ X, X.T @ Vi @ y)
    u = s2g * K @ Z.T @ Vi @ (y - X @ b)
    return Z, V, b, u


def test_reml_matches_brute_force_full_v():
    y, K, X, ids = _small_case()
    res = sj.gblup(y, K, X)
    Kv, Xv, yv = K.to_numpy(), X.to_numpy(), y.to_numpy()
    Z = np.zeros((len(yv), Kv.shape[0]))
    Z[np.arange(len(yv)), ids] = 1.0
    ZKZ = Z @ Kv @ Z.T

    def neg_ll(log_s):
        s2g, s2e = np.exp(log_s)
        return -_restricted_ll(yv, Xv, s2g * ZKZ + s2e * np.eye(len(yv)))

    opt = scipy.optimize.minimize(
        neg_ll, np.log([0.5, 0.5]), method="Nelder-Mead",
        options={"xatol": 1e-11, "fatol": 1e-14, "maxiter": 5000},
    )
    s2g, s2e = np.exp(opt.x)
    assert 0.05 < res.h2["t"] < 0.95  # interior maximum
    np.testing.assert_allclose(res.h2["t"], s2g / (s2g + s2e), atol=1e-5)
    np.testing.assert_allclose([res.sigma2_g["t"], res.sigma2_e["t"]], [s2g, s2e], rtol=1e-4)
    np.testing.assert_allclose(res.log_likelihood["t"], -opt.fun, atol=1e-8)
    # the reported log-likelihood is the full-V criterion at the reported estimates
    V = res.sigma2_g["t"] * ZKZ + res.sigma2_e["t"] * np.eye(len(yv))
    np.testing.assert_allclose(res.log_likelihood["t"], _restricted_ll(yv, Xv, V), rtol=1e-12)


def test_blup_equals_conditional_expectation_and_mme():
    y, K, X, ids = _small_case(seed=2)
    res = sj.gblup(y, K, X)
    s2g, s2e = res.sigma2_g["t"], res.sigma2_e["t"]
    Kv, Xv, yv = K.to_numpy(), X.to_numpy(), y.to_numpy()
    Z, V, b, u = _explicit(yv, Xv, Kv, ids, s2g, s2e)
    new = np.setdiff1d(np.arange(Kv.shape[0]), ids)
    obs = np.unique(ids)
    assert len(new) == 10
    # levels without data: E[u_new | y] = Cov(u_new, y) V^-1 (y - X b_hat), Cov(u_new, y) = s2g K_new,. Z'
    u_new = s2g * Kv[new][:, obs] @ Z[:, obs].T @ np.linalg.solve(V, yv - Xv @ b)
    np.testing.assert_allclose(res.genetic_values["t"].to_numpy()[new], u_new, atol=1e-8)
    np.testing.assert_allclose(res.genetic_values["t"].to_numpy(), u, atol=1e-8)
    np.testing.assert_allclose(res.fixed["t"].to_numpy(), b, atol=1e-8)
    # Henderson's mixed-model equations over all levels of K
    lam = s2e / s2g
    C = np.block([[Xv.T @ Xv, Xv.T @ Z], [Z.T @ Xv, Z.T @ Z + lam * np.linalg.inv(Kv)]])
    sol = np.linalg.solve(C, np.r_[Xv.T @ yv, Z.T @ yv])
    np.testing.assert_allclose(res.fixed["t"].to_numpy(), sol[:2], atol=1e-8)
    np.testing.assert_allclose(res.genetic_values["t"].to_numpy(), sol[2:], atol=1e-8)
    assert list(res.genetic_values.index) == list(K.index)
    pd.testing.assert_frame_equal(res.predict(["L45", "L3"]), res.genetic_values.loc[["L45", "L3"]])
    assert res.predict() is res.genetic_values
    with pytest.raises(SlamjaxInputError, match="not levels of K"):
        res.predict(["nope"])


def test_recovery_n600_marker_grm():
    # 30 crosses x 20 inbred progeny. Over 30 seeds REML h2 had mean 0.495 and sd 0.08 here,
    # so the 0.15 bound is about 2 sd; cor(u_hat, u) was 0.81 +- 0.04.
    rng = np.random.default_rng(1)
    n_founders, n_crosses, n_progeny, m = 60, 30, 20, 1500
    freq = rng.uniform(0.1, 0.9, m)
    founders = (rng.uniform(size=(n_founders, m)) < freq).astype(float)  # inbred founders, 0/1
    rows = []
    for _ in range(n_crosses):
        a, b = rng.choice(n_founders, 2, replace=False)
        pick = rng.uniform(size=(n_progeny, m)) < 0.5
        rows.append(np.where(pick, founders[a], founders[b]))
    ids = [f"g{i}" for i in range(n_crosses * n_progeny)]
    G = sj.grm(pd.DataFrame(np.vstack(rows), index=ids), coding="01")
    G = G / np.mean(np.diag(G))
    lam, U = np.linalg.eigh(G.to_numpy())
    u = U @ (np.sqrt(np.clip(lam, 0, None)) * rng.normal(size=len(ids)))  # sigma2_g = 1
    y = pd.Series(2.0 + u + rng.normal(size=len(ids)), index=ids, name="y")  # sigma2_e = 1: h2 = 0.5
    res = sj.gblup(y, G)
    assert abs(res.h2["y"] - 0.5) < 0.15
    assert np.corrcoef(res.genetic_values["y"], u)[0, 1] > 0.5


def test_missing_per_trait_equals_separate_fits():
    y1, K, X, _ = _small_case(seed=3)
    y2, _, _, _ = _small_case(seed=4)
    Y = pd.DataFrame({"a": y1.to_numpy(), "b": y2.to_numpy()}, index=y1.index)
    Y.iloc[[0, 5, 9, 30], 0] = np.nan
    Y.iloc[[1, 2, 40, 41, 59], 1] = np.nan
    res = sj.gblup(Y, K, X)
    for trait in Y:
        keep = Y[trait].notna()
        one = sj.gblup(Y.loc[keep, trait], K, X.loc[keep])
        for field in ("h2", "sigma2_g", "sigma2_e", "log_likelihood"):
            np.testing.assert_allclose(getattr(res, field)[trait], getattr(one, field)[trait], rtol=1e-10)
        np.testing.assert_allclose(res.fixed[trait], one.fixed[trait], rtol=1e-10, atol=1e-12)
        np.testing.assert_allclose(res.genetic_values[trait], one.genetic_values[trait], rtol=1e-10, atol=1e-12)
    # X rows in another order (unique index) are realigned to Y
    ys, Ks, Xs, _ = _small_case(seed=5, n_obs=40)
    np.testing.assert_allclose(sj.gblup(ys, Ks, Xs.iloc[::-1]).h2, sj.gblup(ys, Ks, Xs).h2)


def test_h2_on_the_zero_boundary():
    # full-sib families, phenotypes with identical family means: REML maximum at h2 = 0 (exactly)
    rng = np.random.default_rng(0)
    fam = np.repeat(np.arange(10), 6)
    K = 0.5 * (fam[:, None] == fam[None, :]) + 0.5 * np.eye(60)
    ids = [f"i{i}" for i in range(60)]
    y = rng.normal(size=60)
    y -= pd.Series(y).groupby(fam).transform("mean").to_numpy()
    res = sj.gblup(pd.Series(y, index=ids), pd.DataFrame(K, index=ids, columns=ids))
    assert res.h2["y"] == 0.0 and res.sigma2_g["y"] == 0.0
    np.testing.assert_allclose(res.sigma2_e["y"], y @ y / 59, rtol=1e-12)
    np.testing.assert_array_equal(res.genetic_values["y"], 0.0)


def _bad_inputs():
    y, K, X, _ = _small_case(seed=6)
    Y = y.to_frame()
    nonsym = K.copy()
    nonsym.iloc[0, 1] += 0.1
    notpsd = K - (np.linalg.eigvalsh(K.to_numpy()).min() + 0.1) * np.eye(len(K))
    nonfinite = K.copy()
    nonfinite.iloc[3, 3] = np.nan
    Xnan = X.copy()
    Xnan.iloc[4, 1] = np.nan
    Xrank = X.assign(x2=2 * X["x"])
    Yfew = Y.copy()
    Yfew.iloc[2:, 0] = np.nan
    Y_dep = Y.assign(u=Y["t"])
    Y_dep.loc[X["x"] > 0, "u"] = np.nan  # on trait u's rows, a covariate constant there is rank deficient
    Xd = X.assign(pos=(X["x"] > 0).astype(float))
    Yother = Y.rename(index={Y.index[0]: "ghost"})
    return [
        (Yother, K, None, "not levels of K"),
        (Y, K.iloc[:, :-1], None, "square"),
        (Y, K.set_axis([f"other{i}" for i in range(K.shape[1])], axis=1), None, "index and columns name different levels"),
        (Y, nonsym, None, "not symmetric"),
        (Y, notpsd, None, "not positive semi-definite"),
        (Y, nonfinite, None, "missing or infinite"),
        (Y, K, X.iloc[:-1], "not aligned"),
        (Y, K, Xnan, "X: contains NaN"),
        (Yfew, K, None, "2 observations"),
        (Y, K, Xrank, "rank-deficient"),
        (Y_dep, K, Xd, "rank-deficient.*'u'"),
    ]


@pytest.mark.parametrize("case", range(11))
def test_bad_input_raises(case):
    Y, K, X, match = _bad_inputs()[case]
    with pytest.raises(SlamjaxInputError, match=match):
        sj.gblup(Y, K, X)


def test_bad_input_is_a_value_error_and_constant_trait():
    y, K, _, _ = _small_case(seed=6)
    with pytest.raises(ValueError, match="fitted exactly by X"):
        sj.gblup(pd.Series(1.0, index=y.index), K)
    with pytest.raises(SlamjaxInputError, match="DataFrame"):
        sj.gblup(y, K.to_numpy())
