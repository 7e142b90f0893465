"""llama_notes.generation on the tiny float64 model, against Hugging Face's generate.

HF's greedy search and ours run on the same weights; in float64 their logits agree
to 1e-10, so the greedy tokens must be identical.
"""

import math

import pytest
import scipy.stats
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from llama_notes.generation import Llama, sample_top_p, top_p_nucleus
from llama_notes.checkpoint import load
from llama_notes.tiny import CHARS, SPECIAL, tiny_hf_model, tiny_hf_tokenizer
from llama_notes.tokenizer import Tokenizer
from hf_reference import hf_greedy

MAX_SEQ_LEN, MAX_BATCH_SIZE = 48, 4
PROMPTS = [[5, 6, 7, 8, 9, 10], [11, 12, 13], [20] * 9, [40, 41, 42, 43]]


@pytest.fixture(scope="module")
def hf():
    return tiny_hf_model(torch.float64)


@pytest.fixture(scope="module")
def model(hf):
    return load(hf, max_seq_len=MAX_SEQ_LEN, max_batch_size=MAX_BATCH_SIZE)


@pytest.fixture(scope="module")
def llama(model):
    return Llama(model, Tokenizer(tiny_hf_tokenizer()))


def hf_logprobs(hf, sequence):
    """log p(sequence[j] | sequence[:j]) for j >= 1, from HF's raw logits."""
    with torch.no_grad():
        logits = hf(torch.tensor([sequence])).logits[0]
    logp = torch.log_softmax(logits, dim=-1)
    return [logp[j - 1, sequence[j]].item() for j in range(1, len(sequence))]


# --- greedy decoding ------------------------------------------------------------------


def test_greedy_batch_equals_hf_generate_per_prompt(hf, llama):
    out, logprobs = llama.generate(PROMPTS, max_gen_len=20, temperature=0)
    assert logprobs is None
    for prompt, row in zip(PROMPTS, out):
        assert row == hf_greedy(hf, prompt, 20, llama.tokenizer.eos_id)
        assert len(row) == 20  # the random model does not write </s> here: nothing was cut


def test_each_row_equals_its_prompt_alone(llama):
    batch, _ = llama.generate(PROMPTS, max_gen_len=15, temperature=0)
    for prompt, row in zip(PROMPTS, batch):
        alone, _ = llama.generate([prompt], max_gen_len=15, temperature=0)
        assert alone == [row]


def test_total_len_is_capped_by_max_seq_len(hf, llama):
    prompt = PROMPTS[0]
    out, _ = llama.generate([prompt], max_gen_len=1000, temperature=0)
    assert len(out[0]) == MAX_SEQ_LEN - len(prompt)
    assert out[0] == hf_greedy(hf, prompt, MAX_SEQ_LEN - len(prompt), llama.tokenizer.eos_id)


# --- logprobs and echo ----------------------------------------------------------------


def test_logprobs_are_log_softmax_of_raw_logits_at_chosen_tokens(hf, llama):
    out, logprobs = llama.generate(PROMPTS[:3], max_gen_len=10, temperature=0, logprobs=True)
    for prompt, row, lp in zip(PROMPTS, out, logprobs):
        ref = hf_logprobs(hf, prompt + row)[len(prompt) - 1 :]
        assert len(lp) == len(row)
        assert lp == pytest.approx(ref, abs=1e-6)  # stored as float32, like Meta's token_logprobs


def test_sampled_logprobs_ignore_temperature(hf, llama):
    """Sampling uses logits / temperature; the reported logprobs are from the raw logits."""
    torch.manual_seed(0)
    out, logprobs = llama.generate([PROMPTS[1]], max_gen_len=12, temperature=1.7, top_p=0.95, logprobs=True)
    ref = hf_logprobs(hf, PROMPTS[1] + out[0])[len(PROMPTS[1]) - 1 :]
    assert logprobs[0] == pytest.approx(ref, abs=1e-6)


def test_echo_returns_prompt_and_its_logprobs(hf, llama):
    out, logprobs = llama.generate(PROMPTS[:2], max_gen_len=6, temperature=0, logprobs=True, echo=True)
    plain, _ = llama.generate(PROMPTS[:2], max_gen_len=6, temperature=0)
    for prompt, row, lp, gen in zip(PROMPTS, out, logprobs, plain):
        assert row == prompt + gen
        assert lp[0] == 0.0  # nothing predicts the first token
        assert lp[1:] == pytest.approx(hf_logprobs(hf, row), abs=1e-6)


