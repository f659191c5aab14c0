# The two set-up commands of the README: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.t2v-installed
PROMPT ?= a large red circle moving left
export OMP_WAIT_POLICY ?= PASSIVE

MODELS ?= videogpt-shapes
.PHONY: demo test install browser results peers clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test,web]'
	touch $(STAMP)

install: $(STAMP)

demo: $(STAMP)
	mkdir -p outputs
	@echo 'prompt: $(PROMPT)'
	$(BIN)/t2v generate "$(PROMPT)" -o outputs/demo.mp4 --sheet --seed 0

test: $(STAMP) browser
	$(BIN)/python -m pytest

# headless Chromium for the browser test of `t2v serve`, from the system package registry where we may
# install (root and apt-get); elsewhere that one test is skipped
browser:
	@command -v chromedriver >/dev/null || { [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null && \
	  apt-get update -qq && apt-get install -y -qq chromium chromium-driver >/dev/null; } || \
	  echo "no chromium + chromedriver here: tests/test_browser.py will be skipped"

# every figure of docs/results.md and the README table, re-measured (about 10 minutes per model on 2 CPU cores)
results: $(STAMP)
	$(BIN)/pip install --quiet -e '.[test,bench]'
	for m in $(MODELS); do \
	  $(BIN)/t2v eval $$m --suite shapes --suite fvd --suite recon --suite speed --record || exit 1; \
	  $(BIN)/python benchmarks/latency.py --model $$m || exit 1; \
	done
	$(BIN)/python benchmarks/flops.py
	$(BIN)/python benchmarks/results.py

# the side-by-side with video-diffusion-pytorch, in its own environment (about 1.5 hours on 2 CPU cores)
peers:
	bash benchmarks/setup_peers.sh
	benchmarks/.venv-peers/bin/python benchmarks/peers.py --peer-precisions fp32,bf16
	benchmarks/.venv-peers/bin/python benchmarks/peers.py --tokenizer checkpoints/videogpt-shapes --train-minutes 10 \
	  --peer-precisions bf16 --peer-steps 2 --peer-sample-steps 10 --peer-eval-videos 10 --eval-videos 50 \
	  --json benchmarks/results/peers_equal_minutes.json
	$(BIN)/python benchmarks/results.py

clean:
	rm -rf $(VENV) outputs .pytest_cache
