"""Seeded long-context tasks in the spirit of the RLM paper (arXiv 2512.24601), at a size in
characters (about 100K, 1M, 10M).

Five families, each `make(family, size, seed) -> Task` with a question, a context, a gold answer and
a scorer (answer text -> score in [0, 1]):

- `needle`: one fact among filler and distractor facts of the same shape (other keys, near-miss
  values); exact match.
- `count_explicit`: log lines with a written label; how many lines carry one label. The label mix
  drifts along the file, so counting a prefix and scaling up misleads. Score 0.75^|error| (OOLONG).
- `count_implied`: customer reviews; how many reviews of one product are favourable. Nothing says
  "positive": each review has to be read (sub-calls or judgement). Score 0.75^|error|.
- `pairs`: person records; which pairs share both city and birth date (near misses share one).
  F1 over the set of unordered id pairs.
- `multihop`: short synthetic encyclopedia articles about invented people, companies and towns; a
  question that chains 2-3 articles. Exact match.

Every name is invented from syllables so the model's world knowledge cannot help, and everything
comes from `random.Random(seed)` (plus the family and size), so a task is the same on every
machine. Scorers normalise answers (case, punctuation, a short preamble) but never look for a
generator's wording.
"""

from __future__ import annotations

import random
import re
import string
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

FAMILIES = ("needle", "count_explicit", "count_implied", "pairs", "multihop")
# The one place the seed split is decided. Seeds 1-6 were run and read while the loop was
# tuned (bench/RESULTS.md before issue 15); 7-9 are held out: report them apart and never read
# their trajectories while changing the loop.
DEV_SEEDS = (1, 2, 3, 4, 5, 6)
HELD_OUT_SEEDS = (7, 8, 9)


def split_of_seed(seed: int) -> str:
    return "held_out" if seed in HELD_OUT_SEEDS else "dev"


SIZES = {"100k": 100_000, "1m": 1_000_000, "10m": 10_000_000}


@dataclass
class Task:
    family: str
    size: int  # requested size in characters; len(context) is within a few hundred of it
    seed: int
    question: str
    context: str
    gold: Any
    scorer: Callable[[str], float] = field(repr=False)
    meta: dict[str, Any] = field(default_factory=dict)

    @property
    def id(self) -> str:
        return f"{self.family}@{size_label(self.size)}#s{self.seed}"

    def score(self, answer: str | None) -> float:
        return float(self.scorer(answer or ""))


def parse_size(text: str | int) -> int:
    """`100K`, `1M`, `10M`, `250000` -> characters."""
    if isinstance(text, int):
        return text
    t = text.strip().lower().replace("_", "")
    if t in SIZES:
        return SIZES[t]
    m = re.fullmatch(r"(\d+(?:\.\d+)?)([km]?)", t)
    if not m:
        raise ValueError(f"bad size {text!r}: use 100K, 1M, 10M or a number of characters")
    mult = {"": 1, "k": 1_000, "m": 1_000_000}[m.group(2)]
    return int(float(m.group(1)) * mult)


def size_label(n: int) -> str:
    if n % 1_000_000 == 0:
        return f"{n // 1_000_000}M"
    if n % 1_000 == 0:
        return f"{n // 1_000}K"
    return str(n)


def make(family: str, size: int | str, seed: int) -> Task:
    size = parse_size(size)
    if family not in GENERATORS:
        raise ValueError(f"unknown task family {family!r}; known: {', '.join(FAMILIES)}")
    # One stream per (family, size, seed): tasks of different families never share draws.
    rng = random.Random(f"{family}:{size}:{seed}")
    task = GENERATORS[family](rng, size)
    task.seed = seed
    return task


# ---------------------------------------------------------------------------------------------
# Scoring helpers


