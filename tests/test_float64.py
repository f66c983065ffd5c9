"""slamjax computes in float64 without switching float64 on for the user's process.

Run in a fresh interpreter: tests/conftest.py switches x64 on globally for the other tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

SCRIPT = textwrap.dedent(
    """
    import threading

    import jax
    import jax.numpy as jnp
    import numpy as np
    import pandas as pd

    import slamjax as sj

    def assert_float32_outside(where):
        assert not jax.config.jax_enable_x64, where
        assert jnp.ones(1).dtype == jnp.float32, where

    rng = np.random.default_rng(0)
    n, p = 24, 3
    ids = [f"i{i}" for i in range(n)]
    data = pd.DataFrame({"line": ids, "x": rng.normal(size=n)}, index=ids)
    Y = pd.DataFrame(rng.normal(size=(n, p)), index=ids, columns=["a", "b", "c"])
    Y.iloc[3, 1] = np.nan
    model = sj.Model(Y=Y, data=data, formula="~ x + (1|line)", n_factors=2, h2_divisions=4)
    assert_float32_outside("after Model")
    assert model.data.X.dtype == jnp.float64  # built inside the float64 context

    seen = []
    run = sj.sample(model, num_warmup=4, num_samples=3, num_chains=2, chunk_size=2, progress=False,
                    init="factor_analysis", reorder_factors=True,
                    callback=lambda progress: seen.append(bool(jax.config.jax_enable_x64)))
    assert_float32_outside("after sample")
    assert seen and not any(seen), "callbacks run under the caller's setting"
    for name, value in run.draws.items():
        assert value.dtype == np.float64, name
    assert run.final_states.Lambda.dtype == jnp.float64

    run.resume(num_samples=2)
    assert_float32_outside("after resume")
    assert run.draws["h2"].shape[1] == 5 and run.draws["h2"].dtype == np.float64

    fitted = run.predict("fitted")
    genetic = run.predict()
    assert_float32_outside("after predict")
    assert fitted.to_numpy().dtype == np.float64 and genetic.to_numpy().dtype == np.float64
    assert run.posterior["Lambda"].dtype == np.float64

    # the setting is thread-local: another thread computing while slamjax samples stays float32
    dtypes, stop = [], threading.Event()
    def other_thread():
        while not stop.is_set():
            dtypes.append(jnp.ones(1).dtype)
    worker = threading.Thread(target=other_thread)
    worker.start()
    sj.sample(model, num_warmup=2, num_samples=2, progress=False)
    stop.set()
    worker.join()
    assert dtypes and all(d == jnp.float32 for d in dtypes), set(dtypes)
    assert_float32_outside("at the end")
    print("OK")
    """
)


def test_slamjax_leaves_float64_off_for_the_caller():
    environment = {**os.environ, "PYTHONPATH": str(ROOT), "JAX_ENABLE_X64": "0"}
    result = subprocess.run([sys.executable, "-c", SCRIPT], capture_output=True, text=True, env=environment,
                            timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    assert result.stdout.strip().endswith("OK")
