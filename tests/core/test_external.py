"""External programs as simulators: the TOML file, running the command, reading its images, and every
way it can go wrong told in one line."""

from __future__ import annotations

import contextlib
import io
import os
import shlex
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from magan_gui.cli import main
from magan_gui.core.bank import load_bank, simulate_chunk
from magan_gui.core.external import KNOWN_KEYS, ExternalProgram
from magan_gui.core.simulators import SimulatorError, load_simulator
from tests.conftest import REPO_ROOT

EXAMPLE = REPO_ROOT / "magan_gui" / "examples" / "external" / "beamspot.toml"

# A tiny program's TOML: one parameter, 8x12 images; {command} and {extra} are filled in per test.
TOML = """\
name = "fake"
image_shape = [8, 12]
stochastic = false
command = {command!r}
{extra}
[[parameters]]
name = "a"
low = 0.0
high = 1.0
"""

# A program that writes each image filled with its parameter (or what MODE asks for instead).
FAKE = """\
import sys
import numpy as np
params_file, images_file = sys.argv[1], sys.argv[2]
p = np.load(params_file)
images = np.ones((len(p), 8, 12), dtype=np.float32) * p[:, :1, None].astype(np.float32)
"""


def _program(tmp_path: Path, body: str, command: str = "{python} fake.py {params_file} {images_file}",
             extra: str = "", name: str = "fake.toml") -> Path:
    """Write fake.py (body) and its TOML into tmp_path; return the TOML's path."""
    (tmp_path / "fake.py").write_text(textwrap.dedent(body))
    path = tmp_path / name
    path.write_text(TOML.format(command=command, extra=extra))
    return path


