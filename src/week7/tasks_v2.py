"""Training data for model family v2: documents whose answers need the prompt (issue 17).

The v1 family (:mod:`week7.tasks`, :mod:`week7.train`) never had to read its prompt: each of its 14 arbitrary label
words appears thousands of times and can be memorised, and its one lexicon is fixed. Small transformers learn in
context when the data make copying from the context necessary and frequent (Chan et al. 2022: bursty sequences, many
rare classes, labels reassigned per sequence; Reddy 2023: an induction head forms abruptly on such data; Olsson et
al. 2022: induction heads and the repeated-sequence signature). v2 keeps every v1 task and its formats, and adds:

=================  ==========================================================  ==================================
task               prompt -> completion                                        what only the prompt tells
=================  ==========================================================  ==================================
icl_words          ``very dull movie -> `` -> ``bokir`` (2 or 4 classes)       label words, drawn per document
recall             ``bofa:lesi kimu:tora / kimu -> `` -> ``tora``               the value of a key
translate_icl      ``fox hums => `` -> ``ravu semil``                          the lexicon (a fresh one per doc)
=================  ==========================================================  ==================================

Label words, keys, values and target words come from a pool of about 24,000 pronounceable pseudo-words (CVCV and
CVCVC); one stem in eight (about 3,000 words) is HELD OUT: never in a training document, used only by the test
split, so an evaluation with held-out words measures reading the prompt, not recall. In the training mixture
(:func:`mixture_document`) a fifth of the icl_words documents repeat the query among the examples (copy), a fifth
of the sentiment documents swap positive and negative in the examples and the answer (flipped labels), and a tenth
of the arithmetic and sentiment documents start with a role line (``You are a careful accountant.``) or ask for JSON
(``Reply in JSON: {"answer": <integer>}``, the shots answering ``{"answer": 612}``), the formats of exercise 03.

Splits are disjoint ACROSS tasks: a question is in the test split when a hash of the question text alone (not of
task and text, as in v1) falls in the lowest fifth, so a review in the test split of sentiment is in the test split
of icl_words too, and no test query appears in any training document. v1's outputs are unchanged.
"""

from __future__ import annotations

import hashlib
import json
import random
from typing import Sequence

from week7 import tasks as v1
from week7.tasks import Example

__all__ = ["TRAIN_WORDS", "HELDOUT_WORDS", "in_test", "word_pool", "TASKS", "get_task", "MIXTURE", "P_COPY",
           "P_FLIP", "P_ROLE", "P_JSON", "ROLES", "JSON_LINE", "mixture_document", "copy_prompt", "flipped_prompt",
           "repeat_string"]

TEST_FRACTION = 0.2


def _h(text: str) -> int:
    return int.from_bytes(hashlib.sha256(text.encode()).digest()[:8], "big")


def in_test(question: str) -> bool:
    """True when ``question`` belongs to the test split of EVERY v2 task (the hash ignores the task's name)."""
    return (_h(f"w7v2|{question}") % 1000) < int(TEST_FRACTION * 1000)


# Role lines and the JSON line of exercise 03's prompts (the mixture uses them at a small weight).
ROLES = ["a careful accountant", "a helpful assistant", "a math teacher", "a patient tutor", "a calculator",
         "a film critic", "a food critic", "a hotel inspector", "a bookkeeper", "a clerk", "an engineer",
         "a student", "a scientist", "a librarian", "a chess player", "a cashier", "a pilot", "a poet",
         "a judge", "a travel writer"]  # exercise 03's "an expert mathematician" is deliberately not among them
JSON_LINE = 'Reply in JSON: {"answer": <integer>}'


# ---- the pseudo-word pool -----------------------------------------------------------------------------------------
CONS, VOWS, FINALS = "bdfgklmnprstvz", "aeiou", "lnrs"
# English words of the in-context translation task: none is in the fixed lexicon's ENGLISH list.
ICL_ENGLISH = ["fox", "cow", "hen", "owl", "bee", "ant", "hums", "jumps", "hides", "digs", "tall", "wet"]


