"""Power of the statistical tests against the planted bugs of ``tests/_planted.py``.

Runs every planted bug (and the unmodified code) against each of the suite's statistical tests
that ``tests/test_power.py`` uses, over several seeds, exactly as the suite runs them, and prints
the largest |z| of each run, how many runs exceed the suite's bound (4.3), and a plug-in estimate
of the power P(largest |z| > 4.3): the mean over seeds of Phi(|z_s| - 4.3), z_s the largest z of
seed s (under the bug the z-score of the function that moves most is roughly N(z_s, 1); the other
functions only add to the power). Seeds change the Monte Carlo draws and, for the rotation check,
which factor gets which hyperparameters.

    python benchmarks/power.py [--seeds 3] [--catchers "Geweke complete" ...] [--bugs "tau shape +1" ...]
"""

import argparse
import sys
import time
from pathlib import Path

import jax

jax.config.update("jax_enable_x64", True)

import numpy as np  # noqa: E402
import pytest  # noqa: E402
import scipy.stats  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from _planted import BUGS  # noqa: E402
from _stats import Z_BOUND  # noqa: E402
from test_power import CATCHERS  # noqa: E402

# the bugs each test can see (a test never calls the code of the others)
RELEVANT = {
    "rotation per position (k=3)": [b for b in BUGS if b.startswith("rotation")],
    "rotation per position (k=5)": [b for b in BUGS if b.startswith("rotation")],
    "columns (collapsed)": ["collapsed h2: stale index", "h2 log-determinant dropped", "U variance x0.8",
                            "tau shape +1"],
    "columns (conditional)": ["collapsed h2: stale index", "h2 log-determinant dropped", "U variance x0.8",
                              "tau shape +1"],
    "Geweke complete": [b for b in BUGS if not b.startswith(("woodbury", "probes", "voom"))],
    "Geweke woodbury": ["woodbury: low-rank correction dropped"],
    "Geweke links": ["probes: variance rate halved", "voom: weights dropped from the latent mean"],
}


def main() -> None:
    parser = argparse.ArgumentParser(description="power of the statistical tests against planted bugs")
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--catchers", nargs="*", default=list(CATCHERS))
    parser.add_argument("--bugs", nargs="*", default=None)
    args = parser.parse_args()
    print("| test | planted bug | largest abs z per seed | caught | power | time |\n|---|---|---|---|---|---|", flush=True)
    for catcher in args.catchers:
        for bug in [None, *RELEVANT[catcher]]:
            if bug is not None and args.bugs is not None and bug not in args.bugs:
                continue
            started = time.perf_counter()
            z_runs = []
            for seed in range(args.seeds):
                patch = pytest.MonkeyPatch()
                if bug is not None:
                    BUGS[bug](patch)
                try:
                    z_runs.append(np.asarray(CATCHERS[catcher](seed=seed)))
                finally:
                    patch.undo()
            z = np.stack(z_runs)  # (seeds, functions)
            largest = np.max(np.abs(z), axis=1)
            power = f"{np.mean(scipy.stats.norm.cdf(largest - Z_BOUND)):.3f}" if bug else "-"
            caught = int(np.sum(largest > Z_BOUND))
            print(f"| {catcher} | {bug or '(none)'} | {', '.join(f'{v:.1f}' for v in largest)} | "
                  f"{caught}/{args.seeds} | {power} | {time.perf_counter() - started:.0f} s |", flush=True)


if __name__ == "__main__":
    main()
