# The two commands of the README. Both set up whatever is missing first.
.PHONY: run test lint bench

PORT ?= 8080

run:            ## set up, then start the gateway on http://127.0.0.1:$(PORT)/
	@scripts/setup.sh run
	@LITELLM_LOCAL_MODEL_COST_MAP=True .venv/bin/nexflow serve --port $(PORT)

test:           ## set up, then run the whole test suite
	@scripts/setup.sh test
	@LITELLM_LOCAL_MODEL_COST_MAP=True .venv/bin/python -m pytest -q

lint:           ## ruff and mypy, as CI runs them
	@.venv/bin/ruff check nexflow connectors tests bench
	@.venv/bin/ruff format --check nexflow connectors
	@.venv/bin/mypy
	@.venv/bin/mypy connectors

bench:          ## the gateway benchmark (see docs/benchmarks.md)
	@.venv/bin/python bench/gateway_bench.py
