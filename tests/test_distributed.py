"""init_distributed and data-parallel generation: a plain run, torchrun's variables, a real two-process torchrun.

The two-process tests start ``torchrun --standalone``, which picks a free port itself.
"""

from __future__ import annotations

import dataclasses
import os
import shlex
import socket
import subprocess
import sys

import pytest
import torch
import torch.distributed as dist

from includes import ROOT
from llama_notes.device import TORCHRUN_VARS, DistInfo, init_distributed
from llama_notes.generate_distributed import main as generate_main
from llama_notes.generate_distributed import merge, report, split, tiny_llama
from llama_notes.generation import Llama

BACKEND = "nccl" if torch.cuda.is_available() and dist.is_nccl_available() else "gloo"


@pytest.fixture
def env(monkeypatch):
    """A clean environment: none of torchrun's variables, no process group before or after."""
    for name in TORCHRUN_VARS:
        monkeypatch.delenv(name, raising=False)
    assert not dist.is_initialized()
    yield monkeypatch
    if dist.is_initialized():
        dist.destroy_process_group()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def set_torchrun_vars(monkeypatch, **overrides):
    """What torchrun sets for a one-process job, with ``overrides`` (None deletes a variable)."""
    values = dict(RANK="0", WORLD_SIZE="1", LOCAL_RANK="0", MASTER_ADDR="127.0.0.1", MASTER_PORT=str(free_port()))
    for name, value in {**values, **overrides}.items():
        if value is None:
            monkeypatch.delenv(name, raising=False)
        else:
            monkeypatch.setenv(name, value)


def run_torchrun(script: str) -> subprocess.CompletedProcess:
    """Run a ``torchrun ...`` command line from snippets/ with this venv's torchrun."""
    command = shlex.split(script.replace("\\\n", " "))
    assert command[0] == "torchrun"
    env = {k: v for k, v in os.environ.items() if k not in TORCHRUN_VARS}
    return subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", *command[1:]],
        cwd=ROOT, env={**env, "HF_HUB_OFFLINE": "1"}, capture_output=True, text=True, timeout=300,
    )


def test_plain_python_run_is_a_single_process(env):
    info = init_distributed()
    assert info == DistInfo(rank=0, world_size=1, local_rank=0, backend=BACKEND)
    assert not dist.is_initialized()  # one process has no one to talk to


def test_dist_info_is_frozen():
    info = DistInfo(0, 1, 0, "gloo")
    with pytest.raises(dataclasses.FrozenInstanceError):
        info.rank = 1


def test_torchrun_variables_create_the_group_once(env):
    set_torchrun_vars(env)
    info = init_distributed()
    assert info == DistInfo(0, 1, 0, BACKEND)
    assert dist.is_initialized() and dist.get_world_size() == 1 and dist.get_backend() == BACKEND
    assert init_distributed() == info  # a second call joins the existing group
    assert init_distributed(BACKEND) == info


@pytest.mark.parametrize(
    "overrides, message",
    [
        ({"RANK": "2", "WORLD_SIZE": "2"}, r"RANK=2 must be in \[0, WORLD_SIZE=2\)"),
        ({"RANK": "-1"}, r"RANK=-1 must be in \[0, WORLD_SIZE=1\)"),
        ({"WORLD_SIZE": "0"}, "WORLD_SIZE=0 must be at least 1"),
        ({"LOCAL_RANK": "1", "RANK": "0", "WORLD_SIZE": "2"}, r"LOCAL_RANK=1 must be in \[0, RANK=0\]"),
        ({"RANK": "one"}, "RANK='one' is not an integer"),
        ({"MASTER_PORT": "70000"}, "MASTER_PORT=70000 is not a TCP port"),
        ({"MASTER_ADDR": None}, "RANK or WORLD_SIZE is set, but not MASTER_ADDR: launch with torchrun"),
        ({"WORLD_SIZE": None, "LOCAL_RANK": None}, "but not WORLD_SIZE, LOCAL_RANK:"),
    ],
)
def test_inconsistent_variables_are_rejected_before_any_group_exists(env, overrides, message):
    set_torchrun_vars(env, **overrides)
    with pytest.raises(ValueError, match=message):
        init_distributed()
    assert not dist.is_initialized()


def test_bad_backend_is_rejected_before_any_group_exists(env):
    set_torchrun_vars(env)
    with pytest.raises(ValueError, match="unknown torch.distributed backend 'infiniband'"):
        init_distributed("infiniband")
    assert not dist.is_initialized()


def test_two_processes_under_torchrun():
    result = run_torchrun((ROOT / "snippets" / "torchrun_init_distributed.sh").read_text())
    assert result.returncode == 0, result.stderr
    assert result.stdout.splitlines() == [  # rank 0 prints what every rank sent it
        f"DistInfo(rank=0, world_size=2, local_rank=0, backend='{BACKEND}')",
        f"DistInfo(rank=1, world_size=2, local_rank=1, backend='{BACKEND}')",
    ]


# Data-parallel generation: the gathered results of two processes are the one-process results.

TINY = ["--model", "tiny", "--weights", "fp64", "--temperature", "0", "--max-gen-len", "12"]
PROMPTS = ["Hello", "The largest animal", "abc"]


@pytest.mark.parametrize("world_size", [1, 2, 3, 4])
@pytest.mark.parametrize("n", [0, 1, 3, 7])
def test_merge_undoes_split(n, world_size):
    prompts = [f"p{i}" for i in range(n)]
    shares = [split(prompts, rank, world_size) for rank in range(world_size)]
    assert sorted(sum(shares, [])) == sorted(prompts)
    assert merge(shares) == prompts


def test_one_process_prints_the_llama_results_in_order(env, capsys):
    assert generate_main([*TINY, *PROMPTS]) == 0
    llama = tiny_llama(max_seq_len=128, max_batch_size=len(PROMPTS), device=torch.device("cpu"), weights="fp64")
    expected = llama.text_completion(PROMPTS, temperature=0, max_gen_len=12)
    assert capsys.readouterr().out == report(PROMPTS, expected)
    assert all(len(r["generation"]) > 0 for r in expected)


@pytest.mark.parametrize("prompts", [PROMPTS, ["only one"]], ids=["3 prompts", "fewer prompts than processes"])
def test_two_processes_gather_the_one_process_results(env, capsys, prompts):
    assert generate_main([*TINY, *prompts]) == 0
    one = capsys.readouterr().out
    command = ["torchrun", "--standalone", "--nproc_per_node", "2", "-m", "llama_notes.generate_distributed"]
    result = run_torchrun(shlex.join([*command, *TINY, *prompts]))
    assert result.returncode == 0, result.stderr
    assert result.stdout == one
    assert one.count("\n> ") == len(prompts)


@pytest.mark.slow
def test_the_torchrun_snippet_on_smollm2(env):
    script = (ROOT / "snippets" / "torchrun_generate.sh").read_text()
    command = shlex.split(script.replace("\\\n", " "))
    prompts = command[command.index("--max-gen-len") + 2 :]
    result = run_torchrun(script)
    assert result.returncode == 0, result.stderr
    llama = Llama.build(max_seq_len=128, max_batch_size=len(prompts))  # one process, the whole batch
    expected = llama.text_completion(prompts, temperature=0, max_gen_len=16)
    assert result.stdout == report(prompts, expected)  # the load time is a log record, not output
