# The two commands a newcomer needs:  `make run`  and  `make test`.
# Everything is installed into ./.venv from pyproject.toml; nothing else is needed on the machine
# but Python 3.11+, a C/C++ compiler and cmake (llama-cpp-python builds from source once, ~10 min
# on 2 cores, with a portable CPU baseline: docs/install.md).

PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
QUESTION ?= What is the serial number of the replacement cryocooler?
EXAMPLE ?= examples/observatory_log_2023.txt
# Empty: the portable default of scripts/build-llama-wheel.sh (x86-64: AVX2+FMA+F16C).
LLAMA_CMAKE_ARGS ?=

.PHONY: run test lint install doctor rebuild-llama install-official install-frames clean

$(PY):
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip

# The project, its test tools, and the embedded model (llama.cpp + Qwen2.5-Coder-1.5B weights).
# First the system packages it uses when present (bubblewrap, the REPL sandbox; a note and no
# failure when one cannot be installed). Then llama-cpp-python from the project's own portable
# wheel (built once into ~/.cache/rlm-research/wheels, keyed by version and CPU flags), installed
# before the project so pip never picks a cached wheel built with another CPU's native flags.
$(VENV)/.installed: pyproject.toml scripts/build-llama-wheel.sh | $(PY)
	sh scripts/install-system-deps.sh
	wheel="$$(LLAMA_CMAKE_ARGS='$(LLAMA_CMAKE_ARGS)' sh scripts/build-llama-wheel.sh $(PY))" && \
		$(PY) -m pip install -q --force-reinstall --no-deps "$$wheel"
	$(PY) -m pip install -q -e '.[dev,local]'
	touch $@

# The self-check after install: the embedded model in a child process, weights, sandbox, data
# folder, API keys. A failure is one line that says what to do; `make` stops there.
$(VENV)/.doctor: $(VENV)/.installed
	$(VENV)/bin/rlm-research doctor
	touch $@

install: $(VENV)/.installed $(VENV)/.doctor

doctor: $(VENV)/.installed
	$(VENV)/bin/rlm-research doctor

# After a SIGILL (or to try other flags): LLAMA_CMAKE_ARGS="-DGGML_NATIVE=OFF ..." make rebuild-llama
rebuild-llama: | $(PY)
	wheel="$$(LLAMA_REBUILD=1 LLAMA_CMAKE_ARGS='$(LLAMA_CMAKE_ARGS)' sh scripts/build-llama-wheel.sh $(PY))" && \
		$(PY) -m pip install -q --force-reinstall --no-deps "$$wheel"
	rm -f $(VENV)/.doctor
	$(MAKE) install

# The main job: an RLM run over the bundled example, on the embedded model unless you pass
# MODEL=openai:gpt-4o-mini (with OPENAI_API_KEY set) or any other model spec.
run: install
	$(VENV)/bin/rlm-research run "$(QUESTION)" --source $(EXAMPLE) $(if $(MODEL),--model $(MODEL),)

test: $(VENV)/.installed
	$(PY) -m pytest -q

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check . && $(VENV)/bin/ruff format --check .

# Optional, for the benchmarks (bench/RESULTS.md): the official RLM (PyPI `rlms`) in a folder of
# its own, since it pins its own client libraries; and `datasets` for FRAMES from the hub.
install-official: install
	$(PY) -m pip install -q --target $(HOME)/.cache/rlm-research/official rlms fastapi starlette-context

install-frames: install
	$(PY) -m pip install -q -e '.[dev,local,frames]'

clean:
	rm -rf $(VENV) .pytest_cache
