"""The real model: SmolLM2-135M-Instruct, our Transformer and generate against Hugging Face.

The first run on a machine converts the GGUF into the cache (seconds); then the
module loads it once (about 2 s) for every test here.
"""

import copy
import io
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from llama_notes import cli, smollm2
from llama_notes.commands.generate import TokenStream
from llama_notes.generation import Llama
from llama_notes.checkpoint import load
from llama_notes.tokenizer import Tokenizer
from hf_reference import hf_greedy

pytestmark = pytest.mark.slow

SEED_PROMPT = "Q: What is the largest animal?\nA:"
PROMPTS = [SEED_PROMPT, "The capital of France is", "def fibonacci(n):\n   "]


@pytest.fixture(scope="module")
def hf_pair():
    return smollm2.load_hf(torch.float32)


@pytest.fixture(scope="module")
def hf(hf_pair):
    return hf_pair[0]


@pytest.fixture(scope="module")
def llama(hf_pair):
    hf, hf_tokenizer = hf_pair
    return Llama(load(hf, max_seq_len=160, max_batch_size=4), Tokenizer(hf_tokenizer))


def test_logits_match_hf_float32_as_closely_as_hf_float32_matches_float64(hf, llama):
    """Tolerance: both are float32 computations of the same function that sum in
    different orders (x @ W against F.linear), so neither is exact. HF's own float32
    logits differ from its float64 logits by e64 (about 5e-5 on logits of size ~30);
    ours may differ from HF's float32 by a few times that, never by 1e-3. A real error
    (a wrong RoPE layout, base, norm or head) moves logits by more than 1."""
    tokens = torch.tensor([llama.tokenizer.encode(SEED_PROMPT, bos=True, eos=False)])
    hf64 = copy.deepcopy(hf).double()
    with torch.no_grad():
        ref32, ref64 = hf(tokens).logits, hf64(tokens).logits
    ours = llama.model(tokens, 0)
    e64 = (ref32.double() - ref64).abs().max().item()
    assert 0 < e64 < 1e-3
    assert (ours - ref32).abs().max().item() < 4 * e64
    assert (ours.double() - ref64).abs().max().item() < 4 * e64
    assert torch.equal(ours.argmax(-1), ref32.argmax(-1))


@pytest.fixture(scope="module")
def q4():
    return Llama.build(max_seq_len=160, max_batch_size=1, weights="q4")


def test_q4_stays_within_a_stated_tolerance_of_float32(llama, q4):
    """The file's 4-bit blocks with bfloat16 activations against its float32 weights, at every
    position of the three prompts: the same most likely token, every next-token probability
    within 0.06 of float32's (measured: at most 0.042) and every logit within 2.5 (measured:
    1.63, of logits up to 36). A wrong scale or zero point moves them by far more."""
    from llama_notes.quant import Int4Linear

    assert isinstance(q4.model.layers[0].feed_forward.w13, Int4Linear)
    for prompt in PROMPTS:
        tokens = torch.tensor([llama.tokenizer.encode(prompt, bos=False, eos=False)])
        ours, reference = q4.model(tokens, 0), llama.model(tokens, 0)
        assert torch.equal(ours.argmax(-1), reference.argmax(-1))
        assert (ours.softmax(-1) - reference.softmax(-1)).abs().max() < 0.06
        assert (ours - reference).abs().max() < 2.5
    prompt = llama.tokenizer.encode(PROMPTS[1], bos=False, eos=False)
    assert q4.generate([prompt], 16, temperature=0) == llama.generate([prompt], 16, temperature=0)


def test_prefill_then_steps_match_one_pass(llama):
    tokens = torch.tensor([llama.tokenizer.encode(PROMPTS[1], bos=False, eos=False)])
    full = llama.model(tokens, 0)
    steps = [llama.model(tokens[:, :3], 0)] + [llama.model(tokens[:, i : i + 1], i) for i in range(3, tokens.shape[1])]
    assert (torch.cat(steps, dim=1) - full).abs().max() < 1e-4


def test_greedy_batch_equals_hf_generate_per_prompt(hf, llama):
    prompt_tokens = [llama.tokenizer.encode(p, bos=False, eos=False) for p in PROMPTS]
    assert len({len(t) for t in prompt_tokens}) == len(PROMPTS)  # different lengths
    out, _ = llama.generate(prompt_tokens, max_gen_len=24, temperature=0)
    for prompt, row in zip(prompt_tokens, out):
        assert row == hf_greedy(hf, prompt, 24, llama.tokenizer.eos_id)
        assert [row] == llama.generate([prompt], max_gen_len=24, temperature=0)[0]


