# Set-up and everyday commands. `make train` and `make test` install what they need first.
VENV   ?= .venv
PYTHON ?= python3
PY     := $(VENV)/bin/python
# The data root: $LENET5_DATA_DIR if set, else ../shared/data where it exists (CI and the
# development machines, which have no internet), else data/ (torchvision downloads there).
LENET5_DATA_DIR ?= $(if $(wildcard ../shared/data/MNIST/raw),$(abspath ../shared/data),data)
export LENET5_DATA_DIR
# Test processes (pytest-xdist): CI's two cores; TEST_WORKERS=0 runs the suite in this process.
# loadfile: a module's tests run on one worker, so its module fixtures are built once; the files
# are handed out costliest first (tests/conftest.py orders them), not by their number of tests.
TEST_WORKERS ?= 2

.PHONY: install train test lint bench study clean wheel demo

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -e '.[dev]'
	touch $@

train: install  ## the paper's LeNet-5 on MNIST; extra Hydra overrides via ARGS="..."
	$(PY) train.py $(ARGS)

test: install  ## the whole suite, slow real-data tests included; narrow it with ARGS="-m 'not slow'"
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(ARGS)

demo: install  ## the draw-a-digit page (http://127.0.0.1:8000) on the newest outputs/**/*.ckpt; trains nothing
	@$(PY) -m lenet5.demo outputs $(ARGS)

bench: install  ## seconds per epoch: hand loop vs train.py vs per-sample transforms (ARGS=--quick)
	$(PY) benchmarks/speed.py $(ARGS)

wheel: install  ## dist/lenet5-*.whl: configs inside, console scripts lenet5-train, lenet5-summary, ...
	$(PY) -m pip wheel --no-deps --no-build-isolation --quiet -w dist .

# The paper reproduced and the ablation study (docs/results.md): hours of CPU, results under
# outputs/study/<table>/ with report.md beside each, copied to docs/study/. A failed job is
# recorded and the rest go on.
study: install  ## the reproduction runs (3 seeds each), SDLM, the other recipes, every study table
	docs/run_study.sh

lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

clean:
	rm -rf $(VENV) .pytest_cache .ruff_cache wandb src/*.egg-info build dist
	find outputs -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
