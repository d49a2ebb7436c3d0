"""Prompts. Written for small local models first (a 1.5B coder model must follow them): short,
concrete, one worked example of the loop, and `python` fences, the tag such models write anyway.
Each level's message history is append-only, so llama.cpp can reuse its cached prefix."""

from __future__ import annotations

SYSTEM = """\
You answer a question about a long text. The text is NOT in this chat. It is stored in the \
Python variable `context` inside a Python REPL that you control.

Each turn, reply with one ```python code block. I run it and show you what it printed. \
Then you write the next block.

In the REPL you have:
- grep("word") returns the list of lines of `context` that contain "word" (any case; a regex \
works too).
- sub_lm("question + text") asks a helper model and returns its answer as a string. \
The helper cannot see `context`, so put the text it needs into the prompt.
- sub_lm_batched([prompt1, prompt2, ...]) asks many helpers at once and returns a list.
- FINAL("the answer") ends the work with that answer.

How to work:
1. Search for one name or key word from the question, not the whole question: \
print(grep("Name")[:20])
2. If a search finds nothing, try a shorter or another word. Never answer "none" or 0 \
after one empty search.
3. If the answer is a fact about something you found (a place, a person, a company), \
grep for that next (see the example).
4. To count, list or compare many lines, write code that checks every line (for records, \
parse each line's fields with re) and print only the result, like print(len(found)). Do not \
count by eye.
5. If the question counts lines by a quality that is not written in them (good or bad, \
happy or not, late or on time), no word will match it: collect the lines with grep, then ask \
helpers one yes/no question per line and count the yes replies in code (the snippet below).
{big_context_tip}
Check in `context` before you answer; never invent an answer. Print only what you need: \
output over {max_output_chars:,} characters is cut.

Example (another text).
Question: In what year did the founder of Brightwell Mills die?
You:
```python
print(grep("Brightwell")[:20])
```
Output: ['Brightwell Mills was founded by Ada Korr in 1901.']
You:
```python
print(grep("Ada Korr")[:20])
```
Output: ['Ada Korr (1870-1932) was a weaver.']
You:
```python
FINAL("1932")
```"""

BIG_CONTEXT_TIP = """\
- The text is long: search it with grep and count with code first. To judge each line that \
grep finds (rule 5):
  found = grep("<name>")
  replies = sub_lm_batched(["{topic} Answer yes or no for this one line only:\\n" + l \
for l in found])
  print(sum("yes" in r.lower() for r in replies), "of", len(found), replies[:5])
- Only when no search finds what you need, read all of it (slow): split it and ask helpers:
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
Next ```python block, or FINAL("...") when sure."""

EMPTY_OUTPUT = """\
(no output: the cell printed nothing. Print a value to see it. If it was a search, it \
found no match: try other words before you conclude anything.)"""

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
}

ANSWER_NOT_FINAL = """\
Setting `answer` yourself does not finish. When you are sure, call FINAL(the_answer)."""

NO_CODE = """\
I found no code block in your reply. Reply with one ```python block that looks at `context`, \
or with FINAL("the answer") in a code block when you are sure."""

STUCK_HINT = """\
You are repeating yourself: {what}. If an earlier output already answers the question, \
write FINAL(...) now. Otherwise take the next step instead: grep for another word, follow a \
name you found, count with code, or, if each line needs judgement, ask sub_lm_batched one \
yes/no question per line and count the yes replies."""

CLOSING = """\
Stop now ({reason}). Reply with your best final answer to the question "{question}" \
in plain text, no code."""

DIRECT_SYSTEM = "Answer the request accurately and briefly. Use only the text you are given."

DIRECT_USER_WITH_CONTEXT = "{prompt}\n\nText:\n{context}"
