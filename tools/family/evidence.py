"""Evaluate every shipped family model and write the evidence table and figures.

    python -m tools.family.evidence             # reuse manifest rows and the workspace cache; evaluate the rest
    python -m tools.family.evidence --no-cache  # evaluate everything again

Writes src/week7/data/family/evidence.csv (one row per model x task x shots x style: exact match and a partial-credit
metric with 95% bootstrap intervals), findings.json (the numbers behind each claim, computed by fixed rules), and
plotly figure JSON files (load with ``plotly.io.read_json``):

- emergence.json   exact match and partial credit against parameters, per task (3 shots, direct);
- icl_shots.json   icl_labels accuracy against the number of in-context examples (0, 1, 3, 5, 8), per model;
- cot.json         scratchpad ("cot") against direct prompts (0 shots), on add, mul and chain;
- loss.json        held-out loss against parameters with a power-law fit L = a * N^(-alpha).

The evaluation is fixed in advance (tools/family/train.py: MANIFEST_EVAL, greedy, n test examples, seed 0) and is
the same for every model; nothing here is tuned to produce a phenomenon.
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "src"))

OUT = ROOT / "src" / "week7" / "data" / "family"
CACHE = ROOT / "workspace" / "evidence"


def evaluate_model(name: str, n: int, use_cache: bool = True, cache_dir: Path = CACHE) -> list[dict]:
    from tools.family.train import MANIFEST_EVAL
    from week7 import zoo
    from week7.metrics import bootstrap_ci
    from week7.tasks import evaluate

    entry = zoo.manifest()["models"][name]
    key = entry["files"]["model.safetensors"][:16]
    cache = Path(cache_dir) / f"{name}-{key}-n{n}.json"
    if use_cache and cache.exists():
        return json.loads(cache.read_text())
    stored = {(r["task"], r["k"], r["style"]): r for r in entry.get("eval", []) if r["n"] == n}
    model = tok = None
    rows = []
    for task, k, style in MANIFEST_EVAL:
        t0 = time.time()
        if use_cache and (task, k, style) in stored:  # computed at training time by the same function
            r = stored[(task, k, style)]
            hits = round(r["exact"] * n)
            e, elo, ehi = bootstrap_ci([1.0] * hits + [0.0] * (n - hits), seed=0)
            p, plo, phi = r["partial"], float("nan"), float("nan")
            source = "manifest"
        else:
            if model is None:
                model, tok = zoo.load(name, device="cpu")
            r = evaluate(model, tok, task, n=n, k=k, style=style, seed=0)
            e, elo, ehi = bootstrap_ci(r["exact_all"], seed=0)
            p, plo, phi = bootstrap_ci(r["partial_all"], seed=0)
            source = "evaluated"
        rows.append({"model": name, "params": entry["params"], "tokens": entry["tokens"], "flops": entry["flops"],
                     "final_loss": entry["final_loss"], "task": task, "k": k, "style": style, "n": n,
                     "exact": round(e, 4), "exact_lo": round(elo, 4), "exact_hi": round(ehi, 4),
                     "partial": round(p, 4), "partial_lo": round(plo, 4), "partial_hi": round(phi, 4),
                     "partial_metric": _partial_name(task), "source": source})
        print(f"  {name} {task:10s} k={k} {style:6s} exact {e:.3f} partial {p:.3f} ({source}, "
              f"{time.time() - t0:.1f} s)",
              flush=True)
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(rows))
    return rows


def _partial_name(task: str) -> str:
    from week7.tasks import get_task

    return get_task(task).partial_name


def power_law_fit(params, losses) -> tuple[float, float]:
    """Least squares in log-log: log L = log a - alpha log N. Returns (a, alpha)."""
    import numpy as np

    slope, intercept = np.polyfit(np.log(params), np.log(losses), 1)
    return float(np.exp(intercept)), float(-slope)


def equal_token_losses(names) -> tuple[int, list[float]]:
    """Training loss (EMA, from each model's recorded curve) at the largest token count every model reached."""
    from week7 import zoo

    man = zoo.manifest()["models"]
    curves = {m: man[m]["train_curve"] for m in names}
    target = min(c[-1][1] for c in curves.values())
    losses = []
    for m in names:
        pts = [p for p in curves[m] if p[1] <= target]
        losses.append(pts[-1][2])
    return int(target), losses


def figures(df, out: Path) -> dict:
    import numpy as np
    import plotly.graph_objects as go
    from plotly.subplots import make_subplots

    from week7 import viz

    viz.setup()
    findings: dict = {}
    models = df.drop_duplicates("model").sort_values("params")
    # 1. exact vs partial credit against size
    base = df[(df.k == 3) & (df["style"] == "direct")]
    tasks = list(dict.fromkeys(base.task))
    fig = make_subplots(rows=2, cols=3, subplot_titles=tasks, shared_yaxes=True)
    for i, task in enumerate(tasks):
        d = base[base.task == task].sort_values("params")
        for j, (col, label) in enumerate([("exact", "exact match"), ("partial", "partial credit")]):
            fig.add_trace(go.Scatter(x=d.params, y=d[col], mode="lines+markers", name=label,
                                     line=dict(color=viz.PALETTE[j]), showlegend=i == 0,
                                     error_y=dict(type="data", symmetric=False, array=d[col + "_hi"] - d[col],
                                                  arrayminus=d[col] - d[col + "_lo"])),
                          row=i // 3 + 1, col=i % 3 + 1)
        findings.setdefault("exact_vs_partial", {})[task] = {
            "params": d.params.tolist(), "exact": d.exact.tolist(), "partial": d.partial.tolist(),
            "partial_metric": d.partial_metric.iloc[0]}
    fig.update_xaxes(type="log")
    viz.style(fig, title="Exact match and partial credit against parameters (3 shots, equal training tokens)",
              height=560)
    (out / "emergence.json").write_text(fig.to_json())
    # 2. icl_labels against shots
    icl = df[(df.task == "icl_labels") & (df["style"] == "direct")]
    fig = go.Figure()
    for j, m in enumerate(models.model):
        d = icl[icl.model == m].sort_values("k")
        fig.add_trace(go.Scatter(x=d.k, y=d.exact, mode="lines+markers", name=m,
                                 line=dict(color=viz.PALETTE[j % len(viz.PALETTE)])))
        findings.setdefault("icl_labels", {})[m] = dict(zip(d.k.astype(int).astype(str), d.exact.tolist()))
    viz.style(fig, title="Arbitrary label words: accuracy against in-context examples", x="examples in the prompt",
              y="exact match")
    (out / "icl_shots.json").write_text(fig.to_json())
    # 3. cot vs direct
    c = df[(df.k == 0) & df.task.isin(["add", "mul", "chain"])]
    fig = make_subplots(rows=1, cols=3, subplot_titles=["add", "mul", "chain"], shared_yaxes=True)
    for i, task in enumerate(["add", "mul", "chain"]):
        for j, style in enumerate(["direct", "cot"]):
            d = c[(c.task == task) & (c["style"] == style)].sort_values("params")
            fig.add_trace(go.Scatter(x=d.params, y=d.exact, mode="lines+markers", name=style,
                                     line=dict(color=viz.PALETTE[j]), showlegend=i == 0), row=1, col=i + 1)
            findings.setdefault("cot_vs_direct", {}).setdefault(task, {})[style] = d.exact.tolist()
    fig.update_xaxes(type="log")
    viz.style(fig, title="Scratchpad (cot) against direct answers, 0 shots", y="exact match")
    (out / "cot.json").write_text(fig.to_json())
    # 4. loss against parameters
    a, alpha = power_law_fit(models.params, models.final_loss)
    xs = np.geomspace(models.params.min(), models.params.max(), 50)
    fig = go.Figure([go.Scatter(x=models.params, y=models.final_loss, mode="markers", name="held-out loss",
                                text=models.model),
                     go.Scatter(x=xs, y=a * xs ** (-alpha), mode="lines", name=f"fit: {a:.2f} N^-{alpha:.3f}")])
    eq_tokens, eq_loss = equal_token_losses(models.model)
    if eq_tokens:
        a2, alpha2 = power_law_fit(models.params, eq_loss)
        fig.add_trace(go.Scatter(x=models.params, y=eq_loss, mode="markers",
                                 name=f"training loss after {eq_tokens:,} tokens (equal data)", text=models.model))
        fig.add_trace(go.Scatter(x=xs, y=a2 * xs ** (-alpha2), mode="lines", line=dict(dash="dot"),
                                 name=f"fit: {a2:.2f} N^-{alpha2:.3f}"))
        findings["loss_fit_equal_tokens"] = {"tokens": eq_tokens, "a": a2, "alpha": alpha2, "loss": eq_loss}
    viz.style(fig, title="Loss (nats per character) against parameters", x="parameters", y="loss",
              log_x=True, log_y=True)
    (out / "loss.json").write_text(fig.to_json())
    findings["loss_fit"] = {"a": a, "alpha": alpha, "params": models.params.tolist(),
                            "loss": models.final_loss.tolist(), "tokens": models.tokens.tolist()}
    return findings


def figure_data(text: str):
    """A plotly figure's JSON as plain data: plotly's binary arrays ({"dtype", "bdata", "shape"}) become lists of
    Python numbers, so two figures can be compared by value (to_json's bytes differ in the last bits of floats
    from one machine or library version to the next)."""
    import base64

    import numpy as np

    def walk(o):
        if isinstance(o, dict):
            if "bdata" in o and "dtype" in o:
                a = np.frombuffer(base64.b64decode(o["bdata"]), dtype=o["dtype"])
                if "shape" in o:
                    shape = o["shape"]
                    a = a.reshape([int(x) for x in (shape.split(",") if isinstance(shape, str) else shape)])
                return a.tolist()
            return {k: walk(v) for k, v in o.items()}
        if isinstance(o, list):
            return [walk(v) for v in o]
        return o

    return walk(json.loads(text))


_NUMBER = re.compile(r"[-+]?(?:\d[\d,]*\.?\d*|\.\d+)(?:[eE][-+]?\d+)?")


def _text_differs(a: str, b: str) -> str | None:
    """Where two texts differ beyond printing: the words must be equal; a printed number may differ by one unit
    of its last printed digit (a float that lands on a rounding boundary). Returns a description or None."""
    wa, wb = _NUMBER.split(a), _NUMBER.split(b)
    na, nb = _NUMBER.findall(a), _NUMBER.findall(b)
    if wa != wb or len(na) != len(nb):
        i = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), min(len(a), len(b)))
        return f"text differs at character {i}: {a[max(0, i - 40):i + 40]!r} vs {b[max(0, i - 40):i + 40]!r}"
    for x, y in zip(na, nb):
        if x == y:
            continue
        mant = x.replace(",", "").split("e")[0].split("E")[0]
        decimals = len(mant.split(".")[1]) if "." in mant else 0
        exp = int(re.split("[eE]", x)[1]) if re.search("[eE]", x) else 0
        fx, fy = float(x.replace(",", "")), float(y.replace(",", ""))
        if abs(fx - fy) > 1.001 * 10.0 ** (exp - decimals):
            return f"printed number {x} vs {y} (more than one unit of its last digit)"
    return None


