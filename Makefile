# The two set-up commands of the README: `make parity` and `make test`. Both create .venv on first use.
VENV := .venv
PY := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --editable ".[parity,test,notebooks,docs]"
	touch $@

.PHONY: parity test typecheck docs figures bench
parity: $(VENV)/.installed
	$(PY) -m parity

test: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m pytest -q -n auto --doctest-modules jaxlinear tests --nbmake notebooks

# pyright (basic) on the package, with the settings of [tool.pyright] in pyproject.toml.
typecheck: $(VENV)/.installed
	$(VENV)/bin/pyright

bench: $(VENV)/.installed
	$(PY) -m benchmarks

# The API reference and guides, from the docstrings; any Sphinx warning fails the build.
docs: $(VENV)/.installed
	$(PY) -m sphinx -W --keep-going -q -b html docs docs/_build/html

# The README's figures, from the library's own code, into docs/figures/.
figures: $(VENV)/.installed
	$(PY) docs/figures.py
