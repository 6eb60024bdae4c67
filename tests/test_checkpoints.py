"""Tests for checkpoints: round trip, write order, atomic writes, and every kind of bad file."""

from __future__ import annotations

import json
import os
import pathlib
import pickle
from pathlib import Path

import pytest
import torch

from biaskit import api, checkpoints
from biaskit.errors import BiaskitError
from biaskit.recipes import Recipe
from biaskit.training import TrainSettings
from biaskit_plugins.models import small_cnn


pytestmark = pytest.mark.usefixtures("single_thread")


def tiny_model(width: int = 4, seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return small_cnn(num_classes=10, in_chans=3, width=width)


def recipe_metadata(width: int = 4) -> dict:
    """Return metadata that `api.load_checkpoint` accepts for a small-cnn of `width`."""
    recipe = Recipe(
        name="tiny", preset="quick", dataset="tiny", bias="colour", model="small-cnn",
        model_params={"width": width}, settings=TrainSettings(epochs=1, batch_size=8, lr=1e-3),
    )
    return {"recipe": recipe.to_dict(), "seed": 0, "data": {"num_classes": 10, "in_chans": 3}}


@pytest.fixture
def saved(tmp_path) -> Path:
    """A checkpoint of a width-4 small-cnn at tmp_path/ckpt/model.safetensors."""
    return checkpoints.save(tmp_path / "ckpt" / "model.safetensors", tiny_model(), recipe_metadata())


def load(path: Path) -> dict[str, torch.Tensor]:
    return checkpoints.load_state(path, checkpoints.read_metadata(path))


def assert_one_line_error(caught, path: Path) -> None:
    message = str(caught.value)
    assert str(path) in message
    assert "--retrain" in message
    assert "\n" not in message


def test_save_writes_both_files(saved):
    assert saved.name == "model.safetensors"
    assert saved.exists()
    assert saved.with_suffix(".json").exists()


def test_round_trip_bit_identical(saved):
    original = tiny_model().state_dict()
    state = load(saved)
    assert sorted(state) == sorted(original)
    for key, tensor in original.items():
        assert torch.equal(state[key], tensor), key
        assert state[key].dtype == tensor.dtype


def test_round_trip_into_model(saved):
    model = tiny_model(seed=1)
    checkpoints.load_into(model, load(saved), str(saved))
    for key, tensor in tiny_model().state_dict().items():
        assert torch.equal(model.state_dict()[key], tensor)


def test_round_trip_through_api(saved):
    trained = api.load_checkpoint(saved)
    assert trained.recipe.model_params == {"width": 4}
    assert trained.recipe.settings.batch_size == 8
    assert not trained.model.training
    assert trained.path == saved
    images = torch.rand(2, 3, 28, 28)
    reference = tiny_model().eval()
    with torch.no_grad():
        assert torch.equal(trained.model(images), reference(images))


def test_metadata_records_format_and_hash(saved):
    metadata = json.loads(saved.with_suffix(".json").read_text())
    assert metadata["format"] == "biaskit-checkpoint"
    assert metadata["format_version"] == 1
    assert len(metadata["sha256"]) == 64
    assert metadata["seed"] == 0


@pytest.mark.parametrize("given", ["ckpt", "ckpt/model", "ckpt/model.json", "ckpt/model.safetensors"])
def test_paths_for_accepts_every_form(saved, tmp_path, given):
    weights, meta = checkpoints.paths_for(tmp_path / given)
    assert weights == saved
    assert meta == saved.with_suffix(".json")


def test_json_written_after_weights(tmp_path, monkeypatch):
    seen = []
    original = checkpoints.atomic_write_json

    def spy(path, value):
        seen.append((path.name, (path.parent / "model.safetensors").exists()))
        original(path, value)

    monkeypatch.setattr(checkpoints, "atomic_write_json", spy)
    checkpoints.save(tmp_path / "model.safetensors", tiny_model(), {})
    assert seen == [("model.json", True)]


def test_weights_without_json_is_interrupted(tmp_path, monkeypatch):
    def crash(path, value):
        raise KeyboardInterrupt

    monkeypatch.setattr(checkpoints, "atomic_write_json", crash)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.save(tmp_path / "model.safetensors", tiny_model(), {})
    monkeypatch.undo()
    with pytest.raises(BiaskitError) as caught:
        checkpoints.read_metadata(tmp_path / "model.safetensors")
    assert "interrupted" in str(caught.value)
    assert_one_line_error(caught, tmp_path / "model.json")


def test_missing_checkpoint(tmp_path):
    with pytest.raises(BiaskitError) as caught:
        checkpoints.read_metadata(tmp_path / "absent.safetensors")
    assert "not found" in str(caught.value)
    assert "interrupted" not in str(caught.value)
    assert_one_line_error(caught, tmp_path / "absent.json")


def test_missing_weights(saved):
    saved.unlink()
    with pytest.raises(BiaskitError) as caught:
        api.load_checkpoint(saved)
    assert "not found" in str(caught.value)
    assert_one_line_error(caught, saved)


@pytest.mark.parametrize("payload", [b"{not json", b"\xff\xfe\x00garbage", b""])
def test_corrupt_json(saved, payload):
    meta = saved.with_suffix(".json")
    meta.write_bytes(payload)
    with pytest.raises(BiaskitError) as caught:
        checkpoints.read_metadata(saved)
    assert "not valid JSON" in str(caught.value)
    assert_one_line_error(caught, meta)


@pytest.mark.parametrize("value", [{"name": "something else"}, [1, 2, 3], "text", {"format": "other"}])
def test_foreign_json(saved, value):
    meta = saved.with_suffix(".json")
    meta.write_text(json.dumps(value))
    with pytest.raises(BiaskitError) as caught:
        checkpoints.read_metadata(saved)
    assert "is not a biaskit checkpoint" in str(caught.value)
    assert_one_line_error(caught, meta)


@pytest.mark.parametrize("version", [2, 0, "1", None])
def test_wrong_format_version(saved, version):
    meta = saved.with_suffix(".json")
    metadata = json.loads(meta.read_text())
    metadata["format_version"] = version
    meta.write_text(json.dumps(metadata))
    with pytest.raises(BiaskitError) as caught:
        checkpoints.read_metadata(saved)
    assert f"format version {version!r}" in str(caught.value)
    assert_one_line_error(caught, meta)


def test_flipped_byte(saved):
    payload = bytearray(saved.read_bytes())
    payload[-5] ^= 0x01
    saved.write_bytes(bytes(payload))
    with pytest.raises(BiaskitError) as caught:
        load(saved)
    assert "sha256 differs" in str(caught.value)
    assert_one_line_error(caught, saved)


def test_truncated_weights(saved):
    saved.write_bytes(saved.read_bytes()[:100])
    with pytest.raises(BiaskitError, match="sha256 differs"):
        load(saved)


def test_stale_json_after_failed_rewrite(saved, monkeypatch):
    def crash(path, value):
        raise OSError("disk full")

    monkeypatch.setattr(checkpoints, "atomic_write_json", crash)
    with pytest.raises(OSError):
        checkpoints.save(saved, tiny_model(seed=5), recipe_metadata())
    monkeypatch.undo()
    with pytest.raises(BiaskitError, match="sha256 differs"):
        load(saved)


class TouchOnUnpickle:
    """Unpickling this object creates the file at `marker`; no code path may unpickle weights."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (pathlib.Path.touch, (pathlib.Path(self.marker),))


def write_with_matching_hash(weights: Path, payload: bytes) -> None:
    """Replace the weights with `payload` and update the JSON's sha256, so only the format check is left."""
    weights.write_bytes(payload)
    meta = weights.with_suffix(".json")
    metadata = json.loads(meta.read_text())
    metadata["sha256"] = checkpoints._sha256(weights)
    meta.write_text(json.dumps(metadata))


def test_pickle_payload_is_live(tmp_path):
    control = tmp_path / "control-marker"
    pickle.loads(pickle.dumps(TouchOnUnpickle(control)))
    assert control.exists()


def test_pickle_renamed_never_unpickled(saved, tmp_path):
    marker = tmp_path / "unpickled-marker"
    write_with_matching_hash(saved, pickle.dumps(TouchOnUnpickle(marker)))
    with pytest.raises(BiaskitError) as caught:
        api.load_checkpoint(saved)
    assert "cannot read checkpoint weights" in str(caught.value)
    assert_one_line_error(caught, saved)
    assert not marker.exists()


def test_torch_save_renamed_never_unpickled(saved, tmp_path):
    marker = tmp_path / "unpickled-marker"
    buffer = tmp_path / "torch-save.pt"
    torch.save({"conv1.weight": TouchOnUnpickle(marker)}, buffer)
    write_with_matching_hash(saved, buffer.read_bytes())
    with pytest.raises(BiaskitError) as caught:
        api.load_checkpoint(saved)
    assert_one_line_error(caught, saved)
    assert not marker.exists()


def test_wrong_shapes(saved):
    model = tiny_model(width=8)
    before = {key: tensor.clone() for key, tensor in model.state_dict().items()}
    with pytest.raises(BiaskitError) as caught:
        checkpoints.load_into(model, load(saved), str(saved))
    assert "wrong shape: conv1.bias, conv1.weight, conv2.bias ..." in str(caught.value)
    assert_one_line_error(caught, saved)
    for key, tensor in model.state_dict().items():
        assert torch.equal(tensor, before[key])


def test_missing_and_extra_keys(tmp_path):
    path = checkpoints.save(tmp_path / "linear.safetensors", torch.nn.Linear(2, 2), {})
    with pytest.raises(BiaskitError) as caught:
        checkpoints.load_into(tiny_model(), load(path), str(path))
    message = str(caught.value)
    assert "missing: conv1.bias, conv1.weight, conv2.bias ..." in message
    assert "unexpected: bias, weight" in message
    assert_one_line_error(caught, path)


def test_metadata_without_recipe(tmp_path):
    path = checkpoints.save(tmp_path / "bare.safetensors", tiny_model(), {"seed": 0})
    with pytest.raises(BiaskitError) as caught:
        api.load_checkpoint(path)
    assert "incomplete metadata" in str(caught.value)
    assert_one_line_error(caught, path)


def test_metadata_model_mismatch(tmp_path):
    path = checkpoints.save(tmp_path / "mismatch.safetensors", tiny_model(width=4), recipe_metadata(width=8))
    with pytest.raises(BiaskitError) as caught:
        api.load_checkpoint(path)
    assert "does not fit its model" in str(caught.value)
    assert_one_line_error(caught, path)


def hidden_files(folder: Path) -> list[str]:
    return sorted(path.name for path in folder.iterdir() if path.name.startswith("."))


def test_atomic_save_leaves_no_temporary(saved):
    assert hidden_files(saved.parent) == []
    assert sorted(path.name for path in saved.parent.iterdir()) == ["model.json", "model.safetensors"]


def test_atomic_bytes_failure_cleans_up(tmp_path, monkeypatch):
    target = tmp_path / "out" / "file.txt"
    target.parent.mkdir()
    target.write_text("old")

    def fail_replace(source, destination):
        raise OSError("replace failed")

    monkeypatch.setattr(os, "replace", fail_replace)
    with pytest.raises(OSError, match="replace failed"):
        checkpoints.atomic_write_bytes(target, b"new contents")
    monkeypatch.undo()
    assert hidden_files(target.parent) == []
    assert target.read_text() == "old"


def test_atomic_bytes_interrupt_cleans_up(tmp_path, monkeypatch):
    target = tmp_path / "file.txt"

    def interrupt(descriptor):
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "fsync", interrupt)
    with pytest.raises(KeyboardInterrupt):
        checkpoints.atomic_write_bytes(target, b"contents")
    monkeypatch.undo()
    assert list(tmp_path.iterdir()) == []


def test_save_weights_failure_cleans_up(tmp_path, monkeypatch):
    def half_write(state, filename, metadata=None):
        Path(filename).write_bytes(b"partial")
        raise OSError("no space left on device")

    monkeypatch.setattr(checkpoints, "save_file", half_write)
    with pytest.raises(OSError, match="no space left"):
        checkpoints.save(tmp_path / "ckpt" / "model.safetensors", tiny_model(), {})
    assert list((tmp_path / "ckpt").iterdir()) == []


def test_save_overwrites(saved):
    checkpoints.save(saved, tiny_model(seed=9), recipe_metadata())
    state = load(saved)
    assert torch.equal(state["conv1.weight"], tiny_model(seed=9).state_dict()["conv1.weight"])
    assert hidden_files(saved.parent) == []