def data_differences(a, b, rel: float = 1e-6, abs_: float = 1e-9, where: str = "") -> list[str]:
    """Differences between two JSON-like values: structure (keys, lengths, types) and strings must match, numbers
    within |a - b| <= abs_ + rel * |b| (NaN equals NaN); texts holding printed numbers as in :func:`_text_differs`.
    Returns one line per difference (empty: the same data)."""
    if isinstance(a, bool) or isinstance(b, bool) or a is None or b is None:
        return [] if a == b else [f"{where or '.'}: {a!r} vs {b!r}"]
    if isinstance(a, (int, float)) and isinstance(b, (int, float)):
        if math.isnan(a) and math.isnan(b):
            return []
        return [] if abs(a - b) <= abs_ + rel * abs(b) else [f"{where or '.'}: {a!r} vs {b!r}"]
    if type(a) is not type(b):
        return [f"{where or '.'}: {type(a).__name__} vs {type(b).__name__}"]
    if isinstance(a, dict):
        if a.keys() != b.keys():
            return [f"{where or '.'}: keys {sorted(set(a) ^ set(b))} in only one"]
        return [d for k in a for d in data_differences(a[k], b[k], rel, abs_, f"{where}.{k}")]
    if isinstance(a, list):
        if len(a) != len(b):
            return [f"{where or '.'}: length {len(a)} vs {len(b)}"]
        return [d for i, (x, y) in enumerate(zip(a, b)) for d in data_differences(x, y, rel, abs_, f"{where}[{i}]")]
    if isinstance(a, str):
        d = _text_differs(a, b)
        return [f"{where or '.'}: {d}"] if d else []
    return [] if a == b else [f"{where or '.'}: {a!r} vs {b!r}"]


