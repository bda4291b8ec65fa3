# The two set-up commands of the README: `make parity` and `make test`. Both create .venv on first use.
VENV := .venv
PY := $(VENV)/bin/python

$(VENV)/.installed: pyproject.toml
	python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --editable ".[parity,test,notebooks]"
	touch $@

.PHONY: parity test lint bench
parity: $(VENV)/.installed
	$(PY) -m parity

test: $(VENV)/.installed
	$(PY) -m ruff check .
	$(PY) -m pytest -q --doctest-modules jaxlinear tests --nbmake notebooks

bench: $(VENV)/.installed
	$(PY) -m benchmarks
