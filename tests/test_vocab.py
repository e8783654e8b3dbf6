"""The family's one vocabulary (week7.tokenizer.VOCAB): the tokenizer, the training loop and the model config agree."""

from __future__ import annotations

from week7 import tokenizer as T
from week7 import train, zoo


def test_training_ids_are_the_tokenizers():
    """Check that the training loop's fast ids equal the tokenizer's (plus <eos>), unknown characters included."""
    tok = T.build_tokenizer()
    text = "12+3=15\nred cat -> é!"
    assert train._char_ids(text) == tok(text)["input_ids"] + [T.EOS_ID]
    assert T.char_ids(text)[text.index("é") + 1] == T.UNK_ID
    assert T.char_ids("ab", bos=False, eos=False) == [T.VOCAB["a"], T.VOCAB["b"]]


def test_config_and_shipped_tokenizer_use_the_vocabulary():
    """Check that make_config takes its size and special ids from VOCAB, and the shipped family's tokenizer file
    holds exactly VOCAB."""
    spec = next(iter(train.FAMILY_SPECS.values()))
    cfg = train.make_config(spec)
    assert (cfg.vocab_size, cfg.pad_token_id, cfg.bos_token_id, cfg.eos_token_id) == (
        T.VOCAB_SIZE, T.VOCAB["<pad>"], T.VOCAB["<bos>"], T.VOCAB["<eos>"])
    smallest = str(zoo.list_models()["name"][0])
    _, tok = zoo.load(smallest, device="cpu")
    assert tok.get_vocab() == T.VOCAB