def normalize(text: str) -> str:
    """Lower case, no punctuation or articles, single spaces (SQuAD-style)."""
    text = text.lower().replace("\u2019", "'")
    text = "".join(" " if ch in string.punctuation else ch for ch in text)
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def exact_match(answer: str, gold: str) -> float:
    """1 if the normalised answer is the gold, or a short answer that contains the gold as whole
    words and none of the `others` (used below for distractor values)."""
    a, g = normalize(answer), normalize(gold)
    if not g:
        return 0.0
    if a == g:
        return 1.0
    # A short sentence around the answer ("The code is 4417.") is still the answer.
    return 1.0 if len(a) <= len(g) + 60 and re.search(rf"(?<!\w){re.escape(g)}(?!\w)", a) else 0.0


def exact_match_excluding(answer: str, gold: str, others: list[str]) -> float:
    """`exact_match`, but an answer that also names a distractor value scores 0."""
    a = normalize(answer)
    for o in others:
        if re.search(rf"(?<!\w){re.escape(normalize(o))}(?!\w)", a):
            return 0.0
    return exact_match(answer, gold)


def first_number(answer: str) -> int | None:
    """The answer's number: the last integer of a short answer, or the one after a final
    `answer:` / `=`; numbers with thousands separators count as one."""
    text = answer.replace(",", "")
    nums = re.findall(r"-?\d+(?:\.\d+)?", text)
    if not nums:
        words = {
            w: i
            for i, w in enumerate("zero one two three four five six seven eight nine ten".split())  # noqa: SIM905
        }
        for w in normalize(answer).split():
            if w in words:
                return words[w]
        return None
    # "There are 42 lines" / "42" / "Count: 42" -> 42; with several numbers, take the last one,
    # which is where small models put the result ("of 1200 lines, 42 are ...").
    return int(float(nums[-1]))


def count_score(answer: str, gold: int) -> float:
    """OOLONG's counting score: 0.75 ** |error|, 0 without a number."""
    n = first_number(answer)
    return 0.0 if n is None else 0.75 ** abs(n - gold)


def pair_f1(answer: str, gold: set[frozenset[str]], id_pattern: str) -> float:
    """F1 of the id pairs in the answer (ids taken in order, two at a time) against the gold."""
    ids = re.findall(id_pattern, answer.upper())
    got = {frozenset(ids[i : i + 2]) for i in range(0, len(ids) - 1, 2) if ids[i] != ids[i + 1]}
    if not gold:
        return 1.0 if not got else 0.0
    tp = len(got & gold)
    if tp == 0:
        return 0.0
    p, r = tp / len(got), tp / len(gold)
    return 2 * p * r / (p + r)


# ---------------------------------------------------------------------------------------------
# Invented vocabulary

SYL = ["ka", "lo", "mi", "ren", "dar", "vel", "tor", "qua", "bri", "sen", "mor", "lin", "zo",
       "fen", "gal", "ith", "rus", "pel", "nor", "cas", "yul", "bex", "dri", "oma", "tek", "sul",
       "vor", "ane", "hal", "jun"]  # fmt: skip
_FILLER = (
    "the a report noted that river market council season weather old new small large north south "
    "quiet busy morning evening harbour road bridge school farm mill garden street village "
    "visitors traders workers students families local regional annual weekly usual recent "
    "meeting festival repair delivery schedule harvest supply price road-works lantern bell "
    "opened closed moved stayed grew fell rose waited arrived left painted counted planned "
    "mostly briefly slowly again later early often rarely and but while because after before"
)
FILLER_WORDS = _FILLER.split()
COLORS = ["amber", "cobalt", "crimson", "ivory", "jade", "onyx", "scarlet", "teal", "violet",
          "ochre", "silver", "copper", "indigo", "saffron", "umber", "azure"]  # fmt: skip


def invented_name(rng: random.Random, parts: int = 2) -> str:
    return "".join(rng.choice(SYL) for _ in range(parts)).capitalize()


def unique_names(rng: random.Random, n: int, parts: int = 2) -> list[str]:
    seen: set[str] = set()
    out: list[str] = []
    while len(out) < n:
        name = invented_name(rng, parts + (len(seen) > 600))
        if name not in seen:
            seen.add(name)
            out.append(name)
    return out


def filler_sentence(rng: random.Random) -> str:
    words = [rng.choice(FILLER_WORDS) for _ in range(rng.randint(8, 18))]
    return " ".join(words).capitalize() + "."


