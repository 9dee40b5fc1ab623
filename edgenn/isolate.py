"""Run work that may crash the process (a TFLite interpreter on a damaged model, TensorFlow's
calibrator) in a forked child, so a segfault becomes one clear error instead of a dead CLI."""

import multiprocessing
import signal
import traceback

from edgenn.errors import EdgennError


def _child(conn, func, args, kwargs):
    try:
        conn.send(("ok", func(*args, **kwargs)))
    except EdgennError as exc:
        conn.send(("error", str(exc)))
    except BaseException as exc:  # report everything; the parent decides how to show it
        conn.send(("crash", f"{type(exc).__name__}: {exc}", traceback.format_exc()))
    finally:
        conn.close()


def run_isolated(func, *args, what="the work", timeout=None, crash_hint="the input is likely corrupt or unsupported",
                 **kwargs):
    """Call func(*args, **kwargs) in a forked child and return its (picklable) result.

    A child that raises EdgennError re-raises it here; one that dies on a signal or raises anything
    else becomes EdgennError naming `what` went wrong (a death on a signal followed by crash_hint, the
    likely cause). Fork keeps start-up cheap (imports are shared); the caller must not be holding
    threads that the child needs."""
    context = multiprocessing.get_context("fork")
    parent_conn, child_conn = context.Pipe(duplex=False)
    process = context.Process(target=_child, args=(child_conn, func, args, kwargs), daemon=True)
    process.start()
    child_conn.close()
    try:
        if not parent_conn.poll(timeout):
            process.kill()
            raise EdgennError(f"{what} did not finish within {timeout:.0f} s and was stopped")
        message = parent_conn.recv()
    except EOFError:
        message = None
    except KeyboardInterrupt:
        process.kill()
        raise
    finally:
        process.join(5)
        if process.is_alive():
            process.kill()
    if message is None:
        code = process.exitcode
        if code is not None and code < 0:
            name = signal.Signals(-code).name if -code in signal.Signals._value2member_map_ else str(-code)
            raise EdgennError(f"{what} crashed ({name}); {crash_hint}")
        raise EdgennError(f"{what} ended without a result (exit code {code})")
    if message[0] == "ok":
        return message[1]
    if message[0] == "error":
        raise EdgennError(message[1])
    raise EdgennError(f"{what} failed: {message[1]}")
