"""Real write failures, not mocked ones: a file-size limit set by the kernel (EFBIG, works for any user)
and, where this test may mount one, a full tmpfs (ENOSPC).  Each ends in one line naming the file, and
the previous file is intact with no temporary left beside it."""

from __future__ import annotations

import os
import resource
import shutil
import signal
import subprocess
import sys
from contextlib import contextmanager

import numpy as np
import pytest

from magan_gui.core.errors import OutputError
from magan_gui.core.project import Project
from magan_gui.core.results import write_result
from tests.conftest import REPO_ROOT

LIMIT = 64 * 1024  # bytes: below an emulator or checkpoint (megabytes), above nothing we keep


@contextmanager
def file_size_limit(limit: int):
    """Files this process writes may not grow past ``limit`` bytes (writes past it fail with EFBIG)."""
    soft, hard = resource.getrlimit(resource.RLIMIT_FSIZE)
    previous = signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # the signal would kill the process instead
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, hard))
    try:
        yield
    finally:
        resource.setrlimit(resource.RLIMIT_FSIZE, (soft, hard))
        signal.signal(signal.SIGXFSZ, previous)


def _limited(limit: int) -> None:  # in the child, before it runs magan
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (limit, resource.getrlimit(resource.RLIMIT_FSIZE)[1]))


def test_an_emulator_that_cannot_be_written_keeps_the_previous_one(tiny_emulator_path, tmp_path):
    target = tmp_path / "emulator.pt"
    shutil.copy(tiny_emulator_path, target)
    before = target.read_bytes()
    proc = subprocess.run([sys.executable, "-m", "magan_gui.cli", "pretrain", "--simulator", "lines", "-o",
                           str(target), "--iterations", "5", "--batch-size", "8", "--device", "cpu", "--force",
                           "--quiet"], capture_output=True, text=True, cwd=REPO_ROOT, timeout=300,
                          preexec_fn=lambda: _limited(LIMIT))
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in proc.stderr
    assert f"{target}: could not be written (File too large)" in lines[0]
    assert target.read_bytes() == before and sorted(p.name for p in tmp_path.iterdir()) == ["emulator.pt"]


def test_a_result_and_a_project_that_cannot_be_written_keep_the_previous_ones(lines_true, tmp_path):
    project = tmp_path / "run.magan"
    Project("lines", true=lines_true).save(project)   # 256 images: past the limit when written again
    before = project.read_bytes()
    result = tmp_path / "result.json"
    doc = {"parameters": [{"name": "m"}], "note": "previous"}
    write_result(result, doc, np.zeros((3, 1)))
    kept = result.read_bytes(), (tmp_path / "result.samples.csv").read_bytes()
    big = np.random.default_rng(0).normal(size=(20000, 1))  # a CSV past the limit
    with file_size_limit(LIMIT):
        with pytest.raises(OutputError, match="run.magan: could not be written .File too large"):
            Project("lines", true=lines_true).save(project)
        with pytest.raises(OutputError, match="could not be written .File too large"):
            write_result(result, dict(doc, note="new"), big, overwrite=True)
    assert project.read_bytes() == before
    assert (result.read_bytes(), (tmp_path / "result.samples.csv").read_bytes()) == kept
    assert sorted(p.name for p in tmp_path.iterdir()) == ["result.json", "result.samples.csv", "run.magan"]


@pytest.fixture()
def full_tmpfs(tmp_path):
    """A 256 KiB tmpfs, mounted where the test may (root on Linux); skipped elsewhere."""
    folder = tmp_path / "small"
    folder.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs", str(folder)],
                                           capture_output=True).returncode != 0:
        pytest.skip("cannot mount a small tmpfs here (needs root)")
    try:
        yield folder
    finally:
        subprocess.run(["umount", str(folder)], capture_output=True)


def test_a_full_disk_keeps_the_previous_project(full_tmpfs, lines_true):
    project = full_tmpfs / "run.magan"
    small = Project("lines")
    small.save(project)
    before = project.read_bytes()
    with pytest.raises(OutputError, match="run.magan: could not be written .No space left on device"):
        Project("lines", true=lines_true).save(project)   # 256 images of 32x32 floats: 1 MiB, on 256 KiB
    assert project.read_bytes() == before and [p.name for p in full_tmpfs.iterdir()] == ["run.magan"]
