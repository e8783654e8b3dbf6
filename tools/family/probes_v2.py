"""The in-context-learning probes of issue 17, fixed before any v2 model was trained (never tuned to a result).

    python -m tools.family.probes_v2 --model /var/tmp/w7-family-v2/models/w7-200k   # a folder, or a family name
    python -m tools.family.probes_v2 --model w7-200k --n 300 --out probes.json

Every cell is ``n`` test items (seed 7001 unless told), greedy decoding, 95% bootstrap intervals:

- ``icl_unseen``: arbitrary labels with label words from the HELD-OUT pool (never in a training document), query
  reviews from the test split, k = 0, 1, 3, 5, 8 balanced shots from the train split relabelled with the query's
  words. Chance is 0.5 for k >= 2 (two label words shown) and at most 0.5 for k = 1; ``label_space`` is the share
  of answers that are one of the two words (the format, not the mapping);
- ``copy``: the same with k = 5 and the query itself among the shots, with its label;
- ``flipped``: sentiment with positive/negative swapped in k = 5 shots: ``follows_prompt`` (answers the swapped
  label) against ``follows_prior`` (answers the true sentiment);
- ``repeat``: a random 24-character string written twice; mean loss (nats per character, characters 2..24 of each
  copy) on the second copy against the first: the induction-head signature (Olsson et al. 2022) is a drop;
- ``translate_icl``: a lexicon of held-out words given only by the shots, k = 0, 1, 3, 5, 8; ``covered`` is the
  share of queries whose every word appears in the shots (the ceiling of exact match).
"""

from __future__ import annotations

import argparse
import json
import random
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

SEED = 7001
N = 300
KS = (0, 1, 3, 5, 8)


def _ci(values) -> dict:
    from week7.metrics import bootstrap_ci

    m, lo, hi = bootstrap_ci([float(v) for v in values], seed=0)
    return {"value": round(m, 4), "lo": round(lo, 4), "hi": round(hi, 4)}


def _shots(task, k: int, seed: int, i: int):
    return task.shots(k, seed=seed * 100_003 + i, balanced=True)  # what tasks.evaluate gives item i


def run_probes(model, tok, n: int = N, seed: int = SEED, ks=KS, log=print) -> list[dict]:
    """Every probe on ``model``; one row per cell: probe, k, metric, n, value, lo, hi, chance."""
    import torch

    from week7 import tasks_v2
    from week7.lm import generate
    from week7.tasks import evaluate

    rows: list[dict] = []

    def add(probe, k, metric, values, chance=None):
        rows.append({"probe": probe, "k": k, "metric": metric, "n": len(values), **_ci(values), "chance": chance})
        r = rows[-1]
        log(f"  {probe:13s} k={k} {metric:15s} {r['value']:.3f} [{r['lo']:.3f}, {r['hi']:.3f}]")

    icl = tasks_v2.get_task("icl_words")
    queries = icl.examples(n, "test", seed=seed)
    for k in ks:
        r = evaluate(model, tok, icl, n=n, k=k, seed=seed)
        add("icl_unseen", k, "exact", r["exact_all"], 0.5 if k >= 2 else None)
        in_space = [icl.extract(g) in q.meta["labels"].values() for g, q in zip(r["generations"], queries)]
        add("icl_unseen", k, "label_space", in_space)
    # copy: the query among 5 shots
    prompts = [tasks_v2.copy_prompt(icl, q, _shots(icl, 5, seed, i), random.Random(f"copy|{seed}|{i}"))
               for i, q in enumerate(queries)]
    gens = generate(model, tok, prompts, max_new_tokens=10)
    add("copy", 5, "exact", [icl.is_correct(g, q.answer) for g, q in zip(gens, queries)], 0.5)
    # flipped labels
    sent = tasks_v2.get_task("sentiment")
    squeries = sent.examples(n, "test", seed=seed)
    prompts = [tasks_v2.flipped_prompt(q, _shots(sent, 5, seed, i)) for i, q in enumerate(squeries)]
    gens = [sent.extract(g) for g in generate(model, tok, prompts, max_new_tokens=12)]
    add("flipped", 5, "follows_prompt", [g == tasks_v2.FLIP[q.answer] for g, q in zip(gens, squeries)])
    add("flipped", 5, "follows_prior", [g == q.answer for g, q in zip(gens, squeries)])
    # repeated random string: loss per character on the second copy against the first
    rng = random.Random(f"repeat|{seed}")
    strings = [tasks_v2.repeat_string(rng) for _ in range(n)]
    first, second = [], []
    model.eval()
    with torch.inference_mode():
        for b in range(0, n, 64):
            batch = [s + " " + s for s in strings[b:b + 64]]
            ids = torch.tensor([tok(t)["input_ids"] for t in batch])  # (B, 1 + 2L + 1), all the same length
            logits = model(input_ids=ids).logits[:, :-1].float()  # (B, T-1, V)
            nll = torch.nn.functional.cross_entropy(logits.transpose(1, 2), ids[:, 1:], reduction="none")  # (B, T-1)
            L = len(strings[0])
            # target position j (in ids) is predicted at j-1; copy 1 is ids[1..L], copy 2 is ids[L+2..2L+1]
            first += nll[:, 1:L].mean(1).tolist()  # characters 2..L of copy 1
            second += nll[:, L + 2:2 * L + 1].mean(1).tolist()  # characters 2..L of copy 2
    add("repeat", 0, "loss_first", first)
    add("repeat", 0, "loss_second", second)
    add("repeat", 0, "second_minus_first", [b - a for a, b in zip(first, second)])
    # in-context translation
    tr = tasks_v2.get_task("translate_icl")
    tqueries = tr.examples(n, "test", seed=seed)
    for k in ks:
        r = evaluate(model, tok, tr, n=n, k=k, seed=seed)
        add("translate_icl", k, "exact", r["exact_all"])
        add("translate_icl", k, "word_accuracy", r["partial_all"])
        covered = []
        for i, q in enumerate(tqueries):
            seen = {w for s in _shots(tr, k, seed, i) for w in s.question.split()}
            covered.append(all(w in seen for w in q.question.split()))
        add("translate_icl", k, "covered", covered)
    return rows


def main(argv: list[str] | None = None) -> int:
    import torch

    from week7 import zoo

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, help="a model folder (save_pretrained) or a family name")
    ap.add_argument("--n", type=int, default=N)
    ap.add_argument("--seed", type=int, default=SEED)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default=None, help="write the rows as JSON here")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    model, tok = zoo.load(args.model, device="cpu")
    t0 = time.time()
    rows = run_probes(model, tok, n=args.n, seed=args.seed)
    print(f"{len(rows)} cells in {time.time() - t0:.0f} s")
    if args.out:
        Path(args.out).write_text(json.dumps({"model": args.model, "n": args.n, "seed": args.seed,
                                              "rows": rows}, indent=1) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
