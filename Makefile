# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.t2v-installed
PROMPT ?= a large red circle moving left
export OMP_WAIT_POLICY ?= PASSIVE

.PHONY: demo test install clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	mkdir -p outputs
	@echo 'prompt: $(PROMPT)'
	$(BIN)/t2v generate "$(PROMPT)" -o outputs/demo.mp4 --sheet --seed 0

test: $(STAMP)
	$(BIN)/python -m pytest

clean:
	rm -rf $(VENV) outputs .pytest_cache
