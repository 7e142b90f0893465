"""llama_notes.device: moving inputs to the model's device, picking a device and a backend.

Movement is checked with a model on the ``meta`` device, which every torch build has:
a tensor that reaches it has really been moved, with no GPU on the machine. The
CUDA tests run where CUDA exists and are skipped elsewhere.
"""

from __future__ import annotations

from collections import OrderedDict, namedtuple

import pytest
import torch
import torch.distributed as dist
from torch import nn

from llama_notes.device import distributed_backend, model_device, pick_device, to_model_device
from llama_notes.tiny import tiny_hf_tokenizer

META = torch.device("meta")
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
no_accelerator = pytest.mark.skipif(
    torch.cuda.is_available() or torch.backends.mps.is_available(), reason="this machine has an accelerator"
)


@pytest.fixture
def meta_model():
    return nn.Linear(3, 2, device="meta")


@pytest.fixture
def encoding():
    """What the source post's tokenizer call returns: a BatchEncoding of CPU tensors."""
    return tiny_hf_tokenizer()("Q: What is the largest animal?\nA:", return_tensors="pt")


def test_model_device_is_where_the_parameters_are(meta_model):
    assert model_device(meta_model) == META
    assert model_device(nn.Linear(1, 1)) == torch.device("cpu")


def test_tensor_moves_and_keeps_its_values():
    t = torch.arange(6).reshape(2, 3)
    moved = to_model_device(t, nn.Linear(1, 1))  # already there: same values, same device
    assert moved.device == torch.device("cpu") and torch.equal(moved, t)
    on_meta = to_model_device(t, nn.Linear(1, 1, device="meta"))
    assert on_meta.device == META and on_meta.shape == t.shape and on_meta.dtype == t.dtype


def test_batch_encoding_moves_and_stays_a_batch_encoding(encoding, meta_model):
    moved = to_model_device(encoding, meta_model)
    assert type(moved) is type(encoding)
    assert list(moved.keys()) == ["input_ids", "attention_mask"]
    assert all(v.device == META for v in moved.values())
    assert moved.input_ids.shape == encoding.input_ids.shape  # attribute access still works
    assert moved.encodings is encoding.encodings  # the fast tokenizer's offsets survive
    assert moved.tokens(0) == encoding.tokens(0)


def test_the_input_is_not_modified(encoding, meta_model):
    # BatchEncoding.to moves in place; to_model_device returns a moved copy
    to_model_device(encoding, meta_model)
    assert all(v.device == torch.device("cpu") for v in encoding.values())


def test_dict_list_tuple_nested(meta_model):
    a, b = torch.zeros(2), torch.ones(3)
    inputs = {"ids": a, "pair": (a, [b, "text"]), "n": 3, "none": None}
    moved = to_model_device(inputs, meta_model)
    assert type(moved) is dict and moved.keys() == inputs.keys()
    assert moved["ids"].device == META
    assert type(moved["pair"]) is tuple and moved["pair"][0].device == META
    assert type(moved["pair"][1]) is list and moved["pair"][1][0].device == META
    assert moved["pair"][1][1] == "text" and moved["n"] == 3 and moved["none"] is None
    assert a.device == torch.device("cpu")  # the original is untouched


def test_ordered_dict_and_namedtuple_keep_their_types(meta_model):
    Pair = namedtuple("Pair", "ids mask")
    od = OrderedDict(b=torch.zeros(1), a=torch.zeros(1))
    moved = to_model_device(od, meta_model)
    assert type(moved) is OrderedDict and list(moved) == ["b", "a"]
    pair = to_model_device(Pair(torch.zeros(1), torch.ones(1)), meta_model)
    assert type(pair) is Pair and pair.ids.device == META and pair.mask.device == META


def test_non_tensors_come_back_unchanged(meta_model):
    for value in ("text", 3, 2.5, None, [], {}, ()):
        assert to_model_device(value, meta_model) == value
    obj = object()
    assert to_model_device(obj, meta_model) is obj


def test_model_without_parameters_is_rejected():
    with pytest.raises(ValueError, match="ReLU has no parameters"):
        to_model_device(torch.zeros(1), nn.ReLU())


def test_the_seed_fix_lets_the_embedding_run(encoding):
    # the source post's failing call was the embedding lookup; with the fix it runs on the model's device
    embedding = nn.Embedding(len(tiny_hf_tokenizer()), 4)
    out = embedding(to_model_device(encoding, embedding)["input_ids"])
    assert out.shape == (*encoding.input_ids.shape, 4)


