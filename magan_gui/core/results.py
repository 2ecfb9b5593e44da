"""The calibration result: best-match statistics in physical units, provenance, and its files."""

from __future__ import annotations

import datetime as _dt
import json
import math
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .calibration import CalibrationOutcome
from .data import TrueImages
from .emulator import TrainedEmulator
from .errors import OutputError
from .files import refuse_existing, write_atomically
from .image_checks import CHECK_IMAGES, UNCONVERGED_MISMATCH_NOTE, compare_images
from .pretraining import emulator_verdict
from .simulators import LoadedSimulator

RESULT_FORMAT = "magan-result/1"
QUANTILES = (2.5, 16.0, 50.0, 84.0, 97.5)
# A parameter whose one-std change moves the image by less than this L2 norm (pixel units in [0, 1],
# i.e. about a quarter of one fully lit pixel) barely shows in the images: its spread is not trusted.
WEAK_EFFECT_L2 = 0.25
# A calibration whose images differ from the true ones more than this many times as much as true
# images differ among themselves (the same number of images, ``CalibrationOutcome.noise_floor``) is
# marked not converged (measured: README, "Is a result converged?").
CONVERGED_LIMIT = 3.0


def convergence(outcome: CalibrationOutcome) -> dict[str, Any]:
    """The result's image-space check: its distance, the noise floor, their ratio, and whether the
    calibration converged (with a note saying why not)."""
    ratio = outcome.image_distance / outcome.noise_floor if outcome.noise_floor > 0 else float("nan")
    check: dict[str, Any] = {"image_distance": outcome.image_distance, "noise_floor": outcome.noise_floor,
                             "ratio": ratio, "limit": CONVERGED_LIMIT}
    if outcome.diverged:
        note = f"{outcome.diverged}: this result is from that state and is not to be trusted"
    elif not np.isfinite(ratio):
        note = "the result has no finite image-space check: it is not to be trusted"
    elif ratio > CONVERGED_LIMIT:
        note = (f"its images differ from the true ones {ratio:.1f} times as much as true images differ among "
                f"themselves (limit {CONVERGED_LIMIT:g}): the calibration has not converged; look at the training "
                "curves, and try more iterations or lower learning rates")
    else:
        return {"converged": True, **check}
    return {"converged": False, **check, "note": note}


def software_versions() -> dict[str, str]:
    """Versions that matter for reproducing a run."""
    from .. import __version__

    return {"magan_gui": __version__, "torch": torch.__version__, "numpy": np.__version__,
            "python": platform.python_version()}


@torch.no_grad()
def parameter_effects(simulator: LoadedSimulator | TrainedEmulator, samples: np.ndarray,
                      device: torch.device | str = "cpu", n: int = 256, seed: int = 0) -> tuple[np.ndarray, float]:
    """How much each parameter shows in the images, measured on ``simulator`` (a loaded simulator, or
    a trained emulator when simulations are budgeted).

    Returns the mean L2 image change (pixels in [0, 1]) when each parameter moves by one
    best-match std from best-match samples, and the L2 difference two noise draws make at the
    same parameters (0 for deterministic simulators): the scale an effect has to stand out from.
    """
    gen = torch.Generator(device=device).manual_seed(seed)
    base = torch.as_tensor(samples[:n], dtype=torch.float32, device=device)
    std = torch.as_tensor(samples.std(axis=0), dtype=torch.float32, device=device)
    noise = simulator.sample_noise(base.shape[0], generator=gen, device=device)
    reference = simulator.simulate(base, noise)
    effects = []
    for i in range(base.shape[1]):
        shifted = base.clone()
        shifted[:, i] += std[i]
        diff = simulator.simulate(shifted, noise) - reference
        effects.append(float(diff.flatten(1).norm(dim=1).mean()))
    noise_l2 = 0.0
    if simulator.stochastic:
        other = simulator.sample_noise(base.shape[0], generator=gen, device=device)
        noise_l2 = float((simulator.simulate(base, other) - reference).flatten(1).norm(dim=1).mean())
    return np.asarray(effects), noise_l2


@torch.no_grad()
def simulate_best_match(simulator: LoadedSimulator, samples: np.ndarray, n: int, device: torch.device | str,
                        seed: int = 0, batch: int = 1024) -> np.ndarray:
    """Fresh simulator images (N, H, W) in [0, 1] at the first ``n`` best-match samples, for the
    image-space checks (counted by the simulator as consumed)."""
    gen = torch.Generator(device=device).manual_seed(seed)
    params = torch.as_tensor(samples[:n], dtype=torch.float32, device=device)
    chunks = []
    for start in range(0, len(params), batch):
        chunk = params[start:start + batch]
        noise = simulator.sample_noise(len(chunk), generator=gen, device=device)
        chunks.append(torch.as_tensor(simulator.simulate(chunk, noise)).float().cpu())
    return torch.cat(chunks).numpy()