def _banned() -> set[str]:
    words = set(v1.LABEL_WORDS) | set(v1.LEXICON.values()) | set(v1.ENGLISH) | set(ICL_ENGLISH)
    words |= set(v1.POSITIVE) | set(v1.NEGATIVE) | set(v1.NOUNS) | {"positive", "negative", "answer", "reply"}
    return words


def _fixed_text() -> str:
    """Every word the training documents contain besides the pool's (reviews, lexicons, roles, the JSON line)."""
    return " ".join(sorted(_banned()) + ROLES + [JSON_LINE, "You are"]).lower()


def _pool() -> tuple[tuple[str, ...], tuple[str, ...]]:
    banned, fixed = _banned(), _fixed_text()
    train, held = [], []
    for c1 in CONS:
        for v1_ in VOWS:
            for c2 in CONS:
                for v2_ in VOWS:
                    stem = c1 + v1_ + c2 + v2_
                    # A stem and all its CVCVC words go to one pool, so no held-out word is part of a train word;
                    # a stem inside a fixed word ("love" in "lovely") is never held out.
                    out = held if _h(f"w7v2-stem|{stem}") % 8 == 0 and stem not in fixed else train
                    for w in [stem] + [stem + f for f in FINALS]:
                        if w not in banned and "ans" not in w:
                            out.append(w)
    return tuple(train), tuple(held)


TRAIN_WORDS, HELDOUT_WORDS = _pool()


def word_pool(split: str) -> tuple[str, ...]:
    """The pseudo-words of ``split``: "train" (training documents) or "test" (held-out words, evaluation only)."""
    if split == "train":
        return TRAIN_WORDS
    if split == "test":
        return HELDOUT_WORDS
    raise ValueError(f"split must be 'train' or 'test', got {split!r}")


# ---- tasks --------------------------------------------------------------------------------------------------------
class _V2Split:
    """Mixin: the v1 task's examples, split by the question text alone (disjoint across tasks)."""

    def _sample_split(self, rng: random.Random, split: str) -> Example:
        return self._sample(rng)

    def examples(self, n: int, split: str = "test", seed: int = 0) -> list[Example]:
        if split not in ("train", "test"):
            raise ValueError(f"split must be 'train' or 'test', got {split!r}")
        if not isinstance(n, int) or isinstance(n, bool) or n < 0:
            raise ValueError(f"n must be a non-negative int, got {n!r}")
        rng = random.Random(f"v2|{self.name}|{split}|{seed}")
        want_test = split == "test"
        out: list[Example] = []
        seen: set[str] = set()
        tries = 0
        while len(out) < n:
            tries += 1
            ex = self._sample_split(rng, split)
            if in_test(ex.question) != want_test:
                continue
            if ex.question in seen and tries < 200 * (n + 10):
                continue
            seen.add(ex.question)
            out.append(ex)
        return out

    def sample(self, rng: random.Random, split: str) -> Example:
        """One example of ``split`` drawn from ``rng`` (repeats allowed): what training documents use."""
        while True:
            ex = self._sample_split(rng, split)
            if in_test(ex.question) == (split == "test"):
                return ex


class AddTask(_V2Split, v1.AddTask):
    pass


class MulTask(_V2Split, v1.MulTask):
    pass


class SentimentTask(_V2Split, v1.SentimentTask):
    pass


class TranslateTask(_V2Split, v1.TranslateTask):
    pass


class ChainTask(_V2Split, v1.ChainTask):
    pass


CATEGORY = {**{n: "food" for n in ["pizza", "soup", "bread", "pasta", "meal", "cake"]},
            **{n: "place" for n in ["hotel", "cafe", "room", "park", "beach", "hostel"]},
            **{n: "media" for n in ["movie", "book", "show", "song", "game", "film", "play", "album"]},
            **{n: "outing" for n in ["trip", "staff", "class", "tour"]}}
assert set(CATEGORY) == set(v1.NOUNS)