def fill_lines(rng: random.Random, n_chars: int, line: Callable[[], str]) -> list[str]:
    out: list[str] = []
    total = 0
    while total < n_chars:
        s = line()
        out.append(s)
        total += len(s) + 1
    return out


# ---------------------------------------------------------------------------------------------
# needle


def gen_needle(rng: random.Random, size: int) -> Task:
    """Filler paragraphs; one `access code` fact for the asked vault; distractors: the same fact
    for other vaults, and a near-miss value for the asked one in a retracted note."""
    vaults = [f"{c} {invented_name(rng)}" for c in rng.sample(COLORS, 10)]
    target = vaults[0]
    code = str(rng.randint(1_000_000, 9_999_999))
    others = []
    facts = [f"Security memo: the access code for the {target} vault is {code}."]
    for v in vaults[1:]:
        val = str(rng.randint(1_000_000, 9_999_999))
        others.append(val)
        facts.append(f"Security memo: the access code for the {v} vault is {val}.")
    near = str(int(code) + rng.choice([-1, 1]) * rng.randint(10, 999))
    others.append(near)
    facts.append(
        f"Draft (withdrawn, never issued): a new code {near} was proposed for the {target} vault "
        "but the proposal was rejected."
    )
    lines = fill_lines(rng, size - sum(len(f) + 1 for f in facts), lambda: filler_sentence(rng))
    for f in facts:
        lines.insert(rng.randint(0, len(lines)), f)
    question = f"What is the access code for the {target} vault?"
    return Task(
        "needle",
        size,
        0,
        question,
        "\n".join(lines),
        code,
        lambda a: exact_match_excluding(a, code, others),
        {"distractors": others},
    )


# ---------------------------------------------------------------------------------------------
# count_explicit

TICKET_LABELS = ["billing", "shipping", "refund", "login", "warranty"]


def drifting_label(rng: random.Random, labels: list[str], start: list[float], end: list[float],
                   pos: float) -> str:  # fmt: skip
    weights = [s + (e - s) * pos for s, e in zip(start, end, strict=True)]
    return rng.choices(labels, weights=weights)[0]


