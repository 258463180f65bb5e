"""Test set-up: liblsl on loopback before any LSL call, Qt offscreen, and small real artefacts.

Every LSL stream a test makes gets a unique name/source id (as mne-lsl's own tests do), so tests
never see each other's streams.
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

from bci_stream.lsl.config import fast_resolve_in_this_process, use_loopback  # noqa: E402

use_loopback()  # a session of this test run's own; its config folder is removed at exit
fast_resolve_in_this_process()  # this process decodes (as `bci-stream live` does); subprocesses keep the session's

import numpy as np  # noqa: E402
import pytest  # noqa: E402

from bci_stream.sources.phantom import PhantomConfig  # noqa: E402

TINY_PHANTOM = dict(n_channels=16, n_classes=5, images_per_class=10, n_subjects=2, seed=3, evoked_uv=30.0)


def load_tool(name: str):
    """The script ``tools/<name>.py`` imported as a module (tools are scripts, not a package)."""
    import importlib.util
    import sys

    spec = importlib.util.spec_from_file_location(name, Path(__file__).resolve().parents[1] / "tools" / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    spec.loader.exec_module(module)
    return module


def unique_name(prefix: str = "test") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def pull_samples(source, n: int, tries: int = 50) -> np.ndarray:
    """Pull from an :class:`~bci_stream.lsl.inlet.LSLSource` until ``n`` samples came (or ``tries`` pulls)."""
    got = np.zeros((0, len(source.ch_names)), np.float32)
    for _ in range(tries):
        chunk, _ = source.pull(0.1)
        got = np.vstack([got, chunk])
        if len(got) >= n:
            break
    return got


@pytest.fixture
def stream_name() -> str:
    return unique_name("eeg")


@pytest.fixture(scope="session")
def tiny_phantom_config() -> PhantomConfig:
    return PhantomConfig(**TINY_PHANTOM)


@pytest.fixture(scope="session")
def tiny_model(tmp_path_factory, tiny_phantom_config) -> Path:
    """A student trained for a few epochs on a tiny phantom and exported with its card: the real
    train → export path, on 16 channels and 5 classes."""
    from bci_stream.sources.phantom import Phantom
    from offline_training.experiments.pipeline import train_and_test
    from offline_training.training.export import export_onnx
    from offline_training.training.fit import TrainConfig

    trials = Phantom(tiny_phantom_config).trials()
    run = tmp_path_factory.mktemp("tiny-run")
    train_and_test(trials, "by-image", TrainConfig(student="seed", epochs=4, seed=0), run, trials.soft_labels, "phantom", progress=False)
    path, _ = export_onnx(run, run / "model.onnx")
    return path


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


@pytest.fixture(scope="session")
def semantic_phantom(tiny_phantom_config):
    """The tiny phantom with a semantic space (16-d image embeddings driving the evoked response)."""
    from dataclasses import replace

    from bci_stream.sources.phantom import Phantom

    return Phantom(replace(tiny_phantom_config, semantic=True, embed_dim=16))


def export_embedding_student(card, path: Path, seed: int = 0) -> Path:
    """An untrained linear embedding student (features -> D) exported with ``card`` through the real
    export path (``write_onnx(WithL2Norm(...))``, parity-checked)."""
    import torch

    from offline_training.training.export import WithL2Norm, write_onnx

    torch.manual_seed(seed)
    n_ch, n_rows, n_cols = card.feature_shape()
    net = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(n_ch * n_rows * n_cols, card.n_outputs))
    out, _ = write_onnx(WithL2Norm(net), card, path)
    return out


@pytest.fixture(scope="session")
def tiny_embedding_model(tmp_path_factory, semantic_phantom) -> Path:
    """A tiny embedding model for the tiny phantom's stream (16 channels at 1 kHz), in the semantic
    phantom's space, exported with its card."""
    from bci_stream.contract.model_card import ModelCard

    card = ModelCard(sfreq=1000.0, ch_names=list(semantic_phantom.ch_names), class_ids=[], class_names=[],
                     output_kind="embedding", training_data="untrained (tests)",
                     embedding={"dim": int(semantic_phantom.embeddings.shape[-1]),
                                "space": semantic_phantom.embedding_space, "normalisation": "l2", "logit_scale": 20.0})
    return export_embedding_student(card, tmp_path_factory.mktemp("embedding") / "embedding.onnx")


@pytest.fixture(scope="session")
def phantom_gallery_file(tmp_path_factory, semantic_phantom) -> Path:
    """The semantic phantom's gallery index, written once."""
    from bci_stream.retrieval.index import phantom_gallery, save_gallery

    return save_gallery(phantom_gallery(semantic_phantom, thumb=32), tmp_path_factory.mktemp("gallery") / "idx.safetensors")