@no_accelerator
def test_pick_device_is_cpu_without_accelerator():
    assert pick_device() == torch.device("cpu")


def test_pick_device_cpu_by_name():
    assert pick_device("cpu") == torch.device("cpu")
    assert pick_device(torch.device("cpu")) == torch.device("cpu")


@pytest.mark.parametrize("name", ["gpu", "", "cuda:x", "banana"])
def test_pick_device_rejects_unknown_names(name):
    with pytest.raises(ValueError, match="unknown device"):
        pick_device(name)


def test_pick_device_rejects_device_types_it_does_not_run_on():
    with pytest.raises(ValueError, match="unsupported device 'meta'"):
        pick_device("meta")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_pick_device_rejects_missing_cuda():
    with pytest.raises(ValueError, match="not available on this machine"):
        pick_device("cuda")


@pytest.mark.skipif(torch.backends.mps.is_available(), reason="this machine has MPS")
def test_pick_device_rejects_missing_mps():
    with pytest.raises(ValueError, match="not available on this machine"):
        pick_device("mps")


@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_backend_is_gloo_without_cuda():
    assert distributed_backend() == "gloo"


def test_explicit_backend_is_checked():
    assert distributed_backend("gloo") == "gloo"
    assert distributed_backend("GLOO") == "gloo"
    with pytest.raises(ValueError, match="unknown torch.distributed backend 'infiniband'"):
        distributed_backend("infiniband")


@pytest.mark.skipif(torch.cuda.is_available() and dist.is_nccl_available(), reason="this machine has NCCL")
def test_nccl_is_refused_where_it_does_not_exist():
    # the source post's "Distributed package doesn't have NCCL built in", caught before init_process_group
    with pytest.raises(ValueError, match="backend 'nccl' is not available"):
        distributed_backend("nccl")


@pytest.mark.cuda
@cuda
def test_cuda_is_picked_first():
    assert pick_device() == torch.device("cuda")
    assert pick_device("cuda:0") == torch.device("cuda:0")
    with pytest.raises(ValueError, match="does not exist"):
        pick_device(f"cuda:{torch.cuda.device_count()}")


@pytest.mark.cuda
@cuda
def test_seed_error_and_fix_on_cuda(encoding):
    embedding = nn.Embedding(len(tiny_hf_tokenizer()), 4, device="cuda")
    with pytest.raises(RuntimeError, match="Expected all tensors to be on the same device"):
        embedding(encoding["input_ids"])  # the source post's error: input_ids on the CPU
    input_ids = encoding["input_ids"].to(model_device(embedding))  # the source post's fix
    assert embedding(input_ids).device.type == "cuda"
    assert to_model_device(encoding, embedding)["input_ids"].device == model_device(embedding)


@pytest.mark.cuda
@cuda
@pytest.mark.skipif(not dist.is_nccl_available(), reason="torch built without NCCL")
def test_backend_is_nccl_with_cuda():
    assert distributed_backend() == "nccl"


def test_doctor_reports_this_machine(capsys):
    import transformers

    from llama_notes.cli import main
    from llama_notes.memory import GiB, device_memory, fit_table

    assert main(["doctor"]) == 0
    out = capsys.readouterr().out
    assert f"torch {torch.__version__} (CUDA build: {torch.version.cuda or 'none'})" in out
    assert f"transformers {transformers.__version__}" in out
    assert f"torch.distributed backend: {distributed_backend()} (CUDA " in out
    ram = device_memory(torch.device("cpu"))
    assert f"fits in cpu ({ram / GiB:.2f} GiB physical RAM;" in out
    assert "\n".join("  " + line for line in fit_table(ram, 128, 4).splitlines()) in out
    if not torch.cuda.is_available():
        assert "cuda: not available" in out
        assert "(CUDA not available, NCCL" in out


def test_doctor_sizes_the_cache_it_is_asked_for(capsys):
    from llama_notes.cli import main
    from llama_notes.memory import device_memory, fit_table

    assert main(["doctor", "--max-seq-len", "4096", "--max-batch-size", "1"]) == 0
    out = capsys.readouterr().out
    assert "max_seq_len=4096, max_batch_size=1" in out
    assert fit_table(device_memory(torch.device("cpu")), 4096, 1).splitlines()[0] in out


def test_doctor_rejects_negative_sizes(capsys):
    from llama_notes.cli import main

    with pytest.raises(SystemExit):
        main(["doctor", "--max-batch-size", "-3"])
    assert "argument --max-batch-size: -3 is negative" in capsys.readouterr().err