def gen_count_explicit(rng: random.Random, size: int) -> Task:
    """Support-ticket log lines `#id | date | label: X | text`. The asked label is rare at the
    start of the file and common at the end (or the reverse), so a prefix misleads."""
    labels = TICKET_LABELS[:]
    rng.shuffle(labels)
    target = labels[0]
    rising = rng.random() < 0.5
    lo, hi = 0.02, 0.45
    start = [lo if rising else hi] + [1.0] * (len(labels) - 1)
    end = [hi if rising else lo] + [1.0] * (len(labels) - 1)
    est_lines = max(1, size // 75)
    # Few enough target lines that an exact count is possible at 100K; the score is 0.75^error.
    # Larger files have proportionally more lines; the counting must be done by code.
    lines: list[str] = []
    total, i = 0, 0
    while total < size:
        pos = min(1.0, i / est_lines)
        label = drifting_label(rng, labels, start, end, pos)
        tid = 100000 + i
        text = filler_sentence(rng)[: rng.randint(20, 45)].rstrip()
        line = f"#{tid} | 2024-{rng.randint(1, 12):02d}-{rng.randint(1, 28):02d} | label: {label}"
        line += f" | {text}"
        lines.append(line)
        total += len(line) + 1
        i += 1
    gold = sum(1 for ln in lines if f"| label: {target} |" in ln)
    question = f"How many lines in the log have the label '{target}'? Answer with a number."
    return Task(
        "count_explicit",
        size,
        0,
        question,
        "\n".join(lines),
        gold,
        lambda a: count_score(a, gold),
        {"lines": len(lines), "rising": rising},
    )


# ---------------------------------------------------------------------------------------------
# count_implied

GOOD = [
    "works exactly as promised and I would buy it again",
    "has been a joy to use every single morning",
    "arrived early and exceeded what I hoped for",
    "is sturdy, quiet and worth every coin",
    "made my week so much easier, thank you",
    "still runs perfectly after months of daily use",
    "impressed the whole family, we love it",
    "does the job beautifully and looks great too",
]
BAD = [
    "broke on the second day and support never replied",
    "is a waste of money, I returned it at once",
    "smells of burnt plastic and rattles constantly",
    "stopped working within a week, very disappointing",
    "arrived cracked and the replacement was no better",
    "is far too loud and the handle snapped off",
    "never lived up to the description, avoid it",
    "leaks every time I use it and ruined my counter",
]
OPENERS = ["Honestly, the", "Well, the", "So the", "My", "The", "This", "Our", "I found the"]


def gen_count_implied(rng: random.Random, size: int) -> Task:
    """Customer reviews of invented products. Between 15 and 40 reviews are about the asked
    product; the question asks how many of them are favourable, a label written nowhere."""
    products = [f"{invented_name(rng)} {kind}" for kind in
                rng.sample(["kettle", "lamp", "blender", "heater", "fan", "toaster", "scale",
                            "drill", "radio", "grill"], 8)]  # fmt: skip
    target, rest = products[0], products[1:]
    n_target = rng.randint(15, 40)
    p_good = rng.uniform(0.25, 0.75)

    def review(product: str, good: bool) -> str:
        opener = rng.choice(OPENERS)
        body = rng.choice(GOOD if good else BAD)
        user = f"{invented_name(rng)}{rng.randint(10, 99)}"
        return f"Review by {user}: {opener} {product} {body}."

    lines = fill_lines(
        rng, size - n_target * 90, lambda: review(rng.choice(rest), rng.random() < 0.5)
    )
    gold = 0
    for _ in range(n_target):
        good = rng.random() < p_good
        gold += good
        lines.insert(rng.randint(0, len(lines)), review(target, good))
    question = (
        f"How many of the reviews of the {target} are favourable (the reviewer is happy with it)? "
        "Answer with a number."
    )
    return Task(
        "count_implied",
        size,
        0,
        question,
        "\n".join(lines),
        gold,
        lambda a: count_score(a, gold),
        {"target_reviews": n_target},
    )


# ---------------------------------------------------------------------------------------------
# pairs

MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]