class IclWordsTask(_V2Split, v1.SentimentTask):
    """The reviews with label words drawn per document from the pseudo-word pool of the split.

    ``feature="sentiment"``: 2 classes (positive, negative); ``feature="category"``: 4 classes (what the noun is:
    food, place, media, outing). Test examples take their label words from the held-out pool, so a model can only
    answer by reading the examples in its prompt; shots are relabelled with the query's words (``answer_for``).
    """

    def __init__(self, name: str = "icl_words", feature: str = "sentiment"):
        if feature not in ("sentiment", "category"):
            raise ValueError(f"feature must be 'sentiment' or 'category', got {feature!r}")
        self.name, self.feature = name, feature
        self.classes = ["positive", "negative"] if feature == "sentiment" else ["food", "place", "media", "outing"]
        self.description = (f"reviews labelled by {feature} with {len(self.classes)} pseudo-words drawn per "
                            "document (held-out words in the test split)")

    def _class_of(self, ex: Example) -> str:
        return ex.meta["sentiment"] if self.feature == "sentiment" else CATEGORY[ex.question.split()[-1]]

    def _sample_split(self, rng: random.Random, split: str) -> Example:
        ex = v1.SentimentTask._sample(self, rng)
        words = rng.sample(word_pool(split), len(self.classes))
        labels = dict(zip(self.classes, words))
        cls = ex.meta["sentiment"] if self.feature == "sentiment" else CATEGORY[ex.question.split()[-1]]
        return Example(ex.question, labels[cls], {"sentiment": ex.meta["sentiment"], "class": cls,
                                                   "labels": labels})

    def _sample(self, rng: random.Random) -> Example:
        return self._sample_split(rng, "train")

    def answer_for(self, example: Example, query: Example) -> str:
        return query.meta["labels"][example.meta["class"]]

    def bursty_shots(self, k: int, rng: random.Random) -> list[Example]:
        """``k`` training shots covering the classes as evenly as possible (every class once when k >= classes)."""
        by_class: dict[str, list[Example]] = {c: [] for c in self.classes}
        order = [self.classes[i % len(self.classes)] for i in range(k)]
        while any(len(by_class[c]) < order.count(c) for c in self.classes):
            ex = self.sample(rng, "train")
            by_class[ex.meta["class"]].append(ex)
        picked = [by_class[c].pop() for c in order]
        rng.shuffle(picked)
        return picked


class RecallTask(_V2Split, v1.Task):
    """Key-value recall: 2-8 ``key:value`` pairs of pseudo-words, then a key; the answer is its value."""

    sep = " -> "
    partial_name = "char_accuracy"

    def __init__(self, name: str = "recall"):
        self.name = name
        self.description = "key-value recall over 2-8 pairs of pseudo-words (held-out words in the test split)"

    def _sample_split(self, rng: random.Random, split: str) -> Example:
        n = rng.randint(2, 8)
        words = rng.sample(word_pool(split), 2 * n)
        keys, values = words[:n], words[n:]
        i = rng.randrange(n)
        question = " ".join(f"{k}:{v}" for k, v in zip(keys, values)) + f" / {keys[i]}"
        return Example(question, values[i], {"pairs": n, "position": i})

    def _sample(self, rng: random.Random) -> Example:
        return self._sample_split(rng, "train")


class TranslateIclTask(_V2Split, v1.Task):
    """Word-by-word translation of 1-3 words of ICL_ENGLISH into a lexicon drawn per document from the word pool.

    The lexicon exists only in the prompt: each shot is rendered with the query's lexicon (``answer_for``), so the
    query can be translated only where its words appear in the shots (more shots, more words covered).
    """

    sep = " => "
    partial_name = "word_accuracy"

    def __init__(self, name: str = "translate_icl"):
        self.name = name
        self.description = "word-level translation with a lexicon drawn per prompt (held-out words in the test split)"

    def _sample_split(self, rng: random.Random, split: str) -> Example:
        words = [rng.choice(ICL_ENGLISH) for _ in range(rng.randint(1, 3))]
        lexicon = dict(zip(ICL_ENGLISH, rng.sample(word_pool(split), len(ICL_ENGLISH))))
        return Example(" ".join(words), " ".join(lexicon[w] for w in words), {"n_words": len(words),
                                                                             "lexicon": lexicon})

    def _sample(self, rng: random.Random) -> Example:
        return self._sample_split(rng, "train")

    def answer_for(self, example: Example, query: Example) -> str:
        return " ".join(query.meta["lexicon"][w] for w in example.question.split())


