"""Banks on Dask: the same bank as the local processes, a worker killed mid-chunk costs nothing, failing
chunks are retried then reported, and every bad cluster description is one line that touches no file."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import h5py
import numpy as np
import psutil
import pytest

from magan_gui.cli import main
from magan_gui.core.bank import BankError, build_bank, load_bank
from magan_gui.core.cluster import ClusterError, parse_spec, read_jobqueue_file
from magan_gui.core.simulators import load_simulator
from tests.conftest import REPO_ROOT

pytest.importorskip("distributed")
SLOW_PLUGIN = REPO_ROOT / "scripts" / "slow_plugin.py"


def _images(path) -> np.ndarray:
    with h5py.File(path, "r") as fh:
        return fh["images"][()]


def _worker_processes() -> list[psutil.Process]:
    """The LocalCluster's worker processes: spawned children of this process."""
    return [p for p in psutil.Process().children(recursive=True)
            if "spawn_main" in " ".join(p.cmdline()) and "resource_tracker" not in " ".join(p.cmdline())]


def test_a_local_cluster_makes_the_same_bank_as_the_local_processes(tmp_path, monkeypatch):
    monkeypatch.setenv("MAGAN_SLOW_SECONDS", "0")   # the workers inherit it
    simulator = load_simulator(f"{SLOW_PLUGIN}:SlowBlob")
    build_bank(simulator, tmp_path / "pool.h5", 80, seed=4, chunk_size=16, workers=2)
    seen = []
    summary = build_bank(simulator, tmp_path / "dask.h5", 80, seed=4, chunk_size=16, cluster="local:2",
                         observer=seen.append, snapshot_seconds=0.0)
    assert summary.made_now == 80 and not summary.stopped
    assert summary.executor.description == "local:2" and summary.executor.retried == 0
    assert seen[-1].final and seen[-1].executor.workers == 2
    np.testing.assert_array_equal(_images(tmp_path / "dask.h5"), _images(tmp_path / "pool.h5"))


def test_a_worker_killed_mid_chunk_has_its_chunk_rerun(tmp_path, monkeypatch):
    monkeypatch.setenv("MAGAN_SLOW_SECONDS", "0.05")  # 0.4 s a chunk: both workers are always mid-chunk
    simulator = load_simulator(f"{SLOW_PLUGIN}:SlowBlob")
    killed = []

    def kill_a_worker(snap):
        if snap.iteration >= 8 and not killed:
            victim = _worker_processes()[0]
            victim.send_signal(signal.SIGKILL)
            killed.append(victim.pid)

    summary = build_bank(simulator, tmp_path / "bank.h5", 64, chunk_size=8, cluster="local:2", observer=kill_a_worker,
                         snapshot_seconds=0.0)
    assert killed and summary.made_now == 64 and not summary.stopped
    assert summary.executor.retried >= 1            # the killed worker's chunk ran again
    images = load_bank(tmp_path / "bank.h5", simulator).images
    assert len(np.unique(images.reshape(64, -1), axis=0)) == 64
    monkeypatch.setenv("MAGAN_SLOW_SECONDS", "0")
    build_bank(simulator, tmp_path / "here.h5", 64, chunk_size=8)
    np.testing.assert_array_equal(images, _images(tmp_path / "here.h5"))


def test_a_failing_chunk_is_retried_then_reported_and_the_others_are_kept(tmp_path):
    plugin = tmp_path / "flaky.py"
    plugin.write_text(textwrap.dedent("""
        import numpy as np
        from magan_gui import Parameter

        class Flaky:
            name = "flaky"
            image_shape = (8, 8)
            parameters = [Parameter("a", 0.0, 1.0)]

            def simulate(self, params):
                p = np.asarray(params, dtype=np.float32)
                if len(p) == 4 and p[0, 0] > 0.9:
                    raise RuntimeError("detector geometry missing")
                return np.ones((len(p), 8, 8), np.float32) * p[:, :1, None]
    """))
    simulator = load_simulator(f"{plugin}:Flaky")
    path = tmp_path / "bank.h5"
    with pytest.raises(BankError, match=r"1 chunk\(s\) .* failed, chunk \d+ failed 3 times: .*detector geometry "
                                        r"missing.*--resume") as caught:
        build_bank(simulator, path, 16, seed=_seed_with_one_bad_chunk(simulator), chunk_size=4, cluster="local:2")
    with h5py.File(path, "r") as fh:
        assert int(fh["chunk_done"][()].sum()) == 3   # the other chunks are in the bank
    assert "12 images made are kept" in str(caught.value)


