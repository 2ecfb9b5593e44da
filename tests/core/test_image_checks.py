"""Image-space checks of a best match, the eigentunes, and `magan tune`."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from torch.nn import functional as F

from magan_gui.cli import main
from magan_gui.core.comparison import ResultFileError, load_run
from magan_gui.core.data import make_closure_set
from magan_gui.core.image_checks import compare_images, intensity_histogram, pixel_maps, projections
from magan_gui.core.results import eigentunes, tune_files
from tests.conftest import LINES_MEAN, LINES_STD


def wider_profile(images: np.ndarray) -> np.ndarray:
    """Lines drawn with a wider profile: what no lines parameters can make (a misspecified simulator)."""
    x = torch.from_numpy(images).unsqueeze(1)
    kernel = torch.tensor([0.25, 0.5, 0.25]).view(1, 1, 1, 3)
    return F.conv2d(F.pad(x, (1, 1, 0, 0), mode="replicate"), kernel).squeeze(1).numpy()


def converged_outcome():
    """Best-match samples of the lines population, from a calibration whose image check passed (ratio 1)."""
    from tests.core.test_results import _outcome

    outcome = _outcome(n=2000, seed=5)
    outcome.noise_floor = outcome.image_distance
    return outcome


@pytest.fixture(scope="module")
def two_draws(lines):
    first = make_closure_set(lines, LINES_MEAN, LINES_STD, 800, seed=11).images
    second = make_closure_set(lines, LINES_MEAN, LINES_STD, 400, seed=12).images
    return first, second


def test_images_of_the_right_population_pass(two_draws):
    true, simulated = two_draws
    checks = compare_images(true, simulated, seed=0)
    assert checks["n_images"] == 400
    test = checks["classifier"]
    assert test["accuracy"] <= test["limit"] and checks["reproduces"] is True
    assert 0.35 < test["reference_accuracy"] < 0.65
    assert "note" not in checks


def test_a_misspecified_simulator_is_flagged(two_draws):
    true, simulated = two_draws
    checks = compare_images(wider_profile(true), simulated, seed=0)
    assert checks["classifier"]["accuracy"] > 0.9
    assert checks["reproduces"] is False and "cannot reproduce these images" in checks["note"]
    # the pull map says where: pixels beside the lines are brighter in the true (wider) images
    assert checks["max_abs_pull"] > 5 and checks["pull_chi2_per_pixel"] > 4


def test_too_few_images_skip_the_classifier(two_draws):
    true, simulated = two_draws
    checks = compare_images(true[:60], simulated[:30])
    assert checks["classifier"] is None and checks["reproduces"] is None and "too few" in checks["note"]
    assert np.asarray(checks["maps"]["pull"]).shape == (28, 28)


def test_maps_projections_and_histogram_on_a_non_square_image():
    rng = np.random.default_rng(0)
    true = rng.uniform(0, 0.5, size=(300, 20, 48)).astype(np.float32)
    simulated = true.copy()
    simulated[:, 5, :] += 0.2           # one row brighter
    simulated[:, :, 0] = true[:, :, 0]  # (unchanged column)
    maps = pixel_maps(true, simulated)
    assert maps["pull"].shape == (20, 48)
    assert (maps["pull"][5, 1:] > 3).all() and maps["pull"][5, 0] == 0 and np.abs(maps["pull"][6]).max() < 1e-6
    flat = np.zeros((10, 20, 48), np.float32)
    assert np.all(pixel_maps(flat, flat)["pull"] == 0)       # nothing varies: no pull, no division by zero
    proj = projections(true, simulated)
    assert proj["rows_true"].shape == (20,) and proj["columns_simulated"].shape == (48,)
    assert proj["rows_simulated"][5] == pytest.approx(proj["rows_true"][5] + 0.2 * 47, rel=1e-4)
    hist = intensity_histogram(true, simulated)
    assert hist["true"].sum() == pytest.approx(1.0) and hist["true"][16:].sum() == 0
    assert hist["simulated"][16:].sum() > 0


def test_eigentunes_follow_the_principal_axes_in_standardised_units():
    rng = np.random.default_rng(1)
    corr = np.array([[1.0, 0.8], [0.8, 1.0]])
    std = np.array([2.0, 0.001])     # very different units: the axes must not follow the larger number
    cov = corr * np.outer(std, std)
    mean = np.array([10.0, 0.5])
    tunes = eigentunes(["a", "b"], mean, cov, np.array([0.0, 0.0]), np.array([20.0, 0.5005]))
    assert [(t["axis"], t["sign"]) for t in tunes] == [(0, "+"), (0, "-"), (1, "+"), (1, "-")]
    plus = np.array(list(tunes[0]["parameters"].values()))
    minus = np.array(list(tunes[1]["parameters"].values()))
    assert np.allclose((plus + minus) / 2, mean)
    step = (plus - mean) / std       # standardised: along (1, 1)/sqrt(2), length sqrt(1.8)
    assert np.allclose(step, np.sqrt(1.8) * np.array([1, 1]) / np.sqrt(2))
    second = (np.array(list(tunes[2]["parameters"].values())) - mean) / std
    assert np.allclose(np.abs(second), np.sqrt(0.2) / np.sqrt(2)) and second[0] * second[1] < 0
    assert tunes[0]["eigenvalue"] == pytest.approx(1.8) and tunes[2]["eigenvalue"] == pytest.approx(0.2)
    assert tunes[0]["inside_box"] is False and tunes[3]["inside_box"] is True   # b + 0.00095 > 0.5005
    # a sample with this covariance has std 1 along each standardised axis scaled by sqrt(eigenvalue)
    samples = rng.multivariate_normal(mean, cov, size=20000)
    along = ((samples - mean) / std) @ (step / np.linalg.norm(step))
    assert along.std() == pytest.approx(np.sqrt(1.8), rel=0.03)


def test_a_result_carries_image_checks_and_eigentunes(lines, lines_true, tmp_path):
    from tests.core.test_results import _result

    result, _ = _result(lines, lines_true)
    assert len(result["eigentunes"]) == 2 * 4
    assert result["image_checks"]["classifier"] is not None
    assert result["simulations"]["result_checks"] >= 128  # the check's images at the best match
    files = tune_files(result)
    assert sorted(files) == sorted(["eigentunes.json", "best_match.txt"] + [f"axis{k}_{s}.txt" for k in range(4)
                                                                           for s in ("plus", "minus")])
    lines_of = files["axis0_plus.txt"].splitlines()
    assert [line.split()[0] for line in lines_of] == ["m", "x0", "c", "x_steps"]
    assert float(lines_of[0].split()[1]) == pytest.approx(result["eigentunes"][0]["parameters"]["m"], rel=1e-6)

    path = tmp_path / "result.json"
    path.write_text(json.dumps(result))   # (a result with no samples_csv named: tune needs none)
    assert main(["tune", str(path), "-o", str(tmp_path / "tunes")]) == 0
    written = json.loads((tmp_path / "tunes" / "eigentunes.json").read_text())
    assert written["best_match"]["m"] == pytest.approx(result["parameters"][0]["mean"])
    assert len(written["eigentunes"]) == 8
    # files are never replaced silently
    before = (tmp_path / "tunes" / "best_match.txt").read_text()
    assert main(["tune", str(path), "-o", str(tmp_path / "tunes")]) == 2
    assert (tmp_path / "tunes" / "best_match.txt").read_text() == before


@pytest.mark.parametrize("content, message", [("{", "not a result file"), ('{"format": "other"}', "not a magan result"),
                                              ('{"format": "magan-result/1", "simulator": "lines", "parameters": []}',
                                               "no parameter rows")])
def test_tune_refuses_what_is_not_a_result(tmp_path, capsys, content, message):
    path = tmp_path / "bad.json"
    path.write_text(content)
    with pytest.raises(ResultFileError, match=message):
        load_run(path)
    assert main(["tune", str(path), "-o", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err
    assert message in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out").exists()


def test_the_result_warns_on_a_misspecified_closure_and_not_on_a_right_one(lines, lines_true):
    """The best match is the true population itself: with lines' own images the result reproduces them;
    with the images of lines drawn wider (no lines parameters make them) it says it cannot."""
    from magan_gui.core.data import TrueImages
    from magan_gui.core.results import format_summary
    from tests.core.test_results import _outcome, _result

    right, _ = _result(lines, lines_true, converged_outcome())
    assert right["image_checks"]["reproduces"] is True and "MISMATCH" not in format_summary(right)
    wide = TrueImages(wider_profile(lines_true.images), lines_true.params, lines_true.param_names, "wider lines")
    wrong, _ = _result(lines, wide, converged_outcome())
    assert wrong["converged"] and wrong["image_checks"]["reproduces"] is False
    summary = format_summary(wrong)
    assert "DOES NOT REPRODUCE THE IMAGES" in summary and "MISMATCH: the simulator cannot reproduce" in summary
    # a calibration that has not converged is no verdict on the simulator: the note says to train further
    unfinished, _ = _result(lines, wide, _outcome(n=2000, seed=5))
    assert unfinished["converged"] is False and unfinished["image_checks"]["reproduces"] is False
    assert "has not converged: either it needs more training" in unfinished["image_checks"]["note"]
    assert "not converged either" in format_summary(unfinished)
    assert "MISMATCH: the best-match images are clearly unlike" in format_summary(unfinished)
