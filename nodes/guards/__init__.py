"""Guards: the named, optional rules that catch a small model's failure modes, kept apart from
the paper's loop (ask, run, observe, repeat, finalize). `observe` makes one call here per turn.

Each guard (see `base.Guard`) reads the question and what the run printed before it speaks, and
says why in the run's own terms. The `guards` setting picks a preset or a list of names;
docs/guards.md lists them with their presets and measurements.
"""

from __future__ import annotations

from rlm_research.nodes.guards.base import Evidence, Finding, Guard, Moment, offers_answer
from rlm_research.nodes.guards.chain import NEXT_HOP_GUARD
from rlm_research.nodes.guards.counted_headings import COUNTED_HEADINGS_GUARD
from rlm_research.nodes.guards.counts import COUNT_GUARD, UNPRINTED_GUARD
from rlm_research.nodes.guards.early import (
    ANSWER_DICT_GUARD,
    GAVE_UP_GUARD,
    GUESSED_GUARD,
    PLACEHOLDER_GUARD,
)
from rlm_research.nodes.guards.helper_read import HELPER_REPLY_GUARD
from rlm_research.nodes.guards.helper_sweep import SWEEP_GUARD
from rlm_research.nodes.guards.names import UNSEARCHED_GUARD
from rlm_research.nodes.guards.shared_fields import GROUPS_GUARD
from rlm_research.nodes.guards.stuck import STUCK_GUARD

# In the order they are asked: at an answer, the first that fires sends it back.
GUARDS: tuple[Guard, ...] = (
    GAVE_UP_GUARD,
    GUESSED_GUARD,
    PLACEHOLDER_GUARD,
    UNPRINTED_GUARD,
    UNSEARCHED_GUARD,
    NEXT_HOP_GUARD,
    COUNTED_HEADINGS_GUARD,
    COUNT_GUARD,
    ANSWER_DICT_GUARD,
    STUCK_GUARD,
    HELPER_REPLY_GUARD,
    GROUPS_GUARD,
    SWEEP_GUARD,
)
BY_NAME = {g.name: g for g in GUARDS}
PRESETS: dict[str, tuple[str, ...]] = {
    "default": tuple(BY_NAME),
    # Only guards that point at the run's own printed evidence and cost no helper calls.
    "minimal": ("gave_up", "guessed", "placeholder", "unprinted_number", "answer_dict"),
    "off": (),
}

__all__ = [
    "BY_NAME", "GUARDS", "PRESETS", "Evidence", "Finding", "Guard", "enabled", "offers_answer",
    "review",
]  # fmt: skip


def enabled(setting: str | list[str] | tuple[str, ...] | None) -> tuple[str, ...]:
    """The guard names a `guards` setting turns on: a preset ("default", "minimal", "off"), or
    names separated by commas or given as a list. An unknown name raises ValueError."""
    if setting is None:
        return PRESETS["default"]
    items = setting.split(",") if isinstance(setting, str) else list(setting)
    names: list[str] = []
    for item in (str(i).strip() for i in items):
        if item in PRESETS:
            names += PRESETS[item]
        elif item in BY_NAME:
            names.append(item)
        elif item:
            known = ", ".join([*PRESETS, *BY_NAME])
            raise ValueError(f"unknown guard or preset {item!r} (known: {known})")
    return tuple(dict.fromkeys(names))


def review(ev: Evidence, names: tuple[str, ...], moment: Moment) -> list[tuple[str, Finding]]:
    """The findings of the enabled guards that look at this `moment`, in order. At an answer
    only the first one counts (it sends the answer back); notes may add up. A guard that has
    spoken its `limit` times at this level stays silent."""
    out = []
    for guard in GUARDS:
        looks = guard.moment == moment or (guard.moment == "any" and moment in ("answer", "note"))
        if guard.name not in names or not looks:
            continue
        if ev.fired.count(guard.name) >= guard.limit:
            continue
        found = guard.check(ev)
        if found is not None:
            out.append((guard.name, found))
            if moment in ("answer", "stuck", "last"):
                break
    return out
