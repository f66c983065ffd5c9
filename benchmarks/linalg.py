"""Benchmark slamjax._linalg against jax's built-ins on many small matrices.

Run: python benchmarks/linalg.py [--quick]
Prints ms per call (median after compilation) and GFLOP/s (Cholesky counted
as q^3/3 flops per matrix, triangular solve as q^2).
"""

import jax

jax.config.update("jax_enable_x64", True)

import pathlib  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parents[1]))  # run from a checkout

from slamjax import _linalg  # noqa: E402

QS = (5, 12, 41)
BATCHES = (100, 1000, 4000)


def _time(f, *args, reps=30):
    jax.block_until_ready(f(*args))  # compile + warm up
    ts = []
    for _ in range(reps):
        t0 = time.perf_counter()
        jax.block_until_ready(f(*args))
        ts.append(time.perf_counter() - t0)
    return float(np.median(ts)) * 1e3


def _vmap_solve(trans):
    def f(L, b):
        g = lambda L, b: jax.scipy.linalg.solve_triangular(L, b, lower=True, trans=trans)  # noqa: E731
        for _ in range(L.ndim - 2):
            g = jax.vmap(g)
        return g(L, b)

    return f


def main():
    reps = 10 if "--quick" in sys.argv else 30
    rng = np.random.default_rng(0)
    chol_impls = {
        "jnp.linalg.cholesky": jnp.linalg.cholesky,
        "unrolled": _linalg._cholesky_unrolled,
        "_linalg.cholesky": _linalg.cholesky,
    }
    solve_impls = {
        "vmap(solve_triangular)": (_vmap_solve(0), _vmap_solve(1)),
        "unrolled": (
            lambda L, b: _linalg._solve_unrolled(L, b, False),
            lambda L, b: _linalg._solve_unrolled(L, b, True),
        ),
        "fori": (
            lambda L, b: _linalg._solve_fori(L, b, False, b.shape[:-1]),
            lambda L, b: _linalg._solve_fori(L, b, True, b.shape[:-1]),
        ),
        "_linalg.solve_*": (_linalg.solve_lower, _linalg.solve_lower_transpose),
    }
    print(f"device: {jax.devices()[0].device_kind}, jax {jax.__version__}")
    print(f"{'op':10s} {'q':>3s} {'batch':>6s} {'impl':24s} {'ms':>9s} {'GFLOP/s':>8s}")
    for q in QS:
        for n in BATCHES:
            X = rng.standard_normal((n, q, q))
            A = jnp.asarray(X @ np.swapaxes(X, -1, -2) + q * np.eye(q))
            L = jnp.linalg.cholesky(A)
            b = jnp.asarray(rng.standard_normal((n, q)))
            for name, f in chol_impls.items():
                if name == "unrolled" and q > 12:
                    continue  # compile time / clearly slower
                ms = _time(jax.jit(f), A, reps=reps)
                print(f"{'cholesky':10s} {q:3d} {n:6d} {name:24s} {ms:9.3f} {n * q**3 / 3 / ms / 1e6:8.2f}")
            for name, (fl, ft) in solve_impls.items():
                for op, f in (("solve_L", fl), ("solve_LT", ft)):
                    ms = _time(jax.jit(f), L, b, reps=reps)
                    print(f"{op:10s} {q:3d} {n:6d} {name:24s} {ms:9.3f} {n * q**2 / ms / 1e6:8.2f}")
            sys.stdout.flush()


if __name__ == "__main__":
    main()
