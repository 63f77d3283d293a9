# mailsuite — developer entry points.  Needs only Python 3.11+ and make.
#   make demo   create .venv, install, run the server on the embedded defaults with --demo
#   make test   create .venv, install the test extra, run lint, format check, mypy and pytest
PYTHON ?= python3
VENV   ?= .venv
BIN     = $(VENV)/bin
PYTEST_ARGS ?=

.PHONY: demo run test lint typecheck pytest wheel clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip

# "compat" editable mode puts the checkout on sys.path, so twistd's plugin
# scan finds twisted/plugins/mailsuite_plugin.py in this tree.
$(VENV)/.installed: $(BIN)/python setup.cfg pyproject.toml
	$(BIN)/python -m pip install -q -e '.[test]' --config-settings editable_mode=compat
	touch $@

demo: $(VENV)/.installed
	$(BIN)/twistd -n --pidfile= mailsuite --demo

run: $(VENV)/.installed
	$(BIN)/twistd -n --pidfile= mailsuite $(ARGS)

lint: $(VENV)/.installed
	$(BIN)/ruff check mailsuite tests bench twisted
	$(BIN)/ruff format --check mailsuite tests bench twisted

typecheck: $(VENV)/.installed
	$(BIN)/mypy

pytest: $(VENV)/.installed
	$(BIN)/python -m pytest -n 2 -q $(PYTEST_ARGS)

test: lint typecheck pytest

wheel: $(VENV)/.installed
	$(BIN)/python -m build --wheel --outdir dist .

clean:
	rm -rf $(VENV) build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache
