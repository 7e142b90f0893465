"""Benchmark charts: one chart per unit, never two units on one axis."""

import re

from charts import bar_chart


def test_each_unit_gets_its_own_chart():
    results = {"ours_tok_s": 40.0, "hf_tok_s": 28.0, "bandwidth_gb_s": 29.1, "peak_gb_s": 31.0,
               "compile_s": 119.2, "load_s": 2.0, "speedup": 1.4, "tokens_identical": True}
    charts = re.findall(r'<svg .*?</svg>', bar_chart(results, "bench"))
    units = [re.search(r"<title>bench: (.*?)</title>", c)[1] for c in charts]
    assert units == ["tokens/s", "GB/s", "s"]
    labels = [re.findall(r'text-anchor="end">(\w+)<', c) for c in charts]
    assert labels == [["ours_tok_s", "hf_tok_s"], ["bandwidth_gb_s", "peak_gb_s"], ["compile_s", "load_s"]]


def test_a_lone_figure_draws_no_chart():
    assert bar_chart({"compile_s": 1.0, "bandwidth_gb_s": 3.0, "speedup": 2.0}, "bench") == ""
