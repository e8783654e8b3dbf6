"""week7.viz: figures render for JupyterLab and for the offline site; seeds make runs repeatable."""

from __future__ import annotations

import json
import re

import numpy as np
import plotly.graph_objects as go
import plotly.io as pio
import pytest
import torch

from week7 import seed_everything, viz


def bundle(fig: go.Figure) -> dict:
    viz.setup()
    return pio.renderers[viz.RENDERER].to_mimebundle(fig.to_dict())


def test_renderer_emits_plotly_json_and_html():
    """Check that a figure carries the plotly mime type (JupyterLab) and an html div drawn by the site's plotly.js."""
    b = bundle(go.Figure(go.Scatter(x=[1, 2, 3], y=[3, 1, 2])))
    assert set(b) >= {"application/vnd.plotly.v1+json", "text/html"}
    html = b["text/html"]
    div = re.search(r'<div id="(w7-[0-9a-f]{12})" class="w7-plotly"', html)
    assert div, html[:200]
    assert f'document.getElementById("{div.group(1)}")' in html
    assert "cdn" not in html.lower() and "<script src" not in html  # no CDN, no embedded plotly.js
    spec = json.loads(re.search(r"var spec = (\{.*?\});\n", html, re.S).group(1))
    assert spec["data"][0]["y"] == [3, 1, 2]


def test_figure_text_cannot_close_the_script_element():
    """Check that a title holding '</script>' is escaped inside the inline script."""
    html = bundle(go.Figure(layout=dict(title="x</script><script>alert(1)</script>")))["text/html"]
    body = html.split('<script type="text/javascript">', 1)[1]
    assert body.count("</script>") == 1  # only the real closing tag


def test_each_figure_gets_its_own_div():
    """Check that two renders of the same figure do not share an element id."""
    fig = go.Figure(go.Bar(x=["a"], y=[1]))
    ids = {re.search(r'id="(w7-[0-9a-f]+)"', bundle(fig)["text/html"]).group(1) for _ in range(5)}
    assert len(ids) == 5


def test_setup_sets_defaults_and_is_idempotent():
    """Check that setup() makes the course renderer and template the defaults, twice without harm."""
    viz.setup()
    viz.setup()
    assert pio.renderers.default == viz.RENDERER
    assert viz.TEMPLATE in pio.templates.default


def test_heatmap_puts_the_first_query_on_top():
    """Check that heatmap() keeps the matrix as given and reverses the y axis (row 0 at the top)."""
    m = np.tril(np.ones((4, 4)))
    fig = viz.heatmap(m, title="mask")
    assert np.array_equal(np.asarray(fig.data[0].z), m)
    assert fig.layout.yaxis.autorange == "reversed"


def test_style_sets_log_axes_and_titles():
    """Check that style() sets titles and log axes."""
    fig = viz.style(go.Figure(), title="t", x="N", y="loss", log_x=True, log_y=True)
    assert fig.layout.xaxis.type == "log" and fig.layout.yaxis.type == "log"
    assert fig.layout.xaxis.title.text == "N" and fig.layout.title.text == "t"


def test_seed_everything_repeats_random_draws():
    """Check that the same seed gives the same torch and numpy draws, and a bad seed is refused."""
    seed_everything(3)
    a = (torch.rand(3), np.random.rand(3))
    seed_everything(3)
    b = (torch.rand(3), np.random.rand(3))
    assert torch.equal(a[0], b[0]) and np.array_equal(a[1], b[1])
    with pytest.raises(ValueError, match="non-negative int"):
        seed_everything(-1)


def test_numpy_pandas_and_dates_serialise_to_plain_json():
    """Check that figures built from numpy arrays, pandas text columns and dates give JSON-safe bundles."""
    import pandas as pd

    df = pd.DataFrame({"when": pd.to_datetime(["2020-05-28", "2023-03-14"]), "name": ["GPT-3", "GPT-4"],
                       "n": np.array([175e9, np.nan])})
    fig = go.Figure(go.Scatter(x=df["when"], y=df["n"], text=df["name"].to_numpy()))
    b = bundle(fig)
    json.dumps(b["application/vnd.plotly.v1+json"])  # raises if anything is not plain JSON
    data = b["application/vnd.plotly.v1+json"]["data"][0]
    assert data["text"] == ["GPT-3", "GPT-4"] and data["x"][0].startswith("2020-05-28")
