# Two commands do everything: `make demo` and `make test`. See README.md.
SHELL := /bin/bash
PY := .venv/bin/python
DATASET ?= demo
PRESET ?= $(DATASET)
SEED ?= 42
# extra options for the weekly run, e.g. RUN_ARGS="--budget 8000 --max-discount 0.2"
RUN_ARGS ?=
WEEKS ?= 4
BENCH_PRESETS ?= $(if $(filter command line environment,$(origin PRESET)),$(PRESET),demo large xl)

export PYTHONDONTWRITEBYTECODE := 1

.PHONY: demo test setup services stop data weekly airflow mlflow bench bench-mip score simulate-week measure report loop score-bench lint clean

demo: setup services data weekly ## set up everything and run the weekly flow on the demo data

test: setup services ## run the whole test suite
	$(PY) -m pytest tests -q

setup: ## virtual environment with the pinned stack
	@bash scripts/bootstrap.sh

services: setup ## start the embedded PostgreSQL (port: PROMO_PG_PORT, default 55432)
	@$(PY) -m local.pg start

stop: ## stop the embedded PostgreSQL
	@$(PY) -m local.pg stop

data: setup ## generate the synthetic market (PRESET=tiny|demo|large|xl) into the landing area
	@$(PY) -m local.runner generate --preset $(PRESET) --seed $(SEED) $(if $(HISTORY_END),--history-end $(HISTORY_END))

weekly: setup services ## run the weekly DAG in-process on DATASET and print the plan summary
	@$(PY) -m local.runner weekly --dataset $(DATASET) $(RUN_ARGS)

airflow: setup services ## start the Airflow UI on http://localhost:8080 (trigger promo_weekly there)
	@$(PY) -m local.runner airflow

mlflow: setup ## the MLflow UI on http://localhost:5000: training runs, model versions, champions
	@$(PY) -m mlflow ui --port 5000 --backend-store-uri "$$($(PY) -c 'from promoflow.settings import get_settings; print(get_settings().mlflow_uri)')"

bench: setup services ## benchmark (not a test): per stage time, memory, rows/s for PRESET, or BENCH_PRESETS (default demo large xl, ~1 h)
	@$(PY) scripts/bench.py --presets $(BENCH_PRESETS) $(BENCH_ARGS)

bench-mip: setup ## the discount MIP alone by catalogue size (1k, 10k, 50k products)
	@$(PY) scripts/bench_optimizer.py

score: setup services ## score the latest plan and segments of DATASET on its ground truth (synthetic markets)
	@$(PY) -m scoring.score --dataset $(DATASET)
	@$(PY) -m scoring.segments --dataset $(DATASET)

simulate-week: setup services ## the plan week happens on DATASET's synthetic market: the latest plan -> the next delivery
	@$(PY) -m sources.synthetic.simulate --dataset $(DATASET)

measure: setup services ## measure DATASET's published plan weeks whose sales are in (PLAN_WEEK=YYYY-MM-DD for one)
	@$(PY) -m measurement.measure --dataset $(DATASET) $(if $(PLAN_WEEK),--plan-week $(PLAN_WEEK))

report: setup services ## write the HTML plan report of DATASET's latest published run (RUN_ID=... for one) and print its path
	@$(PY) -m report.plan_report $(if $(RUN_ID),--run-id $(RUN_ID),--dataset $(DATASET))

loop: setup services ## closed loop on a fresh PRESET market: measure, plan, simulate, WEEKS times (~30 min on demo)
	@$(PY) -m local.loop --preset $(PRESET) --weeks $(WEEKS) --seed $(SEED) $(RUN_ARGS)

score-bench: setup services ## plan-vs-oracle efficiency over 3 seeds x 2 plan weeks (~30 min on demo)
	@$(PY) scripts/score_seeds.py --preset $(PRESET)

lint:
	$(PY) -m ruff check .

clean: stop ## remove the work folder (database, lake, models, runs)
	rm -rf .local
