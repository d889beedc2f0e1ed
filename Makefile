# `make demo`: set up .venv and run the main job (a preview PNG of every method on bundled photos).
# `make test`: set up .venv and run the test suite.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python

.PHONY: demo test bench clean

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[all,test]'
	touch $@

demo: $(VENV)/.installed
	$(VENV)/bin/mixmask preview --out out/preview.png

test: $(VENV)/.installed
	$(PY) -m pytest -q

bench: $(VENV)/.installed
	$(VENV)/bin/mixmask bench --json out/bench.json --plot out/bench.png

clean:
	rm -rf $(VENV) out
