"""True images panel: choose a simulator, generate a closure-test set or load files, and look at them."""

from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pyqtgraph as pg
from PySide6.QtCore import Signal
from PySide6.QtWidgets import (
    QComboBox,
    QDialog,
    QDialogButtonBox,
    QDoubleSpinBox,
    QFileDialog,
    QFormLayout,
    QGridLayout,
    QGroupBox,
    QHBoxLayout,
    QHeaderView,
    QInputDialog,
    QLabel,
    QLineEdit,
    QPushButton,
    QSpinBox,
    QTableWidget,
    QVBoxLayout,
    QWidget,
)

from ...core.data import DataError, load_true_images, make_closure_set, split_root_selector
from ...core.simulators import BUILTIN_SIMULATORS, RANGES_MARK, SimulatorError, load_simulator, split_ranges
from ..session import Session
from ..widgets import ImageGrid

PLUGIN_ITEM = "plugin file…"
FILE_FILTER = "True images (*.npz *.npy *.h5 *.hdf5 *.root);;All files (*)"


def spec_with_ranges(spec: str, own: list, ranges: dict[str, tuple[float, float]]) -> str:
    """The simulator spec giving ``ranges``: the plugin's ``own`` parameters' ranges are left out."""
    base, _ = split_ranges(spec)
    changed = [f"{p.name}={ranges[p.name][0]:g}:{ranges[p.name][1]:g}" for p in own
               if ranges[p.name] != (p.low, p.high)]
    return base + (RANGES_MARK + ",".join(changed) if changed else "")


class RangesDialog(QDialog):
    """The simulator's parameter ranges in a table of low and high boxes; the plugin's own are one click away."""

    def __init__(self, simulator, parent: QWidget | None = None):
        super().__init__(parent)
        self.setWindowTitle(f"Parameter ranges of {simulator.name}")
        self.own = list(simulator.plugin.parameters)
        self.table = QTableWidget(len(simulator.parameters), 2)
        self.table.setHorizontalHeaderLabels(["low", "high"])
        self.table.setVerticalHeaderLabels([p.label for p in simulator.parameters])
        self.table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.boxes: dict[str, tuple[QDoubleSpinBox, QDoubleSpinBox]] = {}
        for i, p in enumerate(simulator.parameters):
            pair = []
            for column, value in enumerate((p.low, p.high)):
                box = QDoubleSpinBox()
                box.setDecimals(6)
                box.setRange(-1e12, 1e12)
                box.setValue(value)
                box.setToolTip(f"{'lowest' if column == 0 else 'highest'} value of {p.name} pretraining covers "
                               "and calibration may reach")
                self.table.setCellWidget(i, column, box)
                pair.append(box)
            self.boxes[p.name] = (pair[0], pair[1])
        note = QLabel("Pretraining draws parameters from these ranges and the calibration stays inside them. "
                      "A new range needs a new bank and emulator.")
        note.setWordWrap(True)
        buttons = QDialogButtonBox(QDialogButtonBox.StandardButton.Ok | QDialogButtonBox.StandardButton.Cancel
                                   | QDialogButtonBox.StandardButton.RestoreDefaults)
        buttons.accepted.connect(self.accept)
        buttons.rejected.connect(self.reject)
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).setText("The simulator's own")
        buttons.button(QDialogButtonBox.StandardButton.RestoreDefaults).clicked.connect(self.restore_own)
        layout = QVBoxLayout(self)
        layout.addWidget(self.table)
        layout.addWidget(note)
        layout.addWidget(buttons)
        self.resize(420, 120 + 34 * len(simulator.parameters))

    def restore_own(self) -> None:
        """Put the plugin's own ranges back in the boxes."""
        for p in self.own:
            low, high = self.boxes[p.name]
            low.setValue(p.low)
            high.setValue(p.high)

    def ranges(self) -> dict[str, tuple[float, float]]:
        """The ranges the boxes show, by parameter name."""
        return {name: (low.value(), high.value()) for name, (low, high) in self.boxes.items()}


