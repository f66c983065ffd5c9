"""float32 runs (``sj.sample(..., dtype="float32")``): a float32 sweep holds no float64 value, its
posterior agrees with float64's, the dtype is checked, stored and resumed, and the NaN guard names
the block."""

from __future__ import annotations

import equinox as eqx
import jax
import jax.numpy as jnp
import numpy as np
import pytest
from jax._src import source_info_util
from jax.extend import core as jax_core

import slamjax as sj
import slamjax.blocks.factors as factors_block
from slamjax._dtype import cast_floats, check_dtype, float64_sum
from slamjax._linalg import JITTER_EPS, cholesky, jitter
from slamjax.sampler import sweep
from slamjax.state import init_state

from _links import link_model
from _models import three_effect_model, tiny_model
from _runs import assert_same_run

# ----------------------------------------------------------------------------- dtype purity

# The only operations allowed to touch a float64 value in a float32 sweep: ``_dtype.float64_sum``
# (float32 terms converted to float64, summed, converted back).
_FLOAT64_SUM = {"convert_element_type", "reduce_sum"}


def _float64(aval) -> bool:
    """A float64 value other than a weakly typed scalar (a Python number, which JAX converts to the
    dtype of the array it meets before any arithmetic on arrays)."""
    return getattr(aval, "dtype", None) == jnp.float64 and not (aval.weak_type and not aval.shape)


def _sub_jaxprs(params):
    for value in params.values():
        for item in value if isinstance(value, (tuple, list)) else (value,):
            if isinstance(item, jax_core.ClosedJaxpr):
                yield item.jaxpr, item.consts
            elif isinstance(item, jax_core.Jaxpr):
                yield item, ()


def float64_values(jaxpr, consts=(), where: str = "sweep") -> list[str]:
    """Every float64 value in ``jaxpr`` and its sub-jaxprs (loops, conds, jitted functions): constants,
    inputs and outputs, and operations with a float64 operand or result other than a float64 sum."""
    found = [f"{where}: a float64 constant of shape {np.shape(c)}" for c in consts if np.asarray(c).dtype == np.float64]
    found += [f"{where}: a float64 input or output {v.aval}" for v in (*jaxpr.invars, *jaxpr.constvars, *jaxpr.outvars)
              if _float64(v.aval)]
    for eqn in jaxpr.eqns:
        avals = [v.aval for v in (*eqn.invars, *eqn.outvars)]
        if eqn.primitive.name not in _FLOAT64_SUM and any(_float64(a) for a in avals):
            found.append(f"{where}: {eqn.primitive.name} {[str(a) for a in avals]} at "
                         f"{source_info_util.summarize(eqn.source_info)}")
        for sub, sub_consts in _sub_jaxprs(eqn.params):
            found += float64_values(sub, sub_consts, f"{where}/{eqn.primitive.name}")
    return found


def _float32_inputs(model):
    """A starting state and the sampler data of ``model``, cast as a float32 run casts them."""
    return cast_floats(init_state(jax.random.key(0), model.data), "float32"), cast_floats(model.data, "float32")


def _float32_sweep_jaxpr(model):
    return jax.make_jaxpr(sweep)(jax.random.key(1), *_float32_inputs(model))


def _marker_model():
    from test_markers import marker_model

    return marker_model(prior="bayesc")


VARIANTS = {
    "one random effect (eigen), imputed cells": lambda: tiny_model(n=24, p=4, k=2, fraction_missing=0.1),
    "conditional h2, TPB loadings": lambda: tiny_model(n=24, p=4, k=3, h2_draw="conditional", priors=sj.Priors(
        intercept_precision=0.5, Lambda=sj.priors.TPB())),
    "three random effects (woodbury)": lambda: three_effect_model(n=24, p=3, k=2),
    "missing-data groups": lambda: tiny_model(n=30, p=4, k=2, fraction_missing=0.3, missing="groups"),
    "probes, voom and Gaussian links": link_model,
    "BayesC marker effects": _marker_model,
}


@pytest.mark.parametrize("variant", VARIANTS)
def test_a_float32_sweep_holds_no_float64_value(variant):
    model = VARIANTS[variant]()
    closed = _float32_sweep_jaxpr(model)
    found = float64_values(closed.jaxpr, closed.consts)
    assert not found, "\n".join(dict.fromkeys(found))
    state_out = jax.eval_shape(sweep, jax.random.key(1), *_float32_inputs(model))[0]
    floating = {x.dtype for x in jax.tree.leaves(state_out) if jnp.issubdtype(x.dtype, jnp.floating)}
    assert floating == {np.dtype(np.float32)}, floating


