"""Prompts. Written for small local models first (a 1.5B coder model must follow them): short,
concrete, one worked example of the loop, and `python` fences, the tag such models write anyway.
Each level's message history is append-only, so llama.cpp can reuse its cached prefix."""

from __future__ import annotations

SYSTEM = """\
You answer a question about a long text. The text is NOT in this chat. It is stored in the \
Python variable `context` inside a Python REPL that you control.

Each turn, reply with one ```python code block. I run it and show you what it printed. \
Then you write the next block. Useful code:
- print(context[:1000])  # look at the start
- grep("words") returns the lines of `context` that contain the words, in any case:
  hits = grep("Tom Reed"); print(len(hits), hits[:10])
- sub_lm("question + text") asks a helper model and returns its answer as a string. \
The helper cannot see `context`, so put the text it needs into the prompt.
- sub_lm_batched([prompt1, prompt2, ...]) asks many helpers at once and returns a list.
{big_context_tip}
Search for the names in the question (a person, place, product, label), not for common words. \
A name you find in the output can be your next search. When you are sure, write \
FINAL("the answer") in a code block. Check in `context` before you answer; never invent an \
answer. Print only what you need: output over {max_output_chars:,} characters is cut.

Example.
Question: What is the access code for the room where Tom Reed works?
You:
```python
hits = grep("Tom Reed")
print(len(hits), hits[:10])
```
Output: 1 ['Tom Reed has worked in room 12 since 2019.']
You:
```python
hits = grep("room 12")
print(len(hits), hits[:10])
```
Output: 2 ['Room 12 was painted in May.', 'The access code for room 12 is 7731.']
You:
```python
FINAL("7731")
```"""

BIG_CONTEXT_TIP = """\
- If searching finds nothing, read the text in parts with helpers (slow, so search first):
  chunks = [context[i:i+{chunk}] for i in range(0, len(context), {chunk})]
  answers = sub_lm_batched(["{question} Quote the sentence that answers it, or say NONE.\\n\\n" \
+ c for c in chunks])
  print(answers)
"""

FIRST_USER = """\
Question: {question}

`context` is a {kind} of {chars:,} characters and {lines:,} lines.{sources}
Its first characters:
{preview}

Write your first ```python block."""

OBSERVATION = """\
Output:
{output}
Variables: {variables}
Question: {question}
Next ```python block, or FINAL("...") when the output answers the question."""

EMPTY_OUTPUT = """\
(no output: the cell printed nothing. Print a value to see it. If it was a search, it \
found no match: try other words before you conclude anything.)"""

# The search offered for a name, as ready code (small models run offered code as written).
SEARCH_CODE = """```python
hits = grep({name!r})
print(len(hits), hits[:10])
```"""

SENT_BACK = {
    "gave_up": """\
Not finished: you answered right after a cell that printed nothing, and an empty search \
does not show that the answer is "none" or 0. Print a few lines of `context` to see how it \
is written, then search with other words, or split it into chunks and ask sub_lm_batched. \
If you are still sure, write FINAL again.""",
    "guessed": """\
Not finished: you wrote FINAL in the same cell as code whose output you had not read yet, \
so that answer was a guess. Read the output first:
{observation}""",
    "all_matches": """\
Not finished: {hits} is how many lines grep({pattern!r}) found, every line with those words, \
and the question may count only some of them. This code lets helpers judge each line and \
answers with how many count:
```python
lines = grep({pattern!r})
kept = judge_lines(lines, {question!r})
print(len(kept), "of", len(lines), "lines count")
FINAL(len(kept))
```""",
    "unsearched": """\
Not finished: no search so far looked for {name}, the name the question is about, so this \
answer may be about something else. Search for {name} first:
"""
    + SEARCH_CODE,
    "unfinished": """\
Not finished: your answer comes from the line {line!r}, and that line goes on to {name}. \
{next}""",
}

CHAIN_SEARCH = (
    """You have not searched for {name} yet. If the question goes on through {name}, \
search it:
"""
    + SEARCH_CODE
)
CHAIN_LINE = """Of the lines grep({name!r}) finds, this one has the most words of the question: \
{line!r}. {follow}"""

UNSEARCHED_NOTE = (
    """\
Your searches so far ({searched}) {what}. The question is about {name}; search for it \
first:
"""
    + SEARCH_CODE
)

ANSWER_NOT_FINAL = """\
Setting `answer` yourself does not finish. When you are sure, call FINAL(the_answer)."""

NO_CODE = """\
I found no code block in your reply. Reply with one ```python block that looks at `context`, \
or with FINAL("the answer") in a code block when you are sure."""

STUCK_HINT = """\
You are repeating yourself: {what}. {advice} Otherwise take the next step instead: \
search for another word, follow a name you found, count with code, or, if each line needs \
judgement, ask sub_lm_batched one yes/no question per line and count the yes replies."""

STUCK_ADVICE = "If an earlier output already answers the question, write FINAL(...) now."
STUCK_ADVICE_PRINTED = """It printed {printed} again: if that answers the question, write \
FINAL({printed!r}) now."""
STUCK_ADVICE_LINE = """Of the lines your search found, this one has the most words of the \
question: {line!r}. {follow}"""
FOLLOW_NAME = (
    """It names {name}, which you have not searched for yet:
"""
    + SEARCH_CODE
)
FOLLOW_QUESTION_NAME = (
    """No search has looked for {name}, the name the question is about:
"""
    + SEARCH_CODE
)
FOLLOW_VALUE = """It says "{phrase}": if that answers the question, write FINAL({value!r})."""
FOLLOW_ANSWER = "If it answers the question, write FINAL with the answer."

CLOSING = """\
Stop now ({reason}). Reply with your best final answer to the question "{question}" \
in plain text, no code."""

DIRECT_SYSTEM = "Answer the request accurately and briefly. Use only the text you are given."

DIRECT_USER_WITH_CONTEXT = "{prompt}\n\nText:\n{context}"
