"""Geweke's (2004) joint-distribution test on a tiny model.

The marginal-conditional simulator draws (theta, Eta) from the prior and the likelihood; the
successive-conditional simulator alternates one Gibbs sweep theta ~ p(theta | Eta) with a fresh
Eta ~ p(Eta | theta). Both target the same joint distribution, so the means of test functions
must agree within Monte Carlo error (batch means for the chain). Any wrong conditional in the
sweep shifts some of them. The variant with missing cells also checks the imputation step.
"""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from slamjax.sampler import sweep
from slamjax.state import sample_latent_traits, sample_prior_state

from _models import three_effect_model, tiny_model
from _stats import Z_BOUND, batch_means_se

N_PRIOR = 40_000
N_CHAIN = 60_000
THIN = 2


def _bounded(x):
    return x / (1.0 + jnp.abs(x))


def geweke_functions(state, data):
    h2 = data.h2_grid[state.resid_h2_index].ravel()
    F_h2 = data.h2_grid[state.F_h2_index].ravel()
    n = state.Eta.shape[0]
    return {
        "log tau": jnp.log(state.tot_Eta_prec),
        "log tau_F": jnp.log(state.tot_F_prec),
        "h2": h2,
        "F_h2": F_h2,
        "B": _bounded(state.B).ravel(),
        "|B|": jnp.abs(_bounded(state.B)).ravel(),
        "B_F": _bounded(state.B_F).ravel(),
        "|Lambda|": jnp.abs(_bounded(state.Lambda)).ravel(),
        "Lambda_1 Lambda_2": _bounded(state.Lambda[0] * state.Lambda[1]),
        "log delta": jnp.log(state.Lambda_prior.delta),
        "log phi": jnp.mean(jnp.log(state.Lambda_prior.phi), axis=1),
        "log psi": jnp.log(state.B_prior.psi).ravel(),
        "log row_prec": jnp.log(state.B_prior.row_prec),
        "F^2": jnp.mean(_bounded(state.F**2), axis=0),
        "U_R^2": jnp.mean(_bounded(state.U_R**2 * state.tot_Eta_prec), axis=0),
        "U_F^2": jnp.mean(_bounded(state.U_F**2 * state.tot_F_prec), axis=0),
        "Eta^2": jnp.mean(_bounded(state.Eta**2), axis=0),
        "Eta mean": _bounded(jnp.mean(state.Eta, axis=0) * jnp.sqrt(n)),
    }


def _flatten(values: dict) -> tuple[jnp.ndarray, list[str]]:
    names = [f"{name}[{i}]" for name, v in values.items() for i in range(jnp.size(v))]
    return jnp.concatenate([jnp.ravel(v) for v in values.values()]), names


def _with_data(data, state):
    """Data consistent with the latent traits of ``state`` (observed cells of Q Eta)."""
    if data.groups is not None:  # Eta is unrotated; each group's data is Q_m' Eta[O_m, T_m]
        groups = data.groups
        Eta = jnp.pad(state.Eta, ((0, 1), (0, 1)))
        Y = jax.vmap(lambda re, rows, traits: re.rotate(Eta[rows][:, traits]))(groups.re, groups.rows, groups.traits)
        return eqx.tree_at(lambda d: d.groups.Y_group, data, Y)
    if not data.has_missing:
        return data
    Y = data.re.unrotate(state.Eta)
    return eqx.tree_at(lambda d: d.Y_filled, data, jnp.where(data.observed, Y, 0.0))


@pytest.mark.slow
@pytest.mark.parametrize(
    "fraction_missing, missing, megalmm_sweep, backend",
    [(0.0, "impute", False, "eigen"), (0.0, "impute", True, "eigen"), (0.2, "impute", False, "eigen"),
     (0.3, "groups", False, "eigen"), (0.2, "impute", False, "woodbury")],
    ids=["complete", "megalmm-sweep", "imputed", "groups", "woodbury"],
)
def test_geweke(fraction_missing, missing, megalmm_sweep, backend):
    """The "groups" variant has 3 missing-data groups for 4 traits, so one merged group also imputes.
    The "megalmm-sweep" variant draws h2 given beta and tau and does not rotate the factors. The
    "woodbury" variant has three random effects (animal with K, cage, litter) and missing cells."""
    if backend == "woodbury":
        model = three_effect_model(n=30, p=4, k=2, h2_divisions=4, fraction_missing=fraction_missing)
    else:
        model = tiny_model(
            n=30, p=4, k=2, intercept_precision=0.5, fraction_missing=fraction_missing, missing=missing,
            max_missing_groups=3, h2_draw="conditional" if megalmm_sweep else "collapsed",
            rotate_factors=not megalmm_sweep,
        )
    data = model.data
    assert data.has_missing == (fraction_missing > 0)
    if missing == "groups":
        assert len(model.missing_groups) == 3 and data.groups.has_imputed

    def prior_functions(key):
        return _flatten(geweke_functions(sample_prior_state(key, data), data))[0]

    prior = np.asarray(jax.jit(jax.vmap(prior_functions))(jax.random.split(jax.random.key(11), N_PRIOR)))

    @jax.jit
    def chain(key):
        start = sample_prior_state(jax.random.fold_in(key, -1 & 0x7FFFFFFF), data)

        def one_step(state, t):
            for i in range(THIN):
                step_key = jax.random.fold_in(key, THIN * t + i)
                state, _ = sweep(jax.random.fold_in(step_key, 0), state, _with_data(data, state))
                state = eqx.tree_at(lambda s: s.Eta, state, sample_latent_traits(jax.random.fold_in(step_key, 1), state, data))
            return state, _flatten(geweke_functions(state, data))[0]

        return lax.scan(one_step, start, jnp.arange(N_CHAIN // THIN))[1]

    successive = np.asarray(chain(jax.random.key(12)))
    names = _flatten(geweke_functions(sample_prior_state(jax.random.key(0), data), data))[1]
    se = np.sqrt(prior.std(axis=0) ** 2 / N_PRIOR + batch_means_se(successive) ** 2)
    z = (successive.mean(axis=0) - prior.mean(axis=0)) / se
    worst = np.argsort(-np.abs(z))[:5]
    report = ", ".join(f"{names[i]}: z={z[i]:.2f}" for i in worst)
    assert np.all(np.abs(z) < Z_BOUND), report
