"""The emulator explorer: one slider per parameter, the emulator's image redrawn as a slider moves, beside the
simulator's image for the same parameters and the difference between the two.

The emulator is fast, so it runs on the GUI thread, once per event-loop pass at most: slider moves that come
faster than it draws are merged into one draw of the latest values.  The user's simulator may take seconds, so
it runs in a thread of its own, one image at a time; a request made while one runs replaces any other waiting
request, and an answer that a newer request has overtaken is dropped.
"""

from __future__ import annotations

import math
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import numpy as np
import pyqtgraph as pg
import torch
from PySide6.QtCore import QObject, QPointF, QSize, Qt, QTimer, Signal
from PySide6.QtGui import QColor, QPainter, QPaintEvent, QPolygonF, QResizeEvent, QShowEvent
from PySide6.QtWidgets import (
    QCheckBox,
    QFrame,
    QGridLayout,
    QHBoxLayout,
    QLabel,
    QPushButton,
    QScrollArea,
    QSizePolicy,
    QSlider,
    QStackedWidget,
    QStyle,
    QStyleOptionSlider,
    QVBoxLayout,
    QWidget,
)

from ...core.emulator import TrainedEmulator
from ...core.errors import one_line
from ...core.parameters import Parameter
from ...core.simulators import BUILTIN_SIMULATORS, LoadedSimulator
from ..session import Session
from ..widgets import PALETTE

STEPS = 1000                    # slider positions over each parameter's range
BEST_COLOUR = PALETTE[0]        # as the calibration histograms draw the best match ...
DEFAULT_COLOUR = PALETTE[1]     # ... and the default value
MIN_DIFFERENCE_SCALE = 0.02     # the difference's colour scale never shrinks below this: noise stays pale
NO_EMULATOR = ("There is no emulator to explore yet. Train one in the Pretraining panel (Start), or load one "
               "trained before with File ▸ Load emulator…; its sliders then appear here.")
BUSY_TIP = ("A run is in progress: your simulator may not be safe to call from two threads at once, so the "
            "explorer simulates again when the run ends. The emulator's image still follows the sliders.")


def decimals_for(low: float, high: float) -> int:
    """Digits after the point that tell one slider step from the next over [low, high]."""
    step = (high - low) / STEPS
    return min(6, max(0, math.ceil(-math.log10(step))))


def format_value(value: float, parameter: Parameter) -> str:
    """A parameter's value as the explorer shows it: to the sliders' resolution, with its unit."""
    text = f"{value:.{decimals_for(parameter.low, parameter.high)}f}"
    return f"{text} {parameter.unit}" if parameter.unit else text


