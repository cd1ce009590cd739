"""Helpers shared by tests in several folders (as fixtures, since the tests import in importlib mode)."""
import logging
import os
import time
from pathlib import Path
from typing import Callable

import pytest


class _TouchMarker:
    """Unpickling this runs ``touch <marker>``: a loader that lets pickles run code would create the file."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return os.system, (f'touch {self.marker}', )


def _pid_gone(pid: int, timeout: float = 10.0) -> bool:
    """Waits up to ``timeout`` s for ``pid`` to end; a zombie (dead, not yet reaped) counts as gone."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        try:
            if Path(f'/proc/{pid}/stat').read_text().split(')')[-1].split()[0] == 'Z':
                return True
        except OSError:
            return True
        time.sleep(0.05)
    return False


@pytest.fixture
def touch_marker() -> Callable:
    """``touch_marker(path)``: an object whose unpickling would create ``path`` (malicious-pickle tests)."""
    return _TouchMarker


@pytest.fixture
def pid_gone() -> Callable[..., bool]:
    """``pid_gone(pid, timeout=10)``: whether the process ended within the timeout."""
    return _pid_gone


@pytest.fixture
def logged_warnings():
    """The warnings the current MMLogger logs during the test, as a list filled as they come (clear it to
    look at one call). mmengine's logger does not propagate to pytest's ``caplog``."""
    from mmengine.logging import MMLogger
    messages = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = lambda record: messages.append(record.getMessage())
    logger = MMLogger.get_current_instance()
    logger.addHandler(handler)
    yield messages
    logger.removeHandler(handler)
