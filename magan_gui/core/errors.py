"""The engine's error types for problems a user can fix (bad input, a broken plugin, a bad file).

Front ends show these as one sentence: the command line prints one line and exits with status
2, the app shows a message.  Anything else is a bug in magan-gui and keeps its traceback.
"""

from __future__ import annotations


class MaganError(Exception):
    """A problem the user can fix; its message is one sentence for them."""


class ConfigError(MaganError, ValueError):
    """Settings that cannot work (a negative learning rate, an unknown mode...)."""


class TrainingError(MaganError, ValueError):
    """A run cannot start or continue as asked (e.g. a saved run that already has all its iterations)."""


class OutputError(MaganError, OSError):
    """An output file cannot be written, or exists and would be replaced without --force."""


def one_line(exc: BaseException) -> str:
    """An exception's message on one line (torch's state-dict errors span several)."""
    return " ".join(str(exc).split())
