"""The shipped model family: the manifest, loading offline with transformers, checksums naming a corrupt or missing
file, a clear error for an unreachable hub, and the smallest model's manifest evaluation reproduced."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from week7 import zoo

ROOT = Path(__file__).resolve().parents[1]
SHIPPED = [n for n in zoo.FAMILY if n in zoo.manifest()["models"]]


def test_manifest_and_sizes():
    man = zoo.manifest()["models"]
    shipped = [n for n in zoo.FAMILY if n in man]
    assert len(shipped) >= 2
    total = 0
    for name in shipped:
        m = man[name]
        assert m["flops"] == 6 * m["params"] * m["tokens"]
        assert m["wall_s"] > 0 and m["command"].startswith("python -m tools.family.train --model " + name)
        assert {"config.json", "model.safetensors", "tokenizer.json"} <= set(m["files"])
        for f in m["files"]:
            size = (zoo.MODELS_DIR / name / f).stat().st_size
            assert size < 10_000_000
            total += size
    assert total < 60_000_000
    df = zoo.list_models()
    assert list(df["name"]) == shipped and (df["params"].diff().dropna() > 0).all()


def test_every_model_loads_offline_with_transformers():
    """Fresh interpreter, hub disabled: plain transformers loads each shipped folder, and zoo.load checks it."""
    code = f"""
import torch, week7.zoo as zoo
from transformers import AutoModelForCausalLM, AutoTokenizer
for name in {SHIPPED!r}:
    folder = zoo.MODELS_DIR / name
    m = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32)
    t = AutoTokenizer.from_pretrained(folder)
    n = sum(p.numel() for p in m.parameters())
    assert n == zoo.manifest()["models"][name]["params"], (name, n)
    model, tok = zoo.load(name, device="cpu")
    assert next(model.parameters()).dtype == torch.float32 and not model.training
    print(name, n)
try:
    zoo.load("gpt2")
except zoo.HubUnavailableError as e:
    print("HUB:", e)
"""
    env = dict(os.environ, HF_HUB_OFFLINE="1", TRANSFORMERS_OFFLINE="1")
    res = subprocess.run([sys.executable, "-c", code], env=env, capture_output=True, text=True, timeout=240)
    assert res.returncode == 0, res.stderr[-2000:]
    for name in SHIPPED:
        assert f"{name} " in res.stdout
    assert "HUB: could not load 'gpt2' from the Hugging Face hub" in res.stdout
    assert "w7-10k" in res.stdout.split("HUB:")[1]  # the message names what to use instead


def test_corrupt_or_missing_file_is_named(tmp_path):
    name = SHIPPED[0]
    copy = tmp_path / name
    shutil.copytree(zoo.model_dir(name), copy)
    assert zoo.verify(name, copy) == copy
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[-1] ^= 0xFF
    weights.write_bytes(bytes(data))
    with pytest.raises(zoo.ChecksumError, match="model.safetensors is corrupt"):
        zoo.verify(name, copy)
    shutil.copy(zoo.model_dir(name) / "model.safetensors", weights)  # repaired: now only the tokenizer is missing
    (copy / "tokenizer.json").unlink()
    with pytest.raises(zoo.ChecksumError, match="tokenizer.json is missing"):
        zoo.verify(name, copy)
    with pytest.raises(KeyError, match="not a family model"):
        zoo.model_dir("w7-99m")
    with pytest.raises(ValueError, match="is a file"):
        zoo.load(str(weights))


def test_load_local_folder(tmp_path):
    model, tok = zoo.load(str(zoo.model_dir(SHIPPED[0])), device="cpu")
    assert tok("12")["input_ids"] == [tok.bos_token_id, 22, 23]


def test_smallest_model_reproduces_manifest_evaluation():
    """Greedy decoding is deterministic; the tolerance (0.03 absolute per row, 100 examples) covers float
    differences between machines flipping a near-tie argmax on a few examples."""
    from week7.tasks import evaluate

    name = SHIPPED[0]
    model, tok = zoo.load(name, device="cpu")
    rows = zoo.manifest()["models"][name]["eval"]
    for row in rows[:6]:
        got = evaluate(model, tok, row["task"], n=row["n"], k=row["k"], style=row["style"], seed=0)
        assert abs(got["exact"] - row["exact"]) <= 0.03, (row, got["exact"])
        assert abs(got["partial"] - row["partial"]) <= 0.03, (row, got["partial"])


def test_a_copied_family_folder_is_verified_and_damage_is_named(tmp_path):
    """zoo.load of a folder that is a copy of a family model checks its files against the manifest: a damaged
    weights file is named, never loaded as a model with wrong weights."""
    name = SHIPPED[0]
    copy = tmp_path / "my-copy"
    shutil.copytree(zoo.model_dir(name), copy)
    model, _ = zoo.load(str(copy), device="cpu")  # intact: loads
    weights = copy / "model.safetensors"
    data = bytearray(weights.read_bytes())
    data[len(data) // 2] ^= 0x7F  # a flipped byte inside the tensor data: safetensors alone would load it
    weights.write_bytes(bytes(data))
    with pytest.raises(zoo.ChecksumError, match=f"model {name}: file model.safetensors is corrupt"):
        zoo.load(str(copy), device="cpu")


def test_a_folder_with_nan_weights_is_refused(tmp_path):
    """A folder the manifest does not know (saved by the user) that holds NaN weights gives an error naming it."""
    import torch

    model, tok = zoo.load(SHIPPED[0], device="cpu")
    with torch.no_grad():
        next(model.parameters()).fill_(float("nan"))
    folder = tmp_path / "saved"
    model.config.update({"w7_note": "not a family copy"})  # another config.json: not matched to the manifest
    model.save_pretrained(folder)
    tok.save_pretrained(folder)
    with pytest.raises(zoo.ChecksumError, match="NaN or infinite"):
        zoo.load(str(folder), device="cpu")


def test_threads_follow_the_idle_cores(monkeypatch):
    """auto_threads uses the idle cores (at least one); torch_threads restores the count after the block."""
    import os

    import torch

    from week7 import lm

    n = os.cpu_count() or 1
    monkeypatch.setattr(lm, "_IDLE", [-1e9, 0.0])
    monkeypatch.setattr(lm, "free_cores", lambda sample_s=0.2: 0.2)  # another job holds every core
    assert lm.auto_threads() == 1
    monkeypatch.setattr(lm, "_IDLE", [-1e9, 0.0])
    monkeypatch.setattr(lm, "free_cores", lambda sample_s=0.2: float(n))  # idle machine
    assert lm.auto_threads() == n and lm.auto_threads(max_threads=1) == 1
    before = torch.get_num_threads()
    with lm.torch_threads(1) as used:
        assert used == 1 and torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    monkeypatch.undo()
    idle = lm.free_cores(0.05)
    assert 0.0 <= idle <= n + 1e-9, idle
