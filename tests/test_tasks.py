"""Tasks and metrics of the model family: determinism, disjoint splits, formats, and every checker on hand-written
cases, including malformed model outputs (empty, extra text, wrong length)."""

import math

import numpy as np
import pytest

from week7 import metrics
from week7.tasks import TASKS, Example, get_task

NAMES = ["add", "mul", "sentiment", "icl_labels", "translate", "chain"]


def test_registry_has_every_task():
    assert sorted(TASKS) == sorted(NAMES)
    for name in NAMES:
        assert get_task(name).name == name
    with pytest.raises(KeyError, match="unknown task"):
        get_task("nope")


@pytest.mark.parametrize("name", NAMES)
def test_examples_deterministic_and_splits_disjoint(name):
    task = get_task(name)
    a = task.examples(200, "test", seed=3)
    b = task.examples(200, "test", seed=3)
    assert [(e.question, e.answer) for e in a] == [(e.question, e.answer) for e in b]
    assert [e.question for e in task.examples(50, "test", seed=4)] != [e.question for e in a[:50]]
    train = {e.question for e in task.examples(1000, "train", seed=0)}
    test = {e.question for e in task.examples(300, "test", seed=0)}
    assert not train & test
    assert len(test) == 300  # unique while the split has enough distinct questions
    with pytest.raises(ValueError, match="split"):
        task.examples(3, split="valid")


@pytest.mark.parametrize("name", NAMES)
def test_gold_completion_is_correct_and_prompt_format(name):
    task = get_task(name)
    exs = task.examples(30, seed=1)
    shots = task.shots(3, seed=0)
    for style in task.styles:
        for e in exs:
            gold = task.completion(e, style)
            assert task.is_correct(gold, e.answer), (style, e, gold)
            assert task.partial_credit(gold, e.answer) == 1.0
            assert task.is_correct(gold + "\nnext line ignored", e.answer)
            p = task.prompt(e, shots, style)
            assert p.count("\n") == 3 and p.endswith(task.query(e, style))
            assert not p.endswith("\n")


def test_arithmetic_answers_and_scratchpads():
    add, mul = get_task("add"), get_task("mul")
    e = Example("478+365", "843", {"a": 478, "b": 365})
    assert add.completion(e, "cot") == " 8+5+0=13 7+6+1=14 4+3+1=08 ans 843"
    m = Example("347*8", "2776", {"a": 347, "b": 8})
    assert mul.completion(m, "cot") == " 7*8+0=56 4*8+5=37 3*8+3=27 ans 2776"
    for ex in add.examples(100, seed=2):
        a, b = map(int, ex.question.split("+"))
        assert 100 <= a <= 999 and 100 <= b <= 999 and int(ex.answer) == a + b
    for ex in mul.examples(100, seed=2):
        a, b = map(int, ex.question.split("*"))
        assert 100 <= a <= 999 and 2 <= b <= 9 and int(ex.answer) == a * b
    assert add.prompt(e) == "478+365=" and add.prompt(e, style="cot") == "478+365:"


def test_arithmetic_checker_on_malformed_outputs():
    add = get_task("add")
    assert add.is_correct("843", "843")
    assert add.is_correct(" 843 ", "843")
    assert not add.is_correct("", "843")
    assert not add.is_correct("8433", "843")  # wrong length
    assert not add.is_correct("843 and more", "843")  # extra text
    assert not add.is_correct("84", "843")
    assert add.extract(" 8+5+0=13 7+6+1=14 4+3+1=08 ans 843") == "843"
    assert add.extract(" 8+5+0=13 7+6+1=14 4+3+1=0") == "8+5+0=13 7+6+1=14 4+3+1=0"  # scratchpad never finished
    assert not add.is_correct(" 8+5+0=13 7+6+1=14 4+3+1=0", "843")
    assert add.partial_credit("", "843") == 0.0
    assert add.partial_credit("842", "843") == pytest.approx(2 / 3)
    assert add.partial_credit("43", "843") == pytest.approx(2 / 3)
    assert add.partial_credit("1843", "843") == pytest.approx(3 / 4)
    with pytest.raises(TypeError):
        add.extract(None)
    with pytest.raises(ValueError, match="styles"):
        get_task("sentiment").prompt(e := get_task("sentiment").examples(1)[0], style="cot")
    assert e.answer in ("positive", "negative")


