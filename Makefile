# Two commands do everything on a fresh machine with Python 3.11:
#   make demo   - create .venv, install, build the sample workspace, run the main job
#   make test   - create .venv, install, run the whole test suite (slow tests included)
# Also: make test-fast (skips tests marked slow), make notebooks (jupytext --sync the
# NN_name.py sources with their .ipynb), make lab, make bench.
# Conda instead of a venv: conda env create -f environment.yml (see README.md).
PYTHON ?= python3.11
VENV   ?= .venv
BIN    := $(VENV)/bin
WS     ?= demo-workspace
# TensorFlow start-up logging silenced as imgcls.core.quiet does (your own setting wins).
export TF_CPP_MIN_LOG_LEVEL ?= 3
export KERAS_BACKEND ?= tensorflow

.PHONY: venv demo test test-fast notebooks lab bench clean chromium postgresql

$(BIN)/.installed: pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test,openvino,beam,postgres,cleaning]'
	$(BIN)/python -m ipykernel install --sys-prefix --name python3 >/dev/null
	touch $@

venv: $(BIN)/.installed

demo: venv
	$(BIN)/imgcls demo --workspace $(WS)

# The browser test drives Debian's chromium (Playwright cannot download a browser here).
chromium:
	@if [ ! -x /usr/bin/chromium ]; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's chromium for the browser test"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null; \
	  else echo "note: /usr/bin/chromium missing and not root: the browser test will be skipped (fails under CI=true)"; fi; \
	fi

# The PostgreSQL log tests start a real server from Debian's binaries (initdb, pg_ctl) in a temp folder.
postgresql:
	@if ! ls /usr/lib/postgresql/*/bin/initdb >/dev/null 2>&1; then \
	  if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null; then \
	    echo "installing Debian's postgresql for the PostgreSQL log tests"; \
	    apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null; \
	  else echo "note: PostgreSQL binaries missing and not root: the PostgreSQL log tests will be skipped (fail under CI=true)"; fi; \
	fi

test: venv chromium postgresql
	$(BIN)/python -m pytest -q

# Everything but the tests marked `slow` (training, notebook runs): the quick loop while editing.
test-fast: venv postgresql
	$(BIN)/python -m pytest -q -m "not slow"

# Pair each notebook source with its .ipynb (the newer side wins), after editing either.
notebooks: venv
	$(BIN)/jupytext --sync notebooks/*.py

lab: venv
	$(BIN)/jupyter lab --ip 127.0.0.1 --notebook-dir notebooks

bench: venv
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(VENV) $(WS) .pytest_cache build *.egg-info
