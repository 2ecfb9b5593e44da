"""SIGKILL at random moments while a process rewrites a checkpoint and a project over and over: every
time, the file on disk is one of the complete versions, never a torn one."""

from __future__ import annotations

import random
import signal
import subprocess
import sys
import time

from magan_gui.core.checkpoints import load_checkpoint
from magan_gui.core.project import Project
from tests.conftest import REPO_ROOT

WRITER = """
import sys
import numpy as np
import torch
from magan_gui.core.checkpoints import save_checkpoint
from magan_gui.core.project import Project

folder = sys.argv[1]
version = 0
while True:
    version += 1
    print(f"writing {version}", flush=True)   # the test kills a few milliseconds after such a line
    # a few megabytes each, so a kill lands inside a write often
    save_checkpoint(f"{folder}/run.pt", {"kind": "calibration", "version": version,
                                         "weights": torch.full((600_000,), float(version))})
    Project("lines", samples=np.full((150_000, 4), version, np.float32)).save(f"{folder}/run.magan")
"""


def _version_on_disk(folder) -> tuple[int, int]:
    payload = load_checkpoint(folder / "run.pt", "calibration")   # raises on a torn file
    weights = payload["weights"]
    assert weights.shape == (600_000,) and bool((weights == payload["version"]).all())
    samples = Project.load(folder / "run.magan").samples
    assert samples.shape == (150_000, 4) and len(set(samples.ravel().tolist())) == 1
    return int(payload["version"]), int(samples[0, 0])


def test_files_killed_mid_write_are_the_old_or_the_new_version(tmp_path):
    rng = random.Random(0)
    checked = torn_writes_left = 0
    # kill until enough kills landed inside a write (how many do depends on the disk's speed), at most 32 times
    for round_ in range(32):
        if checked >= 4 and torn_writes_left >= 2:
            break
        folder = tmp_path / str(round_)
        folder.mkdir()
        proc = subprocess.Popen([sys.executable, "-c", WRITER, str(folder)], cwd=REPO_ROOT,
                                stdout=subprocess.PIPE, text=True)
        target = rng.choice([2, 3])
        for line in proc.stdout:
            if line.strip() == f"writing {target}":
                break
        else:
            raise AssertionError(f"the writer ended by itself (exit {proc.wait()})")
        time.sleep(rng.uniform(0.0, 0.03))
        proc.send_signal(signal.SIGKILL)
        proc.wait(timeout=30)
        # a kill inside a write leaves its temporary file, never a torn real one
        torn_writes_left += any(p.name.endswith(".tmp") for p in folder.iterdir())
        if not (folder / "run.magan").exists():
            continue   # killed before the first project was written
        checkpoint, project = _version_on_disk(folder)
        assert project in (checkpoint, checkpoint - 1), (checkpoint, project)  # the project trails by at most one
        checked += 1
    assert checked >= 4, "too few runs got as far as writing both files"
    assert torn_writes_left >= 2, "too few kills landed inside a write to test anything"
