# Two commands do everything on a fresh clone: `make demo` and `make test`.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: demo story test test-long lint typecheck unit bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

$(STAMP): $(BIN)/python pyproject.toml
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

demo: $(STAMP)
	$(BIN)/patchline demo

# The 2018 story on simulated time: 1,000 phones, a ban, a licence, its lapse.
story: $(STAMP)
	$(BIN)/patchline demo --story 2018 --phones 1000 --port 8001 --workdir .demo-story

lint: $(STAMP)
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy

# The default suite (under ten minutes on two cores); the long form adds the replays,
# the simulated fleets and the tests that start several server processes.
unit: $(STAMP)
	$(BIN)/pytest -m "not long" -n 2 --dist loadfile

test-long: $(STAMP)
	$(BIN)/pytest -m long

test: lint typecheck unit

# Needs Debian's nginx, wrk, curl and zstd, and PostgreSQL for the check-in rate.
bench: $(STAMP)
	$(BIN)/pip install --quiet -e '.[dev,bench]'
	$(BIN)/python bench/publish_scale.py
	$(BIN)/python bench/checkin_rate.py
	$(BIN)/python bench/million.py
	$(BIN)/python bench/fleet_day.py
	$(BIN)/python bench/processes.py
	$(BIN)/python bench/agent_download.py
	bash bench/fetch_delta_data.sh $(BIN)/python
	$(BIN)/python bench/delta_compare.py
	$(BIN)/python bench/story_2018.py

clean:
	rm -rf $(VENV) .demo .pytest_cache .mypy_cache .ruff_cache