def eigentunes(names: list[str], mean: np.ndarray, covariance: np.ndarray,
               space_low: np.ndarray | None = None, space_high: np.ndarray | None = None) -> list[dict[str, Any]]:
    """The +1 and -1 sigma parameter sets along each principal axis of the best-match covariance.

    The axes are those of the correlation matrix, i.e. of the covariance in standardised units
    (each parameter divided by its best-match std), so they do not change when a parameter's unit
    does; each variation is then mapped back to physical units: ``mean ± sqrt(λ_k) · std ∘ v_k``.
    Axis 0 is the largest variance.  ``space_low``/``space_high``, when given, mark variations
    that leave the parameter box (``inside_box``).
    """
    std = np.sqrt(np.clip(np.diag(covariance), 0.0, None))
    safe = np.where(std > 0, std, 1.0)
    corr = covariance / np.outer(safe, safe)
    values, vectors = np.linalg.eigh(corr)
    order = np.argsort(values)[::-1]
    tunes = []
    for axis, k in enumerate(order):
        vector = vectors[:, k] * (1.0 if vectors[np.argmax(np.abs(vectors[:, k])), k] >= 0 else -1.0)
        step = math.sqrt(max(float(values[k]), 0.0)) * std * vector
        for sign, point in (("+", mean + step), ("-", mean - step)):
            tune: dict[str, Any] = {"axis": axis, "sign": sign,
                                    "parameters": {n: float(v) for n, v in zip(names, point)},
                                    "eigenvalue": float(values[k]),
                                    "direction": {n: float(v) for n, v in zip(names, vector)}}
            if space_low is not None and space_high is not None:
                tune["inside_box"] = bool(np.all(point >= space_low) and np.all(point <= space_high))
            tunes.append(tune)
    return tunes


