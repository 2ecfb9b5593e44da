"""What the open calibration holds: simulator, true images, emulator and result, with change signals."""

from __future__ import annotations

from typing import Any

from PySide6.QtCore import QObject, Signal

from ..core import workflow
from ..core.calibration import CalibrationOutcome
from ..core.data import TrueImages
from ..core.emulator import TrainedEmulator
from ..core.simulators import LoadedSimulator


class Session(QObject):
    """The shared state the panels read and change; each change is announced by a signal."""

    simulator_changed = Signal(object)
    true_changed = Signal(object)
    emulator_changed = Signal(object)
    result_changed = Signal(object)
    bank_changed = Signal(object)      # the path of a complete bank of the simulator, or None
    notice = Signal(str)               # something the user should read in the status bar

    def __init__(self) -> None:
        super().__init__()
        self.simulator: LoadedSimulator | None = None
        self.simulator_spec = ""
        self.preset = "quick"   # the settings the run panels start from
        self.true: TrueImages | None = None
        self.emulator: TrainedEmulator | None = None
        self.emulator_path: str | None = None
        self.outcome: CalibrationOutcome | None = None
        self.result: dict[str, Any] | None = None
        # the last pretraining's and calibration's resumable state (``checkpoint_payload``), by stage
        self.training_state: dict[str, dict[str, Any]] = {}
        self.device = "cpu"
        self.bank_path: str | None = None   # a complete bank of the simulator, for pretraining
        self.bank_size = 0

    def stage_configs(self) -> workflow.StageConfigs:
        """Both stages' settings from the session's preset, for its simulator."""
        return workflow.stage_configs(None if self.simulator is None else self.simulator.name, self.preset)

    def set_simulator(self, simulator: LoadedSimulator, spec: str) -> None:
        """A new simulator: true images, emulator and result of another simulator no longer apply."""
        self.simulator, self.simulator_spec = simulator, spec
        names = [p.name for p in simulator.parameters]
        if self.true is not None:
            made_by_another = self.true.params is not None and (
                self.true.params.shape[1] != len(names)
                or (self.true.param_names is not None and list(self.true.param_names) != names))
            if self.true.shape != tuple(simulator.image_shape) or made_by_another:
                # another simulator's closure-test images are no test of this one
                why = "they were simulated by another simulator" if made_by_another else \
                    f"they are {self.true.shape[0]}x{self.true.shape[1]}, {simulator.name} makes " \
                    f"{simulator.image_shape[0]}x{simulator.image_shape[1]}"
                self.true = None
                self.true_changed.emit(None)
                self.notice.emit(f"true images dropped ({why}): generate or load images for {simulator.name}")
            else:
                self.notice.emit(f"true images kept for {simulator.name}: they are data of the same "
                                 "image size, whichever simulator is chosen")
        if self.emulator is not None and [(p.name, p.low, p.high) for p in self.emulator.parameters] != \
                [(p.name, p.low, p.high) for p in simulator.parameters]:
            self.set_emulator(None)  # trained for other parameters or ranges: its map to them no longer holds
        self.set_result(None, None)
        self.set_bank(None)
        self.simulator_changed.emit(simulator)

    def set_bank(self, path: str | None, size: int = 0) -> None:
        """A complete bank of the simulator (checked by the caller), or None."""
        self.bank_path, self.bank_size = path, size if path else 0
        self.bank_changed.emit(path)

    def set_true(self, true: TrueImages) -> None:
        """New true images (validated by the caller)."""
        self.true = true
        self.set_result(None, None)
        self.true_changed.emit(true)

    def set_emulator(self, emulator: TrainedEmulator | None, path: str | None = None,
                     state: dict[str, Any] | None = None) -> None:
        """A newly trained or loaded emulator, with its pretraining ``state`` when it can be trained further.

        A calibration state belongs to the emulator it ran through, so it is dropped.
        """
        self.emulator, self.emulator_path = emulator, path
        self._keep_state("pretrain", state)
        self._keep_state("calibrate", None)
        self.emulator_changed.emit(emulator)

    def set_result(self, outcome: CalibrationOutcome | None, result: dict[str, Any] | None,
                   state: dict[str, Any] | None = None) -> None:
        """A finished calibration's outcome and result document, with its state for continuing it."""
        self.outcome, self.result = outcome, result
        self._keep_state("calibrate", state)
        self.result_changed.emit(result)

    def _keep_state(self, stage: str, state: dict[str, Any] | None) -> None:
        if state is None:
            self.training_state.pop(stage, None)
        else:
            self.training_state[stage] = state
