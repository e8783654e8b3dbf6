"""Train one model of the course family from scratch and ship it into src/week7/models/<name>/.

    python -m tools.family.train --model w7-1m            # resumes from workspace/family/<name>/ckpt.pt if present
    python -m tools.family.train --model w7-1m --fresh    # ignore any checkpoint

The run checkpoints every minute (kept out of git under workspace/), shows a progress bar, then saves the model in
float16 safetensors with its tokenizer, measures the held-out loss and a small evaluation table, and records
params, tokens, FLOPs (6ND), wall time, config, seed, command and the sha256 of every file in
src/week7/models/manifest.json.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

# Evaluation stored in the manifest: every task, direct style, 3 shots; arithmetic and chain also as scratchpads.
# Rows used by the evidence: every task direct with 3 shots; arithmetic and chain as scratchpad vs direct with
# 0 shots; icl_labels with 0, 1, 3, 5, 8 shots.
MANIFEST_EVAL = [(t, 3, "direct") for t in ["add", "mul", "sentiment", "icl_labels", "translate", "chain"]] + \
    [(t, 0, "cot") for t in ["add", "mul", "chain"]] + [(t, 0, "direct") for t in ["add", "mul", "chain"]] + \
    [("icl_labels", k, "direct") for k in (0, 1, 5, 8)]
MANIFEST_EVAL_N = 100


def manifest_eval(model, tok, n: int = MANIFEST_EVAL_N, progress: bool = False) -> list[dict]:
    from week7.tasks import evaluate

    rows = []
    for task, k, style in MANIFEST_EVAL:
        r = evaluate(model, tok, task, n=n, k=k, style=style, seed=0, progress=progress)
        rows.append({"task": task, "k": k, "style": style, "n": n, "exact": round(r["exact"], 4),
                     "partial": round(r["partial"], 4)})
    return rows


def export(model, info: dict, spec, command: str, out_root: Path, heldout_loss: float, table: list[dict]) -> dict:
    import torch
    from week7.tokenizer import save_tokenizer
    from week7.zoo import sha256_file

    folder = out_root / spec.name
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.iterdir():
        old.unlink()
    half = type(model)(model.config)
    half.load_state_dict(model.state_dict())
    half = half.to(torch.float16)
    half.save_pretrained(str(folder), safe_serialization=True)
    save_tokenizer(folder)
    files = {p.name: sha256_file(p) for p in sorted(folder.iterdir()) if p.is_file()}
    for name in files:
        size = (folder / name).stat().st_size
        if size > 10_000_000:
            raise RuntimeError(f"{folder / name} is {size / 1e6:.1f} MB, over the 10 MB limit per file")
    entry = {"params": info["params"], "tokens": info["tokens"], "flops": info["flops"], "wall_s": info["wall_s"],
             "steps": info["steps"], "budget_changes": info.get("budget_changes", []), "lr": spec.lr, "seed": spec.seed, "spec": dataclasses.asdict(spec),
             "config": {k: v for k, v in model.config.to_dict().items()
                        if k in ("hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads",
                                 "num_key_value_heads", "vocab_size", "max_position_embeddings", "rope_theta",
                                 "rms_norm_eps", "tie_word_embeddings", "model_type")},
             "command": command, "final_loss": round(heldout_loss, 4), "train_curve": info["curve"],
             "eval": table, "eval_note": f"greedy, n={MANIFEST_EVAL_N} test examples per row, seed 0, "
                                         "shots from the train split (balanced labels for classification)",
             "files": files, "torch": torch.__version__}
    manifest_path = out_root / "manifest.json"
    data = json.loads(manifest_path.read_text()) if manifest_path.exists() else {}
    data.setdefault("about", "The week7 model family: Llama-style, char-level, trained by tools/family/train.py. "
                              "tokens = training tokens seen, flops = 6 * params * tokens, wall_s = training wall "
                              "time on the machine named in 'machine'. All models see the same data stream "
                              "(equal tokens, not equal compute).")
    data["machine"] = _machine()
    data.setdefault("models", {})
    data["models"][spec.name] = entry
    from week7.zoo import FAMILY

    data["models"] = {k: data["models"][k] for k in FAMILY if k in data["models"]}
    manifest_path.write_text(json.dumps(data, indent=1) + "\n")
    return entry


def main(argv: list[str] | None = None) -> int:
    import torch

    from week7.train import FAMILY_SPECS, evaluate_loss, heldout_batches, train

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--model", required=True, choices=sorted(FAMILY_SPECS), help="family model to train")
    ap.add_argument("--fresh", action="store_true", help="start from scratch, ignoring a checkpoint")
    ap.add_argument("--tokens", type=int, default=None, help="override the token budget (quick trials)")
    ap.add_argument("--batch-size", type=int, default=None, help="override the rows per step")
    ap.add_argument("--allow-budget-change", action="store_true",
                    help="resume a checkpoint under a new --tokens budget (recorded in the manifest)")
    ap.add_argument("--threads", type=int, default=1,
                    help="torch threads (1 measured faster than 2 on the shared 2-core machine)")
    ap.add_argument("--workspace", default=str(ROOT / "workspace" / "family"), help="checkpoint folder")
    ap.add_argument("--out", default=str(ROOT / "src" / "week7" / "models"), help="where the model is shipped")
    ap.add_argument("--no-export", action="store_true", help="train only, do not write the package files")
    ap.add_argument("--reevaluate", action="store_true",
                    help="no training: evaluate the shipped model again (held-out loss and evaluation table) and "
                         "update its manifest entry")
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    spec = FAMILY_SPECS[args.model]
    if args.tokens:
        spec = dataclasses.replace(spec, tokens=args.tokens)
    if args.batch_size:
        spec = dataclasses.replace(spec, batch_size=args.batch_size)
    command = "python -m tools.family.train " + " ".join(shlex.quote(a) for a in (argv or sys.argv[1:]))
    ckpt_dir = Path(args.workspace) / spec.name
    if args.fresh and (ckpt_dir / "ckpt.pt").exists():
        (ckpt_dir / "ckpt.pt").unlink()
    if args.reevaluate:
        return reevaluate(spec.name, Path(args.out))
    t0 = time.time()
    model, info = train(spec, ckpt_dir, resume=not args.fresh, progress=True,
                        allow_budget_change=args.allow_budget_change)
    # Evaluate the weights that ship: float16-rounded, as zoo.load will see them (the float32 weights gave
    # slightly different partial credit on a few rows in session 2).
    model.load_state_dict({k: v.to(torch.float16).to(v.dtype) for k, v in model.state_dict().items()})
    loss = evaluate_loss(model, heldout_batches())
    print(f"{spec.name}: {info['params']} params, {info['tokens']} tokens, {info['wall_s']:.0f} s training, "
          f"held-out loss {loss:.4f}", flush=True)
    if args.no_export:
        return 0
    model.eval()
    table = manifest_eval(model, _tokenizer(), progress=True)
    for row in table:
        print(row, flush=True)
    export(model, info, spec, command, Path(args.out), loss, table)
    print(f"shipped {spec.name} to {Path(args.out) / spec.name} ({time.time() - t0:.0f} s in all)", flush=True)
    return 0


def _machine() -> str:
    import os
    import platform

    import torch

    cpu = next((ln.split(":", 1)[1].strip() for ln in Path("/proc/cpuinfo").read_text().splitlines()
                if ln.startswith("model name")), platform.machine()) if Path("/proc/cpuinfo").exists() else \
        platform.machine()
    return f"{cpu}, {os.cpu_count()} CPUs, {torch.get_num_threads()} torch threads, no GPU" \
        if not torch.cuda.is_available() else f"{torch.cuda.get_device_name(0)} (CUDA)"


def reevaluate(name: str, out_root: Path) -> int:
    """Recompute the shipped model's held-out loss and evaluation table and store them in the manifest."""
    from week7 import zoo
    from week7.train import evaluate_loss, heldout_batches

    model, tok = zoo.load(name, device="cpu")
    loss = evaluate_loss(model, heldout_batches())
    table = manifest_eval(model, tok, progress=False)
    path = out_root / "manifest.json"
    data = json.loads(path.read_text())
    entry = data["models"][name]
    changed = sum(1 for a, b in zip(entry["eval"], table) if a != b)
    entry["final_loss"], entry["eval"] = round(loss, 4), table
    path.write_text(json.dumps(data, indent=1) + "\n")
    print(f"{name}: held-out loss {loss:.4f}; {changed} of {len(table)} evaluation rows changed", flush=True)
    return 0


def _tokenizer():
    from week7.tokenizer import build_tokenizer

    return build_tokenizer()


if __name__ == "__main__":
    raise SystemExit(main())
