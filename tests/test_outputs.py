"""Outputs that agree with each other: aligned factor labels, summaries, row order, messages."""

from __future__ import annotations

import re

import numpy as np
import pandas as pd
import pytest
from scipy.stats import special_ortho_group

import slamjax as sj
from slamjax.alignment import align_factor_effects, align_factor_h2, factor_alignment

from _models import three_effect_model


def _raw_draws(n_draws=60, k=3, p=12, b_F=2, n_effects=1, seed=0):
    """Draws of (Lambda, B_F, F_h2) as the sampler gives them: each draw's factors in its own order,
    signs and (small) rotation, raw Lambda = Q (truth + noise), B_F = B_F Q', the shares of the
    factors permuted alike (up to the small rotation, which the sampler's h2 draw would undo)."""
    from scipy.linalg import expm

    rng = np.random.default_rng(seed)
    Lambda = np.zeros((k, p))
    Lambda[np.arange(p) % k, np.arange(p)] = rng.uniform(0.8, 1.5, p)
    B_F = rng.normal(size=(b_F, k))
    h2 = rng.uniform(0.1, 0.9, size=(n_effects, k)) / n_effects
    Ls, Bs, hs = [], [], []
    for _ in range(n_draws):
        order, signs = rng.permutation(k), rng.choice([-1.0, 1.0], k)
        skew = np.triu(rng.normal(scale=0.1, size=(k, k)), 1)
        Q = (np.eye(k)[order] * signs[:, None]) @ expm(skew - skew.T)
        Ls.append(Q @ (Lambda + 0.02 * rng.normal(size=Lambda.shape)))
        Bs.append((B_F + 0.02 * rng.normal(size=B_F.shape)) @ Q.T)
        hs.append(h2[:, order])
    F_h2 = np.array(hs)
    return np.array(Ls), np.array(Bs), F_h2[:, 0] if n_effects == 1 else F_h2


@pytest.mark.parametrize("n_effects", [1, 2])
def test_one_transformation_per_draw_aligns_Lambda_B_F_and_F_h2(n_effects):
    Lambda, B_F, F_h2 = _raw_draws(n_effects=n_effects)
    aligned, T = factor_alignment(Lambda)
    np.testing.assert_allclose(aligned, T @ Lambda, atol=1e-10)
    np.testing.assert_allclose(T @ np.swapaxes(T, -1, -2), np.broadcast_to(np.eye(3), T.shape), atol=1e-10)
    np.testing.assert_array_equal(aligned, sj.align_loadings(Lambda))
    B_aligned = align_factor_effects(T, B_F)
    np.testing.assert_allclose(B_aligned @ aligned, B_F @ Lambda, atol=1e-10)  # X_F B_F Lambda unchanged
    h2_aligned = align_factor_h2(T, F_h2)
    assert h2_aligned.shape == F_h2.shape
    # every draw aligned back to the same factors: B_F and the shares agree across draws
    assert np.max(np.abs(B_aligned - B_aligned.mean(axis=0))) < 0.2
    assert np.max(np.abs(h2_aligned - h2_aligned.mean(axis=0))) < 0.05
    # shares are weighted means of the raw ones: their sum over factors is kept
    np.testing.assert_allclose(h2_aligned.sum(axis=-1), F_h2.sum(axis=-1), atol=1e-10)


def test_aligned_outputs_do_not_depend_on_the_raw_factor_labels():
    """Relabel the raw factors of half the draws (signed permutations, as a chain in another
    labelling would give): aligned Lambda, B_F and F_h2 stay the same."""
    Lambda, B_F, F_h2 = _raw_draws()
    rng = np.random.default_rng(5)
    S = np.stack([np.eye(3)[rng.permutation(3)] * rng.choice([-1.0, 1.0], 3)[:, None] for _ in range(len(Lambda))])
    S[::2] = np.eye(3)
    relabelled = factor_alignment(S @ Lambda)
    original = factor_alignment(Lambda)
    np.testing.assert_allclose(relabelled[0], original[0], atol=1e-9)
    np.testing.assert_allclose(align_factor_effects(relabelled[1], B_F @ np.swapaxes(S, 1, 2)),
                               align_factor_effects(original[1], B_F), atol=1e-9)
    np.testing.assert_allclose(align_factor_h2(relabelled[1], np.einsum("dah,dh->da", S**2, F_h2)),
                               align_factor_h2(original[1], F_h2), atol=1e-9)


def test_aligned_h2_is_the_genetic_share_of_the_rotated_factors():
    """Monte Carlo: independent unit-variance factors with genetic shares h2; the factors F T' have
    genetic shares diag(T diag(h2) T')."""
    rng = np.random.default_rng(2)
    n, k = 400_000, 3
    h2 = np.array([0.8, 0.1, 0.4])
    U = rng.normal(size=(n, k)) * np.sqrt(h2)
    E = rng.normal(size=(n, k)) * np.sqrt(1 - h2)
    T = special_ortho_group.rvs(k, random_state=3)
    share = np.var(U @ T.T, axis=0) / np.var((U + E) @ T.T, axis=0)
    np.testing.assert_allclose(align_factor_h2(T, h2), share, atol=0.01)


def _formula_model(seed=0, n=24, p=3, order=None):
    rng = np.random.default_rng(seed)
    ids = [f"i{i}" for i in range(n)]
    data = pd.DataFrame({"line": ids, "x": rng.normal(size=n)}, index=ids)
    Y = pd.DataFrame(rng.normal(size=(n, p)), index=ids, columns=[f"t{j}" for j in range(p)])
    Y.iloc[:, 1] += Y.iloc[:, 0]
    if order is not None:
        Y = Y.iloc[order]
    model = sj.Model(Y=Y, data=data, formula="~ x + (1|line)", factor_formula="~ x + (1|line)", n_factors=2,
                     h2_divisions=4)
    return model, Y