def gen_pairs(rng: random.Random, size: int) -> Task:
    """Records `P-nnnnn: name, lives in City, born D Mon YYYY, ...`. Between 3 and 8 planted pairs
    share city and birth date; near misses share just one of them; all other records are unique
    in (city, birth date)."""
    cities = unique_names(rng, 40)
    n_pairs = rng.randint(3, 8)
    used: set[tuple[str, str]] = set()
    ids = rng.sample(range(100_000, 1_000_000), size // 50 + 3 * n_pairs + 64)
    id_iter = iter(ids)

    def fresh_combo() -> tuple[str, str]:
        while True:
            c = rng.choice(cities)
            d = f"{rng.randint(1, 28)} {rng.choice(MONTHS)} {rng.randint(1950, 2004)}"
            if (c, d) not in used:
                used.add((c, d))
                return c, d

    def record(pid: str, city: str, born: str) -> str:
        job = rng.choice(["baker", "pilot", "clerk", "nurse", "tailor", "mason", "teacher"])
        name = f"{invented_name(rng)} {invented_name(rng, 3)}"
        return f"{pid}: {name}, {job}, lives in {city}, born {born}."

    records: list[str] = []
    gold: set[frozenset[str]] = set()
    for _ in range(n_pairs):
        city, born = fresh_combo()
        a, b = f"P-{next(id_iter)}", f"P-{next(id_iter)}"
        gold.add(frozenset((a, b)))
        records += [record(a, city, born), record(b, city, born)]
        # A near miss: same city, another date (unique combo), placed anywhere.
        c2, d2 = fresh_combo()
        records.append(record(f"P-{next(id_iter)}", city, d2))
    total = sum(len(r) + 1 for r in records)
    while total < size:
        city, born = fresh_combo()
        r = record(f"P-{next(id_iter)}", city, born)
        records.append(r)
        total += len(r) + 1
    rng.shuffle(records)
    question = (
        "Which pairs of people live in the same city AND were born on the same date? "
        "List every such pair by their ids, like (P-1, P-2)."
    )
    return Task(
        "pairs",
        size,
        0,
        question,
        "\n".join(records),
        sorted(sorted(p) for p in gold),
        lambda a: pair_f1(a, gold, r"P-\d+"),
        {"pairs": n_pairs, "records": len(records)},
    )


# ---------------------------------------------------------------------------------------------
# multihop


def gen_multihop(rng: random.Random, size: int) -> Task:
    """Articles about invented towns (founding year, river), companies (headquarters town,
    founder) and people (employer, birthplace). The question chains 2 or 3 of them, e.g. the
    founding year of the town where a person's employer has its headquarters."""
    n_towns = max(10, size // 2500)
    n_companies = max(10, size // 2500)
    towns = unique_names(rng, n_towns)
    comp_names = [f"{n} {rng.choice(['Works', 'Mills', 'Foundry', 'Traders', 'Labs'])}"
                  for n in unique_names(rng, n_companies, 3)]  # fmt: skip
    town_year = {t: rng.randint(1200, 1899) for t in towns}
    rivers = [invented_name(rng) for _ in range(20)]
    company_town = {c: rng.choice(towns) for c in comp_names}

    def town_article(t: str) -> str:
        return (
            f"== {t} ==\n{t} is a market town on the {rng.choice(rivers)} river. It was founded in "
            f"{town_year[t]} and is known for its {rng.choice(FILLER_WORDS)} "
            f"{rng.choice(FILLER_WORDS)}. {filler_sentence(rng)} {filler_sentence(rng)}\n"
        )

    def company_article(c: str) -> str:
        return (
            f"== {c} ==\n{c} is a firm founded in {rng.randint(1850, 2015)}. Its headquarters are "
            f"in {company_town[c]}. {filler_sentence(rng)} {filler_sentence(rng)}\n"
        )

    people: list[str] = []
    person_info: dict[str, tuple[str, str]] = {}

    def person_article(p: str) -> str:
        emp, born = person_info[p]
        return (
            f"== {p} ==\n{p} (born {rng.randint(1940, 2000)}) is an engineer "
            f"who grew up in {born}. "
            f"Since {rng.randint(2001, 2023)} {p.split()[0]} has worked for {emp}. "
            f"{filler_sentence(rng)}\n"
        )

    articles = [town_article(t) for t in towns] + [company_article(c) for c in comp_names]
    total = sum(len(a) + 1 for a in articles)
    while total < size:
        p = f"{invented_name(rng)} {invented_name(rng, 3)}"
        if p in person_info:
            continue
        person_info[p] = (rng.choice(comp_names), rng.choice(towns))
        people.append(p)
        a = person_article(p)
        articles.append(a)
        total += len(a) + 1
    if not people:  # tiny sizes
        p = f"{invented_name(rng)} {invented_name(rng, 3)}"
        person_info[p] = (rng.choice(comp_names), rng.choice(towns))
        people.append(p)
        articles.append(person_article(p))
    rng.shuffle(articles)
    person = rng.choice(people)
    emp, born = person_info[person]
    hops = rng.choice([2, 3])
    if hops == 3:
        question = (
            f"In what year was the town founded where the headquarters of {person}'s employer are?"
        )
        gold = str(town_year[company_town[emp]])
        others = [str(town_year[born])]
    else:
        question = f"In what year was the town founded where {person} grew up?"
        gold = str(town_year[born])
        others = [str(town_year[company_town[emp]])]
    others = [o for o in others if o != gold]
    return Task(
        "multihop",
        size,
        0,
        question,
        "\n".join(articles),
        gold,
        lambda a: exact_match_excluding(a, gold, others),
        {"hops": hops, "articles": len(articles)},
    )


GENERATORS: dict[str, Callable[[random.Random, int], Task]] = {
    "needle": gen_needle,
    "count_explicit": gen_count_explicit,
    "count_implied": gen_count_implied,
    "pairs": gen_pairs,
    "multihop": gen_multihop,
}