def plugin_classes(path: str) -> list[str]:
    """Class names defined at the top of a Python file, read without running it."""
    try:
        tree = ast.parse(Path(path).read_text(encoding="utf-8"))
    except (OSError, SyntaxError, UnicodeDecodeError):
        return []
    return [node.name for node in tree.body if isinstance(node, ast.ClassDef)]


class TrueImagesPanel(QWidget):
    """Panel 1: the simulator and the true images the calibration will match."""

    error = Signal(str)            # a message for the user
    job_requested = Signal(object)  # a job (true images, or a simulator to load), run by the main window's worker

    def __init__(self, session: Session, parent: QWidget | None = None):
        super().__init__(parent)
        self.session = session
        self.setAcceptDrops(True)
        self.last_folder = str(Path.cwd())

        self.simulator_box = QComboBox()
        self.simulator_box.addItems(list(BUILTIN_SIMULATORS) + [PLUGIN_ITEM])
        self.simulator_box.setToolTip("The simulator whose parameters are calibrated: the paper's case studies "
                                      "(lines, circles), your own plugin file (path/file.py:ClassName) or an "
                                      "external program declared in a TOML file (path/to/sim.toml)")
        self.simulator_info = QLabel()
        self.simulator_info.setWordWrap(True)
        self.ranges_button = QPushButton("Parameter ranges…")
        self.ranges_button.setToolTip("The range of each parameter that pretraining covers and calibration searches")
        self.ranges_dialog: RangesDialog | None = None

        self.param_table = QTableWidget(0, 2)
        self.param_table.setHorizontalHeaderLabels(["true mean", "true std"])
        self.param_table.setToolTip("Gaussian population of the closure test: each image gets its own "
                                    "parameters drawn from these means and standard deviations (physical units)")
        self.param_table.horizontalHeader().setSectionResizeMode(QHeaderView.ResizeMode.Stretch)
        self.count = QSpinBox()
        self.count.setRange(1, 1_000_000)
        self.count.setValue(10000)
        self.count.setToolTip("Number of true images to simulate")
        self.seed = QSpinBox()
        self.seed.setRange(0, 2**31 - 1)
        self.seed.setValue(1)
        self.seed.setToolTip("Random seed of the draw: the same seed gives the same images")
        self.generate_button = QPushButton("Generate closure-test images")
        self.load_button = QPushButton("Load true images…")
        self.load_button.setToolTip("Load .npz, .npy, HDF5, ROOT or a folder of PNG/TIFF files (or drop them here)")
        self.load_folder_button = QPushButton("Load folder…")
        # a ROOT file holding several sets of images needs a selector after its path, which no file dialog asks
        self.path_edit = QLineEdit()
        self.path_edit.setPlaceholderText("path, or file.root:selector (Enter loads)")
        self.path_edit.setToolTip("A path to load when Enter is pressed. A ROOT file with several sets of images "
                                  "takes a selector after its path: file.root:hits_* (TH2 histograms by name) or "
                                  "file.root:tree/branch (a branch of fixed-size image arrays)")

        gen_box = QGroupBox("Closure test: simulate true images")
        gen_layout = QVBoxLayout(gen_box)
        gen_layout.addWidget(self.param_table)
        form = QFormLayout()
        form.addRow("images", self.count)
        form.addRow("seed", self.seed)
        gen_layout.addLayout(form)
        gen_layout.addWidget(self.generate_button)
        gen_layout.addStretch(1)
        load_box = QGroupBox("Or load data")
        load_layout = QVBoxLayout(load_box)
        buttons_row = QHBoxLayout()
        buttons_row.addWidget(self.load_button)
        buttons_row.addWidget(self.load_folder_button)
        load_layout.addLayout(buttons_row)
        load_layout.addWidget(self.path_edit)

        left = QVBoxLayout()
        sim_row = QHBoxLayout()
        sim_row.addWidget(QLabel("Simulator"))
        sim_row.addWidget(self.simulator_box, 1)
        left.addLayout(sim_row)
        info_row = QHBoxLayout()
        info_row.addWidget(self.simulator_info, 1)
        info_row.addWidget(self.ranges_button)
        left.addLayout(info_row)
        left.addWidget(gen_box, 1)
        left.addWidget(load_box)

        self.info = QLabel("No true images yet: generate a closure-test set or load your data.")
        self.info.setWordWrap(True)
        self.grid = ImageGrid("sample true images")
        self.mean_image = ImageGrid("mean image")
        self.histogram = pg.PlotWidget(background="w")
        self.histogram.setTitle("pixel intensities (2000 images)", color="#222", size="10pt")
        self.histogram.setLabel("bottom", "pixel value")
        self.histogram.setLogMode(y=True)
        self.hist_curve = self.histogram.plot([], [], stepMode="center", fillLevel=None,
                                              pen=pg.mkPen("#1f77b4", width=2))
        right = QGridLayout()
        right.addWidget(self.info, 0, 0, 1, 2)
        right.addWidget(self.grid, 1, 0, 2, 1)
        right.addWidget(self.mean_image, 1, 1)
        right.addWidget(self.histogram, 2, 1)
        right.setColumnStretch(0, 3)
        right.setColumnStretch(1, 2)

        layout = QHBoxLayout(self)
        left_widget = QWidget()
        left_widget.setLayout(left)
        left_widget.setMaximumWidth(420)
        layout.addWidget(left_widget)
        layout.addLayout(right, 1)

        self.simulator_box.activated.connect(self._simulator_chosen)
        self.ranges_button.clicked.connect(self.edit_ranges)
        self.generate_button.clicked.connect(self.generate)
        self.load_button.clicked.connect(self.choose_file)
        self.load_folder_button.clicked.connect(self.choose_folder)
        self.path_edit.returnPressed.connect(self._path_entered)
        session.simulator_changed.connect(self._show_simulator)
        session.true_changed.connect(self.show_true)

    # -- simulator ------------------------------------------------------------------------------------
    def select_simulator(self, spec: str) -> bool:
        """Load a simulator by spec; on failure say why and keep the current one."""
        try:
            simulator = load_simulator(spec)
        except SimulatorError as exc:
            self.error.emit(str(exc))
            self._sync_box()
            return False
        self.session.set_simulator(simulator, spec)
        return True

    def request_simulator(self, spec: str) -> None:
        """Load a simulator in the worker thread (its check simulates a batch, slow for an expensive
        simulator); the session changes when it is loaded, and a refusal is said in the window."""
        self.job_requested.emit(lambda observe, control: load_simulator(spec))

    def sync_box(self) -> None:
        """Show the session's simulator in the box again (after a choice that did not load)."""
        self._sync_box()

    def _sync_box(self) -> None:
        spec = self.session.simulator_spec
        self.simulator_box.blockSignals(True)
        if spec and self.simulator_box.findText(spec) < 0:
            self.simulator_box.insertItem(self.simulator_box.count() - 1, spec)
        self.simulator_box.setCurrentText(spec or "lines")
        self.simulator_box.blockSignals(False)

    def _simulator_chosen(self, index: int) -> None:
        text = self.simulator_box.itemText(index)
        if text != PLUGIN_ITEM:
            self.request_simulator(text)
            return
        path, _ = QFileDialog.getOpenFileName(self, "Simulator plugin", self.last_folder,
                                              "Simulators (*.py *.toml)")
        if not path:
            self._sync_box()
            return
        self.last_folder = str(Path(path).parent)
        if path.lower().endswith(".toml"):  # an external program: the file is the spec
            self.request_simulator(path)
            return
        classes = plugin_classes(path)
        if not classes:
            self.error.emit(f"{path} defines no class; a plugin is a class with image_shape, parameters and simulate")
            self._sync_box()
            return
        name = classes[0]
        if len(classes) > 1:
            name, ok = QInputDialog.getItem(self, "Simulator class", "Class in " + Path(path).name, classes, 0, False)
            if not ok:
                self._sync_box()
                return
        self.request_simulator(f"{path}:{name}")

    def edit_ranges(self) -> None:
        """Open the ranges table (not modal: the window stays usable); OK loads the simulator with them."""
        simulator = self.session.simulator
        if simulator is None:
            self.error.emit("choose a simulator first")
            return
        self.ranges_dialog = RangesDialog(simulator, self)
        self.ranges_dialog.accepted.connect(self._ranges_chosen)
        self.ranges_dialog.open()

    def _ranges_chosen(self) -> None:
        dialog = self.ranges_dialog
        bad = [f"{name} ({low:g} is not below {high:g})" for name, (low, high) in dialog.ranges().items()
               if not low < high]
        if bad:
            self.error.emit(f"a range's low must be below its high: {', '.join(bad)}; the ranges are unchanged")
            return
        spec = spec_with_ranges(self.session.simulator_spec, dialog.own, dialog.ranges())
        if spec != self.session.simulator_spec:
            self.request_simulator(spec)

    def _show_simulator(self, simulator) -> None:
        self._sync_box()
        h, w = simulator.image_shape
        kind = "stochastic" if simulator.stochastic else "deterministic"
        self.simulator_info.setText(f"<b>{simulator.name}</b>: {h}x{w} images, {kind}, "
                                    f"{len(simulator.parameters)} parameters")
        params = simulator.parameters
        mean, std = simulator.example_population or (None, None)
        self.param_table.setRowCount(len(params))
        self.param_table.setVerticalHeaderLabels([p.label for p in params])
        self.mean_boxes, self.std_boxes = [], []
        for i, p in enumerate(params):
            span = p.high - p.low
            decimals = max(2, int(np.ceil(-np.log10(span / 1000))))
            m_box, s_box = QDoubleSpinBox(), QDoubleSpinBox()
            for box in (m_box, s_box):
                box.setDecimals(decimals)
                box.setSingleStep(span / 100)
                box.setSuffix(f" {p.unit}" if p.unit else "")
            m_box.setRange(p.low - span, p.high + span)
            s_box.setRange(0.0, span)
            m_box.setValue(mean[i] if mean else p.default)
            s_box.setValue(std[i] if std else 0.05 * span)
            m_box.setToolTip(f"Mean of {p.name} over the true images; pretraining covers [{p.low}, {p.high}] "
                             f"{p.unit}; the default simulation uses {p.default}")
            s_box.setToolTip(f"Image-to-image standard deviation of {p.name} in the true images")
            self.param_table.setCellWidget(i, 0, m_box)
            self.param_table.setCellWidget(i, 1, s_box)
            self.mean_boxes.append(m_box)
            self.std_boxes.append(s_box)
        height = self.param_table.horizontalHeader().height() + 2 * self.param_table.frameWidth()
        height += sum(self.param_table.rowHeight(i) for i in range(len(params)))
        self.param_table.setFixedHeight(height)

    # -- true images ----------------------------------------------------------------------------------
    def generate(self) -> None:
        """Ask the main window to simulate the closure-test set in its worker thread."""
        if self.session.simulator is None:
            self.error.emit("choose a simulator first")
            return
        simulator, device = self.session.simulator, self.session.device
        mean = [b.value() for b in self.mean_boxes]
        std = [b.value() for b in self.std_boxes]
        n, seed = self.count.value(), self.seed.value()

        def job(observe, control):
            return make_closure_set(simulator, mean, std, n, seed=seed, device=device)

        self.job_requested.emit(job)

    def choose_file(self) -> None:
        """File dialog for true images."""
        path, _ = QFileDialog.getOpenFileName(self, "True images", self.last_folder, FILE_FILTER)
        if path:
            self.load(path)

    def choose_folder(self) -> None:
        """Folder dialog for a folder of PNG/TIFF images."""
        path = QFileDialog.getExistingDirectory(self, "Folder of PNG or TIFF images", self.last_folder)
        if path:
            self.load(path)

    def _path_entered(self) -> None:
        if self.path_edit.text().strip():
            self.load(self.path_edit.text().strip())

    def load(self, path: str) -> bool:
        """Load true images (a path, or ``file.root:selector``); on failure show why and keep what was loaded
        before.  The path stays in the text entry, where a refused ROOT file can be given a selector."""
        self.path_edit.setText(str(path))
        simulator = self.session.simulator
        if simulator is None:
            self.error.emit("choose a simulator first")
            return False
        try:
            true = load_true_images(path, simulator.image_shape, [p.name for p in simulator.parameters])
        except DataError as exc:
            self.error.emit(str(exc))
            return False
        self.last_folder = str(split_root_selector(path)[0].parent)
        self.session.set_true(true)
        return True

    def dragEnterEvent(self, event) -> None:  # noqa: N802 (Qt's name)
        if event.mimeData().hasUrls():
            event.acceptProposedAction()

    def dropEvent(self, event) -> None:  # noqa: N802
        urls = event.mimeData().urls()
        if urls:
            self.load(urls[0].toLocalFile())

    def show_true(self, true) -> None:
        """Draw samples, mean image and pixel histogram of the true images (or clear them)."""
        if true is None:
            self.info.setText("No true images yet: generate a closure-test set or load your data.")
            for grid in (self.grid, self.mean_image):   # nothing of dropped images may stay on screen
                grid.set_rows([[np.zeros((2, 2))]])
            self.histogram.setTitle("pixel intensities (no images)", color="#222", size="10pt")
            self.hist_curve.setData([], [])
            return
        images = true.images
        picks = images[np.linspace(0, len(images) - 1, min(16, len(images))).astype(int)]
        cols = 4
        rows = [list(picks[i:i + cols]) for i in range(0, len(picks), cols)]
        self.grid.set_rows(rows, f"{len(picks)} of {len(images)} images")
        self.mean_image.set_rows([[images.mean(axis=0)]])
        self.mean_image.image.setLevels((0.0, float(images.mean(axis=0).max()) or 1.0))
        counts, edges = np.histogram(images[:2000], bins=64, range=(0.0, 1.0))
        self.histogram.setTitle(f"pixel intensities ({min(2000, len(images)):,} images)", color="#222", size="10pt")
        self.hist_curve.setData(edges, np.maximum(counts, 0.5))
        from_file = not true.source.startswith("closure test:")   # a generated set keeps the values typed
        if from_file and true.params is not None and true.params.shape[1] == len(self.mean_boxes):
            # the boxes show the truth of the images in use, not the last generated set's settings
            for box, value in zip(self.mean_boxes, true.params.mean(axis=0)):
                box.setValue(float(value))
            for box, value in zip(self.std_boxes, true.params.std(axis=0, ddof=1) if len(true.params) > 1
                                  else np.zeros(true.params.shape[1])):
                box.setValue(float(value))
        known = "true parameters known (closure test)" if true.params is not None else "true parameters unknown"
        self.info.setText(f"<b>{len(images)}</b> images of {true.shape[0]}x{true.shape[1]} px, {known}.<br>"
                          f"source: {true.source}<br>SHA-256 {true.sha256[:16]}…")

    def set_busy(self, busy: bool) -> None:
        """Disable the controls while a job runs."""
        for w in (self.generate_button, self.load_button, self.load_folder_button, self.path_edit,
                  self.simulator_box, self.ranges_button):
            w.setEnabled(not busy)

