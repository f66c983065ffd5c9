"""Model: data, priors and the random-effect decomposition, validated before any JAX code runs."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from ._errors import SlamjaxInputError
from ._sampler_data import SamplerData
from ._validate import ValidatedData, validate_inputs
from .grid import h2_grid, h2_log_prior
from .priors._priors import Priors
from .random_effects.eigen import EigenRandomEffect, eigen_random_effect

__all__ = ["Model"]


class Model:
    """A SLAMglmm model with one random effect (``eigen`` backend) and Gaussian observations.

        Y = X B + F Lambda + Z U_R + E_R,    F = X_F B_F + Z U_F + E_F,
        vec(U_R) ~ N(0, diag(h2 / tau) (x) K),  E_R rows ~ N(0, diag((1 - h2) / tau)), likewise for F.

    Arguments:
        Y: (n, p) array or DataFrame (individuals x traits); NaN marks a missing cell.
        X: fixed effects of the traits (n, b); an intercept column is added when absent.
        X_F: fixed effects of the factors (n, b_F), without an intercept (fixed at 0).
        Z: random-effect design (n, r); identity when None (one level per individual).
        K: covariance of the random effect over its r levels (kinship, pedigree A); identity when None.
        n_factors: number of latent factors k (1 <= k <= p); extra factors are shrunk away.
        h2_divisions: steps of the h2 grid (h2 in {0, 1/d, ..., (d-1)/d}).
        priors: ``sj.Priors``; defaults follow MegaLMM.
        scale_Y: standardise each trait (observed mean 0, sd 1) for sampling; results are
            reported on the original scale.
    """

    def __init__(
        self,
        Y,
        X=None,
        X_F=None,
        Z=None,
        K=None,
        *,
        n_factors: int,
        h2_divisions: int = 20,
        priors: Priors | None = None,
        scale_Y: bool = True,
    ):
        validated = validate_inputs(Y, X, X_F, Z, K, n_factors=n_factors, h2_divisions=h2_divisions)
        if priors is None:
            priors = Priors()
        if not isinstance(priors, Priors):
            raise SlamjaxInputError(f"priors: must be sj.Priors(...), got {type(priors).__name__}")
        self.inputs: ValidatedData = validated
        self.priors = priors
        self.n_factors = int(n_factors)
        self.h2_divisions = int(h2_divisions)
        self.scale_Y = bool(scale_Y)
        self.grid = h2_grid(1, self.h2_divisions)
        trait_log_prior = h2_log_prior(self.grid, priors.h2)
        factor_log_prior = h2_log_prior(self.grid, priors.F_h2)

        Y = validated.Y
        observed = ~np.isnan(Y)
        if self.scale_Y:
            self.Y_mean = np.nanmean(Y, axis=0)
            self.Y_scale = np.nanstd(Y, axis=0, ddof=1)
        else:
            self.Y_mean = np.zeros(Y.shape[1])
            self.Y_scale = np.ones(Y.shape[1])
        Y_filled = np.where(observed, (Y - self.Y_mean) / self.Y_scale, 0.0)

        jax.config.update("jax_enable_x64", True)
        self.random_effect: EigenRandomEffect = eigen_random_effect(validated.Z, validated.K)
        Q = np.asarray(self.random_effect.Q)
        self.data = SamplerData(
            re=self.random_effect,
            X=jnp.asarray(Q.T @ validated.X),
            X_F=jnp.asarray(Q.T @ validated.X_F),
            Eta_complete=jnp.asarray(Q.T @ Y_filled),
            Y_filled=jnp.asarray(Y_filled),
            observed=jnp.asarray(observed),
            h2_values=jnp.asarray(self.grid[:, 0]),
            trait_log_prior=jnp.asarray(trait_log_prior),
            factor_log_prior=jnp.asarray(factor_log_prior),
            Lambda_prior=priors.Lambda,
            B_prior=priors.B,
            B_F_prior=priors.B_F,
            tau_shape=jnp.asarray(priors.tot_Eta_var.shape),
            tau_rate=jnp.asarray(priors.tot_Eta_var.rate),
            F_tau_shape=jnp.asarray(priors.tot_F_var.shape),
            F_tau_rate=jnp.asarray(priors.tot_F_var.rate),
            intercept_precision=jnp.asarray(float(priors.intercept_precision)),
            n_factors=self.n_factors,
            n_flat=priors.n_flat,
            has_missing=bool((~observed).any()),
        )

    @property
    def trait_names(self) -> list[str]:
        return self.inputs.trait_names

    @property
    def individual_names(self) -> list[str]:
        return self.inputs.individual_names

    @property
    def level_names(self) -> list[str]:
        return self.inputs.level_names

    @property
    def fixed_names(self) -> list[str]:
        return self.inputs.fixed_names

    @property
    def factor_fixed_names(self) -> list[str]:
        return self.inputs.factor_fixed_names

    @property
    def factor_names(self) -> list[str]:
        return [f"factor{i}" for i in range(self.n_factors)]

    @property
    def shapes(self) -> dict[str, int]:
        return self.data.shapes

    def __repr__(self) -> str:
        s = self.shapes
        missing = 1.0 - float(np.mean(np.asarray(self.data.observed)))
        return (
            f"Model(n={s['n']} individuals, p={s['p']} traits, k={s['k']} factors, b={s['b']} fixed, "
            f"b_F={s['b_F']} factor fixed, r={s['r']} levels, h2_divisions={self.h2_divisions}, "
            f"missing={missing:.1%}, backend=eigen)"
        )