@pytest.mark.filterwarnings("ignore:scatter inputs have incompatible types")
def test_the_purity_check_finds_a_planted_float64_value(monkeypatch):
    """A block whose noise comes back in float64 (the old ``_random.normal``) is found and located."""
    original = factors_block.normal
    monkeypatch.setattr(factors_block, "normal", lambda key, shape, dtype: original(key, shape).astype(jnp.float64))
    closed = _float32_sweep_jaxpr(tiny_model(n=24, p=4, k=2))
    found = float64_values(closed.jaxpr, closed.consts)
    assert found and any("factors.py" in line for line in found), found


# ----------------------------------------------------------------------------- the posterior

def _means_and_errors(run):
    """Posterior means of h2 and diag(G) per trait and their Monte Carlo standard errors sd / sqrt(ESS)."""
    import arviz as az

    draws = np.concatenate([run.draws["h2"], np.diagonal(run.draws["G"], axis1=-2, axis2=-1)], axis=-1)
    ess = np.array([float(az.ess(draws[..., j])) for j in range(draws.shape[-1])])
    return draws.mean(axis=(0, 1)), draws.reshape(-1, draws.shape[-1]).std(axis=0) / np.sqrt(ess), ess


def float32_vs_float64_z(seed: int = 0):
    """(float64 mean - float32 mean) / its allowance unit, for h2 and diag(G) of 20 traits (n = 200,
    3 simulated factors), 2 chains x 400 draws per dtype; and the smallest ESS of the two runs.

    The two runs are independent Monte Carlo estimates of one posterior: their means differ by
    N(0, se64^2 + se32^2) (se = sd / sqrt(ESS)). float32 itself moves a posterior mean by far less:
    rounding of order 1e-6 relative in each sweep's statistics, the jitter 1.2e-6 relative, against
    standard errors of about 1e-2 relative; the unit adds 1e-4 / 4 of the float64 mean for it.
    """
    ds = sj.datasets.simulate(n=200, p=20, k=3, seed=1)
    model = sj.Model(Y=ds.Y, data=ds.data, formula="~ 1 + (1|id)", relmat={"id": ds.relmat["id"]}, n_factors=4)
    settings = dict(num_warmup=300, num_samples=400, num_chains=2, seed=seed, progress=False)
    mean64, se64, ess64 = _means_and_errors(sj.sample(model, **settings))
    run32 = sj.sample(model, dtype="float32", **settings)
    assert run32.final_states.Lambda.dtype == jnp.float32 and run32.draws["h2"].dtype == np.float64
    mean32, se32, ess32 = _means_and_errors(run32)
    unit = np.sqrt(se64**2 + se32**2) + 0.25e-4 * np.abs(mean64)
    return (mean64 - mean32) / unit, min(ess64.min(), ess32.min())


def test_float32_and_float64_posteriors_agree():
    """40 quantities, correlated through the shared factors, are allowed 4 standard errors each (a
    false failure has probability < 0.3 %). Measured: min ESS 195. A float32-only bug, the Cholesky
    jitter 0.1 instead of 1.2e-6 relative, fails it (max |z| 8.1; tests/test_power.py). Since step
    5m integrates U_R out, a jitter of 0.01 moves the posterior by less (max |z| 2.8, not caught;
    0.03: 4.4); before, 0.01 gave 7.1."""
    z, min_ess = float32_vs_float64_z()
    assert min_ess > 50, min_ess  # enough draws for the errors to hold
    assert np.all(np.abs(z) <= 4.0), np.round(z, 2)


# ----------------------------------------------------------------------------- settings, store, resume

@pytest.mark.parametrize("dtype", ["float16", "double", None, 32, np.int32, "bfloat16"])
def test_an_unknown_dtype_is_refused_before_jax_runs(dtype):
    with pytest.raises(sj.SlamjaxInputError, match=r"dtype: must be 'float64' \(the default\) or 'float32'"):
        sj.sample(object(), dtype=dtype)  # refused before the model is even looked at


def test_dtypes_are_accepted_by_name_or_type():
    assert [check_dtype(d) for d in ("float32", np.float32, jnp.float32, np.dtype("float32"))] == ["float32"] * 4
    assert [check_dtype(d) for d in ("float64", np.float64, jnp.float64, float)] == ["float64"] * 4


SETTINGS = dict(num_warmup=5, num_samples=8, thin=2, num_chains=2, chunk_size=3, seed=5, progress=False)


@pytest.fixture(scope="module")
def model():
    return tiny_model(n=24, p=4, k=2, fraction_missing=0.1)


