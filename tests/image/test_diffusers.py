"""The diffusers backend through its real loading path, on a tiny random pipeline saved in tmp."""

from __future__ import annotations

import numpy as np
import pytest
from structlog.testing import capture_logs

from elens import PolicyError
from elens.errors import ElensError
from elens.plugins import default_registry
from elens_diffusers.plugin import DiffusersBackend

OPTIONS = {"steps": 2, "width": 64, "height": 64, "device": "cpu"}


def _pixels(image) -> np.ndarray:
    return np.asarray(image, dtype=np.int16)


@pytest.fixture(scope="module")
def backend(tiny_sd_path, default_policy):
    # Built the way the host builds it: entry point -> registry -> factory.
    entry = {"plugin": "diffusers", "options": {"model": str(tiny_sd_path), **OPTIONS}}
    component, info = default_registry().build("backend", ("pipeline", "backend"), entry, default_policy)
    assert info.id == "diffusers" and info.version == "0.1.0"
    return component


def test_loads_a_saved_pipeline_and_generates(backend, tiny_sd_path):
    images = backend.generate(["a cat", "a dog"], [1, 2], negative_prompt="blurry")
    assert [img.size for img in images] == [(64, 64), (64, 64)] and {img.mode for img in images} == {"RGB"}
    assert backend.model_id == str(tiny_sd_path)
    assert backend.generate([], []) == []


def test_each_image_is_reproducible_alone_from_its_seed(backend):
    batch = backend.generate(["a cat", "a dog", "a cat"], [5, 6, 7], negative_prompt="blurry")
    for i, (prompt, seed) in enumerate([("a cat", 5), ("a dog", 6), ("a cat", 7)]):
        alone = backend.generate([prompt], [seed], negative_prompt="blurry")[0]
        # Batched and single matrix products may round differently in the last bit.
        assert np.abs(_pixels(batch[i]) - _pixels(alone)).max() <= 1
    assert np.abs(_pixels(batch[0]) - _pixels(batch[2])).max() > 8  # same prompt, other seed


def test_negative_prompt_is_used(backend):
    plain = backend.generate(["a cat"], [3])[0]
    negative = backend.generate(["a cat"], [3], negative_prompt="blurry, low quality")[0]
    assert np.abs(_pixels(plain) - _pixels(negative)).max() > 0


def test_call_options_override_the_policy(backend):
    image = backend.generate(["a cat"], [1], options={"width": 32, "height": 48, "steps": 1, "model": "ignored"})[0]
    assert image.size == (32, 48)
    assert backend.generate(["a cat"], [1], options={"width": None})[0].size == (64, 64)


def test_pipeline_loads_once_per_process(backend, tiny_sd_path, default_policy):
    again = DiffusersBackend({"model": str(tiny_sd_path), "device": "cpu"}, default_policy)
    assert again.pipe is backend.pipe


def test_relative_model_folder_is_found_beside_the_policy(tiny_sd_path, elens_policy, tmp_path):
    (tmp_path / "models").mkdir()
    (tmp_path / "models" / "sd").symlink_to(tiny_sd_path, target_is_directory=True)
    policy = elens_policy({"pipeline": {"backend": {"plugin": "diffusers", "options": {"model": "models/sd"}}}})
    backend = DiffusersBackend({"model": "models/sd", **OPTIONS}, policy)
    assert backend.model_id == str(tmp_path / "models" / "sd")


def test_missing_model_says_how_to_point_at_a_local_copy(default_policy, tmp_path):
    for model in (str(tmp_path / "nowhere"), "someone/not-downloaded-model"):
        with pytest.raises(ElensError) as info:
            DiffusersBackend({"model": model, "device": "cpu"}, default_policy)
        message = str(info.value)
        assert "\n" not in message and "could not be loaded offline" in message
        assert "options.model: /path/to/model" in message and "elens generate --model PATH" in message


def test_a_folder_that_is_not_a_pipeline(default_policy, tmp_path):
    with pytest.raises(ElensError, match="could not be loaded.*model_index.json"):
        DiffusersBackend({"model": str(tmp_path), "device": "cpu"}, default_policy)


def test_options_are_validated_with_a_location(elens_policy):
    policy = elens_policy({"pipeline": {"backend": {"plugin": "diffusers", "options": {"dtype": "float64"}}}})
    with pytest.raises(PolicyError, match=r"backend.*dtype"):
        default_registry().check(policy)


def test_an_absent_accelerator_is_an_options_error(elens_policy):
    import torch

    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA")
    entry = {"plugin": "diffusers", "options": {"model": "tiny-random", "device": "cuda"}}
    policy = elens_policy({"pipeline": {"backend": entry}})
    with pytest.raises(PolicyError, match=r"backend.*device.*no CUDA device"):
        default_registry().build("backend", ("pipeline", "backend"), entry, policy)


def test_tiny_random_is_labelled(default_policy):
    with capture_logs() as logs:
        backend = DiffusersBackend({"model": "tiny-random", "device": "cpu"}, default_policy)
    assert backend.model_id == "tiny-random (noise, not a real model)"
    assert [e["event"] for e in logs if e["log_level"] == "warning"] == ["tiny_random_backend"]
    images = backend.generate(["x", "y"], [0, 1])
    assert [img.size for img in images] == [(64, 64), (64, 64)]
