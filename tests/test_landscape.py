"""Tests for src/week7/data/landscape.csv: every model row has a source and an honest parameter-count flag."""

from __future__ import annotations

import re
from importlib.resources import files

import pandas as pd
import pytest

STATUSES = {"disclosed", "estimated", "rumoured", "undisclosed"}


@pytest.fixture(scope="module")
def landscape() -> pd.DataFrame:
    return pd.read_csv(files("week7") / "data" / "landscape.csv", dtype={"released": str})


@pytest.fixture(scope="module")
def bib_keys(root) -> set[str]:
    return set(re.findall(r"^@\w+\{([^,]+),", (root / "references.bib").read_text(), flags=re.M))


def test_every_row_has_a_status_a_source_and_a_url(landscape, bib_keys):
    assert set(landscape.parameter_status) <= STATUSES
    assert landscape.source_url.str.startswith("https://").all()
    for keys in landscape.source_keys:
        for key in (k.strip() for k in keys.split(";")):
            assert key in bib_keys, f"{key} is not in references.bib"


def test_undisclosed_models_have_no_number_and_numbers_have_a_status(landscape):
    undisclosed = landscape[landscape.parameter_status == "undisclosed"]
    assert undisclosed.parameters.isna().all()
    assert landscape.loc[landscape.parameter_status != "undisclosed", "parameters"].notna().all()


def test_closed_model_counts_are_not_presented_as_disclosed(landscape):
    row = landscape.set_index("model")
    assert row.loc["GPT-4", "parameter_status"] == "rumoured"
    assert row.loc["Gemini Ultra", "parameter_status"] == "undisclosed"
    assert row.loc["Claude 3 (Opus, Sonnet, Haiku)", "parameter_status"] == "undisclosed"


def test_slide_groups_are_all_present(landscape):
    assert {"closed", "open", "specialised", "efficiency"} <= set(landscape.group)
    assert landscape.model.is_unique
    assert pd.to_datetime(landscape.released, format="%Y-%m").notna().all()
