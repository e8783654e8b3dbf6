"""The course's family of small Llama-style language models, shipped with the package, and a loader for any model.

``load(name)`` takes a family name (``"w7-10k"`` ... ``"w7-4m"``), a local folder saved with ``save_pretrained``, or a
hub name (``"gpt2"``, ``"EleutherAI/pythia-70m"``, ...). Family files are checked against the sha256 sums in
``models/manifest.json`` before loading, so a corrupt or missing file is named instead of failing deep inside
transformers. Weights are stored in float16 and loaded as float32.

Command line: ``week7-zoo`` (or ``python -m week7.zoo``) prints the family table; ``week7-zoo --verify`` checks
every shipped file.
"""

from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

__all__ = ["FAMILY", "MODELS_DIR", "MANIFEST", "ChecksumError", "HubUnavailableError", "list_models", "load",
           "manifest", "model_dir", "verify", "sha256_file"]

MODELS_DIR = Path(__file__).resolve().parent / "models"
MANIFEST = MODELS_DIR / "manifest.json"
# Names, small -> large. The number is the approximate parameter count (embeddings included).
FAMILY = ["w7-10k", "w7-50k", "w7-200k", "w7-500k", "w7-1m", "w7-4m"]


class ChecksumError(OSError):
    """A shipped model file is missing or its sha256 differs from the manifest."""


class HubUnavailableError(OSError):
    """A hub model was asked for and no hub answered (offline machine, or a wrong name)."""


