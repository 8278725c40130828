# Everything a newcomer needs: `make run` (set up + clean data/raw into data/clean) and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed-stamp

.PHONY: setup run test bench bench-generated quality incremental eval fit lock clean clean-bench

$(STAMP): pyproject.toml requirements.lock
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -r requirements.lock
	@# setuptools warns about editable installs on every build; keep its log, show it on failure
	$(BIN)/python -m pip install --quiet --no-deps -e . 2> $(VENV)/install.log || { cat $(VENV)/install.log; exit 1; }
	@touch $(STAMP)

setup: $(STAMP)

run: setup
	$(BIN)/corpusclean run --raw data/raw --out data/clean

# On two workers (pytest-xdist; tests/conftest.py keeps the tests that share a slow start on one).
# One file, or serially: .venv/bin/python -m pytest -q tests/flows/test_cli.py
test: setup
	$(BIN)/python -m pytest -q -n 2 --dist loadgroup

# Throughput on real web-page text (needs ../shared; built once into bench/out/pages-50mb).
bench: setup
	$(BIN)/python bench/throughput.py

# The same on the generated corpus (bench/corpus_gen.py: few lines per page, overstates speed).
bench-generated: setup
	$(BIN)/python bench/throughput.py --generated

quality: setup
	$(BIN)/python bench/dedup_quality.py

# Daily batches into one corpus: per-day cost, and identical to one run over everything.
incremental: setup
	$(BIN)/python bench/incremental.py

# Boilerplate removal with the real pipeline, scored on ../shared/eval/boilerplate (990 real pages,
# snippet F1) and ../shared/eval/boilerplate-gold (dragnet, cleaneval, cportal, readability: line F1).
eval: setup
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/eval_boilerplate.py

# Refit the line classifier on all five sets into $(MODEL_OUT), and print the leave-one-benchmark-out
# table (each set scored by a model fitted without it). Adopt a refit only if that table beats today's:
#   make fit MODEL_OUT=tasks/stages/models/content_classifier.json
MODEL_OUT ?= bench/out/content_classifier.json
fit: setup
	@mkdir -p $(dir $(MODEL_OUT))
	PYTHONPATH=$(CURDIR) $(BIN)/python bench/eval_boilerplate.py --fit --lobo --model-out $(MODEL_OUT) $(FIT_ARGS)

# Re-resolve the pinned dependency set after editing pyproject.toml (needs uv: pip install uv).
lock:
	uv pip compile pyproject.toml --extra dev --extra dask --extra html --python-version 3.11 --quiet -o requirements.lock

clean:
	rm -rf data/clean/manifest.json data/clean/_manifests data/clean/runs data/clean/report.* data/clean/_dedup_index data/clean/.staging-*

# The benchmarks' cached corpora (bench/out: built again on the next benchmark run).
clean-bench:
	rm -rf bench/out
