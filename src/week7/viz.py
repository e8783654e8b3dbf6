"""Figures in one visual style, rendered so that they show in JupyterLab *and* on the static site, offline.

Why a renderer of our own: plotly 7 under ipykernel emits only ``application/vnd.plotly.v1+json``, which
JupyterLab draws but myst-nb drops (``mystnb.unknown_mime_type``), so every figure would vanish from the site.
The ``week7`` renderer emits that mime type *and* a ``text/html`` div that calls ``Plotly.newPlot`` on the
page's own ``plotly.min.js`` (served by the site, see ``_config.yml``): no CDN, no embedded 4 MB per figure.

Usage in a chapter or notebook::

    from week7 import viz
    viz.setup()                      # once, at the top
    fig = viz.line(df, x="params", y="accuracy", color="task", log_x=True, title="...")
    fig.show()
"""

from __future__ import annotations

import html
import json
import uuid
from typing import Any

import plotly.graph_objects as go
import plotly.io as pio
from plotly.io._base_renderers import MimetypeRenderer
from plotly.io.json import to_json_plotly

RENDERER = "week7"
TEMPLATE = "week7"

# A colour-blind-safe palette (Okabe & Ito 2008), used in that order by every figure in the course.
PALETTE = ["#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000"]


class _SiteRenderer(MimetypeRenderer):
    """Emit plotly JSON for Jupyter plus a text/html div that the static site draws with its local plotly.js."""

    def to_mimebundle(self, fig_dict: dict) -> dict[str, Any]:
        div_id = f"w7-{uuid.uuid4().hex[:12]}"
        # Serialise through plotly's encoder once: numpy arrays, pandas columns and dates become plain JSON,
        # which both the notebook (nbformat) and the page can hold.
        spec = json.loads(to_json_plotly({"data": fig_dict.get("data", []), "layout": fig_dict.get("layout", {})}))
        payload = json.dumps({**spec, "config": {"responsive": True, "displaylogo": False}})
        # Escape "</" so that a string inside the figure cannot close the script element.
        payload = payload.replace("</", "<\\/")
        height = (fig_dict.get("layout") or {}).get("height") or 450
        snippet = (
            f'<div id="{div_id}" class="w7-plotly" style="width:100%;height:{int(height)}px;"></div>\n'
            f'<script type="text/javascript">(function(){{\n'
            f'  var spec = {payload};\n'
            f'  function draw(){{ var el = document.getElementById("{div_id}");\n'
            f'    if (!el) return; window.Plotly.newPlot(el, spec.data, spec.layout, spec.config); }}\n'
            f'  if (window.Plotly) {{ draw(); }} else {{ window.addEventListener("load", draw); }}\n'
            f'}})();</script>'
        )
        return {
            "application/vnd.plotly.v1+json": {**spec, "config": {"responsive": True}},
            "text/html": snippet,
            "text/plain": html.escape(f"<plotly figure: {(fig_dict.get('layout') or {}).get('title', {}) or ''}>"),
        }


def _template() -> go.layout.Template:
    t = go.layout.Template()
    t.layout = go.Layout(
        font=dict(family="Inter, Helvetica, Arial, sans-serif", size=13),
        colorway=PALETTE,
        plot_bgcolor="white",
        paper_bgcolor="white",
        margin=dict(l=60, r=20, t=60, b=50),
        xaxis=dict(showgrid=True, gridcolor="#e5e5e5", zeroline=False, linecolor="#444", ticks="outside"),
        yaxis=dict(showgrid=True, gridcolor="#e5e5e5", zeroline=False, linecolor="#444", ticks="outside"),
        legend=dict(bgcolor="rgba(255,255,255,0.8)"),
        hovermode="closest",
    )
    return t


def setup() -> None:
    """Register the course template and renderer and make them the defaults (idempotent)."""
    pio.templates[TEMPLATE] = _template()
    pio.templates.default = "plotly_white+" + TEMPLATE
    pio.renderers[RENDERER] = _SiteRenderer()
    pio.renderers.default = RENDERER


def style(fig: go.Figure, title: str | None = None, x: str | None = None, y: str | None = None,
          log_x: bool = False, log_y: bool = False, height: int | None = None) -> go.Figure:
    """Apply titles and axis types in one call; returns the same figure."""
    if title is not None:
        fig.update_layout(title=title)
    if x is not None:
        fig.update_xaxes(title=x)
    if y is not None:
        fig.update_yaxes(title=y)
    if log_x:
        fig.update_xaxes(type="log")
    if log_y:
        fig.update_yaxes(type="log")
    if height is not None:
        fig.update_layout(height=height)
    return fig


def line(df, x: str, y: str, color: str | None = None, title: str | None = None, log_x: bool = False,
         log_y: bool = False, markers: bool = True, error_y: str | None = None, **kw) -> go.Figure:
    """A line chart from a tidy table (pandas DataFrame), in the course style."""
    import plotly.express as px

    fig = px.line(df, x=x, y=y, color=color, markers=markers, error_y=error_y, log_x=log_x, log_y=log_y, **kw)
    return style(fig, title=title)


def heatmap(matrix, title: str | None = None, x: str = "key position", y: str = "query position",
            colorscale: str = "Blues", showscale: bool = False, height: int = 420) -> go.Figure:
    """A matrix (attention pattern, mask) as a heatmap with the query axis pointing down."""
    import numpy as np

    z = np.asarray(matrix, dtype=float)
    fig = go.Figure(go.Heatmap(z=z, colorscale=colorscale, showscale=showscale))
    fig.update_yaxes(autorange="reversed", scaleanchor="x")
    return style(fig, title=title, x=x, y=y, height=height)