@pytest.fixture(scope="module")
def uninterrupted32(model):
    return sj.sample(model, dtype="float32", **dict(SETTINGS, num_samples=12))


def test_a_float32_run_is_float32_on_the_device_and_float64_on_the_host(model, uninterrupted32):
    run = uninterrupted32
    assert run.settings["dtype"] == "float32"
    floating = [x for x in jax.tree.leaves(run.final_states) if jnp.issubdtype(x.dtype, jnp.floating)]
    assert floating and all(x.dtype == jnp.float32 for x in floating)
    assert all(value.dtype == np.float64 for value in run.draws.values() if value.dtype.kind == "f")
    assert run.posterior_mean("G").to_numpy().dtype == np.float64
    run64 = sj.sample(model, **dict(SETTINGS, num_samples=12))
    assert run64.settings["dtype"] == "float64" and run64.final_states.Lambda.dtype == jnp.float64
    assert not np.array_equal(run64.draws["h2"], run.draws["h2"])  # float32 did compute in float32


def test_a_float32_run_starts_from_a_factor_analysis_and_reorders_factors_in_float32(model):
    """Both helpers compute in float64 (outside the sweep); the run casts their states back."""
    run = sj.sample(model, dtype="float32", init="factor_analysis", reorder_factors=True,
                    **dict(SETTINGS, num_warmup=8))
    floating = [x for x in jax.tree.leaves(run.final_states) if jnp.issubdtype(x.dtype, jnp.floating)]
    assert all(x.dtype == jnp.float32 for x in floating) and np.all(np.isfinite(run.draws["h2"]))


@pytest.mark.parametrize("reopen", [False, True])
def test_a_float32_run_resumes_in_float32(model, uninterrupted32, tmp_path, reopen):
    """8 draws into a store, then 4 more (from the Run, or reopened from disk): the same draws,
    running means and final states as 12 draws at once."""
    run = sj.sample(model, dtype="float32", store=tmp_path / "run", **SETTINGS)
    if reopen:
        run = sj.open_run(tmp_path / "run")
        assert run.settings["dtype"] == "float32" and run.final_states.Lambda.dtype == jnp.float32
    run.resume(num_samples=4, progress=False)
    assert_same_run(run, uninterrupted32)
    assert_same_run(sj.open_run(tmp_path / "run"), uninterrupted32)


def test_a_store_written_before_the_dtype_setting_opens_as_float64(model, tmp_path):
    from test_store_files import _edit_progress

    run = sj.sample(model, store=tmp_path / "run", **SETTINGS)
    _edit_progress(lambda progress: progress["settings"].pop("dtype"))(tmp_path / "run")
    reopened = sj.open_run(tmp_path / "run")
    assert reopened.settings["dtype"] == "float64"
    assert_same_run(reopened, run)


def test_a_stored_dtype_other_than_float64_or_float32_is_refused(model, tmp_path):
    from test_store_files import _edit_progress

    sj.sample(model, store=tmp_path / "run", **SETTINGS)
    _edit_progress(lambda progress: progress["settings"].update(dtype="float16"))(tmp_path / "run")
    with pytest.raises(sj.SlamjaxInputError, match="a setting is out of range"):
        sj.open_run(tmp_path / "run")


# ----------------------------------------------------------------------------- the guard, jitter, sums

def test_the_guard_names_the_block_in_float32():
    """Latent traits of order 1e20 square to 1e40: finite in float64, beyond float32's 3.4e38. The
    collapsed h2 draw, the first block to square them, is named, with the sweep and the chain;
    the same model samples in float64."""
    model = tiny_model(n=24, p=4, k=2, seed=3)
    model.data = eqx.tree_at(lambda d: d.Y_start, model.data, model.data.Y_start * 1e20)
    message = r"block 'trait h2 \(step 2\)' at sweep 1 \(warm-up\) of chain 0"
    with pytest.raises(sj.NumericalError, match=message) as error:
        sj.sample(model, num_warmup=2, num_samples=2, num_chains=1, progress=False, dtype="float32")
    assert (error.value.block, error.value.sweep, error.value.chain) == ("trait h2 (step 2)", 1, 0)
    sj.sample(model, num_warmup=2, num_samples=2, num_chains=1, progress=False)