# --- EOS ------------------------------------------------------------------------------


def test_a_row_that_hits_eos_stops_and_is_cut_while_others_go_on(hf, model):
    """Pick as EOS a character the model writes early for one prompt and not for another."""
    never = tiny_hf_tokenizer().eos_token_id  # the random model never writes </s> here
    early = hf_greedy(hf, PROMPTS[0], 12, never)
    late = hf_greedy(hf, PROMPTS[1], 12, never)
    eos_id = next(t for t in early[2:] if t not in late and t not in early[:2])
    cut = early.index(eos_id)
    tokenizer = Tokenizer(tiny_hf_tokenizer(eos_token=(SPECIAL + CHARS)[eos_id]))
    assert tokenizer.eos_id == eos_id
    llama = Llama(model, tokenizer)

    steps = []
    out, logprobs = llama.generate(
        [PROMPTS[0], PROMPTS[1]], max_gen_len=12, temperature=0, logprobs=True,
        on_token=lambda cur_pos, t: steps.append(cur_pos),
    )
    assert out[0] == early[:cut] == hf_greedy(hf, PROMPTS[0], 12, eos_id)
    assert out[1] == late == hf_greedy(hf, PROMPTS[1], 12, eos_id)
    assert len(logprobs[0]) == cut and len(logprobs[1]) == 12
    assert len(steps) == len(PROMPTS[0]) + 12 - len(PROMPTS[1])  # the loop ran on for row 1


def test_the_loop_stops_when_every_row_has_hit_eos(hf, model):
    never = tiny_hf_tokenizer().eos_token_id
    first = hf_greedy(hf, PROMPTS[1], 1, never)[0]
    llama = Llama(model, Tokenizer(tiny_hf_tokenizer(eos_token=(SPECIAL + CHARS)[first])))
    steps = []
    out, _ = llama.generate([PROMPTS[1]], max_gen_len=20, temperature=0, on_token=lambda p, t: steps.append(p))
    assert out == [[]]
    assert steps == [len(PROMPTS[1])]


def test_eos_inside_a_prompt_is_not_an_end(llama):
    eos = llama.tokenizer.eos_id
    prompt = [30, eos, 31, 32]
    out, _ = llama.generate([prompt], max_gen_len=5, temperature=0, echo=True)
    assert out[0][:4] == prompt and len(out[0]) == 9


def test_on_token_streams_every_generated_token_in_order(llama):
    seen = []
    out, _ = llama.generate([PROMPTS[2]], max_gen_len=8, temperature=0, on_token=lambda p, t: seen.append((p, t.tolist())))
    assert seen == [(len(PROMPTS[2]) + k, [tok]) for k, tok in enumerate(out[0])]


# --- properties -----------------------------------------------------------------------

prompt_lists = st.lists(st.lists(st.integers(0, 98), min_size=1, max_size=10), min_size=1, max_size=MAX_BATCH_SIZE)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    prompts=prompt_lists,
    max_gen_len=st.integers(1, 12),
    eos_char=st.sampled_from(CHARS),
    echo=st.booleans(),
    temperature=st.sampled_from([0.0, 0.8]),
)
def test_output_properties(model, prompts, max_gen_len, eos_char, echo, temperature):
    llama = Llama(model, Tokenizer(tiny_hf_tokenizer(eos_token=eos_char)))
    out, logprobs = llama.generate(prompts, max_gen_len, temperature=temperature, logprobs=True, echo=echo)
    assert len(out) == len(logprobs) == len(prompts)
    for prompt, row, lp in zip(prompts, out, logprobs):
        generated = row[len(prompt) :] if echo else row
        if echo:
            assert row[: len(prompt)] == prompt
        assert len(generated) <= max_gen_len
        assert llama.tokenizer.eos_id not in generated
        assert len(lp) == len(row)
        assert all(math.isfinite(x) and x <= 0 for x in lp)


# --- text and tokenizer ---------------------------------------------------------------


