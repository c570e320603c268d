"""Shared fixtures: the default policy, loaded once; real images from scikit-image."""

from __future__ import annotations

import os

import pytest

# Two cores on CI: keep every model on one thread each, and nothing may reach a hub.
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


@pytest.fixture(scope="session")
def default_policy():
    from elens.policy import load_policy

    return load_policy("builtin:default")


@pytest.fixture(scope="session")
def astronaut():
    from PIL import Image
    from skimage import data

    return Image.fromarray(data.astronaut())


@pytest.fixture(scope="session", autouse=True)
def _one_torch_thread():
    try:
        import torch
    except ImportError:
        return
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def tiny_sd_path(tmp_path_factory):
    """A tiny random Stable Diffusion pipeline saved with save_pretrained (built once)."""
    from elens_diffusers.tiny import build_tiny_pipeline

    return build_tiny_pipeline(tmp_path_factory.mktemp("tiny-sd"))


@pytest.fixture(scope="session", autouse=True)
def _private_cache(tmp_path_factory):
    # The tiny-random backend caches its pipeline; keep the tests' copy out of the user's cache.
    os.environ["ELENS_CACHE"] = str(tmp_path_factory.mktemp("elens-cache"))
