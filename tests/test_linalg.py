import jax

jax.config.update("jax_enable_x64", True)

import jax.numpy as jnp  # noqa: E402
import numpy as np  # noqa: E402
import pytest  # noqa: E402

from slamjax import _linalg  # noqa: E402
from slamjax._linalg import cholesky, cholesky_ok, solve_lower, solve_lower_transpose  # noqa: E402

BATCHES = [(), (7,), (3, 5)]
QS = [1, 2, 5, 6, 7, 13, 41]


def _spd(batch, q, seed=0):
    rng = np.random.default_rng(seed)
    X = rng.standard_normal(batch + (q, q))
    return X @ np.swapaxes(X, -1, -2) + q * np.eye(q)


def _rel(a, b):
    return np.max(np.abs(np.asarray(a) - b)) / max(np.max(np.abs(b)), 1e-300)


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("q", QS)
def test_cholesky_matches_numpy(batch, q):
    A = _spd(batch, q)
    L = jax.jit(cholesky)(jnp.asarray(A))
    assert L.shape == A.shape and L.dtype == jnp.float64
    assert _rel(L, np.linalg.cholesky(A)) < 1e-10
    assert np.all(np.asarray(cholesky_ok(L)))
    assert cholesky_ok(L).shape == batch


@pytest.mark.parametrize("q", [1, 3, 6, 7, 13])
def test_cholesky_reads_lower_triangle_only(q):
    A = _spd((4,), q)
    garbage = A + np.triu(np.full((q, q), 1e3), 1)
    L = cholesky(jnp.asarray(garbage))
    assert _rel(L, np.linalg.cholesky(A)) < 1e-10


@pytest.mark.parametrize("batch", BATCHES)
@pytest.mark.parametrize("q", QS + [70])
def test_solves_match_numpy(batch, q):
    A = _spd(batch, q, seed=1)
    L = np.linalg.cholesky(A)
    b = np.random.default_rng(2).standard_normal(batch + (q,))
    x = jax.jit(solve_lower)(jnp.asarray(L), jnp.asarray(b))
    y = jax.jit(solve_lower_transpose)(jnp.asarray(L), jnp.asarray(b))
    x_ref = np.linalg.solve(L, b[..., None])[..., 0]
    y_ref = np.linalg.solve(np.swapaxes(L, -1, -2), b[..., None])[..., 0]
    assert x.shape == b.shape and y.shape == b.shape
    assert _rel(x, x_ref) < 1e-10
    assert _rel(y, y_ref) < 1e-10
    # full SPD solve round trip
    z = solve_lower_transpose(jnp.asarray(L), solve_lower(jnp.asarray(L), jnp.asarray(b)))
    assert _rel(z, np.linalg.solve(A, b[..., None])[..., 0]) < 1e-9


@pytest.mark.parametrize("q", [3, 70])
def test_solve_broadcasts_batch(q):
    L = np.linalg.cholesky(_spd((), q))
    b = np.random.default_rng(3).standard_normal((4, q))
    x = solve_lower(jnp.asarray(L), jnp.asarray(b))
    assert x.shape == (4, q)
    assert _rel(x, np.linalg.solve(L, b.T).T) < 1e-10
    b = np.random.default_rng(5).standard_normal((2, 3, q))  # one factor for a batch of rows: one solve
    x = solve_lower_transpose(jnp.asarray(L), jnp.asarray(b))
    assert x.shape == (2, 3, q)
    assert _rel(x, np.linalg.solve(L.T, b.reshape(-1, q).T).T.reshape(b.shape)) < 1e-10


def test_unrolled_and_fori_solves_agree():
    q = 9
    L = np.linalg.cholesky(_spd((5,), q))
    b = np.random.default_rng(4).standard_normal((5, q))
    Lj, bj = jnp.asarray(L), jnp.asarray(b)
    for t in (False, True):
        u = _linalg._solve_unrolled(Lj, bj, t)
        f = _linalg._solve_fori(Lj, bj, t, (5,))
        assert _rel(u, np.asarray(f)) < 1e-12
        # the upper triangle is never read (the backward loop subtracts whole rows of L, masked)
        garbage = jnp.where(jnp.triu(jnp.ones((q, q), bool), 1), jnp.nan, Lj)
        assert _rel(u, np.asarray(_linalg._solve_fori(garbage, bj, t, (5,)))) < 1e-12


@pytest.mark.parametrize("q", [1, 2, 5, 6, 7, 13, 41])
def test_non_pd_gives_nan_and_not_ok(q):
    A = _spd((3,), q)
    bad = A.copy()
    bad[1] = A[1] - (np.max(np.linalg.eigvalsh(A[1])) + 1.0) * np.eye(q)  # negative definite
    bad[2, -1, -1] = -1.0  # last pivot fails
    L = jax.jit(cholesky)(jnp.asarray(bad))
    ok = np.asarray(cholesky_ok(L))
    assert ok.tolist() == [True, False, False]
    assert not np.all(np.isfinite(np.asarray(L[1])))
    assert not np.all(np.isfinite(np.asarray(L[2])))
    assert _rel(L[0], np.linalg.cholesky(A[0])) < 1e-10


@pytest.mark.parametrize("q", [1, 4, 13])
def test_singular_psd_is_failure(q):
    A = np.zeros((q, q))
    assert not bool(cholesky_ok(cholesky(jnp.asarray(A))))


def test_zero_size():
    A = jnp.zeros((3, 0, 0))
    L = cholesky(A)
    assert L.shape == (3, 0, 0)
    assert np.asarray(cholesky_ok(L)).tolist() == [True] * 3
    assert solve_lower(L, jnp.zeros((3, 0))).shape == (3, 0)
    assert solve_lower_transpose(L, jnp.zeros((3, 0))).shape == (3, 0)


def test_bad_shape_raises():
    with pytest.raises(ValueError):
        cholesky(jnp.zeros((3, 4)))
    with pytest.raises(ValueError):
        solve_lower(jnp.eye(3), jnp.zeros(4))
