"""Synthetic tasks for the model family: arithmetic, in-context classification, toy translation, chained look-ups.

Every task is deterministic given a seed, has a prompt format (zero-shot, few-shot, and for the step-by-step tasks a
scratchpad "cot" format), an answer checker and a partial-credit metric beside exact match (Schaeffer et al. 2023:
a discontinuous metric such as exact match can make a smooth improvement look like a sudden "emergence").
Train and test splits are disjoint: a question belongs to the test split when a hash of (task, question) falls in
the lowest fifth, so the same question never appears in both.

Formats (one example per line; shots are separated by newlines, the query comes last):

=============  ==========================================  ============================================
task           direct: prompt -> completion                cot (scratchpad): prompt -> completion
=============  ==========================================  ============================================
add            ``123+489=`` -> ``612``                     ``123+489:`` -> `` 3+9+0=12 2+8+1=11 1+4+1=06 ans 612``
mul            ``347*8=`` -> ``2776``                      ``347*8:`` -> `` 7*8+0=56 4*8+5=37 3*8+3=27 ans 2776``
sentiment      ``very dull movie -> `` -> ``negative``     (none)
icl_labels     ``very dull movie -> `` -> ``dax``          (none; label words drawn per prompt)
translate      ``red cat sees dog => `` -> ``ruka mio ...`` (none)
chain          ``d=7 q=3 b=d m=q; b=`` -> ``7``            ``d=7 q=3 b=d m=q; b:`` -> `` b=d d=7 ans 7``
=============  ==========================================  ============================================

The package holds infrastructure only: exercises ask students to write their own metrics with other contracts.
"""

from __future__ import annotations

import contextlib
import hashlib
import random
from dataclasses import dataclass, field
from typing import Sequence

from week7 import metrics

__all__ = ["Example", "Task", "TASKS", "get_task", "STYLES"]

STYLES = ("direct", "cot")
ANS = " ans "  # marks the final answer after a scratchpad
TEST_FRACTION = 0.2


@dataclass
class Example:
    """One task instance: the question text, the gold answer, and task-specific facts (labels, hops, ...)."""

    question: str
    answer: str
    meta: dict = field(default_factory=dict)


def _in_test(task: str, question: str) -> bool:
    h = int.from_bytes(hashlib.sha256(f"{task}|{question}".encode()).digest()[:8], "big")
    return (h % 1000) < int(TEST_FRACTION * 1000)


