"""The desktop app (Qt): main window, panels, widgets and the worker thread."""
