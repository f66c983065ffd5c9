"""Model: data, priors and the random-effect plan (``random_effects.plan_random_effects``), validated
before any decomposition is computed."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from ._errors import SlamjaxInputError
from ._sampler_data import SamplerData
from ._validate import ValidatedData, validate_inputs
from ._x64 import float64
from .blocks.exchange import EXCHANGE_AUTO_MAX_CELLS
from .grid import h2_grid, h2_log_prior
from .observation._base import ObservationModel
from .observation.gaussian import Gaussian
from .priors._priors import Priors
from .priors.mgps import _OrderedShrinkage
from .random_effects import plan_random_effects

__all__ = ["Model"]


class Model:
    """A SLAMglmm model: latent traits with one or more random effects, observed through a link.

        Y = X B + F Lambda + sum_m Z_m U_Rm + E_R,    F = X_F B_F + sum_m Z_m U_Fm + E_F,
        vec(U_Rm) ~ N(0, diag(h2_m / tau) (x) K_m),  E_R rows ~ N(0, diag((1 - sum_m h2_m) / tau)),
        likewise for F. The matrix form has one random effect (Z, K); a formula may have several.
        Y is the latent traits Eta: the data themselves (Gaussian, the default), or the traits an
        observation model links to its data (``observation=``).

    Give the design either as a formula or as matrices:

        sj.Model(Y=Y, data=df, formula="~ Population + (1|Line)", relmat={"Line": A}, n_factors=10)
        sj.Model(Y=Y, X=X, Z=Z, K=A, n_factors=10)

    Arguments:
        Y: (n, p) array or DataFrame (individuals x traits); NaN marks a missing cell. With a
            formula, a DataFrame Y is aligned to ``data`` by index (use ``sj.wide`` for tall data).
            Omit it when giving ``observation``.
        observation: how the data inform the latent traits (``sj.obs``: Probes, Voom,
            BSplineRegression, Combined, or your own ``sj.obs.ObservationModel``); the latent
            traits are its ``latent_names``, its individuals are aligned to ``data`` by label.
            None: Y is observed directly (``sj.obs.Gaussian(Y)``). Latent traits are standardised
            by their starting values' (``latent_start``) mean and sd when ``scale_Y``.
        data: one row per individual (index = individual id) holding the formula's variables.
        formula: lme4 syntax: fixed effects (factors, interactions, numeric covariates) and one
            or more random intercepts ``(1|group)``; ``relmat`` maps a group to its covariance over
            levels (identity for a group without one).
        factor_formula: fixed effects of the factors (``"~ x"``; no intercept) and their random
            effects, which must be the traits'; by default the factors get the traits' random
            effects and no fixed effects.
        X: fixed effects of the traits (n, b); an intercept column is added when absent.
        X_F: fixed effects of the factors (n, b_F), without an intercept (fixed at 0).
        Z: random-effect design (n, r); identity when None (one level per individual).
        K: covariance of the random effect over its r levels (kinship, pedigree A); identity when None.
        n_factors: number of latent factors k (1 <= k <= p); extra factors are shrunk away.
        h2_divisions: steps of the h2 grid (h2 in {0, 1/d, ..., (d-1)/d}).
        priors: ``sj.Priors``; defaults follow MegaLMM.
        scale_Y: standardise each trait (observed mean 0, sd 1) for sampling; results are
            reported on the original scale.
        backend: "eigen" (one random effect), "cholesky" (any number), "woodbury" (two or more:
            the random effect with the most levels diagonalised, the others a low-rank update;
            fast when those others have few levels in all, as cage and litter beside an animal
            effect) or "auto": eigen for one random effect, else the cheaper of cholesky and
            woodbury per sweep (G n^2 against P n S' + G S'^2 for S' levels outside the largest
            effect and P distinct pairs of the largest effect's and the residual's share;
            woodbury also when only its decompositions fit in memory; cholesky with
            missing="groups"). A model whose decompositions would not fit in memory is refused.
        missing: how missing cells are handled. "impute" draws every missing cell each iteration;
            "groups" fits traits that share an observation pattern on their observed rows only
            (``sj.missing``; merged to at most ``max_missing_groups`` groups, which imputes the
            few cells the merge adds); "auto" takes groups when at least 5 % of the cells are
            missing, the groups leave at most half of the missing cells imputed and their padded
            decompositions cost at most 4 times the plain path's. The woodbury backend imputes
            ("groups" needs backend="cholesky").
        max_missing_groups: the most groups "groups"/"auto" may form (each has its own
            decomposition: memory and set-up time grow with it).
        h2_draw: "collapsed" draws each column's h2 marginal over its coefficients and total
            precision as well as its random effects, then the coefficients and precision given
            h2: a joint draw, about twice the effective draws of h2 and G per sweep
            (``benchmarks/mixing.py``). "conditional" draws h2 given the coefficients and
            precision, as MegaLMM does, and skips one q x q Cholesky (q = fixed effects +
            factors) per trait and grid point. "auto" (default) takes "collapsed" with the
            cholesky backend, whose cost it hardly changes, and with the eigen backend when those
            Choleskys cost no more than the regressions (G q^2 <= 3 n).
        rotate_factors: draw the rotation of every pair of factors each sweep (step 0, an exact
            generalised Gibbs step). The data see only F Lambda, so without it chains settle in
            different rotations of the factors, with different splits of G and R.
        shear_factors: with ``rotate_factors``, step 0 also draws a shear along every pair of
            factors, both ways (F_l + s F_m with Lambda_m - s Lambda_l, another exact generalised
            Gibbs step): it moves loadings between factors of different h2, what the slowest
            elements of G (off-diagonals of low-h2 traits) are made of: on simulated data their
            smallest bulk ESS grew 1.6-10 fold (``benchmarks/mixing.py``) at no measurable cost.
        factor_h2_draw: "marginal" adds two exact steps to every sweep, both marginal over the
            factors' random effects (``slamjax.blocks.marginal_factors``): 5l moves the factors'
            means and the traits' intercepts together along the directions that leave the fit
            unchanged (the pedigree's top eigenvector is nearly constant, so without it the
            intercepts mix slowly), and 5m draws each factor's h2 marginal over its scores, then
            the scores (h2_F given F sticks where a factor is weakly determined by the data). They
            cost O(n G + n k) per factor after one n x p x k product (0.2-0.7 ms per sweep per
            chain on the 2-core CPU at n = 200-600). "given_F" leaves h2_F to the factor block
            (MegaLMM's draw). "auto" (default): "marginal" with one random effect (the eigen
            backend) and no missing-data groups, which it needs; else "given_F".
        exchange_factors: add step 0e, an exact Metropolis step per factor that moves variance
            between the factor's loadings and the traits' own residual variance 1 / tau, marginal
            over the factor's scores and both levels' random effects (``slamjax.blocks.exchange``;
            one random effect, no missing-data groups). A factor that loads mainly on a few traits
            otherwise trades variance with them slowly. On
            simulated data (3 seeds each, README "Mixing") it raised the smallest bulk ESS of G's
            elements on average (and their 1st percentile and median), but not at every seed:
            in one run of 2 chains (n = 200, p = 20, 4 factors) a chain it slowed left the
            smallest ESS at 21 of 800 against 195 without it. It costs 1.3-1.7x a sweep (9
            passes over the n x p residual per factor). Off by default (False); True adds it,
            "auto" adds it where possible and n x p <= ``EXCHANGE_AUTO_MAX_CELLS`` (1e6).
        rescale_factors: add step 0e's second move, an exact Metropolis step per factor that
            rescales its loadings against their shrinkage prior's scale (lambda_l -> c lambda_l,
            delta_l -> delta_l / c^2, delta_l+1 -> delta_l+1 c^2), marginal over the factor's
            scores and both levels' random effects (``slamjax.blocks.exchange``; one random effect,
            no missing-data groups, an ordered loadings prior). Factors the data do not need
            otherwise creep towards zero over thousands of sweeps, each chain at its own pace. With
            step 0o's swaps (``swap_factors``) and 20 proposals per factor it raised the smallest
            bulk ESS of G's elements at n = 500, p = 100 (10 factors for 5, 3 seeds, README
            "Mixing") from 15-70 to 130-167 per 1000 sweeps per chain (the median 725-756 ->
            767-782) for 1.1-1.2x the sweep's cost (O(n) per proposal after one n p k product); at
            n = 200, p = 20 from 159-220 to 201-232, for 1.5x. "auto" (default): where possible and
            n x p <= ``EXCHANGE_AUTO_MAX_CELLS`` (1e6), except with a spike-and-slab marker prior
            (BayesC, BayesR): there the factors are neither rotated nor swapped, and per-factor
            inclusion probabilities pool chains by factor; with the move (20 proposals), the two chains of
            ``tests/test_markers.py``'s BayesC test put one factor's causal markers at different
            positions (each causal marker's probability 0.50 on two factors, against 1.00 on one
            without it). True raises where it is not possible.
        swap_factors: add step 0o, exact Metropolis swaps of neighbouring factors that take their
            column shrinkage with them (``slamjax.blocks.order``; an ordered loadings prior: MGPS,
            Horseshoe or TPB; no markers). The rotation step turns factors into one another but
            leaves each h2_F at its position, so without it every chain keeps its own order of
            factors of different h2 and, through the ordered prior, its own split of G. On
            simulated data (README "Mixing", 3 seeds each) it raised the smallest bulk ESS of G's
            elements from 14-163 to 159-220 per 1000 sweeps per chain at n = 200, p = 20 and from
            9-27 to 15-70 at n = 500, p = 100. It costs O(k) per sweep. "auto" (default): where
            possible; True raises where it is not.
        markers: marker genotypes as fixed effects of the factors, F = X_F B_F + M B_M + Z U_F + E_F
            (individuals x markers, a DataFrame aligned by index or an array in the model's order,
            or ``sj.markers.Markers(genotypes, missing=, map=, window=, sampler=)``): an m x k
            problem whatever the number of traits; ``run.predict(genotypes=...)`` predicts from
            genotypes alone. See ``slamjax.markers``.
        marker_prior: prior of the marker effects: "ard" (default, for prediction), "horseshoe",
            "lasso", "bayesc" or "bayesr" (spike and slab, for mapping: inclusion probabilities are
            recorded; these turn ``rotate_factors`` off, as a rotation would move effects off the
            spike), or a prior object (``sj.markers.BayesC(a=1, b=99)``).

    ``model.Y_rows``: the positions, in the model's order of individuals (data's order with a
    formula), of Y's rows in the order Y gave them; fitted values (``run.predict("fitted")``) are
    reported in Y's order.

    The model is built inside ``jax.enable_x64(True)`` (float64, restored on return; the
    caller's ``jax_enable_x64`` is left as it was): ``model.data`` holds float64 JAX arrays.
    """

    @float64
    def __init__(
        self,
        Y=None,
        X=None,
        X_F=None,
        Z=None,
        K=None,
        *,
        n_factors: int,
        data: pd.DataFrame | None = None,
        formula: str | None = None,
        relmat: dict | None = None,
        factor_formula: str | None = None,
        h2_divisions: int = 20,
        priors: Priors | None = None,
        scale_Y: bool = True,
        backend: str = "auto",
        missing: str = "auto",
        max_missing_groups: int = 10,
        h2_draw: str = "auto",
        rotate_factors: bool = True,
        shear_factors: bool = True,
        factor_h2_draw: str = "auto",
        exchange_factors: bool | str = False,
        rescale_factors: bool | str = "auto",
        swap_factors: bool | str = "auto",
        observation: ObservationModel | None = None,
        markers=None,
        marker_prior="ard",
    ):
        terms = None
        self._given_Y = Y
        self._arguments = dict(
            X=X, X_F=X_F, Z=Z, K=K, n_factors=n_factors, data=data, formula=formula, relmat=relmat,
            factor_formula=factor_formula, h2_divisions=h2_divisions, priors=priors, scale_Y=scale_Y,
            backend=backend, missing=missing, max_missing_groups=max_missing_groups, h2_draw=h2_draw,
            rotate_factors=rotate_factors, shear_factors=shear_factors, factor_h2_draw=factor_h2_draw,
            exchange_factors=exchange_factors, rescale_factors=rescale_factors, swap_factors=swap_factors,
            observation=observation, markers=markers,
            marker_prior=marker_prior,
        )
        Y, observation = _observation_and_latent(Y, observation, missing, data)
        Y_rows = None
        if formula is not None or data is not None:
            Y, X, X_F, Z, K, terms, Y_rows = _from_formula(Y, X, X_F, Z, K, data, formula, relmat, factor_formula,
                                                           observation is not None)
            self.formula, self.factor_formula = formula, factor_formula
            if observation is not None and observation.individual_names is not None:  # in data's order
                observation = observation.take_individuals(
                    pd.Index(observation.individual_names).get_indexer(data.index))
        elif relmat is not None or factor_formula is not None:
            raise SlamjaxInputError(
                "relmat / factor_formula: only used with a formula; pass data=..., formula='~ 1 + (1|line)'"
            )
        else:
            self.formula = self.factor_formula = None
        self._aligned_Y = Y  # rows in the model's order
        validated = validate_inputs(Y, X, X_F, Z, K, n_factors=n_factors, h2_divisions=h2_divisions)
        n = validated.Y.shape[0]
        self.Y_rows = np.arange(n) if Y_rows is None else Y_rows
        if priors is None:
            priors = Priors()
        if not isinstance(priors, Priors):
            raise SlamjaxInputError(f"priors: must be sj.Priors(...), got {type(priors).__name__}")
        self.inputs: ValidatedData = validated
        self.priors = priors
        self.n_factors = int(n_factors)
        self.h2_divisions = int(h2_divisions)
        self.scale_Y = bool(scale_Y)
        if terms is None:  # matrices: one random effect
            self.effect_names = ["random"]
            self.effect_levels = {"random": validated.level_names}
            Zs, Ks = [validated.Z], [validated.K]
        else:
            self.effect_names = [t.group for t in terms]
            self.effect_levels = {t.group: list(t.levels) for t in terms}
            Zs, Ks = [t.Z for t in terms], [t.K for t in terms]
        self.Zs, self.Ks = Zs, Ks
        if h2_draw not in ("auto", "collapsed", "conditional"):
            raise SlamjaxInputError(f"h2_draw: must be 'auto', 'collapsed' or 'conditional', got {h2_draw!r}")
        if factor_h2_draw not in ("auto", "marginal", "given_F"):
            raise SlamjaxInputError(
                f"factor_h2_draw: must be 'auto', 'marginal' or 'given_F', got {factor_h2_draw!r}")
        for name, value in (("exchange_factors", exchange_factors), ("rescale_factors", rescale_factors),
                            ("swap_factors", swap_factors)):
            if not (isinstance(value, str) and value == "auto" or isinstance(value, (bool, np.bool_))):
                raise SlamjaxInputError(f"{name}: must be 'auto', True or False, got {value!r}")
        for name, flag in (("rotate_factors", rotate_factors), ("shear_factors", shear_factors)):
            if not isinstance(flag, (bool, np.bool_)):
                raise SlamjaxInputError(f"{name}: must be True or False, got {flag!r}")
        self.grid = h2_grid(len(Zs), self.h2_divisions)
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
        self.observed_fraction = float(observed.mean())
        if observation is None:
            observation = Gaussian(Y, individual_names=validated.individual_names, latent_names=validated.trait_names)
        else:  # the link draws every latent cell: no missing-data groups
            observed = np.ones_like(observed)
            missing = "impute"
        self.observation = observation

        plan = plan_random_effects(
            Zs, Ks, self.grid, effect_names=self.effect_names, backend=backend, missing=missing,
            max_missing_groups=max_missing_groups, X=validated.X, Y_filled=Y_filled, observed=observed,
            n_factors=self.n_factors,
        )
        self.backend = plan.backend
        self.random_effect = plan.random_effect
        self.missing_groups = plan.missing_groups
        if h2_draw == "auto":
            n, q = Y.shape[0], validated.X.shape[1] + n_factors
            cheap = self.grid.shape[0] * q**2 <= 3 * n
            h2_draw = "collapsed" if self.backend != "eigen" or cheap else "conditional"
        self.h2_draw = h2_draw
        marginal_possible = self.backend == "eigen" and plan.groups is None
        if factor_h2_draw == "marginal" and not marginal_possible:
            raise SlamjaxInputError(
                "factor_h2_draw='marginal' needs one random effect (the eigen backend) and no missing-data "
                "groups; pass missing='impute', or factor_h2_draw='auto'")
        if factor_h2_draw == "auto":
            factor_h2_draw = "marginal" if marginal_possible else "given_F"
        self.factor_h2_draw = factor_h2_draw
        if not isinstance(exchange_factors, str) and exchange_factors and not marginal_possible:
            raise SlamjaxInputError(
                "exchange_factors=True needs one random effect (the eigen backend) and no missing-data "
                "groups; pass missing='impute', or exchange_factors='auto'")
        if isinstance(exchange_factors, str):  # "auto"
            exchange_factors = marginal_possible and Y.shape[0] * Y.shape[1] <= EXCHANGE_AUTO_MAX_CELLS
        self.exchange_factors = bool(exchange_factors)
        ordered = isinstance(self.priors.Lambda, _OrderedShrinkage)
        if not isinstance(rescale_factors, str) and rescale_factors and not (marginal_possible and ordered):
            raise SlamjaxInputError(
                "rescale_factors=True needs one random effect (the eigen backend), no missing-data groups and "
                "an ordered loadings prior (MGPS, Horseshoe or TPB); pass missing='impute', or "
                "rescale_factors='auto'")
        self.markers, marker_sweep_data = None, None
        if markers is not None:
            from .markers._data import Markers, marker_data, prepare_markers

            spec = markers if isinstance(markers, Markers) else Markers(markers)
            prepared = prepare_markers(spec, self.individual_names)
            marker_sweep_data, costs = marker_data(prepared, plan.rotation, marker_prior, self.n_factors,
                                                   spec.sampler, spec.block_size)
            self.markers = _MarkerSummary(prepared, marker_sweep_data, costs, spec.map)
            if marker_sweep_data.prior.spike:
                rotate_factors = False
        if isinstance(rescale_factors, str):  # "auto"; not with a spike-and-slab marker prior (docstring)
            rescale_factors = (marginal_possible and ordered and Y.shape[0] * Y.shape[1] <= EXCHANGE_AUTO_MAX_CELLS
                               and not (marker_sweep_data is not None and marker_sweep_data.prior.spike))
        self.rescale_factors = bool(rescale_factors)
        if not isinstance(swap_factors, str) and swap_factors and not (ordered and markers is None):
            raise SlamjaxInputError(
                "swap_factors=True needs an ordered loadings prior (MGPS, Horseshoe or TPB) and no markers; "
                "pass swap_factors='auto' (or False)")
        if isinstance(swap_factors, str):  # "auto"
            swap_factors = ordered and markers is None
        self.swap_factors = bool(swap_factors)
        self.data = SamplerData(
            re=self.random_effect,
            X=jnp.asarray(plan.rotation @ validated.X),
            X_F=jnp.asarray(plan.rotation @ validated.X_F),
            Y_start=jnp.asarray(Y_filled),
            observation=jax.tree.map(jnp.asarray, observation),
            Y_mean=jnp.asarray(self.Y_mean),
            Y_scale=jnp.asarray(self.Y_scale),
            h2_grid=jnp.asarray(self.grid),
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
            groups=plan.groups,
            collapsed_h2=h2_draw == "collapsed",
            rotate_factors=bool(rotate_factors),
            shear_factors=bool(rotate_factors) and bool(shear_factors),
            marginal_factor_h2=factor_h2_draw == "marginal",
            exchange_factors=self.exchange_factors,
            rescale_factors=self.rescale_factors,
            swap_factors=self.swap_factors,
            markers=marker_sweep_data,
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

    def constructor_arguments(self) -> dict:
        """The arguments that rebuild this model: ``Model(**model.constructor_arguments())`` (Y as
        given, so that the rebuilt model keeps Y's order of rows, ``Y_rows``)."""
        return dict(Y=self._given_Y, **self._arguments)

    def masked(self, mask, **changes) -> Model:
        """The same model with the cells where ``mask`` is True set missing (for cross-validation).

        ``mask``: (n, p) booleans in the model's order of individuals and traits, or a DataFrame
        with individual and trait names (absent cells are kept). ``changes`` override constructor
        arguments (e.g. ``missing="impute"``).
        """
        if isinstance(mask, pd.DataFrame):
            mask = mask.reindex(index=self.individual_names, columns=self.trait_names).fillna(False)
        if not isinstance(self.observation, Gaussian):
            raise SlamjaxInputError(
                f"mask: cells can be masked in Gaussian data only; this model observes its traits through "
                f"{type(self.observation).__name__} (mask the data given to it instead)"
            )
        mask = np.asarray(mask, dtype=bool)
        if mask.shape != self.inputs.Y.shape:
            raise SlamjaxInputError(
                f"mask: must have shape {self.inputs.Y.shape} (individuals x traits), got {mask.shape}"
            )
        Y = self._aligned_Y
        if isinstance(Y, pd.DataFrame):
            Y = Y.astype(float).mask(mask)
        else:
            Y = np.where(mask, np.nan, np.asarray(Y, dtype=float))
        return Model(Y, **{**self._arguments, **changes})

    @property
    def missing_description(self) -> str:
        """How missing cells are handled: "imputed", or the groups and the cells they impute."""
        if not isinstance(self.observation, Gaussian):
            return f"drawn by {type(self.observation).__name__}"
        if self.missing_groups is None:
            return "imputed"
        imputed = sum(g.imputed_cells for g in self.missing_groups)
        return f"{len(self.missing_groups)} missing-data groups, {imputed} cells imputed"

    def _repr_html_(self) -> str:
        """Jupyter's display: sizes, random effects, backend and missing data (``_display``)."""
        from ._display import model_html

        return model_html(self)

    def __repr__(self) -> str:
        s = self.shapes
        missing = 1.0 - self.observed_fraction
        return (
            f"Model(n={s['n']} individuals, p={s['p']} traits, k={s['k']} factors, b={s['b']} fixed, "
            f"b_F={s['b_F']} factor fixed, r={s['r']} levels, h2_divisions={self.h2_divisions}, "
            f"missing={missing:.1%} ({self.missing_description}), random effects={', '.join(self.effect_names)}, "
            f"grid={self.grid.shape[0]} points, backend={self.backend}, h2_draw={self.h2_draw}"
            + ("" if self.markers is None else f", {self.markers}") + ")"
        )

    @property
    def marker_names(self) -> list[str]:
        return [] if self.markers is None else self.markers.names


class _MarkerSummary:
    """What the model keeps of its markers on the host: names, centring, windows and the sampler."""

    def __init__(self, prepared, sweep_data, costs, marker_map=None):
        self.names = prepared.names
        # chromosome and position of each kept marker (None without a map), for plots
        self.positions = None if marker_map is None else marker_map.set_axis(
            marker_map.index.astype(str), axis=0).loc[prepared.names, ["chromosome", "position"]]
        self.means = prepared.means
        self.dropped = prepared.dropped
        self.window_names = prepared.window_names
        self.window_index = prepared.window_index
        self.prior = sweep_data.prior
        self.sampler = sweep_data.sampler
        self.costs = costs

    def __repr__(self) -> str:
        estimate = ", ".join(f"{name} {seconds * 1e3:.2g} ms" for name, seconds in self.costs.items())
        return (f"markers={len(self.names)} ({type(self.prior).__name__} prior, {self.sampler} sampler; "
                f"estimated per sweep: {estimate})")


def _observation_and_latent(Y, observation, missing, data):
    """(Y, observation): with an observation model, Y is its starting latent traits (a DataFrame
    individuals x latent traits) and the model keeps it; a Gaussian one is the same as giving Y."""
    if observation is None:
        if Y is None:
            raise SlamjaxInputError("Y: give the data Y (individuals x traits), or observation=sj.obs....")
        return Y, None
    if Y is not None:
        raise SlamjaxInputError("Y and observation: give one; an observation model holds its own data")
    if not isinstance(observation, ObservationModel):
        raise SlamjaxInputError(
            f"observation: must be an observation model (sj.obs.Gaussian, Probes, Voom, BSplineRegression, "
            f"Combined or a subclass of sj.obs.ObservationModel), got {type(observation).__name__}"
        )
    if type(observation) is Gaussian:
        return observation.constructor_arguments()["Y"], None
    if missing == "groups":
        raise SlamjaxInputError(
            f"missing: 'groups' needs Gaussian data; {type(observation).__name__} draws every latent cell "
            "(use missing='auto')"
        )
    start = np.asarray(observation.latent_start(), dtype=float)
    if observation.individual_names is not None:
        index = pd.Index(observation.individual_names)
    elif data is not None and len(data.index) == len(start):  # unlabelled: rows in data's order
        index = data.index
    else:
        index = pd.RangeIndex(len(start))
    return pd.DataFrame(start, index=index, columns=list(observation.latent_names)), observation


def _from_formula(Y, X, X_F, Z, K, data, formula, relmat, factor_formula, observation=False):
    """Design matrices from an lme4-style formula, as DataFrames aligned to ``data``'s index, and
    the positions (in data's order) of Y's rows in the order Y gives them (None: the same order)."""
    from .formula import build_design

    given = [name for name, value in (("X", X), ("X_F", X_F), ("Z", Z), ("K", K)) if value is not None]
    if given:
        raise SlamjaxInputError(
            f"{', '.join(given)}: give the design either as a formula (with data) or as matrices, not both"
        )
    if data is None or formula is None:
        raise SlamjaxInputError("formula and data: a formula needs data (one row per individual) and vice versa")
    design = build_design(data, formula, relmat, factor_formula)
    if design.X.shape[1] == 0 or "(Intercept)" not in design.X.columns:
        raise SlamjaxInputError(
            f"formula: {formula!r} has no intercept; slamjax always fits a trait intercept, remove '0 +' or '- 1'"
        )
    if not design.random:
        raise SlamjaxInputError(
            f"formula: {formula!r} has no random effect; add one random intercept such as (1|line)"
        )
    groups = [t.group for t in design.random]
    if [t.group for t in design.factor_random] != groups:
        raise SlamjaxInputError(
            f"factor_formula: the factors must have the traits' random effects "
            f"({' + '.join(f'(1|{g})' for g in groups)}) in this release"
        )
    index = data.index
    Y_rows = None
    if isinstance(Y, pd.DataFrame):
        _check_same_individuals(Y.index, index, "observation" if observation else "Y")
        if not Y.index.equals(index):
            Y_rows = index.get_indexer(Y.index)
        Y = Y.loc[index]
    elif np.ndim(Y) == 2 and np.shape(Y)[0] != len(index):
        raise SlamjaxInputError(f"Y: has {np.shape(Y)[0]} rows but data has {len(index)}; they must match")
    term = design.random[0]  # validated with Y and X; further terms were checked by build_design
    levels = term.levels
    Z = pd.DataFrame(term.Z, index=index, columns=levels)
    K = pd.DataFrame(term.K, index=levels, columns=levels)
    return Y, design.X, design.X_F, Z, K, design.random, Y_rows


def _check_same_individuals(Y_index: pd.Index, index: pd.Index, name: str = "Y") -> None:
    """Refuses a Y whose index is not data's index in some order: repeated labels first (they
    explain most mismatches), then the labels in one index only."""
    duplicated = list(dict.fromkeys(Y_index[Y_index.duplicated()]))
    missing = index.difference(Y_index)
    extra = Y_index.difference(index)
    problems = []
    if duplicated:
        problems.append(
            f"its index repeats {len(duplicated)} label(s) {duplicated[:5]}; give each individual one row "
            "(average or rename the repeated ones)"
        )
    if len(missing) or len(extra):
        problems.append(
            f"{len(missing)} individual(s) in data but not in {name} (e.g. {list(missing[:5])}), {len(extra)} in "
            f"{name} but not in data (e.g. {list(extra[:5])})"
        )
    if problems:
        fix = "e.g. Y = Y.loc[data.index]" if name == "Y" else "label the observation model's individuals as data's index"
        raise SlamjaxInputError(
            f"{name}: its individuals must be data's individuals, each once; " + "; besides, ".join(problems)
            + f"; then align them, {fix}"
        )