BEGIN = "<!-- generated by tools/family/evidence.py: do not edit below -->"
END = "<!-- generated by tools/family/evidence.py: end -->"


def summary_markdown(df, findings: dict) -> str:
    """The family table and the numbers behind each phenomenon, as markdown (no judgement, only the data)."""
    from week7 import zoo

    man = zoo.manifest()["models"]
    models = df.drop_duplicates("model").sort_values("params").model.tolist()
    lines = ["| model | params | tokens | training FLOPs (6ND) | wall (s) | held-out loss |",
             "|---|---:|---:|---:|---:|---:|"]
    for m in models:
        e = man[m]
        lines.append(f"| {m} | {e['params']:,} | {e['tokens']:,} | {e['flops']:.2e} | {e['wall_s']:,.0f} | "
                     f"{e['final_loss']:.3f} |")
    fit = findings["loss_fit"]
    lines += ["", f"Held-out loss against parameters: L = {fit['a']:.2f} N^-{fit['alpha']:.3f}.", "",
              "Exact match / partial credit against size (3 shots, direct; models in the order above):", ""]
    for task, d in findings["exact_vs_partial"].items():
        ex = ", ".join(f"{v:.2f}" for v in d["exact"])
        pa = ", ".join(f"{v:.2f}" for v in d["partial"])
        lines.append(f"- {task}: exact {ex}; {d['partial_metric']} {pa}")
    lines += ["", "icl_labels exact match against the number of examples in the prompt (0, 1, 3, 5, 8):", ""]
    for m, d in findings["icl_labels"].items():
        lines.append(f"- {m}: " + ", ".join(f"{k}: {v:.2f}" for k, v in d.items()))
    lines += ["", "Scratchpad (cot) against direct, 0 shots, exact match (models in the order above):", ""]
    for task, d in findings["cot_vs_direct"].items():
        lines.append(f"- {task}: direct " + ", ".join(f"{v:.2f}" for v in d["direct"]) + "; cot " +
                     ", ".join(f"{v:.2f}" for v in d["cot"]))
    n = int(df.n.iloc[0])
    lines += ["", f"Each value is over n = {n} test examples (95% bootstrap intervals in evidence.csv: about "
                  f"+-{1.96 * 0.5 / n ** 0.5:.2f} at 50%)."]
    return "\n".join(lines)


