"""The calibration result: best-match statistics in physical units, provenance, and its files."""

from __future__ import annotations

import datetime as _dt
import json
import platform
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .calibration import CalibrationOutcome
from .data import TrueImages
from .emulator import TrainedEmulator
from .files import refuse_existing, write_atomically
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


def build_result(simulator: LoadedSimulator, outcome: CalibrationOutcome, true: TrueImages,
                 emulator_meta: dict[str, Any], config: dict[str, Any], seed: int, device: torch.device | str,
                 emulator_path: str | None = None, effects: tuple[np.ndarray, float] | None = None
                 ) -> dict[str, Any]:
    """Assemble the result document (the README's result file: statistics and provenance)."""
    space = simulator.space
    samples = outcome.samples
    mean, std = samples.mean(axis=0), samples.std(axis=0, ddof=1)
    quantiles = np.percentile(samples, QUANTILES, axis=0)
    known = true.params is not None and true.params.shape[1] == len(space)
    made_before = simulator.images_made
    if effects is None:
        effects = parameter_effects(simulator, samples, device)
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
    check = convergence(outcome)
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
        "seed": seed, "device": str(device), "wall_time_s": round(outcome.wall_time, 3),
        "versions": software_versions(),
        "created": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
    }


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
    lines = [head, "-" * len(head)]
    for row in result["parameters"]:
        label = row["name"] + (f" [{row['unit']}]" if row["unit"] else "")
        line = f"{label:<12}{row['mean']:>11.4g}{row['std']:>10.3g}{row['default']:>10.4g}"
        if known:
            ratio = lambda v, width: f"{v:>{width}.2f}" if v is not None else f"{'-':>{width}}"  # noqa: E731
            line += (f"{row['true_mean']:>11.4g}{row['true_std']:>10.3g}"
                     f"{ratio(row['bias_in_true_std'], 8)}{ratio(row['std_ratio'], 10)}")
        lines.append(line + ("" if row["well_constrained"] else "  (weakly constrained)"))
    cal = result["calibration"]
    pooled = ", ".join(str(i) for i in cal["pooled_iterations"])
    lines.append(f"{result['n_samples']} samples pooled from the generators of iterations {pooled} of "
                 f"{cal['iterations']} (image distance {cal['image_distance']:.4f}); "
                 f"{result['wall_time_s']:.0f} s on {result['device']}")
    check = result.get("image_check")
    if check is not None:
        lines.append(f"image check: {check['ratio']:.2f} times the true images' own difference (limit "
                     f"{check['limit']:g}): {'converged' if result['converged'] else 'NOT CONVERGED'}")
    if "simulations" in result:
        sims = result["simulations"]
        lines.append(f"simulator images consumed: {sims['total']:,} (bank {sims['bank']:,}, pretraining "
                     f"{sims['pretraining']:,}, calibration {sims['calibration']:,}, result checks "
                     f"{sims['result_checks']:,})")
    notes = [f"  {row['name']}: {row['note']}" for row in result["parameters"] if "note" in row]
    emulator = result.get("emulator", {})
    if emulator.get("verdict") in ("rough", "poor"):  # the calibration learnt through it: say so beside the numbers
        notes.insert(0, f"  the emulator's {emulator_verdict(emulator)[1]}")
    if result.get("converged") is False:
        notes.insert(0, f"  NOT CONVERGED: {result['image_check']['note']}")
    if notes:
        lines += ["notes:"] + notes
    return "\n".join(lines)
