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

# What `make install` puts in $(VENV): the project editable with every extra and the dev tools,
# at the versions CI passed with (CONSTRAINTS, written by `make constraints`).
EXTRAS      ?= all,dev
CONSTRAINTS ?= constraints.txt
# uv (from PyPI) installs the same requirements several times faster than pip; pip is the
# fallback where uv cannot be had or fails (INSTALLER=pip forces it). uv reads no pip
# configuration, so the find-links and extra indexes pip is set up with here (a machine's local
# wheels and mirrors) are handed to it, and it picks the best version across them all, as pip does.
INSTALLER   ?= uv
PIP_SETTING  = $(shell $(PYTHON) -m pip config get global.$(1) 2>/dev/null)
UV_SOURCES   = UV_INDEX_STRATEGY=unsafe-best-match \
	UV_FIND_LINKS="$(subst $(space),$(comma),$(sort $(PIP_FIND_LINKS) $(call PIP_SETTING,find-links)))" \
	UV_EXTRA_INDEX_URL="$(strip $(PIP_EXTRA_INDEX_URL) $(call PIP_SETTING,extra-index-url))"
space := $(subst ,, )
comma := ,

.PHONY: install constraints train test lint bench study clean wheel demo mlflow-ui

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml $(CONSTRAINTS)
	$(PYTHON) -m venv $(VENV)
	@if [ "$(INSTALLER)" = uv ] && $(PY) -m pip install --quiet uv && \
	    $(UV_SOURCES) $(VENV)/bin/uv pip install --quiet --python $(PY) -c $(CONSTRAINTS) -e '.[$(EXTRAS)]'; then \
	    echo "installed with uv"; \
	else \
	    echo "installing with pip"; \
	    $(PY) -m pip install --quiet --upgrade pip && \
	    $(PY) -m pip install --quiet -c $(CONSTRAINTS) -e '.[$(EXTRAS)]'; \
	fi
	touch $@

constraints: install  ## constraints.txt from $(VENV): the versions the suite passed with, for make install
	$(PY) -m pip freeze --exclude-editable | grep -v -i -e '^lenet5' -e '^uv==' > $(CONSTRAINTS)

train: install  ## the paper's LeNet-5 on MNIST; extra Hydra overrides via ARGS="..."
	$(PY) train.py $(ARGS)

test: install  ## the whole suite, slow real-data tests included; narrow it with ARGS="-m 'not slow'"
	$(PY) -m pytest -n $(TEST_WORKERS) --dist loadfile --no-loadscope-reorder $(ARGS)

# The MLflow UI on the local store of logger=mlflow. mlflow's server needs SQLAlchemy 2, while the
# Optuna sweeper in $(VENV) pins SQLAlchemy < 2: it runs from an environment of its own.
MLFLOW_UI_VENV ?= .venv-mlflow-ui
mlflow-ui:  ## http://127.0.0.1:5000: every run of logger=mlflow started from this folder
	@[ -x $(MLFLOW_UI_VENV)/bin/mlflow ] || { $(PYTHON) -m venv $(MLFLOW_UI_VENV) && \
	    $(MLFLOW_UI_VENV)/bin/pip install --quiet "mlflow==$$(grep -i '^mlflow==' $(CONSTRAINTS) | cut -d= -f3)"; }
	$(MLFLOW_UI_VENV)/bin/mlflow ui --backend-store-uri sqlite:///outputs/mlflow/mlflow.db $(ARGS)

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
	rm -rf $(VENV) $(MLFLOW_UI_VENV) .pytest_cache .ruff_cache wandb src/*.egg-info build dist
	find outputs -mindepth 1 ! -name .gitkeep -exec rm -rf {} +
