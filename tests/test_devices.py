"""The ``device`` setting (pipeline/runtime/devices.py). No GPU is lent to this project's machines, so
these tests hold the CPU side: how ``auto`` resolves, that a GPU torch does not see stops the
train stage in one line before anything is written, and that each run records where it trained.
On a machine with a GPU, ``python -m benchmarks.paper_cost --device cuda`` trains every run there."""

from __future__ import annotations

import json

import pytest
import torch
import yaml

from algorithms.components.seeding import SeedStreams
from pipeline.design.params import load_runs
from pipeline.runtime import devices
from pipeline.stages import train

RUN = "vm3ac-cooperative_navigation_n3"


@pytest.fixture
def workdir(tmp_path, monkeypatch, tiny_params):
    monkeypatch.chdir(tmp_path)

    def write(**changes):
        (tmp_path / "params.yaml").write_text(yaml.safe_dump({**tiny_params, **changes}))

    write()
    return write


def test_auto_is_cuda_when_torch_sees_a_gpu_and_the_cpu_otherwise(monkeypatch):
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert devices.resolve("auto") == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    assert devices.resolve("auto") == torch.device("cuda")
    assert devices.resolve("cpu") == torch.device("cpu")


def test_a_gpu_torch_does_not_see_stops_the_train_stage_before_it_writes(workdir, tmp_path):
    workdir(device="cuda:99")
    with pytest.raises(SystemExit, match=r"^params.yaml: device: cuda:99, but torch sees \d+ CUDA device\(s\)$"):
        train.main([RUN])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["params.yaml"]


@pytest.mark.parametrize("value", ["gpu", "cuda:x", 0])
def test_a_device_that_is_not_one_names_the_key(workdir, value):
    workdir(device=value)
    with pytest.raises(SystemExit, match=r"^params.yaml: device: must be auto, cpu, cuda or cuda:<n>, got "):
        load_runs()


def test_the_run_records_where_it_trained(workdir, tmp_path):
    workdir(device="auto")
    train.main([RUN])
    config = json.loads((tmp_path / f"results/runs/{RUN}/sacred/train/config.json").read_text())
    assert config["device"] == str(devices.resolve("auto"))


def test_seed_streams_draw_the_same_numbers_whatever_the_default_device():
    """The generators stay on the CPU: under another default device (meta here, the one a
    CPU-only torch has) the draw lands there, and the CPU numbers do not depend on it."""
    cpu = SeedStreams([0, 1], "init").normal(4)
    with torch.device("meta"):
        moved = SeedStreams([0, 1], "init").normal(4)
    assert moved.device.type == "meta" and moved.shape == cpu.shape
    assert torch.equal(SeedStreams([0, 1], "init").normal(4), cpu)
