"""Chains, keys and compilation: vmapped chains equal single chains; same shapes never recompile."""

from __future__ import annotations

import jax
import numpy as np
import pytest

import slamjax as sj
from slamjax.sampler import run_draws

from _models import tiny_model


def _sample(model, **kwargs):
    settings = dict(num_warmup=20, num_samples=15, thin=2, progress=False, chunk_size=10)
    settings.update(kwargs)
    return sj.sample(model, **settings)


def test_vmapped_chains_equal_single_chains():
    model = tiny_model(n=30, p=4, k=2, fraction_missing=0.1)
    keys = jax.random.split(jax.random.key(5), 2)
    both = _sample(model, num_chains=2, chain_keys=keys)
    for c in range(2):
        alone = _sample(model, num_chains=1, chain_keys=keys[c : c + 1])
        for name, value in both.draws.items():
            np.testing.assert_allclose(alone.draws[name][0], value[c], rtol=1e-9, atol=1e-12, err_msg=name)


def test_chunking_does_not_change_draws():
    model = tiny_model(n=30, p=4, k=2)
    a = _sample(model, chunk_size=15, seed=3)
    b = _sample(model, chunk_size=4, seed=3)
    for name in a.draws:
        np.testing.assert_array_equal(a.draws[name], b.draws[name], err_msg=name)
    np.testing.assert_allclose(a.posterior_mean("G").values, b.posterior_mean("G").values, rtol=1e-12)


def test_same_shapes_do_not_recompile():
    first = tiny_model(n=30, p=4, k=2, seed=0)
    before = run_draws._cache_size()
    _sample(first, num_chains=2, num_warmup=50)  # three warm-up chunks, two sampling chunks
    after = run_draws._cache_size()
    # warm-up and sampling share one compiled loop, whatever the chunks
    assert after - before <= 1
    second = tiny_model(n=30, p=4, k=2, seed=1, priors=sj.Priors(intercept_precision=0.5, tot_Eta_var=sj.VarianceComponent(V=0.3, nu=4)))
    _sample(second, num_chains=2, num_warmup=7, num_samples=13, seed=9)
    assert run_draws._cache_size() == after


def test_running_means_equal_mean_of_draws():
    model = tiny_model(n=30, p=4, k=2)
    run = _sample(model, num_chains=2, num_samples=23, chunk_size=10)
    np.testing.assert_allclose(run.posterior_mean("G").values, run.draws["G"].mean(axis=(0, 1)), rtol=1e-10)
    np.testing.assert_allclose(run.posterior_mean("R").values, run.draws["R"].mean(axis=(0, 1)), rtol=1e-10)


def test_posterior_datatree_and_summary():
    model = tiny_model(n=30, p=4, k=2)
    run = _sample(model, num_chains=2, num_samples=30)
    h2 = run.posterior["h2"]
    assert h2.dims == ("chain", "draw", "trait")
    assert list(h2.coords["trait"].values) == model.trait_names
    assert run.posterior["Lambda"].dims == ("chain", "draw", "factor", "trait")
    assert run.posterior["B"].sizes["fixed"] == 2
    with pytest.warns(UserWarning, match="r_hat"):
        table = run.summary()
    assert {"mean", "sd", "ess_bulk", "ess_tail", "r_hat"} <= set(table.columns)
    assert "h2[trait0]" in table.index
    for name in ("Lambda", "B", "G", "R", "P", "h2", "U", "Eta_mean"):
        value = run.posterior_mean(name)
        assert np.all(np.isfinite(np.asarray(value, dtype=float))), name
    assert run.posterior_mean("U").shape == (model.shapes["r"], 4)
    np.testing.assert_allclose(
        run.posterior_mean("h2").values, run.posterior["h2"].mean(("chain", "draw")).values, rtol=1e-12
    )


def test_sample_refuses_bad_settings():
    model = tiny_model(n=30, p=4, k=2)
    for kwargs, match in [
        (dict(num_samples=0), "num_samples"),
        (dict(thin=0), "thin"),
        (dict(num_chains=1.5), "num_chains"),
        (dict(num_warmup=-1), "num_warmup"),
    ]:
        with pytest.raises(sj.SlamjaxInputError, match=match):
            _sample(model, **kwargs)
    with pytest.raises(sj.SlamjaxInputError, match="model"):
        sj.sample("not a model")


def test_failure_records_name_the_block_the_sweep_and_the_chain():
    from slamjax.run import _raise_on_failure
    from slamjax.sampler import BLOCK_NAMES

    _raise_on_failure(np.array([[-1, 0], [-1, 0]], np.int32), True, 10)
    scores = BLOCK_NAMES.index("factor scores F (step 7)")
    with pytest.raises(sj.NumericalError, match=r"block 'factor scores F.*at sweep 8 \(warm-up\) of chain 1") as error:
        _raise_on_failure(np.array([[-1, 0], [7, 1 << scores]], np.int32), True, 10)
    assert (error.value.block, error.value.sweep, error.value.chain) == ("factor scores F (step 7)", 8, 1)
    # the earliest chain first, its blocks in sweep order (the conditional h2 draw after its regression)
    regression, h2 = BLOCK_NAMES.index("trait regressions [B; Lambda] and tau (step 1)"), BLOCK_NAMES.index("trait h2 (step 2)")
    with pytest.raises(
        sj.NumericalError,
        match=r"block 'trait regressions.*at sweep 13 \(sampling\) of chain 0; later in that sweep also in "
              r"'trait h2.*also chain 1 at sweep 15",
    ):
        _raise_on_failure(np.array([[12, 1 << regression | 1 << h2], [14, 1 << h2]], np.int32), False, 10)
