"""Regenerate the README's screenshots: the app on its built-in example, mid-run and at the end.

    QT_QPA_PLATFORM=offscreen .venv/bin/python scripts/screenshots.py [--out docs/screenshots]
        [--pretrain-iterations 1000] [--calibrate-iterations 2000]

Drives the real window as a user would (Run all), grabbing each panel to PNG as it goes.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("QT_QPA_PLATFORM", "offscreen")

from PySide6.QtCore import QEventLoop, QTimer  # noqa: E402
from PySide6.QtWidgets import QApplication  # noqa: E402


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", default="docs/screenshots")
    parser.add_argument("--pretrain-iterations", type=int, default=1000)
    parser.add_argument("--calibrate-iterations", type=int, default=2000)
    args = parser.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    app = QApplication(sys.argv[:1])
    from magan_gui.gui.app import build_window

    window = build_window()
    window.resize(1280, 800)
    window.show()

    def wait(condition, timeout: float = 1800.0) -> None:
        """Run the event loop idle, as app.exec() would (a busy processEvents loop would take the CPU and
        the interpreter lock from training), until ``condition`` holds."""
        start = time.monotonic()
        loop = QEventLoop()
        poll = QTimer()
        poll.timeout.connect(lambda: (condition() or time.monotonic() - start > timeout) and loop.quit())
        poll.start(50)
        if not condition():
            loop.exec()
        poll.stop()
        if not condition():
            raise TimeoutError("the run took too long")

    def shot(tab: int, name: str) -> None:
        window.tabs.setCurrentIndex(tab)
        app.processEvents()
        window.grab().save(str(out / f"{name}.png"))
        print("wrote", out / f"{name}.png")

    wait(lambda: window.session.true is not None and not window.busy)
    shot(0, "1-true-images")
    with tempfile.TemporaryDirectory() as folder:  # a bank, to show its panel (the run below simulates afresh)
        window.bank_panel.path.setText(str(Path(folder) / "bank.h5"))
        window.bank_panel.count.setValue(4000)
        window.bank_panel.request_start(resume=False)
        wait(lambda: window.session.bank_path is not None and not window.busy)
        shot(1, "2-bank")
    window.pretrain_panel.from_bank.setChecked(False)
    window.pretrain_panel.iterations.setValue(args.pretrain_iterations)
    window.calibrate_panel.iterations.setValue(args.calibrate_iterations)
    window.run_all()
    wait(lambda: window.pretrain_panel.progress.value() >= args.pretrain_iterations // 3)
    shot(2, "2-pretraining-mid-run")
    wait(lambda: window.session.emulator is not None and window.calibrate_panel.running)
    shot(2, "2-pretraining-end")
    wait(lambda: window.calibrate_panel.progress.value() >= args.calibrate_iterations // 4)
    shot(3, "3-calibration-mid-run")
    wait(lambda: window.session.result is not None and not window.busy)
    shot(3, "3-calibration-end")
    shot(4, "4-results")
    window.ask_before_losing_work = lambda question: "discard"  # a benchmark's run is no work to keep
    window.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