def test_the_seed_prompt_greedy_answer(hf, llama):
    """text_completion encodes with BOS, like Meta's; the answer ends with EOS, cut off."""
    prompt = llama.tokenizer.encode(SEED_PROMPT, bos=True, eos=False)
    expected = hf_greedy(hf, prompt, 64, llama.tokenizer.eos_id)
    assert len(expected) < 64  # the model stops by itself
    result = llama.text_completion([SEED_PROMPT], temperature=0, max_gen_len=64, logprobs=True)[0]
    assert result["generation"] == llama.tokenizer.decode(expected)
    assert result["generation"].startswith(" The largest animal is")
    assert [llama.tokenizer.encode(t, bos=False, eos=False) for t in result["tokens"][:3]] == [[t] for t in expected[:3]]


def test_logprobs_are_log_softmax_of_hf_logits(hf, llama):
    prompt = llama.tokenizer.encode(SEED_PROMPT, bos=True, eos=False)
    out, logprobs = llama.generate([prompt], max_gen_len=12, temperature=0, logprobs=True, echo=True)
    with torch.no_grad():
        logp = torch.log_softmax(hf(torch.tensor(out)).logits[0], dim=-1)
    ref = [0.0] + [logp[j - 1, out[0][j]].item() for j in range(1, len(out[0]))]
    assert out[0][: len(prompt)] == prompt
    # a log-softmax moves by at most twice the largest change of a logit, which the test
    # above bounds by 4 * e64 (about 2e-4)
    assert logprobs[0] == pytest.approx(ref, abs=1e-3)


def test_chat_completion_uses_the_chat_template(hf, hf_pair, llama):
    dialog = [{"role": "user", "content": "What is the largest animal?"}]
    prompt = hf_pair[1].apply_chat_template(dialog, add_generation_prompt=True, tokenize=True, return_dict=False)
    assert llama.tokenizer.encode_dialog(dialog) == list(prompt)
    answer = llama.chat_completion([dialog], temperature=0, max_gen_len=48)[0]["generation"]
    assert answer["role"] == "assistant"
    assert answer["content"] == llama.tokenizer.decode(hf_greedy(hf, list(prompt), 48, llama.tokenizer.eos_id))
    assert "<|im_end|>" not in answer["content"]


def test_tokenizer_pad_is_not_smollm2s_pad(hf_pair, llama):
    hf_tokenizer = hf_pair[1]
    assert hf_tokenizer.pad_token_id == hf_tokenizer.eos_token_id == llama.tokenizer.eos_id == 2
    assert llama.tokenizer.pad_id == -1
    assert llama.tokenizer.n_words == llama.model.params.vocab_size == 49152


def test_smollm2_args(llama):
    p = llama.model.params
    assert (p.dim, p.n_layers, p.n_heads, p.n_kv_heads, p.hidden_dim) == (576, 30, 9, 3, 1536)
    assert p.rope_theta == 100000.0


def test_token_stream_holds_back_split_characters(hf_pair, llama):
    text = " Ballenas 🐋 y élans — 鲸鱼!"
    tokens = llama.tokenizer.encode(text, bos=False, eos=False)
    assert any("\ufffd" in llama.tokenizer.decode([t]) for t in tokens)  # some token splits a character
    out = io.StringIO()
    stream, writes = TokenStream(llama.tokenizer, out), []
    for t in tokens:
        before = out.getvalue()
        stream.push(t)
        writes.append(out.getvalue()[len(before) :])
    stream.close()
    assert out.getvalue() == text
    assert not any("\ufffd" in w for w in writes)


def test_cli_streams_the_greedy_answer(llama, capsys):
    """With --compile, the one compiled check on the real model (test_compile.py tests the
    compiled step on the tiny model; test_the_documented_command_runs, the CLI without it):
    compiling happens before the clock starts, and does not change the answer."""
    args = ["generate", r"Q: What is the largest animal?\nA:", "--temperature", "0", "--max-gen-len", "16", "--compile"]
    assert cli.main(args) == 0
    captured = capsys.readouterr()
    expected = llama.text_completion([SEED_PROMPT], temperature=0, max_gen_len=16)[0]["generation"]
    assert captured.out.endswith(expected + "\n")
    assert captured.err.index("Compiling the one-token step") < captured.err.index("achieved tok/s:")


