"""What every runner shares: finding the model a user names, the board's defaults, and stopping
cleanly on a signal."""

import os
import queue
import signal
import threading
from pathlib import Path

from edgenn.flash.layout import installed_model
from edgenn.runtime import runtime_installed


def resolve_model(model):
    """A model path, or the current file of an installed model NAME (see `edgenn flash`)."""
    path = Path(model)
    if path.exists() or path.suffix or os.sep in str(model):
        return path
    return installed_model(str(model)) or path


def preferred_runtime(runtime, board):
    """The runtime asked for; else the board's preferred one when it is installed; else None, which
    means the first one installed (see edgenn.runtime)."""
    if runtime or board is None or not runtime_installed(board.runtime):
        return runtime
    return board.runtime


class StopOnSignals:
    """SIGINT / SIGTERM ask the run to stop cleanly (its summary still prints, a recording is
    finalized); a second SIGINT while stopping aborts. Only the main thread can own signals."""

    def __init__(self, request_stop, stopping):
        self.request_stop, self.stopping, self.saved = request_stop, stopping, {}

    def __enter__(self):
        if threading.current_thread() is threading.main_thread():
            for number, reason in ((signal.SIGINT, "interrupted"), (signal.SIGTERM, "terminated")):
                self.saved[number] = signal.signal(number, self._handler(reason))
        return self

    def _handler(self, reason):
        def handle(number, _frame):
            if self.stopping() and number == signal.SIGINT:
                raise KeyboardInterrupt
            self.request_stop(reason)
        return handle

    def __exit__(self, *exc):
        for number, handler in self.saved.items():
            signal.signal(number, handler)


def put_until_stopped(bounded_queue, item, stop):
    """Put ITEM on a bounded queue, waiting for room, unless STOP (a threading.Event) is set first:
    a stage hands work on without ever blocking shutdown."""
    while not stop.is_set():
        try:
            bounded_queue.put(item, timeout=0.1)
            return True
        except queue.Full:
            continue
    return False
