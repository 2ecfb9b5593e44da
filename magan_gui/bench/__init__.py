"""Reproduction of the paper's tables and figures, and the speed and accuracy benchmarks.

A research harness over the engine (``magan_gui.core``), outside it: the engine never imports
this package.  ``paper`` holds the paper's published numbers; ``closure`` runs and measures its
closure tests (accuracy, efficiency, figures); ``speed`` measures image throughput (Table III).
"""