class Task:
    """Base class: subclasses implement ``_sample(rng) -> Example`` and the formats; the rest is shared."""

    name: str = ""
    description: str = ""
    sep: str = "="  # between question and answer in the direct style
    cot_cue: str | None = None  # between question and scratchpad in the cot style (None: no cot style)
    partial_name: str = "char_accuracy"

    @property
    def styles(self) -> tuple[str, ...]:
        return ("direct", "cot") if self.cot_cue is not None else ("direct",)

    # ---- data -------------------------------------------------------------------------------------------------
    def _sample(self, rng: random.Random) -> Example:  # pragma: no cover - abstract
        raise NotImplementedError

    def examples(self, n: int, split: str = "test", seed: int = 0) -> list[Example]:
        """``n`` examples of ``split`` ("train" or "test"), the same list for the same (n, split, seed).

        Questions are unique within a list while the split has enough distinct questions, and a test question never
        appears in the train split (and vice versa).
        """
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        rng = random.Random(f"{self.name}|{split}|{seed}")
        want_test = split == "test"
        out: list[Example] = []
        seen: set[str] = set()
        tries = 0
        while len(out) < n:
            tries += 1
            ex = self._sample(rng)
            if _in_test(self.name, ex.question) != want_test:
                continue
            if ex.question in seen and tries < 200 * (n + 10):
                continue
            seen.add(ex.question)
            out.append(ex)
        return out

    def shots(self, k: int, seed: int = 0, balanced: bool = False) -> list[Example]:
        """``k`` demonstration examples drawn from the train split (never from test).

        ``balanced=True`` (classification tasks) alternates the two classes in a shuffled order, so that a prompt with
        ``k >= 2`` shows every label word at least once.
        """
        pool = self.examples(max(4 * k, 16), split="train", seed=10_000 + seed)
        if not balanced or k < 2 or "sentiment" not in pool[0].meta:
            return pool[:k]
        size = len(pool)
        while True:  # a pool short of one class grows (deterministically) until each class has k/2 examples
            pos = [e for e in pool if e.meta["sentiment"] == "positive"]
            neg = [e for e in pool if e.meta["sentiment"] == "negative"]
            if min(len(pos), len(neg)) >= (k + 1) // 2:
                break
            if size > 64 * max(k, 16):
                raise ValueError(f"{self.name}: cannot find {k} balanced shots in the train split")
            size *= 2
            pool = self.examples(size, split="train", seed=10_000 + seed)
        rng = random.Random(f"shots|{self.name}|{k}|{seed}")
        first = rng.choice([pos, neg])
        second = neg if first is pos else pos
        picked = [(first if i % 2 == 0 else second)[i // 2] for i in range(k)]
        rng.shuffle(picked)
        return picked

    # ---- formats ----------------------------------------------------------------------------------------------
    def _check_style(self, style: str) -> None:
        if style not in self.styles:
            raise ValueError(f"task {self.name!r} has styles {self.styles}, got style={style!r}")

    def answer_for(self, example: Example, query: Example) -> str:
        """The answer of ``example`` when shown as a shot in the prompt of ``query`` (relabelled for icl_labels)."""
        return example.answer

    def scratchpad(self, example: Example) -> str:  # pragma: no cover - only tasks with cot
        raise NotImplementedError

    def query(self, example: Example, style: str = "direct") -> str:
        """The query line without its answer: the text the model continues."""
        self._check_style(style)
        return example.question + (self.sep if style == "direct" else self.cot_cue)

    def completion(self, example: Example, style: str = "direct", query: Example | None = None) -> str:
        """What a perfect model writes after :meth:`query` (before the newline)."""
        self._check_style(style)
        answer = self.answer_for(example, query if query is not None else example)
        if style == "direct":
            return answer
        return self.scratchpad(example) + ANS + answer

    def prompt(self, example: Example, shots: Sequence[Example] = (), style: str = "direct") -> str:
        """The full prompt: each shot with its completion on its own line, then the query line."""
        self._check_style(style)
        lines = [self.query(s, style) + self.completion(s, style, query=example) for s in shots]
        lines.append(self.query(example, style))
        return "\n".join(lines)

    def document(self, example: Example, shots: Sequence[Example] = (), style: str = "direct") -> str:
        """A training document: the prompt followed by the gold completion."""
        return self.prompt(example, shots, style) + self.completion(example, style)

    # ---- checking ---------------------------------------------------------------------------------------------
    def extract(self, generation: str) -> str:
        """The final answer in a generation: its first line, after the last `` ans `` marker if any, stripped."""
        if not isinstance(generation, str):
            raise TypeError(f"generation must be a str, got {type(generation).__name__}")
        text = generation.split("\n", 1)[0]
        if self.cot_cue is not None:
            padded = " " + text
            if ANS in padded:
                text = padded.rsplit(ANS, 1)[1]
        return text.strip()

    def is_correct(self, generation: str, answer: str) -> bool:
        """Exact match of the extracted answer (extra text, a wrong length or an empty output are wrong)."""
        return metrics.exact_match(self.extract(generation), answer)

    def partial_credit(self, generation: str, answer: str) -> float:
        """A smooth metric in [0, 1] beside exact match (see ``partial_name``)."""
        return float(getattr(metrics, self.partial_name)(self.extract(generation), answer))

    def __repr__(self) -> str:
        return f"<Task {self.name}: {self.description}>"


# ---- arithmetic ---------------------------------------------------------------------------------------------------
class AddTask(Task):
    """Addition of two ``digits``-digit numbers (3 by default)."""

    sep = "="
    cot_cue = ":"
    partial_name = "digit_accuracy"

    def __init__(self, name: str = "add", digits: int = 3):
        self.name, self.digits = name, digits
        self.description = f"{digits}-digit addition; cot writes each column with its carry, right to left"

    def _sample(self, rng: random.Random) -> Example:
        lo, hi = 10 ** (self.digits - 1), 10**self.digits - 1
        a, b = rng.randint(lo, hi), rng.randint(lo, hi)
        return Example(f"{a}+{b}", str(a + b), {"a": a, "b": b})

    def scratchpad(self, example: Example) -> str:
        a, b = str(example.meta["a"]), str(example.meta["b"])
        n = max(len(a), len(b))
        a, b = a.zfill(n), b.zfill(n)
        carry, steps = 0, []
        for da, db in zip(reversed(a), reversed(b)):
            s = int(da) + int(db) + carry
            steps.append(f"{da}+{db}+{carry}={s:02d}")
            carry = s // 10
        return " " + " ".join(steps)


class MulTask(Task):
    """A 3-digit number times a 1-digit number (2..9)."""

    sep = "="
    cot_cue = ":"
    partial_name = "digit_accuracy"

    def __init__(self, name: str = "mul"):
        self.name = name
        self.description = "3-digit x 1-digit multiplication; cot writes each digit product with its carry"

    def _sample(self, rng: random.Random) -> Example:
        a, b = rng.randint(100, 999), rng.randint(2, 9)
        return Example(f"{a}*{b}", str(a * b), {"a": a, "b": b})

    def scratchpad(self, example: Example) -> str:
        a, b = str(example.meta["a"]), example.meta["b"]
        carry, steps = 0, []
        for da in reversed(a):
            p = int(da) * b + carry
            steps.append(f"{da}*{b}+{carry}={p:02d}")
            carry = p // 10
        return " " + " ".join(steps)


# ---- classification -----------------------------------------------------------------------------------------------
POSITIVE = ["good", "great", "lovely", "superb", "tasty", "fun", "nice", "fresh", "warm", "brilliant", "cosy",
            "fine"]
NEGATIVE = ["bad", "awful", "dull", "boring", "rude", "cold", "stale", "bland", "noisy", "dirty", "poor", "grim"]
NOUNS = ["movie", "pizza", "hotel", "book", "soup", "cafe", "show", "song", "game", "bread", "room", "trip", "film",
         "pasta", "play", "album", "staff", "meal", "park", "beach", "cake", "class", "tour", "hostel"]
INTENSIFIERS = ["", "very ", "so ", "really ", "quite "]
# Arbitrary label words for icl_labels: nonsense syllables that never appear elsewhere in the training mixture.
LABEL_WORDS = ["foo", "bar", "dax", "wug", "zup", "kem", "lop", "tiv", "mib", "rav", "gok", "yen", "pim", "sul"]


class SentimentTask(Task):
    """Short template reviews labelled ``positive`` or ``negative``."""

    sep = " -> "
    partial_name = "char_accuracy"

    def __init__(self, name: str = "sentiment"):
        self.name = name
        self.description = "sentiment of short template reviews, label words positive/negative"

    def _sample(self, rng: random.Random) -> Example:
        label = rng.choice(["positive", "negative"])
        adj = rng.choice(POSITIVE if label == "positive" else NEGATIVE)
        text = f"{rng.choice(INTENSIFIERS)}{adj} {rng.choice(NOUNS)}"
        return Example(text, label, {"sentiment": label})


class IclLabelsTask(SentimentTask):
    """The same reviews with two arbitrary label words drawn per prompt: only the shots tell the mapping."""

    def __init__(self, name: str = "icl_labels"):
        self.name = name
        self.description = "the sentiment reviews with arbitrary label words per prompt (in-context learning)"

    def _sample(self, rng: random.Random) -> Example:
        ex = super()._sample(rng)
        w1, w2 = rng.sample(LABEL_WORDS, 2)
        labels = {"positive": w1, "negative": w2}
        return Example(ex.question, labels[ex.meta["sentiment"]], {"sentiment": ex.meta["sentiment"],
                                                                      "labels": labels})

    def answer_for(self, example: Example, query: Example) -> str:
        return query.meta["labels"][example.meta["sentiment"]]


# ---- translation --------------------------------------------------------------------------------------------------
ENGLISH = ["cat", "dog", "bird", "fish", "man", "girl", "boy", "king", "tree", "house", "river", "sun", "moon",
           "red", "blue", "big", "small", "old", "young", "green", "sees", "eats", "likes", "finds", "has", "and",
           "the", "a", "runs", "sleeps", "sings", "swims"]


def _invented_lexicon() -> dict[str, str]:
    rng = random.Random("week7-invented-language")
    cons, vows = "bdfgklmnprstvz", "aeiou"
    words: dict[str, str] = {}
    used: set[str] = set()
    for w in ENGLISH:
        while True:
            n_syl = rng.choice([1, 2, 2, 3])
            cand = "".join(rng.choice(cons) + rng.choice(vows) for _ in range(n_syl))
            if cand not in used and cand not in ENGLISH and "ans" not in cand:
                break
        used.add(cand)
        words[w] = cand
    return words


LEXICON = _invented_lexicon()


class TranslateTask(Task):
    """Word-by-word translation of 2-4 English words into an invented language (a fixed lexicon of 32 words)."""

    sep = " => "
    partial_name = "word_accuracy"

    def __init__(self, name: str = "translate"):
        self.name = name
        self.description = "word-level mapping of 2-4 English words into an invented language"

    def _sample(self, rng: random.Random) -> Example:
        words = [rng.choice(ENGLISH) for _ in range(rng.randint(2, 4))]
        return Example(" ".join(words), " ".join(LEXICON[w] for w in words), {"n_words": len(words)})


# ---- multi-step look-ups ------------------------------------------------------------------------------------------
class ChainTask(Task):
    """Chained look-ups: follow ``hops`` assignments (``b=d``, ``d=7``) to a digit, past a distractor chain."""

    sep = "="
    cot_cue = ":"
    partial_name = "char_accuracy"

    def __init__(self, name: str = "chain"):
        self.name = name
        self.description = "follow 1-3 chained variable assignments to a digit, with a distractor chain"

    def _sample(self, rng: random.Random) -> Example:
        hops = rng.randint(1, 3)
        names = rng.sample("abcdfghkmnpqrstvwxyz", hops + 3)
        chain, distract = names[: hops + 1], names[hops + 1:]
        value, other = rng.sample("0123456789", 2)
        stmts = [f"{chain[-1]}={value}"] + [f"{chain[i]}={chain[i + 1]}" for i in range(hops)]
        stmts += [f"{distract[-1]}={other}"] + [f"{distract[i]}={distract[i + 1]}" for i in range(len(distract) - 1)]
        rng.shuffle(stmts)
        question = " ".join(stmts) + "; " + chain[0]
        return Example(question, value, {"hops": hops, "chain": chain})

    def scratchpad(self, example: Example) -> str:
        chain = example.meta["chain"]
        return " " + " ".join(f"{chain[i]}={chain[i + 1]}" for i in range(len(chain) - 1)) + \
            f" {chain[-1]}={example.answer}"


TASKS: dict[str, Task] = {t.name: t for t in [AddTask(), MulTask(), SentimentTask(), IclLabelsTask(),
                                               TranslateTask(), ChainTask()]}


def get_task(name: str) -> Task:
    """The task called ``name`` (one of ``TASKS``)."""
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        raise KeyError(f"unknown task {name!r}; the tasks are {sorted(TASKS)}") from None


def evaluate(model, tokenizer, task: str | Task, n: int = 100, k: int = 0, style: str = "direct", seed: int = 0,
             batch_size: int = 64, progress: bool = False, threads: int | None = None) -> dict:
    """Greedy evaluation of ``model`` on ``n`` test examples of ``task`` with ``k`` shots from the train split.

    Every example gets its own shots (``task.shots(k, seed=seed * 100_003 + i, balanced=True)``). Returns a dict with
    ``exact`` and ``partial`` (means), the per-example lists ``exact_all``/``partial_all``, and the generations.
    ``threads``: torch threads for the run; ``None`` picks the idle cores (``week7.lm.auto_threads``), so that a
    shared machine does not thrash.
    """
    from week7.lm import generate, torch_threads

    task = get_task(task) if isinstance(task, str) else task
    exs = task.examples(n, split="test", seed=seed)
    prompts = [task.prompt(e, task.shots(k, seed=seed * 100_003 + i, balanced=True), style)
               for i, e in enumerate(exs)]
    longest = max(len(task.completion(e, style)) for e in exs)
    on_cpu = next(model.parameters()).device.type == "cpu" if hasattr(model, "parameters") else False
    with torch_threads(threads) if on_cpu else contextlib.nullcontext():
        gens = generate(model, tokenizer, prompts, max_new_tokens=longest + 4, batch_size=batch_size,
                        progress=progress)
    exact = [float(task.is_correct(g, e.answer)) for g, e in zip(gens, exs)]
    partial = [task.partial_credit(g, e.answer) for g, e in zip(gens, exs)]
    return {"task": task.name, "k": k, "style": style, "n": n, "exact": sum(exact) / max(n, 1),
            "partial": sum(partial) / max(n, 1), "exact_all": exact, "partial_all": partial, "generations": gens}