def sha256_file(path: str | Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def manifest() -> dict:
    """The parsed manifest: ``{"models": {name: {...}}, ...}`` (empty ``models`` if nothing is shipped yet)."""
    if not MANIFEST.exists():
        return {"models": {}}
    return json.loads(MANIFEST.read_text())


def model_dir(name: str) -> Path:
    """Folder of a shipped family model."""
    if name not in FAMILY:
        raise KeyError(f"{name!r} is not a family model; the family is {FAMILY}")
    return MODELS_DIR / name


def verify(name: str, folder: str | Path | None = None) -> Path:
    """Check every file of family model ``name`` (in ``folder``, default the shipped one) against the manifest.

    Returns the folder. Raises ``ChecksumError`` naming the missing or corrupt file, and ``KeyError`` if the model
    is not shipped.
    """
    entry = manifest()["models"].get(name)
    folder = model_dir(name) if folder is None else Path(folder)
    if entry is None:
        raise KeyError(f"family model {name!r} is not shipped in this version of the package (no manifest entry); "
                       f"train it with `python -m tools.family.train --model {name}`")
    for fname, digest in entry["files"].items():
        path = folder / fname
        if not path.is_file():
            raise ChecksumError(f"model {name}: file {fname} is missing from {folder}; reinstall the package or "
                                f"retrain with `python -m tools.family.train --model {name}`")
        got = sha256_file(path)
        if got != digest:
            raise ChecksumError(f"model {name}: file {fname} is corrupt (sha256 {got[:12]}... but the manifest says "
                                f"{digest[:12]}...); reinstall the package or retrain with "
                                f"`python -m tools.family.train --model {name}`")
    return folder


def _family_copy(folder: Path) -> str | None:
    """The family model a folder is a copy of (its config.json has the sha256 a manifest entry lists), or None."""
    cfg = folder / "config.json"
    if not cfg.is_file():
        return None
    digest = sha256_file(cfg)
    for name, entry in manifest()["models"].items():
        if entry.get("files", {}).get("config.json") == digest:
            return name
    return None


def _check_finite(model, name: str) -> None:
    """A damaged weights file can load without an error and give NaN or infinite weights: refuse such a model."""
    import torch

    with torch.no_grad():
        bad = [n for n, p in model.named_parameters() if not torch.isfinite(p).all()]
    if bad:
        raise ChecksumError(f"model {name!r}: {len(bad)} weight tensor(s) hold NaN or infinite values ({bad[0]}, ...): "
                            "its weights file is damaged; reinstall or re-save the model")


def list_models():
    """A pandas DataFrame with one row per shipped family model, small -> large.

    Columns: name, params, tokens (seen in training), flops (6ND), wall_s (training wall time), d_model, n_layer,
    lr, final_loss (held-out loss per character), command.
    """
    import pandas as pd

    models = manifest()["models"]
    rows = []
    for name in FAMILY:
        m = models.get(name)
        if m is None:
            continue
        cfg = m.get("config", {})
        rows.append({"name": name, "params": m["params"], "tokens": m["tokens"], "flops": m["flops"],
                     "wall_s": m["wall_s"], "d_model": cfg.get("hidden_size"), "n_layer": cfg.get("num_hidden_layers"),
                     "lr": m.get("lr"), "final_loss": m.get("final_loss"), "command": m.get("command")})
    return pd.DataFrame(rows, columns=["name", "params", "tokens", "flops", "wall_s", "d_model", "n_layer", "lr",
                                       "final_loss", "command"])


def _resolve_device(device: str | None) -> str:
    if device is None:
        from week7.lm import device as _dev

        return _dev()
    return device


def load(name_or_path_or_hub: str, device: str | None = None):
    """Load ``(model, tokenizer)`` in float32, in eval mode, on ``device`` (default: cuda if available, else cpu).

    Args:
        name_or_path_or_hub: a family name (see ``FAMILY``), a local folder written by ``save_pretrained``, or a
            hub name such as ``"gpt2"``.
    Raises:
        ChecksumError: a family file is missing or corrupt (the message names it).
        HubUnavailableError: a hub name was given and no hub is reachable (or the name does not exist there).
    """
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    if not isinstance(name_or_path_or_hub, str) or not name_or_path_or_hub:
        raise TypeError(f"give a family name {FAMILY}, a folder or a hub name; got {name_or_path_or_hub!r}")
    dev = _resolve_device(device)
    name = name_or_path_or_hub
    if name in FAMILY:
        folder, source = verify(name), "family"
    elif Path(name).expanduser().is_dir():
        folder, source = Path(name).expanduser(), "folder"
        family_name = _family_copy(folder)
        if family_name is not None:  # a copy of a family model: its files are checked like the shipped ones
            verify(family_name, folder)
    elif Path(name).expanduser().exists():
        raise ValueError(f"{name!r} is a file; give the folder that holds config.json and the weights")
    else:
        folder, source = name, "hub"
    from transformers.utils import logging as hf_logging

    bar = hf_logging.is_progress_bar_enabled()
    hf_logging.disable_progress_bar()  # "Loading weights" bars would land in every notebook and page that loads one
    try:
        tok = AutoTokenizer.from_pretrained(str(folder))
        model = AutoModelForCausalLM.from_pretrained(str(folder), dtype=torch.float32)
    except OSError as err:
        if source != "hub":
            raise
        offline = os.environ.get("HF_HUB_OFFLINE", "") not in ("", "0")
        raise HubUnavailableError(
            f"could not load {name!r} from the Hugging Face hub: "
            + ("HF_HUB_OFFLINE is set" if offline else "no hub is reachable from this machine or the name is wrong")
            + f". Use a family model ({', '.join(FAMILY)}) or a local folder saved with save_pretrained. "
            f"(transformers said: {str(err).splitlines()[0][:200]})") from err
    finally:
        if bar:
            hf_logging.enable_progress_bar()
    _check_finite(model, name)
    if tok.pad_token is None and tok.eos_token is not None:
        tok.pad_token = tok.eos_token
    tok.padding_side = "left"
    model.to(dev).eval()
    return model, tok


def main(argv: list[str] | None = None) -> int:
    """``week7-zoo``: print the family table; ``--verify`` checks every shipped file's sha256."""
    import argparse

    ap = argparse.ArgumentParser(prog="week7-zoo", description=__doc__.splitlines()[0])
    ap.add_argument("--verify", action="store_true", help="check the sha256 of every shipped file")
    args = ap.parse_args(argv)
    import pandas as pd

    with pd.option_context("display.width", 160, "display.max_columns", 20):
        print(list_models().drop(columns=["command"]).to_string(index=False))
    if args.verify:
        for name in manifest()["models"]:
            verify(name)
            print(f"{name}: ok")
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
