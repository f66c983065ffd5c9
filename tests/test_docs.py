"""The documentation site builds with ``mkdocs build --strict`` (what ``make docs`` runs).

Strict mode fails on a broken link or anchor, a docstring griffe cannot parse, and (docs/hooks.py)
a README section that no page of the site shows. The build runs in a subprocess into a temporary
folder, beside the other tests under pytest-xdist.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def test_docs_build_strict(tmp_path):
    site = tmp_path / "site"
    env = dict(os.environ, NO_MKDOCS_2_WARNING="1")
    result = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=600,
    )
    assert result.returncode == 0, (
        "mkdocs build --strict failed (`make docs` shows the same; the docs tools are the `docs` extra: "
        "pip install -e '.[docs]'):\n" + result.stdout[-3000:] + result.stderr[-6000:]
    )
    for page in ("index.html", "cli.html", "reference/run.html"):
        assert (site / page).is_file(), page
