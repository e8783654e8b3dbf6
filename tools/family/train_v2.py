"""Train model family v2 (issue 17) by the plan in tools/family/v2_plan.json, resumably, outside the repo.

    tools/family/train_v2.sh                            # two lanes in the background at nice 19 (see the script)
    python -m tools.family.train_v2 --status            # step / total, tokens, loss and wall time of every model
    python -m tools.family.train_v2 --model w7-200k     # one model (resumes its checkpoint)
    python -m tools.family.train_v2 --all               # every model not yet exported, smallest first

Each model checkpoints every minute to <checkpoint_root>/<name>/ckpt.pt (and progress.json); a killed run started
again with the same command resumes where it stopped and sees the same batches. A finished model is exported to
<checkpoint_root>/models/<name>/ (float16 safetensors + tokenizer, loadable with ``zoo.load(folder)``) with
info.json (params, tokens, FLOPs, wall time, held-out loss, the sha256 of every file, the plan's budget rule) and
probes.json (tools/family/probes_v2.py, n = 300 per cell). Exported models are skipped (``--force`` retrains), and
a model whose lock file names a live process is left to that process, so two lanes can share one plan. Shipping into
src/week7/models/ (manifest, evidence) is a separate, later step.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))
PLAN = Path(__file__).with_name("v2_plan.json")


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except (OSError, ValueError):
        return False
    return pid > 0


def data_tag() -> str:
    """``v2-<hash of 300 documents>``: a checkpoint made on other data (a changed mixture) is never resumed."""
    import hashlib
    import random

    from week7 import tasks_v2

    docs = "\x00".join(tasks_v2.mixture_document(random.Random(f"fingerprint|{i}")) for i in range(300))
    return "v2-" + hashlib.sha256(docs.encode()).hexdigest()[:12]


def load_plan(path: Path = PLAN) -> dict:
    return json.loads(Path(path).read_text())


def specs(plan: dict) -> dict:
    from week7.train import ModelSpec

    return {m["name"]: ModelSpec(**m) for m in plan["models"]}


def status(root: Path, plan: dict) -> int:
    for name, spec in specs(plan).items():
        prog = root / name / "progress.json"
        done = (root / "models" / name / "info.json").exists()
        if prog.exists():
            p = json.loads(prog.read_text())
            age = time.time() - p["time"]
            print(f"{name:8s} {'done' if done else 'training':8s} step {p['step']:>6}/{p['total']:<6} "
                  f"{p['tokens'] / 1e6:6.2f}M chars  loss {p['loss_ema']}  {p['wall_s'] / 60:6.1f} min  "
                  f"(checkpoint {age / 60:.0f} min ago)")
        else:
            print(f"{name:8s} not started ({spec.tokens / 1e6:.0f}M chars planned)")
    return 0


def export(model, info: dict, spec, folder: Path, plan: dict, loss: float, threads: int) -> dict:
    import torch

    from week7.tokenizer import save_tokenizer
    from week7.zoo import sha256_file

    folder.mkdir(parents=True, exist_ok=True)
    half = type(model)(model.config)
    half.load_state_dict(model.state_dict())
    half.to(torch.float16).save_pretrained(str(folder), safe_serialization=True)
    save_tokenizer(folder)
    files = {p.name: sha256_file(p) for p in sorted(folder.iterdir())
             if p.is_file() and p.name not in ("info.json", "probes.json")}
    entry = {"name": spec.name, "data": plan["data"], "data_tag": info["data_tag"], "budget": plan["budget"],
             "spec": dataclasses.asdict(spec),
             "params": info["params"], "tokens": info["tokens"], "flops": info["flops"], "wall_s": info["wall_s"],
             "steps": info["steps"], "budget_changes": info.get("budget_changes", []),
             "final_loss": round(loss, 4), "train_curve": info["curve"], "files": files,
             "torch": torch.__version__, "threads": threads}
    (folder / "info.json").write_text(json.dumps(entry, indent=1) + "\n")
    return entry


def run_one(spec, root: Path, plan: dict, threads: int, probes: bool = True) -> None:
    import torch

    from week7 import tasks_v2
    from week7.train import evaluate_loss, heldout_batches, train

    t0 = time.time()
    print(f"{time.strftime('%H:%M:%S')} start {spec.name}: {spec.tokens:,} chars", flush=True)
    tag = data_tag()
    model, info = train(spec, root / spec.name, resume=True, progress=False, document=tasks_v2.mixture_document,
                        data=tag, log=lambda m: print(m, flush=True))
    info["data_tag"] = tag
    model.load_state_dict({k: v.to(torch.float16).to(v.dtype) for k, v in model.state_dict().items()})
    loss = evaluate_loss(model, heldout_batches(document=tasks_v2.mixture_document))
    folder = root / "models" / spec.name
    export(model, info, spec, folder, plan, loss, threads)
    print(f"{time.strftime('%H:%M:%S')} {spec.name}: {info['params']:,} params, {info['tokens']:,} chars, "
          f"{info['wall_s']:.0f} s training ({info['tokens'] / max(info['wall_s'], 1e-9):.0f} chars/s), "
          f"held-out loss {loss:.4f}", flush=True)
    if probes:
        from tools.family.probes_v2 import N, SEED, run_probes
        from week7.tokenizer import build_tokenizer

        model.eval()
        rows = run_probes(model, build_tokenizer(), n=N, seed=SEED, log=lambda m: print(m, flush=True))
        (folder / "probes.json").write_text(json.dumps({"model": spec.name, "n": N, "seed": SEED, "rows": rows},
                                                       indent=1) + "\n")
    print(f"{time.strftime('%H:%M:%S')} done {spec.name} ({time.time() - t0:.0f} s)", flush=True)


def main(argv: list[str] | None = None) -> int:
    import torch

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--plan", default=str(PLAN))
    ap.add_argument("--model", action="append", help="train this model of the plan (repeatable)")
    ap.add_argument("--all", action="store_true", help="every model of the plan, smallest first, skipping done ones")
    ap.add_argument("--status", action="store_true", help="show progress and exit")
    ap.add_argument("--root", default=None, help="checkpoint root (default: the plan's checkpoint_root)")
    ap.add_argument("--tokens", type=int, default=None, help="override the token budget (pilots; use another --root)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--no-probes", action="store_true")
    ap.add_argument("--force", action="store_true", help="train and export again a model already exported")
    args = ap.parse_args(argv)
    plan = load_plan(Path(args.plan))
    root = Path(args.root or plan["checkpoint_root"])
    if args.status:
        return status(root, plan)
    threads = args.threads or plan.get("threads", 1)
    torch.set_num_threads(threads)
    all_specs = specs(plan)
    names = list(all_specs) if args.all else (args.model or [])
    if not names:
        ap.error("give --model NAME, --all or --status")
    unknown = [n for n in names if n not in all_specs]
    if unknown:
        ap.error(f"not in the plan: {unknown}; the plan has {list(all_specs)}")
    root.mkdir(parents=True, exist_ok=True)
    for name in names:
        spec = all_specs[name]
        if args.tokens:
            spec = dataclasses.replace(spec, tokens=args.tokens)
        if not args.force and (root / "models" / name / "info.json").exists():
            print(f"{name}: already exported, skipped", flush=True)
            continue
        lock = root / name / "lock"
        if lock.exists() and _alive(int(lock.read_text() or 0)):
            print(f"{name}: trained by process {lock.read_text()} (another lane), skipped", flush=True)
            continue
        (root / name).mkdir(parents=True, exist_ok=True)
        lock.write_text(str(os.getpid()))
        try:
            run_one(spec, root, plan, threads, probes=not args.no_probes)
        finally:
            lock.unlink(missing_ok=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