UPPER_ALNUM = "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789"


class RepeatTask(_V2Split, v1.Task):
    """Copy a sequence written once before: ``bofa kimu ruvi | `` -> ``bofa kimu ruvi``.

    Half the sequences are 3-10 pseudo-words, half random strings of 8-24 capital letters and digits (``K7QZ2MX9``).
    Every character of the copy is predictable only from the context: the densest training signal for an induction
    head (Olsson et al. 2022), the circuit every other prompt-reading task here needs. In pseudo-words (19 letters
    alternating consonant and vowel) one previous character rarely tells where to copy from, so the simplest
    induction head buys little; in random strings over 36 symbols it buys a lot (pilots 1 and 2, with pseudo-words
    only, never copied). The repeated-string probe uses lowercase strings, never seen in training.
    """

    sep = " | "
    partial_name = "word_accuracy"

    def __init__(self, name: str = "repeat"):
        self.name = name
        self.description = "copy a sequence of 3-10 pseudo-words from the context (held-out words in the test split)"

    def _sample_split(self, rng: random.Random, split: str) -> Example:
        if rng.random() < 0.5:
            seq = " ".join(rng.choice(word_pool(split)) for _ in range(rng.randint(3, 10)))
        else:
            seq = "".join(rng.choice(UPPER_ALNUM) for _ in range(rng.randint(8, 24)))
        return Example(seq, seq, {})

    def _sample(self, rng: random.Random) -> Example:
        return self._sample_split(rng, "train")


TASKS: dict[str, v1.Task] = {t.name: t for t in [
    AddTask(), MulTask(), SentimentTask(), TranslateTask(), ChainTask(), IclWordsTask(),
    IclWordsTask("icl_words4", feature="category"), RecallTask(), TranslateIclTask(), RepeatTask()]}


def get_task(name: str) -> v1.Task:
    """The v2 task called ``name`` (one of ``TASKS``)."""
    try:
        return TASKS[name]
    except (KeyError, TypeError):
        raise KeyError(f"unknown v2 task {name!r}; the tasks are {sorted(TASKS)}") from None


# ---- prompt variants the probes and the mixture share ---------------------------------------------------------------


def copy_prompt(task: IclWordsTask, query: Example, shots: Sequence[Example], rng: random.Random) -> str:
    """The prompt of ``query`` with one shot (of the query's class when there is one) replaced by the query itself."""
    shots = list(shots)
    same = [i for i, s in enumerate(shots) if s.meta["class"] == query.meta["class"]]
    shots[rng.choice(same) if same else rng.randrange(len(shots))] = query
    return task.prompt(query, shots)


FLIP = {"positive": "negative", "negative": "positive"}


def flipped_prompt(query: Example, shots: Sequence[Example]) -> str:
    """A sentiment prompt whose shots carry the opposite label (``great movie -> negative``)."""
    task = TASKS["sentiment"]
    lines = [s.question + task.sep + FLIP[s.answer] for s in shots] + [task.query(query)]
    return "\n".join(lines)


def repeat_string(rng: random.Random, length: int = 24) -> str:
    """A random string of lowercase letters and digits (the repeated-string probe writes it twice)."""
    return "".join(rng.choice("abcdefghijklmnopqrstuvwxyz0123456789") for _ in range(length))


