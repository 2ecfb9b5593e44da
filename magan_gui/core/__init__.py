"""The engine: plain Python, NumPy and PyTorch; never imports Qt."""
