"""``markers/priors.py``: the priors on the marker effects B_M, on their own (no model around them).

Geweke's (2004) test of each prior's ``sample`` (its parameters from their full conditional given
the effects): many independent vmapped chains alternate the parameters ~ ``sample`` given
(effects, classes) and (effects, classes) ~ ``sample_effects`` given the parameters, each started
at its own draw from the joint prior, so every state after a parameter draw is a draw from the
joint under a correct ``sample``. The means of test functions of (new parameters, effects,
classes) over each chain are compared with the same functions of independent joint draws
(``sample_prior`` then ``sample_effects``) by Welch's z (``_geweke.geweke_z``). The functions
include cross moments of parameters and effects (b^2 tau d, the log probability of each effect's
class), which is what catches a conditional that ignores the effects (a planted bug that keeps the
parameters' marginal right, such as a Dirichlet draw without the class counts, shows only there).

Then closed forms of ``site_table`` / ``tau_terms`` on hand-made states, the spike of
``sample_effects``, and the names and input checks.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax import lax

from slamjax._errors import SlamjaxInputError
from slamjax.markers.priors import (
    ARD,
    BayesC,
    BayesianLasso,
    BayesR,
    Horseshoe,
    MixtureState,
    _dirichlet,
    marker_prior,
)
from slamjax.priors._base import gamma_draw

from _geweke import _bounded, _compiled, geweke_z
from _stats import Z_BOUND, z_mean, z_variance_normal

M, K = 6, 2
TAU = jnp.array([0.7, 1.5])
MARKER_VARIANCE = 0.5  # default scales: ARD 1, BayesC 2, BayesR 1, lasso rate 0.5, horseshoe 0.01
N_CHAINS, N_STEPS = 1000, 100
N_PRIOR = 50_000

PRIORS = {
    "ard": ARD(),
    "horseshoe": Horseshoe(),
    "lasso": BayesianLasso(),
    "bayesc": BayesC(a=1.0, b=2.0),
    "bayesr": BayesR(gammas=(0.0, 0.1, 1.0, 10.0)),
}


# planted bugs: each keeps the interface and breaks one conditional of ``sample``
class _BayesCNoCounts(BayesC):
    """BayesC whose inclusion probabilities ignore the class counts (pi ~ its prior): the marginal of
    pi and of the classes stays right, only their dependence is lost."""

    def sample(self, key, state, effects, classes, tau):
        k1, k2 = jax.random.split(key)
        right = super().sample(k2, state, effects, classes, tau)
        pi = _dirichlet(k1, jnp.broadcast_to(jnp.asarray(self._alpha), right.pi.shape))
        return MixtureState(pi=pi, variance=right.variance)


class _ARDNoEffectTerm(ARD):
    """ARD whose psi rate forgets the effect term: psi ~ Gamma((nu + 1) / 2, nu / 2)."""

    def sample(self, key, state, effects, classes, tau):
        k_psi, k_phi = jax.random.split(key)
        scaled_sq = effects**2 * tau[None, :]
        psi = gamma_draw(k_psi, jnp.full(effects.shape, (self.nu + 1) / 2), self.nu / 2)
        phi = gamma_draw(k_phi, self.shape + effects.shape[0] / 2,
                         self.shape * self.scale + 0.5 * jnp.sum(psi * scaled_sq, axis=0))
        return type(state)(psi=psi, global_precision=phi)


PLANTED = {
    "bayesc: Dirichlet without the class counts": _BayesCNoCounts(a=1.0, b=2.0),
    "ard: psi rate without the effect term": _ARDNoEffectTerm(),
}


def _functions(prior, state, effects, classes) -> dict:
    """Test functions of one (parameters, effects, classes)."""
    out = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(state)[0]:
        name = jax.tree_util.keystr(path)
        log = jnp.log(leaf).ravel()
        out[f"log {name}"] = log
        out[f"(log {name})^2"] = log**2
    precision, log_pi = prior.site_table(state)
    shape = (*effects.shape, prior.n_classes)
    d = jnp.take_along_axis(jnp.broadcast_to(precision, shape), classes[..., None], axis=-1)[..., 0]
    log_pi_class = jnp.take_along_axis(jnp.broadcast_to(log_pi, shape), classes[..., None], axis=-1)[..., 0]
    scaled_sq = effects**2 * TAU[None, :]
    out["b^2 tau"] = _bounded(scaled_sq).ravel()
    out["b^2 tau d"] = _bounded(jnp.where(jnp.isinf(d), 0.0, d * scaled_sq)).ravel()
    out["included"] = (classes > 0).astype(jnp.float64).ravel()
    out["class"] = classes.astype(jnp.float64).ravel()
    out["log pi[class]"] = log_pi_class.ravel()
    return out


def _flat(values: dict):
    return jnp.concatenate([jnp.ravel(v) for v in values.values()])


def _names(prior) -> list[str]:
    """The names of ``_flat``'s entries, in its (insertion) order: a dict that comes back from a JAX
    transformation has its keys sorted, so they are read inside the trace."""
    names = []

    def trace(key):
        values = _functions(prior, *_joint(prior, key))
        names.extend(f"{name}[{i}]" for name, v in values.items() for i in range(math.prod(v.shape)))
        return _flat(values)

    jax.eval_shape(trace, jax.random.key(0))
    return names


def _joint(prior, key):
    k1, k2 = jax.random.split(key)
    state = prior.sample_prior(k1, M, K)
    effects, classes = prior.sample_effects(k2, state, M, K, TAU)
    return state, effects, classes


def prior_geweke_z(prior, seed: int = 0, n_chains: int = N_CHAINS, n_steps: int = N_STEPS,
                   n_prior: int = N_PRIOR) -> tuple[np.ndarray, list[str]]:
    """(z, names) of the prior-only Geweke test of ``prior`` (scales set by ``with_markers``)."""
    prior = prior.with_markers(M, MARKER_VARIANCE)

    def marginal(keys):
        return jax.vmap(lambda key: _flat(_functions(prior, *_joint(prior, key))))(keys)

    def chain(key):
        start = _joint(prior, jax.random.fold_in(key, -1 & 0x7FFFFFFF))

        def step(carry, t):
            (state, effects, classes), total = carry
            k_hyper, k_effects = jax.random.split(jax.random.fold_in(key, t))
            state = prior.sample(k_hyper, state, effects, classes, TAU)
            total = total + _flat(_functions(prior, state, effects, classes))
            effects, classes = prior.sample_effects(k_effects, state, M, K, TAU)
            return ((state, effects, classes), total), None

        size = _flat(_functions(prior, *start)).shape[0]
        (_, total), _ = lax.scan(step, (start, jnp.zeros(size)), jnp.arange(n_steps))
        return total / n_steps

    prior_keys = jax.random.split(jax.random.key(2 * seed + 1), n_prior)
    chain_keys = jax.random.split(jax.random.key(2 * seed + 2), n_chains)
    draws = np.asarray(_compiled(marginal, prior_keys)(prior_keys))
    means = np.asarray(_compiled(jax.vmap(chain), chain_keys)(chain_keys))
    return geweke_z(draws, means), _names(prior)


def _worst(z, names, count: int = 5) -> str:
    order = np.argsort(-np.abs(z))[:count]
    return ", ".join(f"{names[i]}: z={z[i]:.2f}" for i in order)


@pytest.mark.parametrize("name", list(PRIORS))
def test_prior_geweke(name):
    z, names = prior_geweke_z(PRIORS[name])
    assert np.all(np.isfinite(z)), _worst(z, names)
    assert np.max(np.abs(z)) < Z_BOUND, f"{name}: {_worst(z, names)}"


@pytest.mark.parametrize("name", list(PLANTED))
def test_prior_geweke_catches_planted_bug(name):
    z, names = prior_geweke_z(PLANTED[name], n_chains=200, n_steps=50, n_prior=10_000)  # a fifth of the size
    assert np.max(np.abs(z)) > Z_BOUND, f"planted bug not caught ({name}): {_worst(z, names)}"


# closed forms on hand-made states

EFFECTS = jnp.array([[0.5, -1.0], [2.0, 0.0], [-0.25, 3.0]])


def _tau_terms(prior, state, classes):
    shape, rate = prior.tau_terms(state, EFFECTS, jnp.asarray(classes))
    return np.asarray(shape), np.asarray(rate)


def test_scale_mixture_tables_and_tau_terms():
    classes = np.zeros((3, 2), int)
    psi = jnp.array([[1.0, 2.0], [4.0, 0.5], [0.25, 1.0]])
    ard = ARD(scale=1.0)
    state = ard.init(3, 2)
    state = type(state)(psi=psi, global_precision=jnp.array([2.0, 3.0]))
    d, log_pi = ard.site_table(state)
    expected_d = np.array([[2.0, 6.0], [8.0, 1.5], [0.5, 3.0]])
    np.testing.assert_allclose(np.asarray(d)[..., 0], expected_d, rtol=0, atol=1e-15)
    np.testing.assert_array_equal(np.asarray(log_pi), np.zeros((1, 1, 1)))
    np.testing.assert_allclose(np.asarray(ard.precision(state)), expected_d, rtol=1e-15)
    shape, rate = _tau_terms(ard, state, classes)
    # rate_l = sum_j d_jl b_jl^2 / 2: (2 * 0.25 + 8 * 4 + 0.5 * 0.0625) / 2, (6 * 1 + 0 + 3 * 9) / 2
    np.testing.assert_allclose(shape, [1.5, 1.5], rtol=1e-15)
    np.testing.assert_allclose(rate, [(0.5 + 32.0 + 0.03125) / 2, (6.0 + 27.0) / 2], rtol=1e-15)

    horseshoe = Horseshoe(scale=1.0)
    hs = horseshoe.init(3, 2)
    hs = type(hs)(lambda2=psi, nu=hs.nu, tau2=jnp.array([0.5, 2.0]), xi=hs.xi)
    d, _ = horseshoe.site_table(hs)
    np.testing.assert_allclose(np.asarray(d)[..., 0], [[2.0, 0.25], [0.5, 1.0], [8.0, 0.5]], rtol=1e-15)
    shape, rate = _tau_terms(horseshoe, hs, classes)
    np.testing.assert_allclose(shape, [1.5, 1.5], rtol=1e-15)
    np.testing.assert_allclose(rate, [(2 * 0.25 + 0.5 * 4 + 8 * 0.0625) / 2, (0.25 * 1 + 0.5 * 9) / 2], rtol=1e-15)

    lasso = BayesianLasso(rate=1.0)
    ls = type(lasso.init(3, 2))(psi=psi, lambda2=jnp.array([1.0, 1.0]))
    d, _ = lasso.site_table(ls)
    np.testing.assert_allclose(np.asarray(d)[..., 0], 1.0 / np.asarray(psi), rtol=1e-15)
    shape, rate = _tau_terms(lasso, ls, classes)
    np.testing.assert_allclose(rate, [(0.25 + 1.0 + 0.25) / 2, (0.5 + 9.0) / 2], rtol=1e-15)


def test_spike_mixture_tables_and_tau_terms():
    bayesc = BayesC(scale=1.0)
    state = MixtureState(pi=jnp.array([[0.75, 0.25], [0.5, 0.5]]), variance=jnp.array([2.0, 0.5]))
    d, log_pi = bayesc.site_table(state)
    assert d.shape == log_pi.shape == (1, 2, 2)
    np.testing.assert_array_equal(np.asarray(d)[0], [[np.inf, 0.5], [np.inf, 2.0]])
    np.testing.assert_allclose(np.asarray(log_pi)[0], np.log([[0.75, 0.25], [0.5, 0.5]]), rtol=1e-15)
    classes = np.array([[1, 0], [1, 0], [0, 1]])
    shape, rate = _tau_terms(bayesc, state, classes)
    # slab effects: column 0 rows 0, 1 (d = 0.5), column 1 row 2 (d = 2)
    np.testing.assert_array_equal(shape, [1.0, 0.5])
    np.testing.assert_allclose(rate, [0.5 * (0.25 + 4.0) / 2, 2.0 * 9.0 / 2], rtol=1e-15)

    bayesr = BayesR(gammas=(0.0, 0.5, 2.0), scale=1.0)
    state = MixtureState(pi=jnp.array([[0.5, 0.25, 0.25], [0.2, 0.3, 0.5]]), variance=jnp.array([2.0, 0.25]))
    d, log_pi = bayesr.site_table(state)
    assert d.shape == log_pi.shape == (1, 2, 3)
    np.testing.assert_allclose(np.asarray(d)[0], [[np.inf, 1.0, 0.25], [np.inf, 8.0, 2.0]], rtol=1e-15)
    classes = np.array([[2, 0], [1, 2], [0, 1]])
    shape, rate = _tau_terms(bayesr, state, classes)
    np.testing.assert_array_equal(shape, [1.0, 1.0])
    np.testing.assert_allclose(rate, [(0.25 * 0.25 + 1.0 * 4.0) / 2, (2.0 * 0.0 + 8.0 * 9.0) / 2], rtol=1e-15)


def test_bayesc_effects_exactly_zero_in_the_spike():
    bayesc = BayesC(a=1.0, b=1.0).with_markers(500, 1.0)
    state = MixtureState(pi=jnp.array([[0.7, 0.3], [0.4, 0.6]]), variance=jnp.array([2.0, 0.5]))
    m = 5000
    effects, classes = bayesc.sample_effects(jax.random.key(3), state, m, K, TAU)
    effects, classes = np.asarray(effects), np.asarray(classes)
    assert set(np.unique(classes)) == {0, 1}
    assert np.all(effects[classes == 0] == 0.0)
    assert np.all(effects[classes == 1] != 0.0)
    for l in range(K):
        included = classes[:, l] == 1
        # inclusion share pi_l1 (binomial), slab effects N(0, variance_l / tau_l)
        p = float(state.pi[l, 1])
        assert abs(z_mean(included.astype(float), p, math.sqrt(p * (1 - p)))) < Z_BOUND
        slab = effects[included, l] * math.sqrt(float(TAU[l]) / float(state.variance[l]))
        assert abs(z_mean(slab, 0.0, 1.0)) < Z_BOUND
        assert abs(z_variance_normal(slab, 1.0)) < Z_BOUND


def test_default_scales():
    assert ARD().with_markers(10, 2.0).scale == 0.25
    assert ARD(scale=3.0).with_markers(10, 2.0).scale == 3.0
    assert BayesC(a=1.0, b=9.0).with_markers(10, 2.0).scale == pytest.approx(2.5)
    assert BayesR().with_markers(10, 2.0).scale == 1.0
    assert Horseshoe().with_markers(10, 2.0).scale == pytest.approx(0.0025)
    # the prior mean of psi, E[2 / lambda2] = 2 rate / (shape - 1), is the ARD's 0.25
    assert BayesianLasso(shape=2.0).with_markers(10, 2.0).rate == pytest.approx(0.125)


def test_marker_prior_by_name():
    for name, cls in [("ard", ARD), ("horseshoe", Horseshoe), ("lasso", BayesianLasso), ("bayesc", BayesC),
                      ("BayesR", BayesR)]:
        assert type(marker_prior(name)) is cls
    own = BayesC(a=1.0, b=9.0)
    assert marker_prior(own) is own
    with pytest.raises(SlamjaxInputError, match="must be one of"):
        marker_prior("bayesb")
    with pytest.raises(SlamjaxInputError, match="must be one of"):
        marker_prior(3)


def test_invalid_priors():
    with pytest.raises(SlamjaxInputError, match="BayesC"):
        BayesC(a=0.0)
    with pytest.raises(SlamjaxInputError, match="BayesC"):
        BayesC(b=-1.0)
    with pytest.raises(SlamjaxInputError, match="gammas"):
        BayesR(gammas=(0.1, 1.0))
    with pytest.raises(SlamjaxInputError, match="gammas"):
        BayesR(gammas=(0.0, 0.0, 1.0))
    with pytest.raises(SlamjaxInputError, match="alpha"):
        BayesR(gammas=(0.0, 1.0), alpha=(1.0, 1.0, 1.0))
