# The two README commands: `make demo` and `make test`. Both set everything up on first use.
PYTHON ?= python3
VENV   := .venv
PY     := $(VENV)/bin/python
STAMP  := $(VENV)/.installed-stamp

.PHONY: demo test lint typecheck hadolint chromium postgresql docker-compose pytest bench bench-quality bench-dashboard bench-export clean

# Create the venv and install the package with its dev tools once; re-run only when
# pyproject.toml changes.
$(STAMP): pyproject.toml
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $(STAMP)

# The main job on the embedded default: local Ray on 127.0.0.1, SQLite under runs/, the digits
# dataset bundled with scikit-learn. A second run continues the same study (--resume) and
# prints its front again.
demo: $(STAMP)
	$(VENV)/bin/blocknas search examples/digits.yaml --resume

# mypy from cold (a fresh clone) takes about 35 s of one core, which the suite, often waiting on
# Ray and subprocesses, leaves free: the two run side by side (system packages installed first,
# one apt at a time).
test: lint hadolint chromium postgresql docker-compose
	$(MAKE) --no-print-directory -j2 typecheck pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check src tests bench
	$(VENV)/bin/ruff format --check src tests bench

typecheck: $(STAMP)
	$(VENV)/bin/mypy

hadolint: $(STAMP)
	$(VENV)/bin/hadolint --failure-threshold warning docker/Dockerfile

# Browser tests drive Debian's chromium through Playwright: installed here when missing.
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
chromium:
	@command -v chromium >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends chromium; }

# The PostgreSQL tests start a real server from Debian's postgresql package: installed when missing.
postgresql:
	@test -x "$$(pg_config --bindir 2>/dev/null)/postgres" || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends postgresql; }

# The deploy-file tests validate docker/compose.yaml with Debian's docker-compose: installed when missing.
docker-compose:
	@command -v docker-compose >/dev/null 2>&1 || { \
	  $(SUDO) apt-get update -qq && \
	  DEBIAN_FRONTEND=noninteractive $(SUDO) apt-get install -y -qq --no-install-recommends docker-compose; }

pytest: $(STAMP) chromium postgresql docker-compose
	$(PY) -m pytest -q --durations=30

bench: $(STAMP)
	$(PY) bench/bench_blocks.py
	$(PY) bench/bench_cost.py
	$(PY) bench/bench_latency.py
	$(PY) bench/bench_train_digits.py
	$(PY) bench/bench_search.py

# Search quality against random search at equal epochs, 5 seeds, two spaces (docs/benchmarks.md);
# runs are cached under runs/bench-quality, so a second call only prints the tables.
bench-quality: $(STAMP)
	$(PY) bench/bench_quality.py
	$(PY) bench/replay_stopping.py

# The dashboard at scale: time to a drawn front against optuna-dashboard on the same
# 10,000-trial study, then blocknas alone at 100,000 (docs/benchmarks.md). The studies are
# written the first time (minutes; 100,000 trials take about half an hour) and cached in
# bench/.cache.
bench-dashboard: $(STAMP) chromium
	$(PY) -m pip install -q 'optuna-dashboard==0.21.0'
	$(PY) bench/bench_dashboard.py --trials 10000
	$(PY) bench/bench_dashboard.py --trials 100000 --repeats 3 --only-blocknas

# Latency of each exported format (TorchScript, torch.export, ONNX Runtime) at batch 1 and 32 on
# CPU, one thread, against the training form, ACB ResNet-20 against plain convs
# (docs/benchmarks.md); about 2 minutes.
bench-export: $(STAMP)
	$(PY) -m pip install -q -e '.[export]'
	$(PY) bench/bench_export.py

clean:
	rm -rf $(VENV) build *.egg-info src/*.egg-info .pytest_cache .mypy_cache .ruff_cache