def test_classification_and_icl_labels():
    sent, icl = get_task("sentiment"), get_task("icl_labels")
    assert sent.is_correct("positive", "positive") and not sent.is_correct("positive!", "positive")
    assert not sent.is_correct("", "negative") and not sent.is_correct("negative positive", "negative")
    assert sent.partial_credit("positiv", "positive") == pytest.approx(7 / 8)
    q = icl.examples(1, seed=5)[0]
    labels = q.meta["labels"]
    assert set(labels) == {"positive", "negative"} and labels["positive"] != labels["negative"]
    assert q.answer == labels[q.meta["sentiment"]]
    shots = icl.shots(6, seed=1, balanced=True)
    assert sorted(s.meta["sentiment"] for s in shots).count("positive") == 3
    p = icl.prompt(q, shots)
    for s, line in zip(shots, p.split("\n")):
        assert line == f"{s.question} -> {labels[s.meta['sentiment']]}"  # shots relabelled with the query's words
    assert "positive" not in p and "negative" not in p
    # the label words differ between prompts, so only the shots can tell the mapping
    maps = {tuple(sorted(e.meta["labels"].items())) for e in icl.examples(50, seed=0)}
    assert len(maps) > 20


def test_translate_and_chain():
    tr, ch = get_task("translate"), get_task("chain")
    e = tr.examples(1, seed=0)[0]
    words = e.answer.split()
    assert len(words) == len(e.question.split()) and 2 <= len(words) <= 4
    assert tr.partial_credit(" ".join(words[:-1]), e.answer) == pytest.approx((len(words) - 1) / len(words))
    assert tr.partial_credit(e.answer + " extra", e.answer) == pytest.approx(len(words) / (len(words) + 1))
    assert not tr.is_correct(e.answer + " extra", e.answer)
    c = Example("d=7 q=3 b=d m=q; b", "7", {"hops": 1, "chain": ["b", "d"]})
    assert ch.completion(c, "cot") == " b=d d=7 ans 7"
    assert ch.prompt(c) == "d=7 q=3 b=d m=q; b="
    for ex in ch.examples(100, seed=0):  # the gold answer follows the statements
        env = dict(s.split("=") for s in ex.question.split("; ")[0].split())
        v = ex.question.split("; ")[1]
        while not env[v].isdigit():
            v = env[v]
        assert env[v] == ex.answer


def test_metrics():
    assert metrics.exact_match(" a ", "a") and not metrics.exact_match("a", "b")
    assert metrics.digit_accuracy("", "") == 1.0 and metrics.digit_accuracy("", "12") == 0.0
    assert metrics.word_accuracy("a b c", "a x c") == pytest.approx(2 / 3)
    assert metrics.char_accuracy("abc", "abd") == pytest.approx(2 / 3) and metrics.char_accuracy("", "") == 1.0
    assert metrics.char_accuracy("x7", "7") == 0.0 and metrics.char_accuracy(" 7 ", "7") == 1.0
    assert metrics.char_accuracy("ositive", "positive") == 0.0  # position by position: not an edit distance
    assert not hasattr(metrics, "edit_distance") and not hasattr(metrics, "edit_similarity")  # exercise 01's answers
    m, lo, hi = metrics.bootstrap_ci([0, 1] * 50, n_boot=500, seed=0)
    assert m == 0.5 and lo < 0.5 < hi and hi - lo < 0.3
    assert metrics.bootstrap_ci([1, 1, 1]) == (1.0, 1.0, 1.0)
    assert metrics.bootstrap_ci([0, 1, 1, 0], seed=1) == metrics.bootstrap_ci([0, 1, 1, 0], seed=1)
    with pytest.raises(ValueError, match="empty"):
        metrics.bootstrap_ci([])
    # not exercise 03's paired_bootstrap (whose draw is np.random.default_rng(seed).integers(0, n, (n_boot, n))):
    # applied to b - a it gives another interval, so it is no shortcut (fixture wrong_bootstrap_ci_shortcut)
    d = np.tile(np.array([1.0, 0.0, 0.0, -1.0, 1.0]), 20)
    idx = np.random.default_rng(0).integers(0, d.size, size=(2000, d.size))
    contract = tuple(np.quantile(d[idx].mean(axis=1), [0.025, 0.975]))
    assert metrics.bootstrap_ci(d, n_boot=2000, alpha=0.05, seed=0)[1:] != pytest.approx(contract, abs=1e-9)
    with pytest.raises(TypeError):
        metrics.exact_match(None, "a")
    assert not math.isnan(metrics.char_accuracy("", "x"))



@pytest.mark.parametrize("name", ["sentiment", "icl_labels"])
def test_balanced_shots_never_run_short_of_a_class(name, monkeypatch):
    """A first pool holding one class only must not raise IndexError (session 1 saw it); the pool grows instead."""
    task = get_task(name)
    for k in (2, 3, 8):
        assert len(task.shots(k, seed=0, balanced=True)) == k
    original = type(task).examples

    def skewed(self, n, split="test", seed=0):  # small pools hold positives only
        full = original(self, n if n > 32 else 8 * n, split, seed)
        return full if n > 32 else [e for e in full if e.meta["sentiment"] == "positive"][:n]

    monkeypatch.setattr(type(task), "examples", skewed)
    for k in (2, 3, 8):
        labels = [e.meta["sentiment"] for e in task.shots(k, seed=1, balanced=True)]
        assert len(labels) == k and abs(labels.count("positive") - labels.count("negative")) <= 1, (k, labels)