# ---- the training mixture -----------------------------------------------------------------------------------------
# Probability of each task per document. Copying from the prompt is the skill v1 never needed, so about 60% of the
# documents need it (icl_words, icl_words4, recall, translate_icl, repeat); the v1 tasks keep the phenomena that
# already hold (scratchpad arithmetic, the fixed translation, chained look-ups). Pilot 1 (without repeat, 5M
# characters, 220K parameters) never copied anything from its prompt; "repeat" (pseudo-words) was added for pilot 2,
# which did not copy either (4.8M characters); random capital strings were added to "repeat" for pilot 3.
MIXTURE = {"add": 0.13, "mul": 0.07, "chain": 0.06, "translate": 0.05, "sentiment": 0.06, "icl_words": 0.18,
           "icl_words4": 0.08, "recall": 0.15, "translate_icl": 0.10, "repeat": 0.12}
P_COT = 0.5  # scratchpad style for tasks that have one
MAX_SHOTS, MAX_COT_SHOTS = 8, 2
P_COPY = 0.2  # icl_words documents whose query repeats one of the examples
P_FLIP = 0.2  # sentiment documents with positive/negative swapped in the examples and the answer
P_ROLE = 0.1  # arithmetic and sentiment documents with a role line first
P_JSON = 0.1  # direct arithmetic documents asking for, and showing, JSON answers


def _fit(lines: list[str], last: str, max_chars: int) -> str:
    while lines and len("\n".join(lines + [last])) > max_chars:
        lines = lines[1:]
    return "\n".join(lines + [last])


def mixture_document(rng: random.Random, split: str = "train", max_chars: int = 254) -> str:
    """One v2 training (or held-out) document drawn from ``rng``: a task, its variant, its shots and the answer.

    Shots and queries come from ``split`` ("test": held-out questions and held-out pseudo-words, for a held-out loss
    only; training never draws from it). Documents longer than ``max_chars`` lose shots from the front.
    """
    names, weights = zip(*MIXTURE.items())
    name = rng.choices(names, weights)[0]
    task = TASKS[name]
    if name in ("icl_words", "icl_words4"):
        k = rng.randint(2, MAX_SHOTS)
        query = task.sample(rng, split)
        shots = task.bursty_shots(k, rng) if split == "train" else [task.sample(rng, split) for _ in range(k)]
        if rng.random() < P_COPY:
            same = [i for i, s in enumerate(shots) if s.meta["class"] == query.meta["class"]] or list(range(k))
            shots[rng.choice(same)] = query
        lines = [task.query(s) + task.completion(s, query=query) for s in shots]
        return _fit(lines, task.query(query) + query.answer, max_chars)
    if name == "sentiment" and rng.random() < P_FLIP:
        query = task.sample(rng, split)
        shots = [task.sample(rng, split) for _ in range(rng.randint(3, MAX_SHOTS))]
        lines = [s.question + task.sep + FLIP[s.answer] for s in shots]
        return _fit(lines, task.query(query) + FLIP[query.answer], max_chars)
    style = "cot" if ("cot" in task.styles and rng.random() < P_COT) else "direct"
    k = rng.randint(0, MAX_COT_SHOTS if style == "cot" else MAX_SHOTS)
    if name in ("recall", "repeat"):
        k = rng.randint(0, 2)
    query = task.sample(rng, split)
    shots = [task.sample(rng, split) for _ in range(k)]
    head: list[str] = []
    if name in ("add", "mul", "sentiment") and rng.random() < P_ROLE:
        head.append(f"You are {rng.choice(ROLES)}.")
    if name in ("add", "mul") and style == "direct" and rng.random() < P_JSON:
        head.append(JSON_LINE)
        lines = [task.query(s) + json.dumps({"answer": int(s.answer)}) for s in shots]
        last = task.query(query) + json.dumps({"answer": int(query.answer)})
    else:
        lines = [task.query(s, style) + task.completion(s, style, query=query) for s in shots]
        last = task.query(query, style) + task.completion(query, style)
    doc = _fit(lines, last, max_chars - sum(len(h) + 1 for h in head))
    return "\n".join(head + [doc])
