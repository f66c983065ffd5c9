"""Geweke's (2004) joint-distribution test of the whole sweep on tiny models (``tests/_geweke.py``).

Eight variants: the default sweep (exchange and rotation steps, collapsed h2) with a proper
intercept prior, with the default flat intercept, with imputed cells, with missing-data groups,
with the cholesky backend, with three random effects (woodbury backend, missing cells), MegaLMM's
sweep, and MegaLMM's sweep with step 0e's two moves (h2 and h2_F then drawn given U_R and U_F, which
step 0e integrates out: steps 3 and 6 must redraw them first).
Every model has three factors, so the rotation step runs several rounds of pairs. Each test
function's z-score is compared with ``Z_BOUND``; ``tests/test_power.py`` shows that planted bugs
fail these tests.
"""

from __future__ import annotations

import numpy as np
import pytest

from _geweke import run_geweke, worst
from _models import three_effect_model, tiny_model
from _stats import Z_BOUND

N_PRIOR = 100_000
N_CHAINS = 64
N_STEPS = 2000
# the default sweep keeps N_STEPS (tests/test_power.py's subtlest planted bugs run against it); the
# other variants guard their own paths (imputation, groups, backends, MegaLMM's sweep) with half as
# many steps (woodbury's planted bug: infinite z, its chains diverge, at 1000 steps)
STEPS = {"complete": N_STEPS}

VARIANTS = {
    "complete": dict(),
    "flat-intercept": dict(intercept_precision=0.0),
    "megalmm-sweep": dict(h2_draw="conditional", rotate_factors=False, factor_h2_draw="given_F",
                          exchange_factors=False, rescale_factors=False, swap_factors=False),
    "megalmm-exchange": dict(h2_draw="conditional", rotate_factors=False, factor_h2_draw="given_F",
                             exchange_factors=True, rescale_factors=True),
    "imputed": dict(fraction_missing=0.2),
    "groups": dict(fraction_missing=0.3, missing="groups", max_missing_groups=3),
    "cholesky": dict(backend="cholesky"),
    "woodbury": dict(),
}


def geweke_model(variant: str, **changes):
    """The tiny model of a variant (n = 30, p = 4, k = 3) and the model whose prior draws start it
    (the same with a proper intercept prior, which a flat-intercept model cannot draw)."""
    if variant == "woodbury":
        settings = dict(n=30, p=4, k=3, h2_divisions=4, fraction_missing=0.2, **changes)
        return three_effect_model(**settings), None
    settings = {**dict(n=30, p=4, k=3, intercept_precision=0.5), **VARIANTS[variant], **changes}
    model = tiny_model(**settings)
    prior_model = tiny_model(**{**settings, "intercept_precision": 0.5}) if settings["intercept_precision"] == 0 else None
    return model, prior_model


def geweke_variant_z(variant: str, n_steps: int | None = None, seed: int = 0):
    """(z, names) of one variant's Geweke test (``STEPS`` steps by default)."""
    n_steps = STEPS.get(variant, N_STEPS // 2) if n_steps is None else n_steps
    model, prior_model = geweke_model(variant)
    return run_geweke(model, n_prior=N_PRIOR, n_chains=N_CHAINS, n_steps=n_steps, seed=seed,
                      prior_model=prior_model, flat_intercept=prior_model is not None)


def test_variants_are_what_they_say():
    model, prior_model = geweke_model("flat-intercept")
    assert model.data.n_flat == 1 and prior_model.data.n_flat == 0
    assert np.array_equal(np.asarray(model.data.Y_start), np.asarray(prior_model.data.Y_start))
    model, _ = geweke_model("groups")
    assert len(model.missing_groups) == 3 and model.data.groups.has_imputed
    model, _ = geweke_model("woodbury")
    assert model.backend == "woodbury" and not model.data.latent_is_data
    model, _ = geweke_model("megalmm-sweep")
    assert not model.data.collapsed_h2 and not model.data.rotate_factors and not model.data.marginal_factor_h2
    assert not model.data.shear_factors and not model.data.exchange_factors and not model.data.rescale_factors
    assert not model.data.swap_factors
    for variant in set(VARIANTS) - {"megalmm-sweep"}:  # step 0o: factors swap places
        assert geweke_model(variant)[0].data.swap_factors
    for variant in ("complete", "flat-intercept", "imputed", "megalmm-exchange"):  # step 0e, both moves
        assert geweke_model(variant)[0].data.exchange_factors and geweke_model(variant)[0].data.rescale_factors
    for variant in ("groups", "cholesky", "woodbury"):  # step 0e needs the eigen backend without groups
        assert not geweke_model(variant)[0].data.exchange_factors and not geweke_model(variant)[0].data.rescale_factors
    for variant in set(VARIANTS) - {"megalmm-sweep", "megalmm-exchange"}:  # step 0 rotates and shears
        assert geweke_model(variant)[0].data.rotate_factors and geweke_model(variant)[0].data.shear_factors
    for variant in ("complete", "flat-intercept", "imputed"):  # h2_F marginal over F: steps 5l and 5m
        assert geweke_model(variant)[0].data.marginal_factor_h2
    for variant in ("groups", "cholesky", "woodbury", "megalmm-exchange"):  # h2_F given F
        assert not geweke_model(variant)[0].data.marginal_factor_h2
    for variant in VARIANTS:
        assert geweke_model(variant)[0].n_factors == 3


@pytest.mark.slow
@pytest.mark.parametrize("variant", list(VARIANTS))
def test_geweke(variant):
    z, names = geweke_variant_z(variant)
    assert np.all(np.abs(z) < Z_BOUND), worst(z, names)
