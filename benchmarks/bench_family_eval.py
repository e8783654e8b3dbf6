"""Time to evaluate 500 prompts with the largest shipped family model (greedy, KV cache, batched).

    python benchmarks/bench_family_eval.py [--model w7-4m] [--n 500] [--threads auto|N]

Prompts: 500 test examples of the 3-digit addition task with 3 shots (about 60 characters of prompt and up to 8 new
characters each). The target is under 30 s on 2 CPU cores, idle or busy. ``--threads auto`` (the default) uses the
idle cores, as ``week7.tasks.evaluate`` does; the script also times the same prompts with a fixed 2 threads, side by
side, to show what that choice buys on a busy machine. The script prints the time, prompts per second and,
side by side, the same prompts without the KV cache on a sample, to show what the cache buys.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main() -> int:
    import torch

    from week7 import zoo
    from week7.lm import generate
    from week7.tasks import get_task

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", default=None, help="default: the largest shipped model")
    ap.add_argument("--n", type=int, default=500)
    ap.add_argument("--threads", default="auto", help="torch threads: auto (the idle cores) or a number")
    ap.add_argument("--batch-size", type=int, default=64)
    args = ap.parse_args()
    from week7.lm import auto_threads

    threads = auto_threads() if args.threads == "auto" else int(args.threads)
    torch.set_num_threads(threads)
    shipped = [m for m in zoo.FAMILY if m in zoo.manifest()["models"]]
    name = args.model or shipped[-1]
    model, tok = zoo.load(name, device="cpu")
    task = get_task("add")
    exs = task.examples(args.n, seed=0)
    prompts = [task.prompt(e, task.shots(3, seed=i)) for i, e in enumerate(exs)]
    generate(model, tok, prompts[:8], max_new_tokens=8)  # warm-up
    t0 = time.perf_counter()
    gens = generate(model, tok, prompts, max_new_tokens=8, batch_size=args.batch_size)
    dt = time.perf_counter() - t0
    acc = sum(task.is_correct(g, e.answer) for g, e in zip(gens, exs)) / len(exs)
    print(f"{name}: {len(prompts)} prompts in {dt:.1f} s ({len(prompts) / dt:.0f} prompts/s, "
          f"{torch.get_num_threads()} threads, batch {args.batch_size}); exact match {acc:.3f}; "
          f"target < 30 s: {'met' if dt < 30 else 'NOT met'}")
    if threads != 2:
        torch.set_num_threads(2)
        t0 = time.perf_counter()
        generate(model, tok, prompts, max_new_tokens=8, batch_size=args.batch_size)
        dt2 = time.perf_counter() - t0
        print(f"same prompts with 2 threads: {dt2:.1f} s (ratio 2 threads / {threads} thread(s): {dt2 / dt:.2f})")
        torch.set_num_threads(threads)
    # Without a cache: the whole sequence is recomputed for every new token (sample of 64 prompts).
    sample = prompts[:64]
    t0 = time.perf_counter()
    generate(model, tok, sample, max_new_tokens=8, batch_size=args.batch_size)
    with_cache = time.perf_counter() - t0
    t0 = time.perf_counter()
    with torch.inference_mode():
        enc = tok(sample, return_tensors="pt", padding=True)
        ids, mask = enc["input_ids"], enc["attention_mask"]
        for _ in range(8):
            pos = (mask.cumsum(-1) - 1).clamp(min=0)
            nxt = model(input_ids=ids, attention_mask=mask, position_ids=pos).logits[:, -1].argmax(-1)
            ids = torch.cat([ids, nxt[:, None]], 1)
            mask = torch.cat([mask, torch.ones_like(nxt)[:, None]], 1)
    no_cache = time.perf_counter() - t0
    print(f"64 prompts, 8 new tokens: KV cache {with_cache:.2f} s, no cache {no_cache:.2f} s "
          f"(ratio {no_cache / with_cache:.1f}x; the cache version also checks stop strings)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
