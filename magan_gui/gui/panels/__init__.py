"""The main window's panels, in the order a user works: true images, pretraining, calibration, results."""
