# slamjax developer tasks.  `make help` lists them.

VENV      := .venv
PYTHON    := $(VENV)/bin/python
STAMP     := $(VENV)/.installed
PYTEST_N  ?= 2

# Persistent XLA compilation cache: repeated test/demo runs skip recompiling.
export JAX_COMPILATION_CACHE_DIR := $(CURDIR)/.jax_cache

.DEFAULT_GOAL := help
.PHONY: help venv demo test docs bench clean distclean

help:
	@echo "make venv   create $(VENV) (Python 3.12) and install slamjax with its dev and docs extras"
	@echo "make demo   fit the bundled wheat data set (configs/wheat.yaml) with the CLI; report in runs/wheat/report.html"
	@echo "make test   run the test suite (pytest -n $(PYTEST_N)); tests/test_docs.py builds the docs too"
	@echo "make docs   build the documentation (mkdocs.yml, docs/, API reference from the docstrings) into site/"
	@echo "make bench  run benchmarks/speed.py"
	@echo "make clean  remove build outputs and caches (keeps $(VENV); 'make distclean' removes it too)"

venv: $(STAMP)

# Re-installs whenever pyproject.toml changes.
$(STAMP): pyproject.toml
	@set -e; \
	if [ ! -x "$(PYTHON)" ]; then \
	  py=""; \
	  if python3.12 --version >/dev/null 2>&1; then \
	    py=python3.12; \
	  elif command -v pyenv >/dev/null 2>&1; then \
	    for v in $$(pyenv versions --bare 2>/dev/null | grep -E '^3\.12(\.[0-9]+)?$$' | sort -t. -k3,3nr); do \
	      if PYENV_VERSION=$$v python3.12 --version >/dev/null 2>&1; then \
	        py="env PYENV_VERSION=$$v python3.12"; break; \
	      fi; \
	    done; \
	    if [ -z "$$py" ]; then \
	      for p in "$$(pyenv root)"/versions/3.12*/bin/python3.12; do \
	        if [ -x "$$p" ] && "$$p" --version >/dev/null 2>&1; then py="$$p"; break; fi; \
	      done; \
	    fi; \
	  fi; \
	  if [ -z "$$py" ]; then \
	    for p in /usr/local/bin/python3.12 /usr/bin/python3.12; do \
	      if [ -x "$$p" ] && "$$p" --version >/dev/null 2>&1; then py="$$p"; break; fi; \
	    done; \
	  fi; \
	  if [ -z "$$py" ]; then \
	    echo "error: no Python 3.12 interpreter found (tried python3.12, pyenv's 3.12.x," >&2; \
	    echo "       /usr/local/bin/python3.12 and /usr/bin/python3.12). Install Python 3.12," >&2; \
	    echo "       e.g. 'pyenv install 3.12', and run 'make venv' again." >&2; \
	    exit 1; \
	  fi; \
	  echo "creating $(VENV) with $$($$py --version 2>&1) ($$py)"; \
	  $$py -m venv $(VENV); \
	fi; \
	if ! $(PYTHON) -c 'import sys; sys.exit(sys.version_info[:2] != (3, 12))'; then \
	  echo "error: $(VENV) uses $$($(PYTHON) --version 2>&1), not Python 3.12; remove $(VENV) and run 'make venv' again" >&2; \
	  exit 1; \
	fi
	$(PYTHON) -m pip install -e '.[dev,docs]'
	@touch $@

# One BLAS thread: the sweep's host-side BLAS calls crawl with threads fighting over 2 cores.
demo: venv
	OPENBLAS_NUM_THREADS=1 $(VENV)/bin/slamjax fit configs/wheat.yaml --out runs/wheat --overwrite

test: venv
	OPENBLAS_NUM_THREADS=1 $(PYTHON) -m pytest -n $(PYTEST_N) --durations=20

# --strict: a broken link, anchor or docstring fails the build (tests/test_docs.py runs the same build).
# NO_MKDOCS_2_WARNING: mkdocs-material's banner about MkDocs 2.0, printed on every build.
docs: venv
	NO_MKDOCS_2_WARNING=1 $(PYTHON) -m mkdocs build --strict --site-dir site

bench: venv
	$(PYTHON) benchmarks/speed.py

clean:
	rm -rf build dist site *.egg-info .pytest_cache .jax_cache
	find . -path ./.git -prune -o -path ./$(VENV) -prune -o -type d -name __pycache__ -prune -exec rm -rf {} +

distclean: clean
	rm -rf $(VENV)
