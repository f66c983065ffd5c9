"""Comparisons of whole runs, shared by the store and resume tests."""

from __future__ import annotations

import jax
import numpy as np


def assert_same_run(a, b) -> None:
    """Bitwise equal draws, running means and final chain states."""
    assert a.draws.keys() == b.draws.keys()
    for name in a.draws:
        np.testing.assert_array_equal(a.draws[name], b.draws[name], err_msg=name)
    for name in ("G", "R", "U", "Eta_mean"):
        np.testing.assert_array_equal(np.asarray(a._means[name]), np.asarray(b._means[name]), err_msg=name)
    assert_same_states(a.final_states, b.final_states)


def assert_same_states(a, b) -> None:
    """Bitwise equal pytrees of chain states, leaf by leaf (named in the message)."""
    paths_a, tree_a = jax.tree_util.tree_flatten_with_path(a)
    paths_b, tree_b = jax.tree_util.tree_flatten_with_path(b)
    assert tree_a == tree_b
    for (path, x), (_, y) in zip(paths_a, paths_b):
        np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=jax.tree_util.keystr(path))