def test_jitter_applies_to_float32_only():
    rng = np.random.default_rng(0)
    M = rng.normal(size=(5, 3, 8))
    A64 = jnp.asarray(M @ np.swapaxes(M, 1, 2))  # 5 positive-definite 3 x 3 matrices
    assert jitter(A64) is A64
    np.testing.assert_array_equal(cholesky(A64), cholesky(A64))
    A32 = A64.astype(jnp.float32)
    jittered, plain = np.asarray(jitter(A32), np.float64), np.asarray(A32, np.float64)
    diagonal = np.diagonal(plain, axis1=1, axis2=2)
    np.testing.assert_allclose(np.diagonal(jittered, axis1=1, axis2=2), diagonal * (1 + JITTER_EPS),
                               rtol=2e-7)  # float32 rounding of the sum
    assert np.all(jittered[:, ~np.eye(3, dtype=bool)] == plain[:, ~np.eye(3, dtype=bool)])
    singular = jnp.asarray(np.outer([1.0, 2.0, 3.0], [1.0, 2.0, 3.0]), jnp.float32)  # rank 1
    assert np.all(np.isfinite(np.asarray(cholesky(singular)))), "float32 rank-deficient input factorises with jitter"
    assert not np.all(np.isfinite(np.asarray(cholesky(singular.astype(jnp.float64)))))


def test_float64_sums_of_float32_terms():
    x = jnp.asarray(np.full(2**20, 1.1), jnp.float32)
    total = float64_sum(x)
    assert total.dtype == jnp.float32
    assert abs(float(total) - 2**20 * float(x[0])) <= 1e-6 * 2**20 * float(x[0])
    y = jnp.asarray(np.random.default_rng(0).normal(size=(50, 3)))
    np.testing.assert_array_equal(float64_sum(y, axis=0), jnp.sum(y, axis=0))


@pytest.mark.parametrize("prior", [sj.priors.MGPS(), sj.priors.Horseshoe(), sj.priors.TPB()])
def test_the_column_shrinkage_stays_within_float32(prior):
    """20 factors that the data do not need (zero loadings on 1000 traits): each delta_h draws near
    p (k - h) / 2, so their product passes 1e70 in one sweep; float32 keeps every cumulative product
    and precision at most PRECISION_MAX_FLOAT32, float64 lets them grow."""
    from slamjax._dtype import PRECISION_MAX_FLOAT32

    k, p = 20, 1000
    coef, tau = np.zeros((k, p)), np.ones(p)

    @jax.jit
    def draw(prior, state, coef, tau):
        state = prior.sample(jax.random.key(0), state, coef, tau)
        return state.delta, prior.precision(state)

    for dtype in ("float64", "float32"):
        arguments = cast_floats((prior, prior.init(k, p), jnp.asarray(coef), jnp.asarray(tau)), dtype)
        delta, precision = (np.asarray(x, np.float64) for x in draw(*arguments))
        largest = max(np.cumprod(delta).max(), precision.max())
        if dtype == "float32":
            assert np.all(np.isfinite(precision)) and largest <= PRECISION_MAX_FLOAT32 * (1 + 1e-6), largest
        else:
            assert largest > 1e70, largest


def test_float32_uniforms_leave_no_room_for_underflow():
    """A float32 uniform of 0 bits (once in 2^23 draws) becomes 2^-24, not float32's smallest normal
    number, whose product with another uniform underflows to 0: Gamma(2) = -log(U_1 U_2) would
    be inf (the Lambda shrinkage block of a float32 run failed so, once in about 2,000 sweeps)."""
    from slamjax._random import standard_gamma_half_integer, uniform

    key = jax.random.key(0)
    zero_bits = jax.random.uniform(key, (2**24,), jnp.float32) == 0  # the draws uniform() gives a floor to
    assert np.any(np.asarray(zero_bits))
    u32, u64 = uniform(key, (2**24,), jnp.float32), uniform(key, (2**24,), jnp.float64)
    assert float(u32.min()) == 2.0**-24 and float(u64.min()) == float(jnp.finfo(jnp.float32).tiny)
    np.testing.assert_array_equal(np.asarray(u32)[~np.asarray(zero_bits)], np.asarray(u64)[~np.asarray(zero_bits)])
    other = uniform(jax.random.key(1), (2**24,), jnp.float32)
    assert np.all(np.isfinite(np.asarray(jax.jit(lambda u, v: -jnp.log(u * v))(u32, other))))
    smallest = jnp.full(3, jnp.finfo(jnp.float32).tiny)  # the old floor: XLA flushes the product to 0
    assert np.all(np.isinf(np.asarray(jax.jit(lambda u, v: -jnp.log(u * v))(smallest, other[:3]))))
    assert np.all(np.isfinite(np.asarray(standard_gamma_half_integer(jax.random.key(2), 4.0, (2**20,), jnp.float32))))
