"""Every notebook in notebooks/ runs top to bottom (code cells executed in one namespace)."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import pytest

NOTEBOOKS = sorted((Path(__file__).parent.parent / "notebooks").glob("*.ipynb"))


@pytest.mark.slow
@pytest.mark.parametrize("path", NOTEBOOKS, ids=lambda p: p.name)
def test_notebook_runs(path):
    namespace: dict = {}
    cells = json.loads(path.read_text())["cells"]
    assert any(c["cell_type"] == "code" for c in cells)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", UserWarning)  # short chains warn about r_hat, by design
        for cell in cells:
            if cell["cell_type"] == "code":
                exec(compile("".join(cell["source"]), f"{path.name}", "exec"), namespace)


def test_there_are_notebooks():
    assert NOTEBOOKS