def test_cli_echo_logprobs_chat(capsys):
    assert cli.main(["generate", "Hi", "--chat", "--echo", "--logprobs", "--temperature", "0", "--max-gen-len", "4"]) == 0
    out = capsys.readouterr().out
    table_start = re.search(r"^ *-?\d+\.\d{4}  '", out, re.M).start()  # "  -0.1234  'token'" lines
    text, table = out[:table_start], out[table_start:]
    # The echoed prompt is the text of the chat, without the template's control tokens...
    assert "user\nHi\nassistant\n" in text and "<|im_" not in text
    assert "'<|im_start|>'" in table  # ...which the logprobs table lists as tokens


def test_cli_names_the_limit_of_a_long_prompt(capsys):
    """The one length check that needs the tokenizer: prompt and answer share the cache."""
    assert cli.main(["generate", "Hi there", "--max-gen-len", "2047"]) == 2
    assert "the prompt has 3 tokens: max_gen_len can be at most 2045" in capsys.readouterr().err


def test_build_loads_from_the_cache(llama):
    built = Llama.build(max_seq_len=64, max_batch_size=2)
    assert built.model.params.max_seq_len == 64
    assert next(built.model.parameters()).device.type in ("cpu", "cuda", "mps")
    prompt = built.tokenizer.encode(SEED_PROMPT, bos=False, eos=False)
    assert built.generate([prompt], 8, temperature=0) == llama.generate([prompt], 8, temperature=0)


def test_cache_holds_a_plain_checkpoint():
    path = smollm2.ensure_converted()
    assert path == smollm2.cache_dir()
    config = (path / "config.json").read_text()
    assert "quantization_config" not in config
    assert '"tie_word_embeddings": true' in config
    assert (path / "model.safetensors").stat().st_size > 500e6


def test_cache_dir_follows_the_environment(monkeypatch, tmp_path):
    monkeypatch.setenv("LLAMA_NOTES_CACHE", str(tmp_path))
    assert smollm2.cache_dir() == tmp_path / "smollm2"
    monkeypatch.delenv("LLAMA_NOTES_CACHE")
    assert smollm2.cache_dir() == Path.home() / ".cache" / "llama-notes" / "smollm2"


def test_an_interrupted_conversion_leaves_no_cache(monkeypatch, tmp_path):
    monkeypatch.setenv("LLAMA_NOTES_CACHE", str(tmp_path))

    def interrupted(gguf, out):
        (out / "config.json").write_text("{}")  # half written
        raise KeyboardInterrupt

    monkeypatch.setattr(smollm2, "convert", interrupted)
    with pytest.raises(KeyboardInterrupt):
        smollm2.ensure_converted()
    assert os.listdir(tmp_path) == [".lock"]  # the conversion's lock, nothing it wrote


def test_a_damaged_cache_is_rebuilt_with_a_notice(monkeypatch, tmp_path, capsys, hf):
    good = smollm2.ensure_converted()
    monkeypatch.setenv("LLAMA_NOTES_CACHE", str(tmp_path))

    def convert(gguf, out):  # what the conversion writes, copied from the real cache (faster)
        for name in smollm2.CACHE_FILES:
            shutil.copy(good / name, out / name)

    monkeypatch.setattr(smollm2, "convert", convert)
    cache = smollm2.ensure_converted()
    with open(cache / "model.safetensors", "r+b") as f:  # what a full disk leaves
        f.truncate(1000)
    killed = tmp_path / ".smollm2-killed"  # the temporary folder of a conversion that was killed
    killed.mkdir()
    (killed / "model.safetensors").write_bytes(b"half")
    capsys.readouterr()

    model, _ = smollm2.load_hf()
    assert capsys.readouterr().err == f"The SmolLM2 cache at {cache} is damaged or incomplete: converting it again.\n"
    assert sorted(os.listdir(tmp_path)) == [".lock", "smollm2"]
    tokens = torch.tensor([[1, 504, 3458, 282]])
    with torch.no_grad():
        assert torch.equal(model(tokens).logits, hf(tokens).logits)


def test_the_gguf_ships_in_the_package():
    path = smollm2.gguf_path()
    assert path.name == "SmolLM2-135M-Instruct.Q4_1.gguf"
    assert path.stat().st_size > 90e6


def test_the_documented_command_runs(llama):
    """snippets/generate_cli.sh, run by a shell as a reader would, prints the greedy answer."""
    script = Path(__file__).resolve().parent.parent / "snippets" / "generate_cli.sh"
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}"}
    result = subprocess.run(["bash", str(script)], env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    expected = llama.text_completion([SEED_PROMPT], temperature=0, max_gen_len=64)[0]["generation"]
    assert result.stdout == expected + "\n"
    assert "achieved tok/s:" in result.stderr