def test_text_completion_decodes_generate(llama):
    prompts = ["Q: What is", "Hello"]
    results = llama.text_completion(prompts, temperature=0, max_gen_len=10, logprobs=True)
    tokens, logprobs = llama.generate(
        [llama.tokenizer.encode(p, bos=True, eos=False) for p in prompts], 10, temperature=0, logprobs=True
    )
    for result, t, lp in zip(results, tokens, logprobs):
        assert result["generation"] == llama.tokenizer.decode(t)
        assert "".join(result["tokens"]) == result["generation"]
        assert result["logprobs"] == lp


def test_tokenizer_has_metas_interface():
    tokenizer = Tokenizer(tiny_hf_tokenizer())
    assert (tokenizer.bos_id, tokenizer.eos_id, tokenizer.pad_id, tokenizer.n_words) == (1, 2, -1, 99)
    t = tokenizer.encode("Hi!\n", bos=True, eos=True)
    assert t == [1, 3 + ord("H") - 32, 3 + ord("i") - 32, 3 + ord("!") - 32, 98, 2]
    assert tokenizer.decode(t[1:-1]) == "Hi!\n"
    with pytest.raises(TypeError, match="encode takes a str"):
        tokenizer.encode([1, 2], bos=False, eos=False)


@pytest.mark.parametrize("dialog", [[], [{"role": "user"}], ["hello"]])
def test_bad_dialogs(dialog):
    with pytest.raises(ValueError, match="dialog|message"):
        Tokenizer(tiny_hf_tokenizer()).encode_dialog(dialog)


# --- bad input ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "prompt_tokens, kwargs, error, message",
    [
        ([], {}, ValueError, "empty"),
        ([[5], []], {}, ValueError, "prompt 1 is empty"),
        ([[5]] * (MAX_BATCH_SIZE + 1), {}, ValueError, "max_batch_size"),
        ([[5] * (MAX_SEQ_LEN + 1)], {}, ValueError, "max_seq_len"),
        ([[5] * MAX_SEQ_LEN], {}, ValueError, "no room"),
        ([[5]], dict(max_gen_len=0), ValueError, "max_gen_len=0"),
        ([[5]], dict(max_gen_len=-3), ValueError, "max_gen_len=-3"),
        ([[5]], dict(max_gen_len=2.5), TypeError, "max_gen_len"),
        ([[5]], dict(temperature=-0.1), ValueError, "temperature"),
        ([[5]], dict(temperature=float("nan")), ValueError, "temperature"),
        ([[5]], dict(top_p=0.0), ValueError, "top_p"),
        ([[5]], dict(top_p=1.01), ValueError, "top_p"),
        ([[5]], dict(top_p=float("nan")), ValueError, "top_p"),
        ([[5, 99]], {}, ValueError, "outside the vocabulary"),
        ([[-1, 5]], {}, ValueError, "outside the vocabulary"),
        ([[5, 1.0]], {}, TypeError, "not an integer"),
        ([[5, "a"]], {}, TypeError, "not an integer"),
        ([[True]], {}, TypeError, "not an integer"),
        ("hello", {}, TypeError, "list of lists"),
        ([5, 6], {}, TypeError, "prompt 0 is a int"),
    ],
)
def test_bad_input_is_rejected_before_any_work(llama, prompt_tokens, kwargs, error, message):
    cache = llama.model.layers[0].attention.cache_k.clone()
    args = dict(max_gen_len=4, temperature=0) | kwargs
    with pytest.raises(error, match=message):
        llama.generate(prompt_tokens, **args)
    assert torch.equal(llama.model.layers[0].attention.cache_k, cache)


def test_nan_logits_are_an_error():
    hf = tiny_hf_model(torch.float64)
    with torch.no_grad():
        hf.model.embed_tokens.weight[7] = float("nan")
    llama = Llama(load(hf, max_seq_len=16, max_batch_size=1), Tokenizer(tiny_hf_tokenizer()))
    with pytest.raises(ValueError, match="NaN logits"):
        llama.generate([[5, 7]], max_gen_len=3, temperature=0)


def test_a_pad_id_that_is_a_real_token_is_rejected(model):
    tokenizer = Tokenizer(tiny_hf_tokenizer())
    tokenizer.pad_id = tokenizer.eos_id  # what SmolLM2's own pad token would do
    with pytest.raises(ValueError, match="pad_id=2 is a real token"):
        Llama(model, tokenizer)