@pytest.fixture(scope="module")
def small_run():
    model, _ = _formula_model()
    return sj.sample(model, num_warmup=30, num_samples=25, num_chains=2, seed=1, progress=False)


def test_run_reports_Lambda_B_F_and_F_h2_under_the_same_factor_labels(small_run):
    run = small_run
    T = run.factor_alignment().values
    raw = run.draws
    aligned = run.aligned_factors()
    np.testing.assert_allclose(aligned["Lambda"], T @ raw["Lambda"], atol=1e-8)
    np.testing.assert_allclose(aligned["B_F"], raw["B_F"] @ np.swapaxes(T, -1, -2), atol=1e-12)
    np.testing.assert_allclose(aligned["F_h2"], np.einsum("cdah,cdh->cda", T**2, raw["F_h2"]), atol=1e-12)
    factors = run.model.factor_names
    for name, dim in (("Lambda", -2), ("B_F", -1), ("F_h2", -1)):
        assert run.posterior[name].dims[dim] == "factor"
        assert list(run.posterior[name].coords["factor"].values) == factors
        np.testing.assert_allclose(run.posterior[name].values, aligned[name], atol=0)
    np.testing.assert_allclose(run.posterior_mean("F_h2").to_numpy(), aligned["F_h2"].mean(axis=(0, 1)))
    assert list(run.posterior_mean("F_h2").index) == factors
    np.testing.assert_allclose(run.posterior_mean("Lambda").to_numpy(), aligned["Lambda"].mean(axis=(0, 1)))


def test_summary_lists_each_symmetric_element_once(small_run):
    run = small_run
    p = run.model.shapes["p"]
    traits = run.model.trait_names
    with pytest.warns(UserWarning):
        table = run.summary(var_names=["G", "R", "h2"])
    for name in ("G", "R"):
        labels = [label for label in table.index if label.startswith(f"{name}[")]
        assert len(labels) == p * (p + 1) // 2, labels
        pairs = [re.match(rf"{name}\[(.*), (.*)\]", label).groups() for label in labels]
        assert all(traits.index(a) <= traits.index(b) for a, b in pairs)
        assert len(set(pairs)) == len(pairs)
    assert sum(label.startswith("h2[") for label in table.index) == p
    assert np.all(np.isfinite(table["mean"].to_numpy(dtype=float)))


def test_summary_with_several_random_effects_lists_each_pair_once_per_effect():
    model = three_effect_model(p=3)
    run = sj.sample(model, num_warmup=4, num_samples=6, num_chains=2, progress=False, record_covariances=True)
    with pytest.warns(UserWarning):
        table = run.summary(var_names=["G"])
    p, effects = 3, model.effect_names
    assert len(table) == len(effects) * p * (p + 1) // 2
    for effect in effects:
        pairs = [re.match(rf"G\[{effect}, (.*), (.*)\]", label) for label in table.index]
        pairs = [m.groups() for m in pairs if m]
        assert len(pairs) == p * (p + 1) // 2
        assert all(model.trait_names.index(a) <= model.trait_names.index(b) for a, b in pairs)


def test_fitted_values_follow_Ys_order_of_rows(tmp_path):
    order = np.random.default_rng(3).permutation(24)
    model, Y = _formula_model(order=order)
    assert model.individual_names == [f"i{i}" for i in range(24)]  # the model works in data's order
    run = sj.sample(model, num_warmup=5, num_samples=5, progress=False, store=tmp_path / "run")
    fitted = run.predict("fitted")
    assert list(fitted.index) == list(Y.index)
    pd.testing.assert_frame_equal(fitted, run.posterior_mean("Eta_mean"))
    by_data_order = run.predict("fitted", levels=model.individual_names)
    pd.testing.assert_frame_equal(fitted, by_data_order.loc[Y.index])
    reopened = sj.open_run(tmp_path / "run")
    assert list(reopened.predict("fitted").index) == list(Y.index)


def test_repeated_labels_are_named_before_the_set_difference():
    model, Y = _formula_model()
    data = pd.DataFrame({"line": Y.index, "x": 0.0}, index=Y.index)
    data["x"] = np.arange(len(data), dtype=float)
    repeated = Y.copy()
    repeated.index = ["i0", "i0"] + list(Y.index[2:])  # i1 replaced by a second i0
    with pytest.raises(sj.SlamjaxInputError) as error:
        sj.Model(Y=repeated, data=data, formula="~ x + (1|line)", n_factors=2)
    message = str(error.value)
    assert "repeats 1 label(s) ['i0']" in message
    assert "1 individual(s) in data but not in Y (e.g. ['i1'])" in message
    assert message.index("repeats") < message.index("in data but not in Y")
    only_repeats = pd.concat([Y, Y.iloc[:1]])
    with pytest.raises(sj.SlamjaxInputError, match=r"repeats 1 label\(s\) \['i0'\]") as error:
        sj.Model(Y=only_repeats, data=data, formula="~ x + (1|line)", n_factors=2)
    assert "in data but not in Y" not in str(error.value)


def test_summary_of_other_quantities_does_not_align_the_factors(small_run, monkeypatch):
    import copy

    import slamjax.run

    run = copy.copy(small_run)
    run._aligned, run._datatree = None, None

    def no_alignment(draws):
        raise AssertionError("aligned the factor draws for a summary of h2 and G")

    monkeypatch.setattr(slamjax.run, "factor_alignment", no_alignment)
    with pytest.warns(UserWarning):
        table = run.summary(var_names=["h2", "G"])
    assert any(label.startswith("G[") for label in table.index)
    with pytest.raises(AssertionError, match="aligned"):
        run.summary(var_names=["F_h2"])
