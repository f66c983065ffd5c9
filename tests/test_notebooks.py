"""The notebooks of notebooks/: each one executes top to bottom in a real Jupyter kernel (nbclient,
the kernel running this Python), with the reduced settings, and they all follow the conventions."""

from __future__ import annotations

import json
import platform
import sys

import pytest
from _notebooks import CELL_TIMEOUT, FULL_VARIABLE, ROOT, execute, notebooks

NOTEBOOKS = notebooks()
EXPECTED = [f"{i:02d}_" for i in range(1, 8)]
MAX_BYTES = 3_000_000  # all of notebooks/, outputs and figures included


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path):
    """Every cell runs without an error (nbclient raises CellExecutionError naming the cell), each
    within CELL_TIMEOUT seconds, in a temporary working directory, SLAMJAX_FULL unset."""
    nb = execute(path, full=False, timeout=CELL_TIMEOUT)
    assert nb.metadata["language_info"]["version"] == platform.python_version()  # the kernel ran this Python
    outputs = [o for cell in nb.cells if cell.cell_type == "code" for o in cell.outputs]
    assert not [o for o in outputs if o.output_type == "error"]
    assert any("reduced" in o.get("text", "") for o in outputs), "the first code cell should print its settings"


def test_there_are_notebooks():
    assert NOTEBOOKS


def test_notebooks_01_to_07_exist():
    names = [p.name for p in NOTEBOOKS]
    missing = [prefix for prefix in EXPECTED if not any(name.startswith(prefix) for name in names)]
    assert not missing, f"no notebook starting with {missing} in notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_conventions(path):
    """Reduced vs full settings read from SLAMJAX_FULL in the first code cell; a markdown cell first;
    stored with the outputs of a successful reduced run (figures included) and no local paths."""
    nb = json.loads(path.read_text())
    cells = nb["cells"]
    assert cells[0]["cell_type"] == "markdown", "the first cell says what the notebook shows and cites the data"
    first_code = "".join(next(c for c in cells if c["cell_type"] == "code")["source"])
    assert f'os.environ.get("{FULL_VARIABLE}"' in first_code and "FULL" in first_code
    assert nb["metadata"]["kernelspec"]["name"] == "python3"
    outputs = [o for c in cells if c["cell_type"] == "code" for o in c["outputs"]]
    assert outputs, "store the notebook executed (python tests/_notebooks.py)"
    assert not [o for o in outputs if o["output_type"] == "error"]
    assert any("image/png" in o.get("data", {}) for o in outputs), "a notebook shows its plots"
    text = path.read_text()
    for local in {str(ROOT), sys.prefix}:
        assert local not in text, f"{path.name} names the local path {local}"


def test_notebooks_size():
    total = sum(p.stat().st_size for p in (ROOT / "notebooks").iterdir() if p.is_file())
    assert total < MAX_BYTES, f"notebooks/ holds {total / 1e6:.1f} MB; use smaller figures"