def test_text_completion_wants_a_list(llama):
    with pytest.raises(TypeError, match="list of strings"):
        llama.text_completion("Hello")


# --- sample_top_p ---------------------------------------------------------------------


def nucleus_by_the_rule(probs: list[float], p: float) -> dict[int, float]:
    """Meta's rule written out: walk down the sorted probabilities (ties: lower id first),
    keep a token when the mass before it is <= p; renormalise what is kept."""
    order = sorted(range(len(probs)), key=lambda i: -probs[i])
    kept, before = {}, 0.0
    for i in order:
        if before <= p:
            kept[i] = probs[i]
        before += probs[i]
    total = sum(kept.values())
    return {i: q / total for i, q in kept.items() if q > 0}


def nucleus_by_the_code(probs: torch.Tensor, p: float) -> dict[int, float]:
    probs_sort, probs_idx = top_p_nucleus(probs, p)
    return {int(i): float(q) for i, q in zip(probs_idx, probs_sort) if q > 0}


# Dyadic probabilities: every partial sum is exact, so p can sit on one. Kept tokens of
# probability 0 cannot be drawn, so both sides list only tokens left with mass.
BOUNDARY_CASES = [
    ([0.5, 0.25, 0.125, 0.125], 0.5, {0, 1}),  # mass before token 1 is exactly p: kept (HF drops it)
    ([0.5, 0.25, 0.125, 0.125], 0.4999, {0}),
    ([0.5, 0.25, 0.125, 0.125], 0.75, {0, 1, 2}),
    ([0.125, 0.5, 0.125, 0.25], 0.875, {0, 1, 2, 3}),
    ([0.25, 0.25, 0.25, 0.25], 0.5, {0, 1, 2}),  # ties: lower ids first
    ([1.0, 0.0, 0.0], 1e-9, {0}),  # the top token is always kept
    ([0.25, 0.25, 0.5], 1.0, {0, 1, 2}),  # p = 1 keeps everything
]


@pytest.mark.parametrize("probs, p, kept", BOUNDARY_CASES)
def test_top_p_boundary_cases(probs, p, kept):
    ours = nucleus_by_the_code(torch.tensor(probs), p)
    assert set(ours) == kept == set(nucleus_by_the_rule(probs, p))
    assert ours == pytest.approx(nucleus_by_the_rule(probs, p), abs=1e-7)


def test_top_p_nucleus_matches_the_rule_on_random_distributions():
    g = torch.Generator().manual_seed(0)
    for k in range(300):
        vocab = int(torch.randint(2, 40, (), generator=g))
        logits = torch.randn(vocab, generator=g, dtype=torch.float64) * float(torch.rand((), generator=g) * 5)
        probs = torch.softmax(logits, dim=-1)
        p = float(torch.rand((), generator=g))
        ours = nucleus_by_the_code(probs, p)
        ref = nucleus_by_the_rule(probs.tolist(), p)
        assert set(ours) == set(ref), (k, p)
        assert ours == pytest.approx(ref, abs=1e-12)


def test_top_p_works_row_by_row():
    probs = torch.tensor([[0.5, 0.25, 0.125, 0.125], [0.1, 0.2, 0.3, 0.4]], dtype=torch.float64)
    probs_sort, probs_idx = top_p_nucleus(probs, 0.5)
    assert probs_idx.tolist() == [[0, 1, 2, 3], [3, 2, 1, 0]]
    assert probs_sort.flatten().tolist() == pytest.approx([2 / 3, 1 / 3, 0, 0, 4 / 7, 3 / 7, 0, 0])


def test_sampled_frequencies_follow_the_renormalised_nucleus():
    probs = torch.tensor([0.3, 0.05, 0.2, 0.15, 0.1, 0.12, 0.08])
    nucleus = nucleus_by_the_rule(probs.tolist(), 0.8)  # tokens 0, 2, 3, 5, 4
    n = 20000
    g = torch.Generator().manual_seed(1234)
    draws = sample_top_p(probs.expand(n, -1).contiguous(), 0.8, generator=g).flatten()
    counts = torch.bincount(draws, minlength=len(probs))
    assert set(torch.nonzero(counts).flatten().tolist()) == set(nucleus)
    observed = [int(counts[i]) for i in nucleus]
    expected = [n * q for q in nucleus.values()]
    assert scipy.stats.chisquare(observed, expected).pvalue > 1e-3


