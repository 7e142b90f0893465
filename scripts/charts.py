"""Bar charts of benchmark results, drawn as inline SVG when the site is built.

A benchmark prints one JSON object; its figures in tokens per second (keys ending
``tok_s``), gigabytes per second (``gb_s``) and seconds (``_s``) are drawn side by
side, one chart per unit, so a page shows the comparison the benchmark measured.
"""

from __future__ import annotations

from html import escape

UNITS = (("tok_s", "tokens/s"), ("gb_s", "GB/s"), ("_s", "s"))  # most specific suffix first
BAR, GAP, LABEL_W, CHART_W = 22, 8, 170, 360


def _groups(results: dict) -> list[tuple[str, list[tuple[str, float]]]]:
    groups = []
    taken = set()
    for suffix, unit in UNITS:
        figures = [(k, float(v)) for k, v in results.items()
                   if k.endswith(suffix) and k not in taken and isinstance(v, (int, float)) and not isinstance(v, bool)]
        taken.update(k for k, _ in figures)
        if len(figures) >= 2:
            groups.append((unit, figures))
    return groups


def bar_chart(results: dict, title: str) -> str:
    """SVG charts for ``results``; an empty string when nothing compares."""
    charts = []
    for unit, figures in _groups(results):
        top = max(v for _, v in figures) or 1.0
        height = len(figures) * (BAR + GAP)
        width = LABEL_W + CHART_W + 90
        rows = []
        for i, (key, value) in enumerate(figures):
            y = i * (BAR + GAP)
            w = max(1.0, CHART_W * value / top)
            rows.append(
                f'<text x="{LABEL_W - 8}" y="{y + BAR * 0.7}" text-anchor="end">{escape(key)}</text>'
                f'<rect x="{LABEL_W}" y="{y}" width="{w:.1f}" height="{BAR}" rx="3"/>'
                f'<text x="{LABEL_W + w + 6:.1f}" y="{y + BAR * 0.7}">{value:g} {unit}</text>'
            )
        charts.append(
            f'<svg class="bench-chart" role="img" viewBox="0 0 {width} {height}" width="{width}" height="{height}" '
            f'aria-label="{escape(title)}: {unit}"><title>{escape(title)}: {unit}</title>{"".join(rows)}</svg>'
        )
    return f'<figure class="bench-charts">{"".join(charts)}</figure>' if charts else ""


def quality_table(results: dict) -> str:
    """A table of the perplexity of each weight format (keys ``ppl_<format>``) and its top-token
    agreement with the first format (``<format>_argmax_agreement``); empty without them."""
    formats = [k.removeprefix("ppl_") for k, v in results.items()
               if k.startswith("ppl_") and k != "ppl_tokens" and isinstance(v, (int, float))]
    if not formats:
        return ""
    head = "".join(f"<th><code>{escape(h)}</code></th>" for h in ("weights", "ppl", "argmax_agreement"))
    rows = "".join(
        f"<tr><td><code>{escape(f)}</code></td><td>{results[f'ppl_{f}']:g}</td>"
        f"<td>{'' if results.get(f'{f}_argmax_agreement') is None else format(results[f'{f}_argmax_agreement'], 'g')}</td></tr>"
        for f in formats
    )
    caption = f"<caption><code>ppl_tokens</code>: {escape(str(results.get('ppl_tokens', '')))}</caption>"
    # no class: Material styles the tables of the page's own Markdown, and this one alike
    return f'<table>{caption}<thead><tr>{head}</tr></thead><tbody>{rows}</tbody></table>'