def _toml(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "sim.toml"
    path.write_text(textwrap.dedent(text))
    return path


def _one_line(exc: pytest.ExceptionInfo) -> str:
    message = str(exc.value)
    assert "\n" not in message, message
    return message


# -- the shipped example ------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def beamspot():
    return load_simulator(str(EXAMPLE))


def test_the_example_loads_and_draws_distinct_images(beamspot):
    assert beamspot.name == "beamspot" and beamspot.image_shape == (24, 40)
    assert [p.name for p in beamspot.parameters] == ["x", "y", "sigma", "intensity"]
    assert beamspot.stochastic and not beamspot.shares_noise
    mean, std = beamspot.example_population
    assert len(mean) == len(std) == 4
    for p, m, s in zip(beamspot.parameters, mean, std):
        assert p.low + 3 * s <= m <= p.high - 3 * s and 0.05 <= s / (p.high - p.low) <= 0.1
    params = beamspot.space.sample_uniform(6, generator=torch.Generator().manual_seed(0))
    images = beamspot.simulate(params, check=True)
    assert images.shape == (6, 24, 40) and images.dtype == torch.float32
    assert float(images.min()) >= 0.0 and float(images.max()) <= 1.0
    flat = images.reshape(6, -1)
    assert all(not torch.equal(flat[i], flat[j]) for i in range(6) for j in range(i))
    # the spot sits where x and y say: the brightest column and row follow the parameters
    spot = torch.tensor([[10.0, 8.0, 2.0, 150.0], [30.0, 16.0, 2.0, 150.0]])
    two = beamspot.simulate(spot)
    cols = two.sum(dim=1).argmax(dim=1)
    rows = two.sum(dim=2).argmax(dim=1)
    assert abs(int(cols[0]) - 10) <= 1 and abs(int(cols[1]) - 30) <= 1
    assert abs(int(rows[0]) - (24 - 8)) <= 1 and abs(int(rows[1]) - (24 - 16)) <= 1


def test_simulate_chunk_is_reproducible_by_seed(beamspot):
    params = np.tile(np.asarray(beamspot.example_population[0], dtype=np.float32), (8, 1))
    state = np.random.get_state()[1].copy()
    first, noise = simulate_chunk(beamspot, params, seed=11)
    again, _ = simulate_chunk(beamspot, params, seed=11)
    other, _ = simulate_chunk(beamspot, params, seed=12)
    assert noise is None
    assert np.array_equal(first, again)
    assert not np.array_equal(first, other)
    assert np.array_equal(np.random.get_state()[1], state)  # the caller's generator is left as it was


def test_csv_parameters_and_a_folder_with_spaces(tmp_path):
    folder = tmp_path / "my sims"
    folder.mkdir()
    script = EXAMPLE.parent / "beamspot.py"
    text = EXAMPLE.read_text().replace('params_format = "npy"', 'params_format = "csv"')
    text = text.replace("{python} beamspot.py", f"{{python}} '{script}'")
    (folder / "beam spot.toml").write_text(text)
    simulator = load_simulator(str(folder / "beam spot.toml"))
    assert simulator.plugin.params_format == "csv"
    params = torch.tensor([[12.0, 9.0, 2.0, 120.0], [28.0, 15.0, 3.0, 60.0]])
    images = simulator.simulate(params, check=True)
    assert images.shape == (2, 24, 40) and not torch.equal(images[0], images[1])


def test_h5_images_and_every_placeholder(tmp_path):
    body = """\
        import sys, os, csv
        import h5py
        import numpy as np
        params_file, images_file, seed, n, workdir = sys.argv[1:6]
        assert os.path.dirname(images_file) == workdir and os.path.dirname(params_file) == workdir
        assert os.path.basename(os.getcwd()) == "here"   # run in the TOML file's folder
        rows = list(csv.reader(open(params_file)))
        assert rows[0] == ["a"] and len(rows) - 1 == int(n), rows
        p = np.array([[float(v) for v in row] for row in rows[1:]])
        int(seed)
        with h5py.File(images_file, "w") as fh:
            fh["images"] = np.ones((int(n), 8, 12)) * p[:, :1, None]
        """
    folder = tmp_path / "here"
    folder.mkdir()
    path = _program(folder, body,
                    command="{python} fake.py {params_file} {images_file} {seed} {n} {workdir}",
                    extra='params_format = "csv"\nimages_format = "h5"')
    simulator = load_simulator(str(path))
    images = simulator.simulate(torch.tensor([[0.25], [0.75], [0.5]]), check=True)
    assert images.shape == (3, 8, 12)
    assert torch.allclose(images[:, 0, 0], torch.tensor([0.25, 0.75, 0.5]))


def test_the_temporary_folder_is_removed(tmp_path):
    body = FAKE + "open(sys.argv[3], 'w').write(sys.argv[4])\nnp.save(images_file, images)\n"
    path = _program(tmp_path, body, command="{python} fake.py {params_file} {images_file} where.txt {workdir}")
    load_simulator(str(path))
    workdir = (tmp_path / "where.txt").read_text()
    assert workdir and not os.path.exists(workdir)


# -- the TOML file ------------------------------------------------------------------------------------
def test_missing_file(tmp_path):
    with pytest.raises(SimulatorError, match="does not exist"):
        load_simulator(str(tmp_path / "nothing.toml"))


def test_spec_is_case_insensitive(tmp_path):
    path = _program(tmp_path, FAKE + "np.save(images_file, images)\n", name="FAKE.TOML")
    assert load_simulator(str(path)).name == "fake"


@pytest.mark.parametrize(("text", "fact"), [
    ('name = "x"\nimage_shape = [8, 8\n', "not valid TOML"),
    ('name = "x"\nstochastic = false\ncommand = "{python} a.py {params_file} {images_file}"\n'
     '[[parameters]]\nname = "a"\nlow = 0.0\nhigh = 1.0\n', "missing required key 'image_shape'"),
    (TOML.format(command="{python} a.py {params_file} {images_file}", extra="colour = 3"), "unknown key 'colour'"),
    (TOML.format(command="{python} a.py {params_file} {images_file}", extra="").replace("[8, 12]", '"8x12"'),
     "'image_shape' must be [height, width]"),
    (TOML.format(command="{python} a.py {params_file} {images_file}", extra="").replace("false", '"no"'),
     "'stochastic' must be true or false"),
    (TOML.format(command="{python} a.py {params_file} {images_file}", extra="timeout = -1"),
     "'timeout' must be a positive number"),
    (TOML.format(command="{python} a.py {params_file} {images_file}", extra='images_format = "png"'),
     "'images_format' must be one of 'npy', 'h5'"),
    (TOML.format(command="{python} a.py {params_file} {images_file}", extra="").replace("high = 1.0", "high = 0.0"),
     "parameter 'a': low (0) must be below high (0)"),
    (TOML.format(command="{python} a.py {params_file} {images_file}", extra="") + "default = 2.0\n",
     "parameter 'a': default 2 lies outside [0, 1]"),
    (TOML.format(command="{python} a.py {params_file} {images_file}", extra="") + "scale = 2.0\n",
     "parameter 'a': unknown key 'scale'"),
    (TOML.format(command="{python} a.py {params_file} {images_file}", extra="").replace("low = 0.0", 'low = "0"'),
     "parameter 'a': 'low' must be a finite number"),
    (TOML.format(command="{python} a.py {params_file} {images} {seed}", extra=""),
     "unknown placeholder {images}"),
    (TOML.format(command="{python} a.py {params_file}", extra=""), "must pass {images_file}"),
    (TOML.format(command="{python} 'a.py {params_file} {images_file}", extra=""), "cannot be split into words"),
    (TOML.format(command="{python} a.py {params_file} {images_file}", extra="") + "[example]\nmean = [0.5, 1]\n"
     "std = [0.1]\n", "[example]: 'mean' must be a list of 1 numbers"),
])
def test_bad_toml_is_one_line_naming_the_fault(tmp_path, text, fact):
    path = _toml(tmp_path, text)
    with pytest.raises(SimulatorError) as exc:
        load_simulator(str(path))
    message = _one_line(exc)
    assert fact in message, message
    assert "sim.toml" in message or "'x'" in message or "'fake'" in message, message


def test_unknown_key_lists_the_known_ones(tmp_path):
    path = _toml(tmp_path, TOML.format(command="{python} a.py {params_file} {images_file}", extra="comand = 1"))
    with pytest.raises(SimulatorError) as exc:
        ExternalProgram(path)
    message = _one_line(exc)
    assert "unknown key 'comand'" in message and "simulator 'fake'" in message
    assert all(key in message for key in KNOWN_KEYS)


# -- running the program ------------------------------------------------------------------------------
def test_program_not_found_names_it_and_the_folder(tmp_path):
    path = _program(tmp_path, "", command="./nosuchsim {params_file} {images_file}")
    with pytest.raises(SimulatorError) as exc:
        load_simulator(str(path))
    message = _one_line(exc)
    assert "'./nosuchsim' not found" in message and str(tmp_path) in message and "'fake'" in message


def test_program_not_on_path(tmp_path):
    path = _program(tmp_path, "", command="nosuchsim-magan {params_file} {images_file}")
    with pytest.raises(SimulatorError, match="'nosuchsim-magan' not found on PATH.*write ./nosuchsim-magan"):
        load_simulator(str(path))


def test_relative_program_runs_in_the_toml_folder(tmp_path):
    script = tmp_path / "mysim"  # a program in the TOML's folder, run as ./mysim; it finds mysim.py there too
    script.write_text(f"#!/bin/sh\nexec {shlex.quote(sys.executable)} mysim.py \"$@\"\n")
    script.chmod(0o755)
    (tmp_path / "mysim.py").write_text(FAKE + "np.save(images_file, images)\n")
    path = _program(tmp_path, "", command="./mysim {params_file} {images_file}")
    images = load_simulator(str(path)).simulate(torch.tensor([[0.5]]))
    assert torch.allclose(images, torch.full((1, 8, 12), 0.5))


def test_non_zero_exit_quotes_the_end_of_stderr(tmp_path):
    body = """\
        import sys
        for i in range(1, 6):
            print(f"line {i}", file=sys.stderr)
        sys.exit(3)
        """
    path = _program(tmp_path, body)
    with pytest.raises(SimulatorError) as exc:
        load_simulator(str(path))
    message = _one_line(exc)
    assert "exited with status 3" in message and "line 3 | line 4 | line 5" in message
    assert "line 2" not in message and "'fake'" in message


def test_a_long_stderr_is_cut(tmp_path):
    path = _program(tmp_path, "import sys\nsys.exit('x' * 2000 + ' the end')\n")
    with pytest.raises(SimulatorError) as exc:
        load_simulator(str(path))
    message = _one_line(exc)
    assert "status 1" in message and message.endswith("the end") and len(message) < 500


def test_timeout_kills_the_program_and_its_children(tmp_path):
    body = """\
        import subprocess, sys, time
        child = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
        open("child.pid", "w").write(str(child.pid))
        time.sleep(60)
        """
    path = _program(tmp_path, body, extra="timeout = 2")
    t0 = time.perf_counter()
    with pytest.raises(SimulatorError) as exc:
        load_simulator(str(path))
    assert time.perf_counter() - t0 < 10
    message = _one_line(exc)
    assert "longer than 2 s" in message and "timeout = ..." in message and "fake.toml" in message
    pid = int((tmp_path / "child.pid").read_text())
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:  # gone, or a zombie waiting for its new parent to reap it
        try:
            with open(f"/proc/{pid}/stat") as fh:
                if fh.read().rsplit(")", 1)[1].split()[0] in ("Z", "X"):
                    break
        except FileNotFoundError:
            break
        time.sleep(0.05)
    else:
        pytest.fail("the program's child survived the timeout")


def test_no_images_file(tmp_path):
    path = _program(tmp_path, "print('done')\n")
    with pytest.raises(SimulatorError, match="'fake'.*wrote no images file images.npy"):
        load_simulator(str(path))


def test_unreadable_images_file(tmp_path):
    path = _program(tmp_path, "import sys\nopen(sys.argv[2], 'w').write('not an array')\n")
    with pytest.raises(SimulatorError, match="'fake'.*could not read the images file images.npy"):
        load_simulator(str(path))


def test_h5_file_without_images_dataset(tmp_path):
    body = "import sys, h5py\nwith h5py.File(sys.argv[2], 'w') as fh:\n    fh['pictures'] = [1.0]\n"
    path = _program(tmp_path, body, extra='images_format = "h5"')
    with pytest.raises(SimulatorError, match="could not read the images file images.h5.*no dataset 'images'"):
        load_simulator(str(path))


def test_wrong_shape(tmp_path):
    path = _program(tmp_path, FAKE + "np.save(images_file, images[:, :, :10])\n")
    with pytest.raises(SimulatorError) as exc:
        load_simulator(str(path))
    message = _one_line(exc)
    assert "wrote images of shape (4, 8, 10), expected (4, 8, 12)" in message and "'fake'" in message


def test_pixels_outside_the_range_are_caught_by_the_contract_check(tmp_path):
    path = _program(tmp_path, FAKE + "np.save(images_file, images * 5)\n")
    with pytest.raises(SimulatorError, match="expected values in \\[0, 1\\]"):
        load_simulator(str(path))


# -- the command line ---------------------------------------------------------------------------------
def _run(*argv: str) -> tuple[int, str, str]:
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        code = main(list(argv))
    return code, out.getvalue(), err.getvalue()


def test_cli_bad_toml_is_one_line(tmp_path):
    bad = _toml(tmp_path, 'name = "x"\nimage_shape = [24, 40]\nspeed = 3\n')
    code, _, err = _run("bank", "--simulator", str(bad), "-n", "8", "-o", str(tmp_path / "x.h5"))
    assert code == 2
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("magan bank: error:") and "unknown key 'speed'" in lines[0]
    assert not (tmp_path / "x.h5").exists()


def test_cli_bank_of_the_example_with_two_workers(tmp_path, beamspot):
    out = tmp_path / "bank.h5"
    code, stdout, err = _run("bank", "--simulator", str(EXAMPLE), "-n", "64", "--chunk-size", "32",
                             "--workers", "2", "-o", str(out), "--quiet")
    assert code == 0, err
    assert "all simulated" in stdout
    bank = load_bank(out, beamspot)
    assert bank.images.shape == (64, 24, 40) and bank.noise is None
    with h5py.File(out, "r") as fh:
        assert fh["chunk_done"][()].all()
    assert float(bank.images.max()) > 0.2 and float(bank.images.min()) >= 0.0
    # the chunk seeds fix the images whichever process ran them
    again, _ = simulate_chunk(beamspot, bank.params[32:], seed=_chunk_seed(out, 1))
    assert np.array_equal(again, bank.images[32:])


def _chunk_seed(path: Path, chunk: int) -> int:
    from magan_gui.core.bank import chunk_seed

    with h5py.File(path, "r") as fh:
        return chunk_seed(int(fh.attrs["seed"]), chunk)


def test_a_program_failing_mid_bank_is_one_line_and_leaves_a_resumable_bank(tmp_path):
    # fails on single parameter sets above 0.6 (the load-time check of 4 sets passes), as a simulation
    # might in one corner of the box
    toml = _program(tmp_path, FAKE + textwrap.dedent("""
        if len(p) == 1 and p[0, 0] > 0.6:
            sys.exit("geometry overlap at a = %.3f" % p[:, 0].max())
        np.save(images_file, images)
    """))
    out = tmp_path / "bank.h5"
    code, _, err = _run("bank", "--simulator", str(toml), "-n", "32", "--chunk-size", "1", "-o", str(out), "--quiet")
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1
    assert "exited with status 1" in lines[0] and "stderr: geometry overlap at a = 0." in lines[0]
    with h5py.File(out, "r") as fh:                     # what was made before the failure is kept, flagged
        done = fh["chunk_done"][()]
        assert 0 < done.sum() < 32 and np.all(fh["params"][()][done][:, 0] <= 0.6)
    code, _, err = _run("bank", "--simulator", str(toml), "-o", str(out), "--resume", "-n", "1", "--quiet")
    assert code == 2 and "geometry overlap" in err   # resuming meets the same program fault, nothing lost
    with h5py.File(out, "r") as fh:
        assert fh["chunk_done"][()].sum() >= done.sum()