def test_a_seeded_generator_reproduces_samples():
    probs = torch.softmax(torch.randn(4, 50, generator=torch.Generator().manual_seed(0)), dim=-1)

    def draw(seed):
        g = torch.Generator().manual_seed(seed)
        return torch.cat([sample_top_p(probs, 0.9, generator=g) for _ in range(25)], dim=1)

    assert torch.equal(draw(7), draw(7))
    assert not torch.equal(draw(7), draw(8))
    assert draw(7).shape == (4, 25)


def test_seeded_sampling_in_generate_is_reproducible(llama):
    def sample():
        torch.manual_seed(5)
        return llama.generate(PROMPTS, max_gen_len=10, temperature=1.0, top_p=0.9)[0]

    assert sample() == sample()
    assert sample() != llama.generate(PROMPTS, max_gen_len=10, temperature=0)[0]


@pytest.mark.parametrize(
    "probs, p, error, message",
    [
        ([0.5, 0.5], 0.9, TypeError, "floating-point tensor"),
        (torch.tensor([1, 0]), 0.9, TypeError, "floating-point tensor"),
        (torch.tensor([0.7, -0.1, 0.4]), 0.9, ValueError, "negative"),
        (torch.tensor([0.5, float("nan")]), 0.9, ValueError, "NaN"),
        (torch.tensor([0.5, 0.4]), 0.9, ValueError, "sum to"),
        (torch.tensor([[0.5, 0.5], [0.9, 0.3]]), 0.9, ValueError, "sum to"),
        (torch.ones(1, 1, 1), 0.9, ValueError, "shape"),
        (torch.tensor([0.5, 0.5]), 0.0, ValueError, "p=0.0"),
        (torch.tensor([0.5, 0.5]), 1.5, ValueError, "p=1.5"),
    ],
)
def test_sample_top_p_rejects_what_is_not_a_distribution(probs, p, error, message):
    with pytest.raises(error, match=message):
        sample_top_p(probs, p)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_the_loop_waits_for_the_gpu_once_per_token():
    """CUDA's sync debug mode reports every read of the device: greedy decoding reads it once
    per token (NaN check and end of sequence together), plus the prompt and the output."""
    import warnings

    llama = Llama(load(tiny_hf_model(torch.float32), max_seq_len=32, max_batch_size=1, device="cuda"),
                  Tokenizer(tiny_hf_tokenizer()))
    llama.generate([[5, 6, 7]], max_gen_len=2, temperature=0)  # warm-up: CUDA's lazy initialisation
    torch.cuda.set_sync_debug_mode("warn")
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            out, _ = llama.generate([[5, 6, 7]], max_gen_len=8, temperature=0)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    syncs = [w for w in caught if "synchronizing" in str(w.message)]
    assert len(syncs) <= len(out[0]) + 3  # a row that ends at EOS stops the loop early


def test_perplexity_is_hugging_faces_loss(hf, model):
    """evaluation.perplexity over windows of the cache length is exp of Hugging Face's mean
    cross-entropy over the same windows (a text longer than one window: two of them)."""
    from llama_notes.evaluation import argmax_agreement, logits_of, perplexity

    g = torch.Generator().manual_seed(3)
    tokens = torch.randint(0, hf.config.vocab_size, (MAX_SEQ_LEN + 10,), generator=g).tolist()
    windows = logits_of(model, tokens)
    assert [targets.numel() for _, targets in windows] == [MAX_SEQ_LEN, 9]
    nll, count = 0.0, 0
    with torch.no_grad():
        for start in (0, MAX_SEQ_LEN):
            chunk = torch.tensor([tokens[start : start + MAX_SEQ_LEN + 1]])
            n = chunk.shape[1] - 1  # HF shifts the labels itself: its loss is the mean over n predictions
            nll += hf(chunk, labels=chunk).loss.item() * n
            count += n
    # HF computes its loss in float32 (it upcasts the logits to float, not double): 1e-6
    assert perplexity(windows) == pytest.approx(math.exp(nll / count), rel=1e-6)
    assert argmax_agreement(windows, windows) == 1.0
