"""Generation and scoring harness (week7.lm) and the character tokenizer: batched greedy generation equals
unbatched, the KV cache matches a full forward pass, stop strings, sampling reproducibility, choice scoring."""

import numpy as np
import pytest
import torch

from week7 import lm
from week7.tokenizer import build_tokenizer
from week7.train import FAMILY_SPECS, build_model


@pytest.fixture(scope="module")
def tok():
    return build_tokenizer()


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    m = build_model(FAMILY_SPECS["w7-10k"], seed=1)  # random weights: outputs vary a lot between prompts
    return m.eval()


PROMPTS = ["123+456=", "very dull movie -> ", "a", "d=7 q=3 b=d m=q; b:", "red cat sees dog => ", "99*9="]


def test_tokenizer_round_trip(tok, tmp_path):
    from transformers import AutoTokenizer

    text = "478+365: 8+5+0=13 ans 843\nvery dull movie -> negative ~!{}"
    ids = tok(text)["input_ids"]
    assert ids[0] == tok.bos_token_id and len(ids) == len(text) + 1
    assert tok.decode(ids, skip_special_tokens=True) == text
    tok.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(tmp_path)
    assert again(text)["input_ids"] == ids and again.padding_side == "left"
    assert again.decode(ids, skip_special_tokens=True) == text
    assert tok.decode(tok("é")["input_ids"], skip_special_tokens=False) == "<bos><unk>"  # outside the vocabulary


def test_batched_generation_equals_unbatched(model, tok):
    batched = lm.generate(model, tok, PROMPTS, max_new_tokens=12, batch_size=64, stop=None)
    single = [lm.generate(model, tok, [p], max_new_tokens=12, batch_size=1, stop=None)[0] for p in PROMPTS]
    assert batched == single
    assert len(set(batched)) > 1 and all(len(g) == 12 for g in batched)


def test_kv_cache_matches_full_forward(model, tok):
    prompt = "123+456="
    gen = lm.generate(model, tok, [prompt], max_new_tokens=8, stop=None)[0]
    ids = tok(prompt)["input_ids"]
    with torch.inference_mode():
        for _ in range(8):  # greedy without cache: the whole sequence every step
            ids.append(int(model(torch.tensor([ids])).logits[0, -1].argmax()))
    assert tok.decode(ids[len(tok(prompt)["input_ids"]):], skip_special_tokens=True) == gen


def test_stop_and_sampling(model, tok):
    full = lm.generate(model, tok, PROMPTS, max_new_tokens=20, stop=None)
    for f, g in zip(full, lm.generate(model, tok, PROMPTS, max_new_tokens=20, stop="\n")):
        assert "\n" not in g and f.startswith(g) and (g == f or f[len(g)] == "\n")
    a = lm.generate(model, tok, PROMPTS, max_new_tokens=10, temperature=1.0, top_k=20, seed=3, stop=None)
    b = lm.generate(model, tok, PROMPTS, max_new_tokens=10, temperature=1.0, top_k=20, seed=3, stop=None)
    c = lm.generate(model, tok, PROMPTS, max_new_tokens=10, temperature=1.0, top_k=20, seed=4, stop=None)
    assert a == b and a != c
    assert lm.generate(model, tok, []) == []
    with pytest.raises(TypeError, match="list of strings"):
        lm.generate(model, tok, "a single prompt")
    with pytest.raises(ValueError, match="temperature"):
        lm.generate(model, tok, ["a"], temperature=-1)


def test_score_choices(model, tok):
    prompts = ["very dull movie -> ", "123+456="]
    choices = [["positive", "negative"], ["579", "580"]]
    s = lm.score_choices(model, tok, prompts, choices)
    assert s.shape == (2, 2) and np.all(s < 0)
    ids = tok(prompts[0] + "negative")["input_ids"]
    n_prompt = len(tok(prompts[0])["input_ids"])
    with torch.inference_mode():
        logp = torch.log_softmax(model(torch.tensor([ids])).logits[0].double(), -1)
    want = sum(float(logp[t - 1, ids[t]]) for t in range(n_prompt, len(ids)))
    assert s[0, 1] == pytest.approx(want, abs=1e-3)
    single = lm.score_choices(model, tok, prompts[:1], choices[:1], batch_size=1)
    np.testing.assert_allclose(single[0], s[0], atol=1e-4)
    with pytest.raises(ValueError, match="one list of choices per prompt"):
        lm.score_choices(model, tok, prompts, choices[:1])


def test_device_helper():
    assert lm.device() in ("cpu", "cuda")
