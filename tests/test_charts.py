"""Benchmark charts: one chart per unit, never two units on one axis."""

import re

from charts import bar_chart, quality_table


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


def test_perplexities_make_a_table_of_formats():
    results = {"ours_tok_s": 40.0, "ppl_fp32": 20.866, "ppl_q4": 21.0, "ppl_tokens": 2048, "q4_argmax_agreement": 0.96}
    table = quality_table(results)
    rows = re.findall(r"<tr><td><code>(\w+)</code></td><td>(.*?)</td><td>(.*?)</td></tr>", table)
    assert rows == [("fp32", "20.866", ""), ("q4", "21", "0.96")]
    assert "<code>ppl_tokens</code>: 2048" in table
    assert quality_table({"ours_tok_s": 40.0}) == ""
