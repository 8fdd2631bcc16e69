"""Checkpoints: round trip, and refusal of truncated, corrupt, foreign and pickled files."""

from __future__ import annotations

import json
import pickle

import pytest
import torch

from wiml.errors import CheckpointError
from wiml.networks import FPSNet, FPSNetConfig
from wiml.networks.checkpoint import (
    load_model,
    load_training_state,
    save_checkpoint,
    save_training_state,
    sidecar_path,
)


@pytest.fixture
def saved(tmp_path):
    torch.manual_seed(0)
    net = FPSNet(FPSNetConfig(base_width=4, depth=3, in_channels=2)).eval()
    path = save_checkpoint(
        tmp_path / "best.safetensors", net, {"epoch": 3, "metrics": {"val_auc": 0.9}, "kind": "weak"}
    )
    return net, path


def test_round_trip(saved):
    net, path = saved
    model, meta = load_model(path, "cpu")
    assert meta["epoch"] == 3 and meta["kind"] == "weak" and meta["metrics"]["val_auc"] == 0.9
    assert meta["model_config"]["in_channels"] == 2 and "torch" in meta["versions"]
    x = torch.randn(2, 2, 16, 16)
    with torch.no_grad():
        a, b = net(x), model(x)
    assert torch.equal(a.seg, b.seg) and torch.equal(a.cls, b.cls)
    assert not model.training
    # loading through the sidecar path works too
    assert load_model(sidecar_path(path), "cpu")[1]["epoch"] == 3


def test_truncated_file_refused(saved):
    _, path = saved
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2])
    with pytest.raises(CheckpointError, match="truncated"):
        load_model(path)


def test_corrupt_file_with_matching_size_refused(saved):
    _, path = saved
    data = bytearray(path.read_bytes())
    data[:8] = b"\xff" * 8  # header length now absurd
    path.write_bytes(bytes(data))
    with pytest.raises(CheckpointError, match="safetensors"):
        load_model(path)


def test_pickle_refused(tmp_path, saved):
    _, path = saved

    class Evil:
        def __reduce__(self):
            return (print, ("unpickled!",))

    evil = tmp_path / "evil.safetensors"
    evil.write_bytes(pickle.dumps({"x": Evil()}))
    sidecar_path(evil).write_text(sidecar_path(path).read_text())
    with pytest.raises(CheckpointError):
        load_model(evil)
    state = tmp_path / "state.pt"
    torch.save({"epoch": 1, "model": {}, "evil": Evil()}, state)
    with pytest.raises(CheckpointError, match="safely"):
        load_training_state(state)


def test_other_architecture_refused(saved):
    _, path = saved
    side = sidecar_path(path)
    meta = json.loads(side.read_text())
    meta["architecture"] = "UNet3D"
    side.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="UNet3D"):
        load_model(path)


def test_mismatching_weights_refused(saved):
    _, path = saved
    side = sidecar_path(path)
    meta = json.loads(side.read_text())
    meta["model_config"]["base_width"] = 8
    side.write_text(json.dumps(meta))
    with pytest.raises(CheckpointError, match="do not match"):
        load_model(path)


def test_missing_files_refused(tmp_path, saved):
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "nothing.safetensors")
    _, path = saved
    sidecar_path(path).unlink()
    with pytest.raises(CheckpointError, match="sidecar"):
        load_model(path)


def test_training_state_round_trip(tmp_path):
    net = FPSNet(FPSNetConfig(base_width=4, depth=2))
    opt = torch.optim.AdamW(net.parameters())
    save_training_state(
        tmp_path / "state.pt",
        {
            "epoch": 2,
            "model": net.state_dict(),
            "optimizer": opt.state_dict(),
            "history": [{"epoch": 1, "loss": 0.5}],
        },
    )
    state = load_training_state(tmp_path / "state.pt")
    assert state["epoch"] == 2 and state["history"][0]["loss"] == 0.5


def test_load_model_refuses_other_weights_of_the_same_size(tmp_path):
    """Another model's weights of the same byte size under this sidecar: refused by the SHA-256 check."""
    import shutil

    config = FPSNetConfig(base_width=4, depth=2)
    torch.manual_seed(0)
    a = save_checkpoint(tmp_path / "a" / "best.safetensors", FPSNet(config), {"kind": "weak"})
    torch.manual_seed(1)
    b = save_checkpoint(tmp_path / "b" / "best.safetensors", FPSNet(config), {"kind": "msl"})
    assert a.stat().st_size == b.stat().st_size
    model, meta = load_model(a)
    assert meta["kind"] == "weak"
    shutil.copyfile(b, a)
    with pytest.raises(CheckpointError, match="SHA-256 .* does not match the sidecar") as info:
        load_model(a)
    assert str(a) in str(info.value) and "\n" not in str(info.value)
    b.with_suffix(".json").unlink()  # a sidecar-less file is still refused as before
    with pytest.raises(CheckpointError, match="sidecar"):
        load_model(b)


@pytest.mark.cuda
def test_gpu_checkpoint_loads_on_cpu(tmp_path):
    """A checkpoint saved from a model on the GPU loads on a CPU and gives the same output."""
    torch.manual_seed(0)
    net = FPSNet(FPSNetConfig(base_width=4, depth=2)).to("cuda").eval()
    x = torch.rand(2, 1, 32, 32)
    with torch.no_grad():
        expected = net(x.to("cuda")).seg.cpu()
    path = save_checkpoint(tmp_path / "gpu.safetensors", net, {"kind": "weak"})
    model, meta = load_model(path, torch.device("cpu"))
    assert next(model.parameters()).device.type == "cpu" and meta["kind"] == "weak"
    with torch.no_grad():
        got = model(x).seg
    assert torch.allclose(got, expected, atol=1e-4)