def _seed_with_one_bad_chunk(simulator) -> int:
    from magan_gui.core.bank import design

    for seed in range(200):
        firsts = design(simulator, 16, seed)[::4, 0]
        if (firsts > 0.9).sum() == 1:
            return seed
    raise AssertionError("no seed found")


def test_bad_cluster_descriptions_are_one_line_and_touch_no_file(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr("magan_gui.core.cluster.CONNECT_SECONDS", 2.0)
    out = tmp_path / "bank.h5"
    out.write_bytes(b"keep me")
    base = ["bank", "--simulator", "lines", "-n", "8", "-o", str(out), "--force", "--quiet"]
    for cluster, expected in [("tcp://127.0.0.1:9", "no Dask scheduler answered at tcp://127.0.0.1:9 within 2 s"),
                              ("local:zero", "local:K needs a number of workers"),
                              (str(tmp_path / "none.yaml"), "does not exist"),
                              ("somewhere", "use local:K, a scheduler address")]:
        assert main(base + ["--cluster", cluster]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and expected in err[0], err
        assert out.read_bytes() == b"keep me"
    assert main(base + ["--cluster", "local:2", "--workers", "2"]) == 2
    assert "not both" in capsys.readouterr().err


def test_a_jobqueue_file_is_checked_key_by_key_and_makes_the_batch_script(tmp_path):
    bad = tmp_path / "slurm.yaml"
    bad.write_text("kind: slurm\ncores: 1\nmemory: 2GB\nwallclock: '01:00:00'\n")
    with pytest.raises(ClusterError, match="unknown key 'wallclock' for a slurm cluster .*did you mean walltime"):
        read_jobqueue_file(bad)
    (tmp_path / "kind.toml").write_text('kind = "kubernetes"\n')
    with pytest.raises(ClusterError, match="kind must be one of slurm, htcondor"):
        read_jobqueue_file(tmp_path / "kind.toml")
    good = tmp_path / "slurm.toml"
    good.write_text('kind = "slurm"\ncores = 2\nmemory = "4GB"\nwalltime = "02:00:00"\nqueue = "short"\n'
                    'adapt_maximum_jobs = 20\n')
    cls, settings, scaling = read_jobqueue_file(good)
    assert cls.__name__ == "SLURMCluster" and scaling == {"adapt_maximum_jobs": 20}
    cluster = cls(**settings)
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    assert "#SBATCH -t 02:00:00" in script and "#SBATCH -p short" in script


def test_the_shipped_jobqueue_examples_are_valid(tmp_path):
    for name in ("slurm.yaml", "htcondor.yaml"):
        kind, path = parse_spec(str(REPO_ROOT / "docs" / "cluster" / name))
        cls, settings, scaling = read_jobqueue_file(path)
        assert kind == "jobqueue" and settings["cores"] >= 1 and scaling


def test_without_dask_the_cluster_option_names_the_extra(tmp_path, monkeypatch, capsys):
    monkeypatch.setitem(sys.modules, "distributed", None)   # import distributed -> ImportError
    assert main(["bank", "--simulator", "lines", "-n", "8", "-o", str(tmp_path / "b.h5"), "--cluster", "local:2"]) == 2
    assert "pip install 'magan-gui[cluster]'" in capsys.readouterr().err
    assert not (tmp_path / "b.h5").exists()


def test_a_bank_without_a_cluster_does_not_import_dask(tmp_path):
    code = ("import sys; from magan_gui.core.bank import build_bank; from magan_gui.core.simulators import "
            f"load_simulator; build_bank(load_simulator('lines'), {str(tmp_path / 'b.h5')!r}, 8, workers=1); "
            "print('distributed' in sys.modules, 'dask' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO_ROOT, capture_output=True, text=True, timeout=120,
                         env=dict(os.environ))
    assert out.returncode == 0, out.stderr
    assert out.stdout.split() == ["False", "False"]
