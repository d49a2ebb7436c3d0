"""Prompts. Written for small local models first (a 1.5B coder model must follow them): short,
concrete, one worked example of the loop, and `python` fences, the tag such models write anyway.
Each level's message history is append-only, so llama.cpp can reuse its cached prefix."""

from __future__ import annotations

SYSTEM = """\
You answer a question about a long text. The text is NOT in this chat. It is stored in the \
Python variable `context` inside a Python REPL that you control.

Each turn, reply with one ```python block. I run it and show you what it printed. \
Then you write the next block. Useful code:
- print(context[:1000])  # look at the start
- grep("words") returns the lines of `context` that contain the words, in any case. Each \
line shows its line number, and the headings it is under if the text has headings:
  hits = grep("Tom Reed"); print(len(hits), hits)
- around(hits[0], before=3, after=10) returns the lines around a hit; section(hits[0]) \
returns the whole section the hit is in, under the headings above it.
- Count and add with code (len(...), sum(...)) and print the result; answer with a number \
your code printed.
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
print(len(hits), hits)
```
Output: 1 [57: 'Tom Reed has worked in room 12 since 2019.']
You:
```python
hits = grep("room 12")
print(len(hits), hits)
```
Output: 2 [31: 'Room 12 was painted in May.', 88: 'The access code for room 12 is 7731.']
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
A preview of its first characters, only to show how it is written (it is not evidence: \
search `context` before you answer):
{preview}
{outline}
Write your first ```python block."""

# Several sources (level_start.listed_sources): where each is, by the name the user gave it.
SOURCES = """ It joins {n} sources, each under a line `=== name ===` and also in its own \
variable: {listed}."""

# The text's headings in the first message, only for a text that has some (level_start); the
# counts and line numbers are computed by code, so they are evidence, unlike the preview.
OUTLINE_ALL = "Its headings (lines that start a section), from its outline:\n{items}\n"
OUTLINE_KINDS = """\
Its outline has {total:,} headings (lines that start a section). The most common kinds:
{items}
"""
OUTLINE_USE = """\
headings("words") returns the headings that contain the words, with their line numbers; \
section(line) returns the section under a heading, and grep("words", section(line)) searches \
only inside it.
"""

OBSERVATION = """\
Output:
{output}
Variables: {variables}
Question: {question}
Next ```python block, or FINAL("...") when the output answers the question."""

# An output the level has seen already is not shown again (nodes/observation_text.py).
SAME_OUTPUT = """\
{head} ...
[The rest is not repeated here: this output is the same {chars:,} characters as the output \
{ago} turn(s) ago, shown above. Use what it printed, or print something else.]"""

EMPTY_OUTPUT = """\
(no output: the cell printed nothing. Print a value to see it. If it was a search, it \
found no match: try other words before you conclude anything.)"""

NO_CODE = """\
I found no code block in your reply. Reply with one ```python block that looks at `context`, \
or with FINAL("the answer") in a code block when you are sure."""

# Where a level would end stuck, the loop first asks for the best answer in plain words
# (nodes/plain_answer.py): one more turn.
ANSWER_REQUEST = """\
You keep repeating yourself, so the search stops here. From the outputs above, reply with your \
best final answer to the question "{question}": only the answer itself (a name, number, date, \
version or file, not a sentence), in plain text, no code."""

# The loop's notice; `advice` is what the stuck_advice guard adds (empty with guards off).
STUCK_HINT = """\
You are repeating yourself: {what}.{advice} Otherwise take the next step instead: \
search for another word, follow a name you found, count with code, or, if each line needs \
judgement, ask sub_lm_batched one yes/no question per line and count the yes replies."""

# The notice when the advice's code only reads the text: the loop runs it in the model's place.
STUCK_RAN = """\
You are repeating yourself: {what}.{advice} The loop runs that code for you now; its output \
comes next."""

# Where the answer asked for in words did not come and the helper_sweep guard offers a last
# read by helpers.
STUCK_SWEEP = """\
No answer yet. {advice} The loop runs that code for you now; its output comes next, and then \
your answer."""

CLOSING = """\
Stop now ({reason}). Reply with your best final answer to the question "{question}": only \
the answer itself (a name, number, date, version or file, not a sentence), in plain text, \
no code."""

DIRECT_SYSTEM = "Answer the request accurately and briefly. Use only the text you are given."

DIRECT_USER_WITH_CONTEXT = "{prompt}\n\nText:\n{context}"
