"""Power of the statistical tests: every planted bug (``tests/_planted.py``) fails the tests meant to
catch it, run exactly as the suite runs them (same sizes, seeds and ``Z_BOUND``), while the
unmodified code passes them (tests/test_rotation.py, test_columns.py, test_geweke.py).

Which test catches which bug (``CAUGHT_BY``): the rotation's per-position check catches every wrong
rotation target (|z| >= 90), the shears' closed form and per-position checks a wrong shear target
(|z| 15-1100), the check of ``blocks/columns.py`` as a whole catches a draw made
at the wrong h2 or with a wrong tau or U law, and Geweke's test catches the bugs elsewhere in the
sweep. ``benchmarks/power.py`` runs every bug against every one of these tests over several seeds
and prints the z-scores and the estimated power.
"""

from __future__ import annotations

import numpy as np
import pytest

from _planted import BUGS
from _stats import Z_BOUND
from test_columns import columns_z
from test_exchange import exchange_z, shrinkage_z
from test_float32 import float32_vs_float64_z
from test_geweke import geweke_variant_z
from test_marginal_factors import intercept_shift_z, marginal_factors_z
from test_observation import links_geweke_z
from test_order import order_z, swap_state_z
from test_rotation import rotation_position_z, shear_z

CATCHERS = {
    "rotation per position (k=3)": lambda seed=0: rotation_position_z(3, seed=seed),
    "rotation per position (k=5)": lambda seed=0: rotation_position_z(5, seed=seed),
    "shears per position (k=3)": lambda seed=0: rotation_position_z(3, seed=seed, shear=True),
    "shears (closed form)": lambda seed=0: shear_z(seed=seed + 1),
    "columns (collapsed)": lambda seed=0: columns_z("eigen", True, seed=seed),
    "columns (conditional)": lambda seed=0: columns_z("eigen", False, seed=seed),
    "marginal factors (closed form)": lambda seed=0: marginal_factors_z(seed=seed),
    "intercept shift (closed form)": lambda seed=0: intercept_shift_z(seed=seed),
    "exchange (closed form)": lambda seed=0: exchange_z(seed=seed),
    "shrinkage move (closed form)": lambda seed=0: shrinkage_z(seed=seed),
    "factor order (closed form)": lambda seed=0: order_z(seed=seed)[0],
    "swap step (state prior)": lambda seed=0: swap_state_z(seed=seed),
    "Geweke complete": lambda seed=0: geweke_variant_z("complete", seed=seed)[0],
    "Geweke woodbury": lambda seed=0: geweke_variant_z("woodbury", seed=seed)[0],
    "Geweke links": lambda seed=0: links_geweke_z(seed=seed)[0],
    "float32 vs float64": lambda seed=0: float32_vs_float64_z(seed=seed)[0] * Z_BOUND / 4.0,  # its bound is 4
}

CAUGHT_BY = {
    "rotation: tot_F_prec dropped": ["rotation per position (k=3)"],  # Geweke complete too: z 15-17
    "rotation: B_F prior dropped": ["rotation per position (k=3)"],
    "rotation: Lambda prior dropped": ["rotation per position (k=5)"],
    "rotation: uniform angle": ["rotation per position (k=3)"],
    "shear: Lambda prior dropped": ["shears (closed form)", "shears per position (k=3)"],
    "shear: the other factor's prior": ["shears (closed form)", "shears per position (k=3)"],
    "collapsed h2: stale index": ["columns (collapsed)"],
    "h2 log-determinant dropped": ["columns (collapsed)", "columns (conditional)"],
    "U variance x0.8": ["columns (collapsed)"],
    "tau shape +1": ["columns (conditional)"],
    "factor prior precision x1.25": ["Geweke complete"],
    "delta shape +0.5": ["Geweke complete"],
    "marginal factors: F A not updated": ["marginal factors (closed form)"],
    "marginal h2_F: log-determinant dropped": ["marginal factors (closed form)"],
    "marginal factors: precisions given U_R": ["marginal factors (closed form)"],
    "exchange: Jacobian without tau": ["exchange (closed form)"],
    "shrinkage move: last factor's Jacobian dropped": ["shrinkage move (closed form)"],
    "shrinkage move: every factor's Jacobian as the last one's": ["Geweke complete"],  # max |z| 7.0
    "factor swap: last pair's Jacobian dropped": ["factor order (closed form)"],  # max |z| 41
    "factor swap: column shrinkage left behind": ["swap step (state prior)"],  # max |z| 12.6
    "intercept shift: B_0 prior dropped": ["intercept shift (closed form)"],
    "woodbury: low-rank correction dropped": ["Geweke woodbury"],
    "probes: variance rate halved": ["Geweke links"],
    "voom: weights dropped from the latent mean": ["Geweke links"],
    "float32: Cholesky jitter 0.1": ["float32 vs float64"],
}


def test_every_bug_has_a_catcher():
    assert set(CAUGHT_BY) == set(BUGS)
    assert all(name in CATCHERS for names in CAUGHT_BY.values() for name in names)


@pytest.mark.slow
@pytest.mark.parametrize("bug, catcher", [(bug, c) for bug, names in CAUGHT_BY.items() for c in names])
def test_planted_bug_fails_its_test(bug, catcher, monkeypatch):
    from slamjax.sampler import run_draws

    run_draws.clear_cache()  # a loop compiled before the bug was planted would hide it, and one compiled
    BUGS[bug](monkeypatch)  # with the bug must not serve the tests after this one
    try:
        z = CATCHERS[catcher]()
    finally:
        run_draws.clear_cache()
    print(f"{bug} | {catcher}: max |z| = {np.max(np.abs(z)):.1f}")
    assert np.max(np.abs(z)) > Z_BOUND, f"{catcher} did not catch '{bug}': max |z| = {np.max(np.abs(z)):.2f}"