def build_result(simulator: LoadedSimulator, outcome: CalibrationOutcome, true: TrueImages,
                 emulator_meta: dict[str, Any], config: dict[str, Any], seed: int, device: torch.device | str,
                 emulator_path: str | None = None, effects: tuple[np.ndarray, float] | None = None,
                 check_images: np.ndarray | None = None) -> dict[str, Any]:
    """Assemble the result document (the README's result file: statistics and provenance).

    ``check_images`` are simulator images already made at best-match parameters (under a budget,
    the calibration's last simulated batches) for the image-space checks; without them, as many
    as the checks use are simulated here (counted as result checks).
    """
    space = simulator.space
    samples = outcome.samples
    mean, std = samples.mean(axis=0), samples.std(axis=0, ddof=1)
    quantiles = np.percentile(samples, QUANTILES, axis=0)
    known = true.params is not None and true.params.shape[1] == len(space)
    made_before = simulator.images_made
    if effects is None:
        effects = parameter_effects(simulator, samples, device)
    if check_images is None:
        check_images = simulate_best_match(simulator, samples, min(CHECK_IMAGES, max(1, len(true) // 2)), device,
                                           seed=seed + 3)
    image_checks = compare_images(true.images, check_images, seed=seed)
    effect, noise_l2 = effects
    trained = emulator_meta.get("simulations", {})
    simulations = {"bank": int(trained.get("bank", 0)), "pretraining": int(trained.get("fresh", 0)),
                   "calibration": outcome.simulations, "result_checks": simulator.images_made - made_before}
    simulations["total"] = sum(simulations.values())
    rows = []
    for i, p in enumerate(space.parameters):
        row: dict[str, Any] = {
            "name": p.name, "unit": p.unit, "mean": float(mean[i]), "std": float(std[i]),
            "default": p.default, "low": p.low, "high": p.high,
            "quantiles": {f"{q:g}": float(quantiles[k, i]) for k, q in enumerate(QUANTILES)},
            "image_effect_l2": float(effect[i]),
            "well_constrained": bool(effect[i] >= WEAK_EFFECT_L2),
        }
        if not row["well_constrained"]:
            row["note"] = (f"a one-std change of {p.name} moves the images by only {effect[i]:.2f} (L2, pixels in "
                           "[0, 1]): the images barely constrain it, so its spread is unreliable")
        edge = (p.high - p.low) * 0.01
        if quantiles[0, i] < p.low + edge or quantiles[-1, i] > p.high - edge:
            row["note"] = (row.get("note", "") + "; " if "note" in row else "") + (
                f"samples reach the bound [{p.low}, {p.high}]: widen the simulator's range for {p.name}")
        if known:
            t_mean, t_std = float(true.params[:, i].mean()), float(true.params[:, i].std(ddof=1))
            row.update({"true_mean": t_mean, "true_std": t_std,
                        "bias_in_true_std": (float(mean[i]) - t_mean) / t_std if t_std > 0 else None,
                        "std_ratio": float(std[i]) / t_std if t_std > 0 else None})
        rows.append(row)
    corr = np.corrcoef(samples, rowvar=False) if len(space) > 1 else np.ones((1, 1))
    covariance = np.atleast_2d(np.cov(samples, rowvar=False))
    check = convergence(outcome)
    if image_checks["reproduces"] is False and not check["converged"]:
        image_checks["note"] = UNCONVERGED_MISMATCH_NOTE  # a run still far off may only need training
    return {
        "format": RESULT_FORMAT,
        "simulator": simulator.name, "simulator_spec": simulator.spec,
        "parameters": rows,
        "correlation": {"names": space.names, "matrix": np.round(corr, 6).tolist()},
        "n_samples": int(samples.shape[0]),
        "noise_l2": noise_l2,
        "true_data": {"source": true.source, "sha256": true.sha256, "n_images": len(true),
                      "image_shape": list(true.shape), "true_parameters_known": known},
        "emulator": {"path": emulator_path, "fidelity_mse": emulator_meta.get("fidelity_mse"),
                     "fidelity_metric": emulator_meta.get("fidelity_metric", "pixel MSE"),
                     "mode": emulator_meta.get("mode"), "iterations": emulator_meta.get("iteration"),
                     "reference_score": emulator_meta.get("reference_score"),
                     "verdict": emulator_verdict(emulator_meta)[0]},
        "calibration": {"iterations": outcome.iteration, "pooled_iterations": outcome.chosen_iterations,
                        "image_distance": outcome.image_distance, "stopped_early": outcome.stopped_early,
                        "config": config, "history": outcome.history},
        "simulations": simulations,
        "converged": check["converged"], "image_check": check,
        "image_checks": image_checks,
        "eigentunes": eigentunes(space.names, mean, covariance, np.array([p.low for p in space.parameters]),
                                 np.array([p.high for p in space.parameters])),
        "eigentunes_units": "axes of the correlation matrix (standardised units), variations in physical units",
        "seed": seed, "device": str(device), "wall_time_s": round(outcome.wall_time, 3),
        "versions": software_versions(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


ENSEMBLE_MEANING = ("each figure's uncertainty is the standard error of the pooled figure from the spread of the "
                    "ensemble's members (each its own seed and bootstrap resample of the true images): it covers the "
                    "calibration's seed-to-seed wander and the finite number of true images, not the emulator's own "
                    "error (one emulator serves every member); with k members it is itself uncertain by about "
                    "1 / sqrt(2 (k - 1))")


def add_ensemble(result: dict[str, Any], member_samples: list[np.ndarray], seeds: list[int], planned: int) -> None:
    """Give ``result`` (built from the ensemble's pooled samples) each figure's uncertainty from the members'
    spread: ``mean_uncertainty`` and ``std_uncertainty`` per parameter (and the bias and std ratio's, in a
    closure test), the correlation matrix's, and an ``ensemble`` entry with every member's figures.
    Fewer than 2 members (an ensemble stopped early) give no uncertainty."""
    k = len(member_samples)
    means = np.array([s.mean(axis=0) for s in member_samples])
    stds = np.array([s.std(axis=0, ddof=1) for s in member_samples])
    entry: dict[str, Any] = {
        "members": k, "planned_members": planned, "seeds": seeds, "bootstrap": True,
        "per_member": [{"seed": seed, "mean": m.tolist(), "std": d.tolist()} for seed, m, d in zip(seeds, means, stds)],
        "meaning": ENSEMBLE_MEANING}
    result["ensemble"] = entry
    if k < 2:
        entry["note"] = "only one member finished: no uncertainty"
        return
    error = lambda values: values.std(axis=0, ddof=1) / math.sqrt(k)  # noqa: E731
    mean_error, std_error = error(means), error(stds)
    for i, row in enumerate(result["parameters"]):
        row["mean_uncertainty"], row["std_uncertainty"] = float(mean_error[i]), float(std_error[i])
        if row.get("true_std"):
            row["bias_uncertainty"] = float(mean_error[i]) / row["true_std"]
            row["std_ratio_uncertainty"] = float(std_error[i]) / row["true_std"]
    if means.shape[1] > 1:
        corrs = np.array([np.corrcoef(s, rowvar=False) for s in member_samples])
        result["correlation"]["uncertainty"] = np.round(error(corrs), 6).tolist()


def samples_path_for(result_path: str | Path) -> Path:
    """The CSV of samples that sits beside a result JSON: ``name.samples.csv``."""
    result_path = Path(result_path)
    return result_path.with_name(result_path.stem + ".samples.csv")


def write_result(path: str | Path, result: dict[str, Any], samples: np.ndarray, overwrite: bool = False) -> Path:
    """Write the result JSON and its samples CSV; refuse to replace existing files unless ``overwrite``."""
    path = Path(path)
    csv_path = samples_path_for(path)
    refuse_existing(path, csv_path, force=overwrite)
    names = [row["name"] for row in result["parameters"]]
    lines = [",".join(names)] + [",".join(f"{v:.7g}" for v in row) for row in samples]
    write_atomically(csv_path, "\n".join(lines) + "\n")
    result = dict(result, samples_csv=csv_path.name)
    write_atomically(path, json.dumps(result, indent=2) + "\n")
    return csv_path


def format_summary(result: dict[str, Any]) -> str:
    """A one-screen table of the best-match parameters (and the truth, when known)."""
    known = result["true_data"]["true_parameters_known"]
    head = f"{'parameter':<12}{'best mean':>11}{'best std':>10}{'default':>10}"
    if known:
        head += f"{'true mean':>11}{'true std':>10}{'bias/σ':>8}{'std ratio':>10}"
    uncertain = "mean_uncertainty" in result["parameters"][0]
    if uncertain:  # an ensemble: each figure with its standard error
        head = (f"{'parameter':<12}{'best mean':>19}{'best std':>18}{'default':>10}"
                + (f"{'true mean':>11}{'true std':>10}{'bias/σ':>14}{'std ratio':>14}" if known else ""))
    lines = [head, "-" * len(head)]
    for row in result["parameters"]:
        label = row["name"] + (f" [{row['unit']}]" if row["unit"] else "")
        ratio = lambda v, width: f"{v:>{width}.2f}" if v is not None else f"{'-':>{width}}"  # noqa: E731
        if uncertain:
            line = (f"{label:<12}{_plus_minus(row['mean'], row['mean_uncertainty']):>19}"
                    f"{_plus_minus(row['std'], row['std_uncertainty']):>18}{row['default']:>10.4g}")
            if known:
                bias, spread = row["bias_in_true_std"], row["std_ratio"]
                line += (f"{row['true_mean']:>11.4g}{row['true_std']:>10.3g}"
                         + (f"{bias:>+8.2f} ±{row['bias_uncertainty']:.2f}" if bias is not None else f"{'-':>14}")
                         + (f"{spread:>8.2f} ±{row['std_ratio_uncertainty']:.2f}" if spread is not None
                            else f"{'-':>14}"))
        else:
            line = f"{label:<12}{row['mean']:>11.4g}{row['std']:>10.3g}{row['default']:>10.4g}"
            if known:
                line += (f"{row['true_mean']:>11.4g}{row['true_std']:>10.3g}"
                         f"{ratio(row['bias_in_true_std'], 8)}{ratio(row['std_ratio'], 10)}")
        lines.append(line + ("" if row["well_constrained"] else "  (weakly constrained)"))
    ensemble = result.get("ensemble")
    if ensemble:
        lines.append(f"ensemble of {ensemble['members']} calibrations (seeds "
                     f"{', '.join(map(str, ensemble['seeds']))}, each on a bootstrap resample of the true images)"
                     + (f", {ensemble['planned_members']} planned" if ensemble["members"] < ensemble["planned_members"]
                        else "") + ": ± is the standard error of the pooled figure from their spread")
    cal = result["calibration"]
    pooled = ", ".join(str(i) for i in cal["pooled_iterations"])
    lines.append(f"{result['n_samples']} samples pooled from the generators of iterations {pooled} of "
                 f"{cal['iterations']} (image distance {cal['image_distance']:.4f}); "
                 f"{result['wall_time_s']:.0f} s on {result['device']}")
    check = result.get("image_check")
    if check is not None:
        lines.append(f"image check: {check['ratio']:.2f} times the true images' own difference (limit "
                     f"{check['limit']:g}): {'converged' if result['converged'] else 'NOT CONVERGED'}")
    test = (result.get("image_checks") or {}).get("classifier")
    if test:
        verdict = ("reproduces the images" if result["image_checks"]["reproduces"] else
                   "DOES NOT REPRODUCE THE IMAGES" if result.get("converged", True) else
                   "DOES NOT REPRODUCE THE IMAGES (not converged either: train further, or the simulator "
                   "cannot make them)")
        lines.append(f"image-space test: a classifier tells best-match images from the true ones with accuracy "
                     f"{test['accuracy']:.2f} (two halves of the true images: {test['reference_accuracy']:.2f}; "
                     f"limit {test['limit']:.2f}): {verdict}")
    if "simulations" in result:
        sims = result["simulations"]
        lines.append(f"simulator images consumed: {sims['total']:,} (bank {sims['bank']:,}, pretraining "
                     f"{sims['pretraining']:,}, calibration {sims['calibration']:,}, result checks "
                     f"{sims['result_checks']:,})")
    notes = [f"  {row['name']}: {row['note']}" for row in result["parameters"] if "note" in row]
    emulator = result.get("emulator", {})
    if emulator.get("verdict") in ("rough", "poor"):  # the calibration learnt through it: say so beside the numbers
        notes.insert(0, f"  the emulator's {emulator_verdict(emulator)[1]}")
    if (result.get("image_checks") or {}).get("reproduces") is False:
        notes.insert(0, f"  MISMATCH: {result['image_checks']['note']}")
    if result.get("converged") is False:
        notes.insert(0, f"  NOT CONVERGED: {result['image_check']['note']}")
    if notes:
        lines += ["notes:"] + notes
    return "\n".join(lines)


def _plus_minus(value: float, error: float) -> str:
    """``value ± error`` with the value to the error's second significant digit."""
    if not error > 0 or not math.isfinite(error):
        return f"{value:.4g} ±0"
    decimals = max(0, 1 - math.floor(math.log10(error)))
    return f"{value:.{decimals}f} ±{error:.{decimals}f}"


def format_eigentunes(result: dict[str, Any]) -> str:
    """The eigentunes as a table: one row per variation, one column per parameter."""
    names = [row["name"] for row in result["parameters"]]
    head = f"{'variation':<12}" + "".join(f"{n:>12}" for n in names)
    lines = [head, "-" * len(head), f"{'best match':<12}" + "".join(f"{row['mean']:>12.5g}"
                                                                    for row in result["parameters"])]
    for tune in result.get("eigentunes", []):
        label = f"axis {tune['axis']} {tune['sign']}1σ"
        lines.append(f"{label:<12}" + "".join(f"{tune['parameters'][n]:>12.5g}" for n in names)
                     + ("" if tune.get("inside_box", True) else "  (outside the parameter box)"))
    return "\n".join(lines)


def tune_files(result: dict[str, Any]) -> dict[str, str]:
    """The eigentunes as files a simulation job can read: file name -> text.

    ``eigentunes.json`` holds every variation (and the best match); ``best_match.txt`` and one
    ``axis<k>_plus.txt`` / ``axis<k>_minus.txt`` per variation hold ``name value`` lines.
    """
    names = [row["name"] for row in result["parameters"]]
    tunes = result.get("eigentunes")
    if not tunes:
        raise OutputError("the result has no eigentunes (it was written by an older magan-gui): calibrate again")

    def text(values: dict[str, float]) -> str:
        return "".join(f"{name} {values[name]:.9g}\n" for name in names)

    best = {row["name"]: row["mean"] for row in result["parameters"]}
    files = {"best_match.txt": text(best)}
    for tune in tunes:
        files[f"axis{tune['axis']}_{'plus' if tune['sign'] == '+' else 'minus'}.txt"] = text(tune["parameters"])
    document = {"simulator": result.get("simulator"), "units": result.get("eigentunes_units"),
                "best_match": best, "eigentunes": tunes}
    files["eigentunes.json"] = json.dumps(document, indent=2) + "\n"
    return files


def write_tunes(folder: str | Path, result: dict[str, Any], overwrite: bool = False) -> list[Path]:
    """Write ``tune_files`` into ``folder`` (made if missing); refuse to replace files unless ``overwrite``."""
    folder = Path(folder)
    files = tune_files(result)
    paths = [folder / name for name in files]
    refuse_existing(*paths, force=overwrite)
    for path, text in zip(paths, files.values()):
        write_atomically(path, text)
    return paths