class MarkedSlider(QSlider):
    """A horizontal slider with small coloured triangles under its groove where reference values lie."""

    MARK = 7  # pixels of a mark's triangle

    def __init__(self, parent: QWidget | None = None):
        super().__init__(Qt.Orientation.Horizontal, parent)
        self.setRange(0, STEPS)
        self.setPageStep(STEPS // 20)
        self.marks: dict[str, tuple[int, QColor]] = {}
        # room under the groove for the marks: the style keeps the groove in the middle of the widget
        self.setMinimumHeight(super().sizeHint().height() + 2 * self.MARK + 2)

    def set_mark(self, key: str, position: int | None, colour: str) -> None:
        """Mark slider ``position`` in ``colour`` under the name ``key``; None takes the mark away."""
        if position is None:
            self.marks.pop(key, None)
        else:
            self.marks[key] = (position, QColor(colour))
        self.update()

    def mark_x(self, position: int) -> float:
        """Where the handle's centre is when the slider stands at ``position``, in pixels."""
        option = QStyleOptionSlider()
        self.initStyleOption(option)
        style = self.style()
        groove = style.subControlRect(QStyle.ComplexControl.CC_Slider, option, QStyle.SubControl.SC_SliderGroove,
                                      self)
        handle = style.subControlRect(QStyle.ComplexControl.CC_Slider, option, QStyle.SubControl.SC_SliderHandle,
                                      self)
        span = groove.width() - handle.width()
        return groove.x() + handle.width() / 2 + QStyle.sliderPositionFromValue(self.minimum(), self.maximum(),
                                                                                 position, span)

    def paintEvent(self, event: QPaintEvent) -> None:  # noqa: N802 (Qt's name)
        super().paintEvent(event)
        if not self.marks:
            return
        painter = QPainter(self)
        painter.setRenderHint(QPainter.RenderHint.Antialiasing)
        painter.setPen(Qt.PenStyle.NoPen)
        bottom = self.height() - 1
        # the best match last, so it stays visible where it lies on the default
        for _key, (position, colour) in sorted(self.marks.items(), key=lambda item: item[0] == "best"):
            x = self.mark_x(position)
            painter.setBrush(colour)
            painter.drawPolygon(QPolygonF([QPointF(x, bottom - self.MARK), QPointF(x - self.MARK / 1.6, bottom),
                                           QPointF(x + self.MARK / 1.6, bottom)]))
        painter.end()


class ParameterControl(QWidget):
    """One parameter's slider in physical units: its name and unit, its value, its range at the slider's ends,
    and marks (with their values written below) for the default and, after a calibration, the best match.

    The control keeps the exact physical value: a button may set a value between two slider steps, and it is
    that value the images are drawn for.
    """

    changed = Signal()    # the user moved the slider (it may still be held)
    released = Signal()   # the user let go of the slider, or moved it by a step (keys, a click on the groove)

    def __init__(self, parameter: Parameter, parent: QWidget | None = None):
        super().__init__(parent)
        self.parameter = parameter
        self.value = float(np.clip(parameter.default, parameter.low, parameter.high))
        self.best: tuple[float, float | None] | None = None
        self.name_label = QLabel(f"<b>{parameter.name}</b>" + (f" [{parameter.unit}]" if parameter.unit else ""))
        self.value_label = QLabel()
        self.value_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        self.value_label.setStyleSheet("font-weight: bold;")
        self.slider = MarkedSlider()
        self.slider.setToolTip(f"{parameter.label}: from {parameter.low:g} to {parameter.high:g}; "
                               f"▲ red: the default ({parameter.default:g}), ▲ blue: the best match")
        self.low_label = QLabel(f"{parameter.low:g}")
        self.high_label = QLabel(f"{parameter.high:g}")
        self.low_label.setAlignment(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter)
        for label in (self.low_label, self.high_label):
            label.setStyleSheet("color: #555;")
            label.setMinimumWidth(30)   # the sliders of short and long range numbers line up
        self.key_label = QLabel()
        self.key_label.setTextFormat(Qt.TextFormat.RichText)

        layout = QGridLayout(self)
        layout.setContentsMargins(2, 2, 2, 6)
        layout.setVerticalSpacing(0)
        layout.addWidget(self.name_label, 0, 0, 1, 2)
        layout.addWidget(self.value_label, 0, 2, 1, 2)
        layout.addWidget(self.low_label, 1, 0)
        layout.addWidget(self.slider, 1, 1, 1, 2)
        layout.addWidget(self.high_label, 1, 3)
        layout.addWidget(self.key_label, 2, 1, 1, 2)
        layout.setColumnStretch(1, 1)
        layout.setColumnStretch(2, 1)

        self.slider.set_mark("default", self.position_of(parameter.default), DEFAULT_COLOUR)
        self.set_value(self.value)
        self._show_key()
        self.slider.valueChanged.connect(self._slider_moved)
        self.slider.sliderReleased.connect(self.released)

    def position_of(self, value: float) -> int:
        """The slider position nearest ``value`` (the ends for values outside the range)."""
        p = self.parameter
        return int(round(float(np.clip((value - p.low) / (p.high - p.low), 0.0, 1.0)) * STEPS))

    def value_at(self, position: int) -> float:
        """The physical value of slider ``position``."""
        p = self.parameter
        return p.low + (p.high - p.low) * position / STEPS

    def set_value(self, value: float) -> None:
        """Show ``value`` (clipped to the range) without announcing it as the user's move."""
        p = self.parameter
        self.value = float(np.clip(value, p.low, p.high))
        self.slider.blockSignals(True)
        self.slider.setValue(self.position_of(self.value))
        self.slider.blockSignals(False)
        self.value_label.setText(format_value(self.value, p))

    def set_best(self, mean: float | None, std: float | None = None) -> None:
        """Mark the best match's mean (and say its std), or take the mark away (None)."""
        self.best = None if mean is None else (float(mean), None if std is None else float(std))
        self.slider.set_mark("best", None if mean is None else self.position_of(mean), BEST_COLOUR)
        self._show_key()

    def _show_key(self) -> None:
        p = self.parameter
        parts = [f'<span style="color:{DEFAULT_COLOUR}">▲ default {format_value(p.default, p)}</span>']
        if self.best is not None:
            mean, std = self.best
            spread = "" if std is None else f" ± {format_value(std, p)}"
            parts.append(f'<span style="color:{BEST_COLOUR}">▲ best {format_value(mean, p)}{spread}</span>')
        self.key_label.setText(" &nbsp;&nbsp; ".join(parts))

    def _slider_moved(self, position: int) -> None:
        self.value = self.value_at(position)
        self.value_label.setText(format_value(self.value, self.parameter))
        self.changed.emit()
        if not self.slider.isSliderDown():   # a key or a click on the groove: a finished move, as a release is
            self.released.emit()


@dataclass
class SimulationRequest:
    """One simulator image asked for: the values, the noise draw and the explorer's state it belongs to."""

    number: int
    generation: int        # the emulator and simulator it was asked with (an answer for others is dropped)
    draw: int              # the explorer's noise draw
    values: np.ndarray     # (P,) physical units
    simulator: LoadedSimulator
    noise: torch.Tensor | None


class _Answers(QObject):
    """Carries the simulator thread's answers to the GUI thread (a queued signal); the thread touches no widget."""

    answered = Signal(int, object, str)   # request number, the (H, W) image or None, the error or ""


class EmulatorExplorer(QWidget):
    """Sliders over the emulator's parameters and what the emulator (live), the simulator (in the background,
    on request) and their difference show at those values.

    Buttons set the sliders to the best match, to a sample of the calibration's best-match samples (a uniform
    draw over the ranges before any calibration) or to the defaults. For a stochastic emulator the random input
    stays fixed while the sliders move, so the image changes with the parameters alone; "New draw" takes
    another. The simulator is run by the Simulate button and, with "simulate on release" on, when a slider is
    let go; never while a run is in progress (``set_busy``).
    """

    drawn = Signal()                # the emulator's image was redrawn
    simulated = Signal()            # a simulator image (and the difference) is shown
    simulation_failed = Signal(str)

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.setObjectName("emulatorExplorer")
        self.setMinimumWidth(360)
        self.session = session
        self.parameters: list[Parameter] = []
        self.controls: list[ParameterControl] = []
        self.draw_count = 0                       # emulator images drawn: how many slider moves were coalesced
        self.emulator_image: np.ndarray | None = None
        self.simulator_image: np.ndarray | None = None
        self.difference: np.ndarray | None = None
        self.simulated_values: np.ndarray | None = None
        self.busy = False
        self.emulator_error = ""      # why the emulator's last draw failed
        self.simulation_error = ""    # why the simulator's last image failed
        self._framed: dict[int, tuple[int, ...]] = {}
        self._shown_title = ("simulator", "#222")
        self.rng = np.random.default_rng()
        self._noise_generator = torch.Generator().manual_seed(int(self.rng.integers(2**31)))
        self._emulator_noise: torch.Tensor | None = None
        self._draws_shared = False   # the emulator is fed the very random numbers the simulator uses
        self._simulator_noise: torch.Tensor | None = None
        self._draw = 0             # which noise draw the images use
        self._simulated_draw = -1
        self._generation = 0       # bumped when the emulator or simulator changes: older answers no longer apply
        self._requests = 0
        self._running: SimulationRequest | None = None
        self._waiting: SimulationRequest | None = None
        self._answers = _Answers(self)
        self._answers.answered.connect(self._on_answer)
        # one thread, one simulation at a time: a user's simulator need not be safe to call concurrently.
        # Serial torch in it: a second OpenMP pool beside training's slows training (see keep_gui_thread_serial)
        self._executor = ThreadPoolExecutor(1, "explorer-simulator", initializer=torch.set_num_threads,
                                            initargs=(1,))
        # a zero-interval single shot: every slider move of one event-loop pass becomes one draw of the latest
        self._draw_timer = QTimer(self)
        self._draw_timer.setSingleShot(True)
        self._draw_timer.setInterval(0)
        self._draw_timer.timeout.connect(self.draw_emulator)

        self.empty_label = QLabel(NO_EMULATOR)
        self.empty_label.setObjectName("explorerEmpty")
        self.empty_label.setWordWrap(True)
        self.empty_label.setAlignment(Qt.AlignmentFlag.AlignCenter)
        self.empty_label.setMargin(24)

        self.images = pg.GraphicsLayoutWidget()
        self.images.setBackground("w")
        self.image_titles: list[pg.LabelItem] = []
        self.image_items: list[pg.ImageItem] = []
        for col, (title, cmap) in enumerate((("emulator", "viridis"), ("simulator", "viridis"),
                                             ("difference", "CET-D1"))):
            self.image_titles.append(self.images.addLabel(title, row=0, col=col, color="#222", size="9pt"))
            view = self.images.addViewBox(row=1, col=col, lockAspect=True, invertY=True, enableMouse=False)
            view.setMenuEnabled(False)
            item = pg.ImageItem(axisOrder="row-major")   # (H, W) arrays, row 0 at the top: as ImageGrid shows them
            item.setLookupTable(pg.colormap.get(cmap).getLookupTable(nPts=256))
            view.addItem(item)
            self.image_items.append(item)
            self.images.ci.layout.setColumnStretchFactor(col, 1)
        self.caption = QLabel()   # under the images, wrapped: in the plot's layout a long one would widen a column
        self.caption.setWordWrap(True)
        self.caption.setStyleSheet("color: #444; font-size: 8pt;")
        self.emulator_item, self.simulator_item, self.difference_item = self.image_items
        self.views = [item.getViewBox() for item in self.image_items]

        self.simulation_label = QLabel()
        self.simulation_label.setWordWrap(True)
        self.best_button = QPushButton("Best match")
        self.best_button.setToolTip("Set every slider to the calibration's best-match mean")
        self.sample_button = QPushButton("Sample")
        self.default_button = QPushButton("Default")
        self.default_button.setToolTip("Set every slider to the default simulation's value")
        self.new_draw_button = QPushButton("New draw")
        self.new_draw_button.setToolTip("Draw new random numbers for the emulator (and the simulator, when it "
                                        "shares them); they stay fixed while the sliders move")
        self.simulate_button = QPushButton("Simulate")
        self.on_release_box = QCheckBox("simulate on release")
        self.on_release_box.setToolTip("Run the simulator whenever a slider is let go or a button sets them "
                                       "(in the background; a slow simulator's images come later)")
        buttons = QHBoxLayout()
        for button in (self.best_button, self.sample_button, self.default_button, self.new_draw_button):
            buttons.addWidget(button)
        buttons.addStretch(1)
        simulate_row = QHBoxLayout()
        simulate_row.addWidget(self.simulate_button)
        simulate_row.addWidget(self.on_release_box)
        simulate_row.addStretch(1)

        self.slider_area = QWidget()
        self.slider_layout = QVBoxLayout(self.slider_area)
        self.slider_layout.setContentsMargins(4, 4, 4, 4)
        self.slider_layout.addStretch(1)
        scroll = QScrollArea()
        scroll.setWidgetResizable(True)
        scroll.setFrameShape(QFrame.Shape.NoFrame)
        scroll.setWidget(self.slider_area)
        scroll.setHorizontalScrollBarPolicy(Qt.ScrollBarPolicy.ScrollBarAlwaysOff)
        scroll.setMinimumHeight(120)

        content = QWidget()
        content_layout = QVBoxLayout(content)
        content_layout.setContentsMargins(4, 4, 4, 4)
        content_layout.addWidget(self.images)
        content_layout.addWidget(self.caption)
        content_layout.addWidget(self.simulation_label)
        content_layout.addLayout(simulate_row)
        content_layout.addLayout(buttons)
        content_layout.addWidget(scroll, 1)
        self.stack = QStackedWidget()
        self.stack.addWidget(self.empty_label)
        self.stack.addWidget(content)
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self.stack)
        self.setSizePolicy(QSizePolicy.Policy.Preferred, QSizePolicy.Policy.Expanding)

        self.best_button.clicked.connect(self.set_best_match)
        self.sample_button.clicked.connect(self.set_sample)
        self.default_button.clicked.connect(self.set_defaults)
        self.new_draw_button.clicked.connect(self.new_draw)
        self.simulate_button.clicked.connect(self.simulate)
        session.emulator_changed.connect(self._emulator_changed)
        session.simulator_changed.connect(self._simulator_changed)
        session.result_changed.connect(self._result_changed)
        self._simulator_changed(session.simulator)
        self._emulator_changed(session.emulator)

    def resizeEvent(self, event: QResizeEvent) -> None:  # noqa: N802 (Qt's name)
        super().resizeEvent(event)
        # three square images side by side: as tall as a third of the width, plus their titles; the sliders
        # take the rest of the height
        self.images.setFixedHeight(max(120, (self.width() - 16) // 3 + 28))

    def sizeHint(self) -> QSize:  # noqa: N802 (Qt's name)
        # a dock opens at its widget's size hint: wide enough for three images, narrow enough to leave the panels
        return QSize(460, 720)

    # -- the sliders ------------------------------------------------------------------------------------
    def values(self) -> np.ndarray:
        """The sliders' values, (P,) in physical units."""
        return np.array([c.value for c in self.controls], dtype=np.float64)

    def set_values(self, values: np.ndarray) -> None:
        """Set the sliders to ``values`` (physical units, clipped to the ranges), as one finished move."""
        for control, value in zip(self.controls, values):
            control.set_value(float(value))
        self._moved()
        self._released()

    def set_defaults(self) -> None:
        """Every slider to its parameter's default."""
        self.set_values(np.array([p.default for p in self.parameters]))

    def best_match(self) -> np.ndarray | None:
        """The result's best-match means in the sliders' order, or None without a result for these parameters."""
        rows = {row.get("name"): row for row in (self.session.result or {}).get("parameters", [])}
        if not self.parameters or any(p.name not in rows for p in self.parameters):
            return None
        return np.array([float(rows[p.name]["mean"]) for p in self.parameters])

    def set_best_match(self) -> None:
        """Every slider to the best-match mean (nothing happens without a result)."""
        best = self.best_match()
        if best is not None:
            self.set_values(best)

    def _samples(self) -> np.ndarray | None:
        """The calibration's best-match samples when they are in the sliders' parameters' order."""
        outcome, result = self.session.outcome, self.session.result
        if outcome is None or result is None or self.best_match() is None:
            return None
        names = [row.get("name") for row in result.get("parameters", [])]
        samples = np.asarray(outcome.samples, dtype=np.float64)
        if samples.ndim != 2 or len(samples) == 0 or names != [p.name for p in self.parameters] \
                or samples.shape[1] != len(names):
            return None
        return samples

    def set_sample(self) -> None:
        """The sliders to a random best-match sample; before any calibration, to a uniform draw over the ranges."""
        samples = self._samples()
        if samples is not None:
            self.set_values(samples[self.rng.integers(len(samples))])
        elif self.parameters:
            self.set_values(np.array([self.rng.uniform(p.low, p.high) for p in self.parameters]))

    def _moved(self) -> None:
        self._draw_timer.start()   # restarting a pending single shot keeps one draw waiting, not many

    def _released(self) -> None:
        if self.on_release_box.isChecked() and self.simulation_blocked() is None:
            self.simulate()

    def _rebuild(self, parameters: list[Parameter]) -> None:
        for control in self.controls:
            self.slider_layout.removeWidget(control)
            control.deleteLater()
        self.parameters = list(parameters)
        self.controls = []
        for i, parameter in enumerate(self.parameters):
            control = ParameterControl(parameter)
            control.changed.connect(self._moved)
            control.released.connect(self._released)
            self.slider_layout.insertWidget(i, control)
            self.controls.append(control)

    # -- the session ------------------------------------------------------------------------------------
    def _emulator_changed(self, emulator: TrainedEmulator | None) -> None:
        self._forget_simulation()
        self.emulator_error = ""
        if emulator is None:
            self._rebuild([])
            self.emulator_image = None
            self.emulator_item.clear()
            self.stack.setCurrentWidget(self.empty_label)
            return
        same_box = [(p.name, p.low, p.high) for p in emulator.parameters] == \
            [(p.name, p.low, p.high) for p in self.parameters]
        kept = self.values() if same_box else None   # a retrained emulator of the same box: stay where the user was
        self._rebuild(emulator.parameters)
        if kept is not None:
            for control, value in zip(self.controls, kept):
                control.set_value(float(value))
        self.stack.setCurrentIndex(1)
        self._draw_noise()
        self._show_result()
        self._show_stochastic()
        self._update_simulate_button()
        self._moved()
        if self.isVisible():
            self._released()   # with simulate on release: the simulator's image beside the first one

    def _simulator_changed(self, simulator: LoadedSimulator | None) -> None:
        self._forget_simulation()
        # the built-ins are cheap and vectorised: simulating on release costs nothing; a user's simulator may be
        # slow or charged by the image, so there it waits for the Simulate button unless asked otherwise
        cheap = simulator is not None and type(simulator.plugin) in BUILTIN_SIMULATORS.values()
        self.on_release_box.setChecked(cheap)
        if self.session.emulator is not None:
            self._draw_noise()   # the simulator's own random numbers feed a noise-image emulator
            self._show_stochastic()
            self._moved()
        self._update_simulate_button()

    def _result_changed(self, _result: object) -> None:
        self._show_result()

    def _show_result(self) -> None:
        rows = {row.get("name"): row for row in (self.session.result or {}).get("parameters", [])}
        for control in self.controls:
            row = rows.get(control.parameter.name)
            control.set_best(None if row is None else row.get("mean"), None if row is None else row.get("std"))
        self.best_button.setEnabled(self.best_match() is not None)
        self.best_button.setToolTip("Set every slider to the calibration's best-match mean" if
                                    self.best_button.isEnabled() else "There is no calibration result yet")
        self.sample_button.setToolTip(
            "Set the sliders to one of the calibration's best-match samples, drawn at random"
            if self._samples() is not None else
            "Set the sliders to a uniform random draw over the ranges (after a calibration: to a best-match sample)")

    # -- noise --------------------------------------------------------------------------------------------
    def stochastic(self) -> bool:
        """Whether the emulator or the simulator draws random numbers: then "New draw" means something."""
        emulator, simulator = self.session.emulator, self.session.simulator
        return bool(emulator is not None and emulator.stochastic) or bool(simulator is not None
                                                                          and simulator.stochastic)

    def _show_stochastic(self) -> None:
        self.new_draw_button.setVisible(self.stochastic())

    def _draw_noise(self) -> None:
        """Draw the random input the images use until the next "New draw"."""
        emulator, simulator = self.session.emulator, self.session.simulator
        self._draw += 1
        shared = None
        if simulator is not None and self._simulator_matches() is None:
            shared = simulator.sample_noise(1, generator=self._noise_generator, device="cpu")
        self._simulator_noise = shared
        self._emulator_noise = None
        if emulator is not None:
            own = emulator.sample_noise(1, generator=self._noise_generator, device="cpu")
            # an emulator fed the simulator's draws gets the very draws the simulator image is made from
            fed = own is not None and shared is not None and tuple(own.shape) == tuple(shared.shape) \
                and emulator.net.noise_image
            self._emulator_noise = shared if fed else own
        self._draws_shared = shared is not None and self._emulator_noise is shared

    def new_draw(self) -> None:
        """New random numbers for the images; they stay fixed while the sliders move."""
        self._draw_noise()
        self._moved()
        self._released()

    # -- drawing ------------------------------------------------------------------------------------------
    def showEvent(self, event: QShowEvent) -> None:  # noqa: N802 (Qt's name)
        super().showEvent(event)
        self._moved()   # moves made while hidden were not drawn
        if self.simulator_image is None and self._running is None:
            self._released()

    def draw_emulator(self) -> None:
        """Run the emulator at the sliders' values and show its image (skipped while the explorer is hidden)."""
        emulator = self.session.emulator
        if emulator is None or not self.controls or not self.isVisible():
            return
        params = torch.as_tensor(self.values()[None], dtype=torch.float32)
        try:
            image = self._emulate(emulator, params, self._emulator_noise)
        except RuntimeError as exc:   # e.g. a run moving the emulator to another device this very moment
            self.emulator_error = f"The emulator could not be run: {one_line(exc)}"
            self._show_simulation_state()
            return
        self.emulator_error = ""
        self.emulator_image = image
        self.emulator_item.setImage(image, levels=(0.0, 1.0), autoLevels=False)
        self._frame(0, image)
        self.draw_count += 1
        self._show_simulation_state()
        self.drawn.emit()

    @staticmethod
    def _emulate(emulator: TrainedEmulator, params: torch.Tensor, noise: torch.Tensor | None) -> np.ndarray:
        with torch.no_grad():
            return emulator.simulate(params, noise)[0].float().cpu().numpy()

    def _frame(self, col: int, image: np.ndarray) -> None:
        if self._framed.get(col) != image.shape:   # once per image size: ranging on every draw costs frames
            self._framed[col] = image.shape
            height, width = image.shape
            self.views[col].setRange(xRange=(0, width), yRange=(0, height), padding=0.02)

    # -- the simulator ------------------------------------------------------------------------------------
    def _simulator_matches(self) -> str | None:
        """Why the session's simulator cannot be set beside the emulator, or None when it can."""
        simulator, emulator = self.session.simulator, self.session.emulator
        if simulator is None:
            return "No simulator is chosen: choose one in the True images panel."
        if emulator is None:
            return None
        names = [p.name for p in simulator.parameters]
        if names != [p.name for p in emulator.parameters]:
            return (f"The simulator's parameters ({', '.join(names)}) are not the emulator's "
                    f"({', '.join(p.name for p in emulator.parameters)}): there is nothing to compare.")
        if tuple(simulator.image_shape) != tuple(emulator.image_shape):
            return (f"The simulator makes {simulator.image_shape[0]}x{simulator.image_shape[1]} images, the "
                    f"emulator {emulator.image_shape[0]}x{emulator.image_shape[1]}: there is nothing to compare.")
        return None

    def simulation_blocked(self) -> str | None:
        """Why the simulator cannot be run now, or None when it can."""
        if self.session.emulator is None:
            return "There is no emulator to compare with."
        return self._simulator_matches() or (BUSY_TIP if self.busy else None)

    def set_busy(self, busy: bool) -> None:
        """A run starts (True) or ends (False) in the main window: the simulator is left alone while it runs."""
        self.busy = busy
        self._update_simulate_button()
        self._show_simulation_state()

    def _update_simulate_button(self) -> None:
        why = self.simulation_blocked()
        self.simulate_button.setEnabled(why is None)
        self.simulate_button.setToolTip(why or "Run the simulator at the sliders' values, in the background")

    def simulate(self) -> bool:
        """Ask for the simulator's image at the sliders' values (the Simulate button); False when it cannot run.

        The image is made in the background. A request made while another runs waits, replacing any request
        already waiting; an answer overtaken by a newer request is dropped.
        """
        if self.simulation_blocked() is not None or not self.controls:
            return False
        self._requests += 1
        params = torch.as_tensor(self.values()[None], dtype=torch.float32)
        request = SimulationRequest(self._requests, self._generation, self._draw, self.values(),
                                    self.session.simulator, self._simulator_noise)
        self.simulation_error = ""
        if self._running is None:
            self._start(request, params)
        else:
            self._waiting = request
        self._show_simulation_state()
        return True

    def _start(self, request: SimulationRequest, params: torch.Tensor | None = None) -> None:
        self._running = request
        if params is None:
            params = torch.as_tensor(request.values[None], dtype=torch.float32)
        self._executor.submit(_simulate_one, self._answers, request.number, request.simulator, params,
                              request.noise)

    def _on_answer(self, number: int, image: np.ndarray | None, error: str) -> None:
        request, self._running = self._running, None
        waiting, self._waiting = self._waiting, None
        if waiting is not None:
            self._start(waiting)        # this answer is already overtaken: the newer request runs instead
        elif request is not None and request.number == number and request.generation == self._generation:
            if image is None:
                self.simulation_error = f"The simulator failed: {error}"
                self.simulation_failed.emit(error)
            else:
                self._show_simulation(request, image)
        self._show_simulation_state()

    def _show_simulation(self, request: SimulationRequest, image: np.ndarray) -> None:
        emulator = self.session.emulator
        params = torch.as_tensor(request.values[None], dtype=torch.float32)
        noise = self._emulator_noise if request.draw == self._draw else None
        try:
            emulated = self._emulate(emulator, params, noise)
        except RuntimeError as exc:
            self.emulator_error = f"The emulator could not be run: {one_line(exc)}"
            return
        self.simulator_image, self.simulated_values, self._simulated_draw = image, request.values, request.draw
        self.difference = emulated - image
        scale = max(float(np.abs(self.difference).max()), MIN_DIFFERENCE_SCALE)
        self.simulator_item.setImage(image, levels=(0.0, 1.0), autoLevels=False)
        self.difference_item.setImage(self.difference, levels=(-scale, scale), autoLevels=False)
        self._frame(1, image)
        self._frame(2, self.difference)
        own_noise = request.simulator.stochastic and not (self._draws_shared and request.draw == self._draw)
        self.caption.setText(f"difference = emulator − simulator: red where the emulator is brighter, blue where "
                             f"it is dimmer; colour scale ±{scale:.2f}"
                             + (". It includes the simulator's own random noise." if own_noise else ""))
        self.simulated.emit()

    def _forget_simulation(self) -> None:
        """The emulator or simulator changed: the simulator image and any answer on its way no longer apply."""
        self._generation += 1
        self._waiting = None
        self.simulation_error = ""
        self.simulator_image = self.difference = self.simulated_values = None
        self.simulator_item.clear()
        self.difference_item.clear()
        self.caption.setText("")
        self._show_simulation_state()

    def simulation_is_current(self) -> bool:
        """Whether the simulator image shown is for the sliders' values and the images' noise draw."""
        return (self.simulated_values is not None and self._simulated_draw == self._draw
                and np.array_equal(self.simulated_values, self.values()))

    def _show_simulation_state(self) -> None:
        blocked = self.simulation_blocked()
        stale = self.simulator_image is not None and not self.simulation_is_current()
        title = ("simulator (earlier)", "#888") if stale else ("simulator", "#222")
        if self._shown_title != title:   # a label's text is laid out anew on every setText: not once a frame
            self._shown_title = title
            self.image_titles[1].setText(title[0], color=title[1])
        if self.emulator_error or self.simulation_error:
            self._say(self.emulator_error or self.simulation_error, error=True)
        elif self.session.emulator is None:
            self._say("")
        elif blocked is not None and blocked != BUSY_TIP:
            self._say(blocked)
        elif self._running is not None:
            self._say("simulating…" + (" (then the newer values)" if self._waiting is not None else ""))
        elif self.simulator_image is None:
            self._say("Simulate runs the simulator at these values" + (" when the run ends." if self.busy else "."))
        elif not stale:
            self._say("The simulator image and the difference are for these values.")
        else:
            self._say("The simulator image and the difference are for earlier values: "
                      + ("simulate again when the run ends." if self.busy else "Simulate to update them."))

    def _say(self, text: str, error: bool = False) -> None:
        self.simulation_label.setStyleSheet("color: #b00020;" if error else "color: #333;")
        self.simulation_label.setText(text)

    def shutdown(self, wait: bool = True) -> None:
        """Drop waiting requests and end the simulator thread (after the image it is making, when ``wait``)."""
        self._waiting = None
        self._executor.shutdown(wait=wait, cancel_futures=True)


def _simulate_one(answers: _Answers, number: int, simulator: LoadedSimulator, params: torch.Tensor,
                  noise: torch.Tensor | None) -> None:
    """The simulator thread's task: one image, sent back through ``answers`` (no widget is touched here)."""
    try:
        images = simulator.simulate(params, noise=noise, check=True)
        image, error = images[0].detach().cpu().numpy().copy(), ""
    except Exception as exc:  # a plugin may raise anything: the explorer says it in one sentence
        image, error = None, one_line(exc)
    try:
        answers.answered.emit(number, image, error)
    except RuntimeError:
        pass  # the explorer was closed while the simulator ran: nobody is waiting for the image
