"""A character-level tokenizer that ``AutoTokenizer.from_pretrained(folder)`` loads.

One token per character: newline and the 95 printable ASCII characters, plus ``<pad>``, ``<bos>``, ``<eos>`` and
``<unk>`` (any other character). It is a ``tokenizers`` WordLevel model over single characters wrapped in
``PreTrainedTokenizerFast``: encoding adds ``<bos>`` in front, decoding joins characters with no spaces, padding is
on the left (what batched generation needs).
"""

from __future__ import annotations

from pathlib import Path

__all__ = ["SPECIAL_TOKENS", "CHARS", "VOCAB", "VOCAB_SIZE", "PAD_ID", "BOS_ID", "EOS_ID", "UNK_ID", "char_ids",
           "build_tokenizer", "save_tokenizer"]

SPECIAL_TOKENS = ["<pad>", "<bos>", "<eos>", "<unk>"]
CHARS = ["\n"] + [chr(i) for i in range(32, 127)]
# The family's one vocabulary: the tokenizer, the training loop and the model config all read it from here.
VOCAB: dict[str, int] = {t: i for i, t in enumerate(SPECIAL_TOKENS + CHARS)}
VOCAB_SIZE = len(VOCAB)
PAD_ID, BOS_ID, EOS_ID, UNK_ID = (VOCAB[t] for t in SPECIAL_TOKENS)


def char_ids(text: str, *, bos: bool = True, eos: bool = True) -> list[int]:
    """Token ids of ``text`` without building a tokenizer (the training loop's fast path): ``<bos>``, one id per
    character (``<unk>`` for any other), ``<eos>``. The same ids as ``build_tokenizer()(text)`` plus ``<eos>``."""
    return [BOS_ID] * bos + [VOCAB.get(c, UNK_ID) for c in text] + [EOS_ID] * eos


def build_tokenizer():
    """A fresh character-level ``PreTrainedTokenizerFast`` (vocabulary of 100 tokens)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers, processors
    from transformers import PreTrainedTokenizerFast

    vocab = dict(VOCAB)
    tok = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    tok.decoder = decoders.Fuse()
    tok.post_processor = processors.TemplateProcessing(
        single="<bos> $A", pair="<bos> $A $B", special_tokens=[("<bos>", vocab["<bos>"])])
    return PreTrainedTokenizerFast(tokenizer_object=tok, pad_token="<pad>", bos_token="<bos>", eos_token="<eos>",
                                   unk_token="<unk>", padding_side="left", model_max_length=512)


def save_tokenizer(folder: str | Path):
    """Build the tokenizer and ``save_pretrained`` it into ``folder``; returns it."""
    tok = build_tokenizer()
    tok.save_pretrained(str(folder))
    return tok
