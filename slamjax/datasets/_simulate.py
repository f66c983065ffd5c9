"""Data simulated from the model, with its truth, for recovery tests and examples."""

from __future__ import annotations

import numpy as np
import pandas as pd

from .._errors import SlamjaxInputError
from ._dataset import Dataset

__all__ = ["simulate", "half_sib_relationship", "random_pedigree_relationship"]


def half_sib_relationship(n_sires: int, offspring_per_sire: int) -> np.ndarray:
    """Additive relationship of half-sib families: 1 on the diagonal, 1/4 within a sire family."""
    family = np.repeat(np.arange(n_sires), offspring_per_sire)
    return np.where(family[:, None] == family[None, :], 0.25, 0.0) + 0.75 * np.eye(family.size)


def random_pedigree_relationship(n: int, generations: int = 5, seed: int = 0) -> np.ndarray:
    """Additive relationship matrix A of a random-mating pedigree (tabular method).

    n individuals in ``generations`` equal generations; the first are unrelated founders and each
    later individual has a random sire and dam (distinct) from the previous generation, so A holds
    full and half sibs, cousins and parent-offspring pairs, as a breeding population does.
    """
    rng = np.random.default_rng(seed)
    sizes = np.full(generations, n // generations)
    sizes[: n % generations] += 1
    starts = np.concatenate([[0], np.cumsum(sizes)])
    A = np.zeros((n, n))
    for g in range(generations):
        for i in range(starts[g], starts[g + 1]):
            if g == 0:
                A[i, i] = 1.0
                continue
            sire, dam = rng.choice(np.arange(starts[g - 1], starts[g]), size=2, replace=False)
            A[i, :i] = 0.5 * (A[sire, :i] + A[dam, :i])
            A[:i, i] = A[i, :i]
            A[i, i] = 1.0 + 0.5 * A[sire, dam]
    return A


def simulate(
    n: int = 500,
    p: int = 100,
    k: int = 5,
    seed: int = 0,
    *,
    K: np.ndarray | None = None,
    fraction_missing: float = 0.0,
    factor_h2: np.ndarray | None = None,
    resid_h2: np.ndarray | None = None,
    n_groups: int | None = None,
) -> Dataset:
    """Draws a data set from the SLAMglmm model with one random effect (Z = I), with its truth.

        Y = 1 mu' + F Lambda + U_R + E_R,   F = U_F + E_F,
        U_F[:, l] ~ N(0, F_h2_l K), E_F[:, l] ~ N(0, (1 - F_h2_l) I),
        U_R[:, j] ~ N(0, resid_h2_j / tau_j K), E_R[:, j] ~ N(0, (1 - resid_h2_j) / tau_j I).

    K defaults to the relationship matrix of a random-mating pedigree of 5 generations
    (``random_pedigree_relationship``); a half-sib design (``half_sib_relationship``, as in
    MegaLMM's simulations) carries much less information about h2.
    Lambda (k x p) is sparse: factor l loads on a random 10-60 % of the traits with N(0, 1)
    values scaled by 1 / (1 + l / 2). F_h2 ~ U(0, 0.9) unless given, resid_h2 ~ U(0, 0.9),
    residual variances 1 / tau ~ U(0.2, 0.6). ``truth`` holds Lambda, F_h2, resid_h2,
    tot_Eta_prec, G, R, P, h2 (per trait: diag G / diag P), U (genetic values), F, mu and
    Y_complete (Y before cells were made missing).

    ``n_groups`` adds a second, iid random effect: every individual belongs to one of n_groups
    groups (column ``group`` of ``data``, e.g. cages), with variance proportions
    group_h2 ~ U(0, 0.3) per trait and F_group_h2 ~ U(0, 0.3) per factor (the first effect's
    proportions are then scaled by 2/3). ``truth`` then also holds G_group, group_h2, F_group_h2
    and U_group, and R and P account for it.
    """
    for name, value, minimum in (("n", n, 2), ("p", p, 1), ("k", k, 1)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
            raise SlamjaxInputError(f"simulate: {name} must be an integer >= {minimum}, got {value!r}")
    if not 0.0 <= fraction_missing < 1.0:
        raise SlamjaxInputError(f"simulate: fraction_missing must lie in [0, 1), got {fraction_missing}")
    rng = np.random.default_rng(seed)
    if K is None:
        K = random_pedigree_relationship(n, seed=seed)
    K = np.asarray(K, dtype=np.float64)
    if K.shape != (n, n):
        raise SlamjaxInputError(f"simulate: K must be ({n}, {n}), got {K.shape}")
    eigenvalues, eigenvectors = np.linalg.eigh(K)
    K_root = eigenvectors * np.sqrt(np.clip(eigenvalues, 0.0, None))

    Lambda = np.zeros((k, p))
    for factor in range(k):
        loaded = rng.random(p) < rng.uniform(0.1, 0.6)
        loaded[rng.integers(p)] = True
        Lambda[factor, loaded] = rng.normal(size=loaded.sum()) / (1.0 + factor / 2.0)
    F_h2 = rng.uniform(0.0, 0.9, k) if factor_h2 is None else np.asarray(factor_h2, float)
    resid_h2_true = rng.uniform(0.0, 0.9, p) if resid_h2 is None else np.asarray(resid_h2, float)
    resid_var = rng.uniform(0.2, 0.6, p)
    mu = rng.normal(size=p)

    if n_groups is not None:
        F_h2, resid_h2_true = F_h2 * 2 / 3, resid_h2_true * 2 / 3
    U_F_white, E_F_white = rng.normal(size=(n, k)), rng.normal(size=(n, k))
    U_R_white, E_R_white = rng.normal(size=(n, p)), rng.normal(size=(n, p))
    F_group_h2, group_h2 = np.zeros(k), np.zeros(p)
    group_F, group_R = np.zeros((n, k)), np.zeros((n, p))
    if n_groups is not None:
        group = rng.integers(0, n_groups, n)
        F_group_h2, group_h2 = rng.uniform(0.0, 0.3, k), rng.uniform(0.0, 0.3, p)
        group_F_levels = rng.normal(size=(n_groups, k)) * np.sqrt(F_group_h2)
        group_R_levels = rng.normal(size=(n_groups, p)) * np.sqrt(group_h2 * resid_var)
        group_F, group_R = group_F_levels[group], group_R_levels[group]
    U_F = K_root @ U_F_white * np.sqrt(F_h2)
    F = U_F + group_F + E_F_white * np.sqrt(1.0 - F_h2 - F_group_h2)
    U_R = K_root @ U_R_white * np.sqrt(resid_h2_true * resid_var)
    E_R = E_R_white * np.sqrt((1.0 - resid_h2_true - group_h2) * resid_var)
    Y = mu + F @ Lambda + U_R + group_R + E_R
    Y_complete = Y.copy()
    if fraction_missing > 0:
        Y[rng.random((n, p)) < fraction_missing] = np.nan

    G = Lambda.T @ np.diag(F_h2) @ Lambda + np.diag(resid_h2_true * resid_var)
    G_group = Lambda.T @ np.diag(F_group_h2) @ Lambda + np.diag(group_h2 * resid_var)
    R = Lambda.T @ np.diag(1.0 - F_h2 - F_group_h2) @ Lambda + np.diag((1.0 - resid_h2_true - group_h2) * resid_var)
    ids = [f"ind{i:04d}" for i in range(n)]
    traits = [f"trait{j:03d}" for j in range(p)]
    truth = dict(
        Lambda=Lambda, F_h2=F_h2, resid_h2=resid_h2_true, tot_Eta_prec=1.0 / resid_var, G=G, R=R,
        P=G + G_group + R, h2=np.diag(G) / np.diag(G + G_group + R), U=U_F @ Lambda + U_R, F=F, mu=mu,
        Y_complete=Y_complete,
    )
    data = pd.DataFrame({"id": ids}, index=pd.Index(ids, name="id"))
    if n_groups is not None:
        truth.update(
            G_group=G_group, group_h2=group_h2, F_group_h2=F_group_h2, U_group=group_F_levels @ Lambda + group_R_levels
        )
        data["group"] = [f"g{g:03d}" for g in group]
    return Dataset(
        name="simulated",
        Y=pd.DataFrame(Y, index=pd.Index(ids, name="id"), columns=traits),
        data=data,
        relmat={"id": pd.DataFrame(K, index=ids, columns=ids)},
        markers=None,
        cv_folds=None,
        citation="Simulated from the SLAMglmm model by slamjax.datasets.simulate",
        truth=truth,
    )
