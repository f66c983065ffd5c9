"""Executes the notebooks of notebooks/ with nbclient, in a kernel of this Python (the venv's).

Used by tests/test_notebooks.py, and as a script to store the notebooks with their outputs:

    python tests/_notebooks.py                      # every notebook, reduced settings, outputs saved in place
    python tests/_notebooks.py notebooks/02_*.ipynb # some of them
    SLAMJAX_FULL=1 python tests/_notebooks.py --check notebooks/01_*.ipynb   # run the full settings, save nothing
    SLAMJAX_FULL=1 python tests/_notebooks.py --out /tmp/full notebooks/01_*.ipynb  # ... saved elsewhere

Each notebook runs in a fresh temporary working directory (what it writes, e.g. a store, is removed
afterwards), with the repository first on the kernel's PYTHONPATH (the checked-out slamjax is the
one tested) and SLAMJAX_FULL set only when asked for. Saved outputs have local paths removed.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
NOTEBOOK_DIR = ROOT / "notebooks"
FULL_VARIABLE = "SLAMJAX_FULL"
CELL_TIMEOUT = 600  # seconds per cell


def notebooks() -> list[Path]:
    return sorted(NOTEBOOK_DIR.glob("*.ipynb"))


def _kernel_dir(parent: Path) -> Path:
    """A kernelspec "python3" that runs this very interpreter. JUPYTER_PATH comes first in
    jupyter_client's search, so a python3 kernelspec of another Python (user or system) cannot win."""
    spec = parent / "kernels" / "python3"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [sys.executable, "-m", "ipykernel_launcher", "-f", "{connection_file}"],
        "display_name": "Python 3 (ipykernel)",
        "language": "python",
    }))
    return parent


def jupyter_variables(scratch: Path) -> dict[str, str]:
    """Where Jupyter looks for the kernelspec and writes the connection file, and IPython's profile
    folder: all in ``scratch`` (nothing under $HOME; no user startup files run in the kernel)."""
    return {
        "JUPYTER_PATH": os.pathsep.join([str(_kernel_dir(scratch / "jupyter")),
                                         *filter(None, [os.environ.get("JUPYTER_PATH")])]),
        "JUPYTER_RUNTIME_DIR": str(scratch / "runtime"),
        "IPYTHONDIR": str(scratch / "ipython"),
    }


def kernel_environment(full: bool, variables: dict[str, str]) -> dict[str, str]:
    env = dict(os.environ)
    env.pop(FULL_VARIABLE, None)
    if full:
        env[FULL_VARIABLE] = "1"
    env.pop("MPLBACKEND", None)  # the kernel's inline backend displays the figures
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), *filter(None, [os.environ.get("PYTHONPATH")])])
    env.update(variables)
    env.setdefault("OPENBLAS_NUM_THREADS", "1")  # as `make test`: BLAS threads fight over 2 cores
    env["PYDEVD_DISABLE_FILE_VALIDATION"] = "1"  # no debugger warning on the kernel's stderr
    return env


@contextlib.contextmanager
def _environ(variables: dict[str, str]):
    """os.environ with ``variables`` set, restored afterwards (jupyter_client reads them here)."""
    saved = {name: os.environ.get(name) for name in variables}
    os.environ.update(variables)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def execute(path: Path, *, full: bool = False, timeout: int = CELL_TIMEOUT):
    """Runs every cell of the notebook at ``path`` in a new kernel; returns the executed notebook.
    Raises nbclient's CellExecutionError on the first cell that fails."""
    import nbclient
    import nbformat

    nb = nbformat.read(path, as_version=4)
    with tempfile.TemporaryDirectory(prefix="slamjax-notebook-") as scratch:
        scratch = Path(scratch)
        work = scratch / "work"
        work.mkdir()
        variables = jupyter_variables(scratch)
        env = kernel_environment(full, variables)
        with _environ(variables):
            client = nbclient.NotebookClient(
                nb, timeout=timeout, kernel_name="python3", record_timing=False,
                resources={"metadata": {"path": str(work)}},
            )
            client.execute(env=env, cwd=str(work))
        _scrub(nb, {str(work): ".", str(scratch): "<tmp>", str(ROOT) + os.sep: "", sys.prefix: "<venv>",
                    tempfile.gettempdir(): "<tmp>", str(Path.home()): "~"})
    return nb


def _scrub(nb, replacements: dict[str, str]) -> None:
    """Removes local paths from the text outputs (warnings name the file that raised them)."""
    order = sorted(replacements, key=len, reverse=True)  # longest first: a folder before its parent
    pattern = re.compile("|".join(re.escape(p) for p in order))

    def clean(text: str) -> str:
        return pattern.sub(lambda m: replacements[m.group(0)], text)

    for cell in nb.cells:
        for output in cell.get("outputs", []):
            if "text" in output:
                output["text"] = clean(output["text"])
            for mime, value in output.get("data", {}).items():
                if mime.startswith("text/") and isinstance(value, str):
                    output["data"][mime] = clean(value)
            if "traceback" in output:
                output["traceback"] = [clean(line) for line in output["traceback"]]


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("paths", nargs="*", type=Path, help="notebooks (default: all of notebooks/)")
    parser.add_argument("--check", action="store_true", help="execute only; do not save the outputs")
    parser.add_argument("--out", type=Path, help="save the executed notebooks in this folder instead of in place")
    args = parser.parse_args(argv)
    full = os.environ.get(FULL_VARIABLE, "0") == "1"
    if full and not (args.check or args.out):
        parser.error(f"{FULL_VARIABLE}=1: the stored notebooks keep the reduced settings; add --check or --out")
    import nbformat

    for path in args.paths or notebooks():
        started = time.perf_counter()
        nb = execute(path, full=full)
        seconds = time.perf_counter() - started
        saved = None if args.check else path if args.out is None else args.out / path.name
        if saved is not None:
            saved.parent.mkdir(parents=True, exist_ok=True)
            nbformat.write(nb, saved)
        print(f"{path.name}: {seconds:.0f} s{'' if saved is None else f', saved to {saved}'} "
              f"({'full' if full else 'reduced'} settings)", flush=True)


if __name__ == "__main__":
    main()
