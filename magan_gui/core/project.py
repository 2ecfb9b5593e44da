"""Project files: a whole calibration saved in one file, reopened without running code from it.

A project holds the simulator's name, the true images themselves (so a colleague needs no data
path), the trained emulator, the settings, the loss histories and the result with its samples.
It is written atomically and read with ``torch.load(weights_only=True)`` like every checkpoint.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .checkpoints import CheckpointError, load_checkpoint, save_checkpoint
from .data import DataError, TrueImages, checked_images
from .emulator import TrainedEmulator
from .errors import one_line

PROJECT_FORMAT = "magan-project/1"


@dataclass
class Project:
    """Everything needed to look at a calibration again or run it further.

    ``histories`` maps a stage ("pretrain", "calibrate") to ``{"steps": [...], "losses": {name: [...]},
    "metrics": [[step, {name: value}], ...]}``; ``settings`` maps a stage to its config as a dict;
    ``training_state`` maps a stage to its trainer's ``checkpoint_payload()`` (networks, optimisers,
    random state, iteration), from which that stage's run continues.
    """

    simulator_spec: str
    true: TrueImages | None = None
    emulator: TrainedEmulator | None = None
    result: dict[str, Any] | None = None
    samples: np.ndarray | None = None
    settings: dict[str, dict[str, Any]] = field(default_factory=dict)
    histories: dict[str, dict[str, Any]] = field(default_factory=dict)
    training_state: dict[str, dict[str, Any]] = field(default_factory=dict)

    def save(self, path: str | Path) -> None:
        """Write the project atomically."""
        meta = {"format": PROJECT_FORMAT, "simulator_spec": self.simulator_spec, "settings": self.settings,
                "result": self.result, "histories": self.histories}
        payload: dict[str, Any] = {"kind": "project"}
        if self.true is not None:
            meta["true"] = {"source": self.true.source, "sha256": self.true.sha256,
                            "param_names": self.true.param_names}
            payload["true_images"] = torch.from_numpy(np.ascontiguousarray(self.true.images, np.float32))
            if self.true.params is not None:
                payload["true_params"] = torch.from_numpy(np.ascontiguousarray(self.true.params, np.float32))
        if self.emulator is not None:
            payload["emulator"] = self.emulator.payload()
        if self.samples is not None:
            payload["samples"] = torch.from_numpy(np.ascontiguousarray(self.samples, np.float32))
        if self.training_state:
            payload["training_state"] = self.training_state
        payload["meta"] = json.dumps(meta)
        save_checkpoint(path, payload)

    @staticmethod
    def load(path: str | Path) -> Project:
        """Read a project file (never executes code from it)."""
        payload = load_checkpoint(path, "project")
        try:
            meta = json.loads(payload["meta"])
            if meta.get("format") != PROJECT_FORMAT:
                raise CheckpointError(f"{path}: unknown project format {meta.get('format')!r}")
            true = None
            if "true_images" in payload:
                images = checked_images(payload["true_images"].numpy(), f"{path} (its true images)", None)
                params = _table(payload, "true_params", path, rows=len(images))
                info = meta["true"]
                true = TrueImages(images, params, info.get("param_names"), info.get("source", ""),
                                  info.get("sha256", ""))
            emulator = TrainedEmulator.from_payload(payload["emulator"]) if "emulator" in payload else None
            samples = _table(payload, "samples", path)
            state = payload.get("training_state", {})
            if not isinstance(state, dict) or any(stage not in ("pretrain", "calibrate") or not isinstance(v, dict)
                                                  for stage, v in state.items()):
                raise CheckpointError(f"{path}: malformed training state")
            return Project(meta["simulator_spec"], true, emulator, meta.get("result"), samples,
                           meta.get("settings", {}), meta.get("histories", {}), state)
        except CheckpointError:
            raise
        except DataError as exc:
            raise CheckpointError(str(exc)) from exc
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise CheckpointError(f"{path}: incomplete project file ({one_line(exc)})") from exc


def _table(payload: dict[str, Any], key: str, path: str | Path, rows: int | None = None) -> np.ndarray | None:
    """A project's (N, P) table of numbers (samples, true parameters), or None when it has none."""
    if key not in payload:
        return None
    value = payload[key]
    if not (isinstance(value, torch.Tensor) and value.is_floating_point() and value.dim() == 2
            and (rows is None or value.shape[0] == rows)):
        raise CheckpointError(f"{path}: its {key} are not a table of numbers"
                              + ("" if rows is None else f" with a row per true image ({rows})"))
    return value.numpy()
