"""Shared fixtures: small simulators, true-image sets and a tiny pretrained emulator.

Everything here is sized for a 2-core CPU: the whole suite must run in well under two minutes.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from magan_gui.core.data import make_closure_set
from magan_gui.core.pretraining import PretrainConfig, Pretrainer
from magan_gui.core.simulators import load_simulator

# One thread: the suite runs beside other work on small machines, where two threads contend badly;
# it also makes the tiny training runs reproducible.
torch.set_num_threads(1)

REPO_ROOT = Path(__file__).resolve().parents[1]
BLOB_PLUGIN = REPO_ROOT / "magan_gui" / "examples" / "blob_plugin.py"

# The paper's closure-test population for the lines case study (Table I).
LINES_MEAN = (1.5, 10.0, 0.5, 9.0)
LINES_STD = (0.3, 0.5, 0.1, 0.5)


def tiny_pretrain_config(**overrides) -> PretrainConfig:
    """A pretraining configuration small enough for a unit test."""
    values = dict(iterations=40, batch_size=16, heldout=32, eval_every=20, grid_rows=3,
                  snapshot_seconds=1e9, checkpoint_seconds=1e9, seed=0)
    values.update(overrides)
    return PretrainConfig(**values)


@pytest.fixture(autouse=True)
def brief_image_check_classifier(monkeypatch):
    """Every result runs a classifier two-sample test; in tests it trains briefly (sizing, like the tiny
    networks: tests/core/test_image_checks.py checks it still tells misspecified images apart)."""
    from magan_gui.core import image_checks

    monkeypatch.setattr(image_checks, "CLASSIFIER_STEPS", 60)


@pytest.fixture(scope="session")
def lines():
    """The built-in lines simulator (validated)."""
    return load_simulator("lines")


@pytest.fixture(scope="session")
def circles():
    """The built-in circles simulator (validated)."""
    return load_simulator("circles")


@pytest.fixture(scope="session")
def lines_true(lines):
    """256 closure-test images of the paper's lines population, with their true parameters."""
    return make_closure_set(lines, LINES_MEAN, LINES_STD, 256, seed=1)


@pytest.fixture(scope="session")
def tiny_emulator_path(lines, tmp_path_factory):
    """A lines emulator file from 150 pixel-mode iterations (seconds on a CPU)."""
    path = tmp_path_factory.mktemp("emulator") / "lines_emulator.pt"
    trainer = Pretrainer(lines, tiny_pretrain_config(iterations=150, mode="pixel", eval_every=50), "cpu")
    trainer.run(checkpoint_path=path)
    return path


@pytest.fixture()
def tiny_emulator(tiny_emulator_path):
    """A fresh TrainedEmulator loaded from the session's tiny emulator file."""
    from magan_gui.core.emulator import TrainedEmulator

    return TrainedEmulator.load(tiny_emulator_path)
