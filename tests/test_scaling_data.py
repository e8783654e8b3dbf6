"""Check the data tables behind the scale chapters: every row sourced, flagged and consistent."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from week7 import scaling

BIB = (Path(__file__).resolve().parents[1] / "references.bib").read_text()
BIB_KEYS = set(re.findall(r"@\w+\{([^,]+),", BIB))


@pytest.fixture(scope="module")
def scale():
    return scaling.load_llm_scale()


def test_every_model_row_has_a_known_source_and_status(scale):
    """Check that each row cites a key in references.bib and carries one of the three status flags."""
    assert len(scale) >= 12
    assert set(scale.status) <= set(scaling.STATUSES)
    missing = sorted(set(scale.source) - BIB_KEYS)
    assert not missing, f"sources not in references.bib: {missing}"
    # keys cited inside the notes (e.g. the press report behind a rumour) must exist too
    for note in scale.note:
        for key in re.findall(r"\((\w+\d{4}\w*)\)", note):
            assert key in BIB_KEYS, key


def test_gpt3_row_matches_six_n_d(scale):
    """Check that GPT-3's reported compute agrees with 6ND to within 0.5%."""
    gpt3 = scale.set_index("model").loc["GPT-3"]
    assert gpt3.status == "disclosed"
    assert gpt3.training_flops == pytest.approx(scaling.training_flops(gpt3.parameters, gpt3.training_tokens),
                                                rel=5e-3)


def test_derived_compute_is_filled_and_rumours_are_flagged(scale):
    """Check that 6ND rows get compute, that dates increase with the race, and that GPT-4's size is a rumour."""
    derived = scale[scale.flops_basis == "6ND"]
    assert derived.training_flops.notna().all() and (derived.training_flops > 1e19).all()
    assert scale.set_index("model").loc["GPT-4"].status == "rumoured"
    assert scale.date.is_monotonic_increasing
    # Chinchilla used about 20 tokens per parameter; GPT-3 under 2
    tpp = scale.set_index("model").tokens_per_param
    assert 19 < tpp["Chinchilla"] < 21 and tpp["GPT-3"] < 2


def test_production_claims_are_dated_and_sourced():
    """Check that every production claim has a date, a source in references.bib and a verdict."""
    claims = scaling.load_production_claims()
    assert claims.as_of.notna().all()
    assert set(claims.source) <= BIB_KEYS, sorted(set(claims.source) - BIB_KEYS)
    assert "corrected" in set(claims.verdict)
    # every distinct slide claim appears with at least one sourced row
    assert claims.slide_claim.nunique() >= 6


def test_bad_status_is_rejected(tmp_path, monkeypatch):
    """Check that a row with an unknown status flag fails with a message naming the allowed flags."""
    src = Path(scaling.__file__).parent / "data" / "llm_scale.csv"
    text = src.read_text().replace(",rumoured,", ",probably,", 1)
    (tmp_path / "data").mkdir()
    (tmp_path / "data" / "llm_scale.csv").write_text(text)
    monkeypatch.setattr(scaling, "_data", lambda name: tmp_path / "data" / name)
    with pytest.raises(ValueError, match="unknown status.*probably"):
        scaling.load_llm_scale()