def write_summary(df, findings: dict, readme: Path) -> None:
    """Replace the generated section of ``readme`` (between BEGIN and END) with :func:`summary_markdown`."""
    text = readme.read_text() if readme.exists() else ""
    block = f"{BEGIN}\n\n{summary_markdown(df, findings)}\n\n{END}"
    if BEGIN in text and END in text:
        text = text[:text.index(BEGIN)] + block + text[text.index(END) + len(END):]
    else:
        text = text.rstrip() + "\n\n## The numbers (generated)\n\n" + block + "\n"
    readme.write_text(text)


def main(argv: list[str] | None = None) -> int:
    import pandas as pd

    from week7 import zoo

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=100, help="test examples per row")
    ap.add_argument("--no-cache", action="store_true",
                    help="re-evaluate every row (default: reuse rows the training script stored in the manifest "
                         "with the same function and settings, and a cache under workspace/evidence/)")
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    shipped = [m for m in zoo.FAMILY if m in zoo.manifest()["models"]]
    rows = []
    for name in shipped:
        t0 = time.time()
        rows += evaluate_model(name, args.n, use_cache=not args.no_cache)
        print(f"{name}: {time.time() - t0:.0f} s", flush=True)
    df = pd.DataFrame(rows)
    OUT.mkdir(parents=True, exist_ok=True)
    df.to_csv(OUT / "evidence.csv", index=False)
    df = pd.read_csv(OUT / "evidence.csv")  # what follows is computed from the committed table, as the test does
    findings = figures(df, OUT)
    (OUT / "findings.json").write_text(json.dumps(findings, indent=1) + "\n")
    write_summary(df, findings, OUT / "README.md")
    print(f"wrote {OUT / 'evidence.csv'} ({len(df)} rows) and figures; power law alpha = "
          f"{findings['loss_fit']['alpha']:.3f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
