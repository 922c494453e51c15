"""Helpers shared by the browser tests (dash_duo): run page scripts and wait for conditions."""
from __future__ import annotations

import time

TIMEOUT = 60


def _js(duo, script, *args):
    return duo.driver.execute_script(script, *args)


def _wait(duo, cond, timeout=TIMEOUT, msg="condition", state=None):
    """Wait for ``cond()``; on timeout raise with ``msg`` and, if given, what ``state()`` reads then."""
    end = time.time() + timeout
    while time.time() < end:
        try:
            if cond():
                return
        except Exception:           # element not there yet / stale
            pass
        time.sleep(0.1)
    seen = ""
    if state is not None:
        try:
            seen = f" (page shows: {state()!r})"
        except Exception as exc:  # noqa: BLE001 - the report must not hide the timeout
            seen = f" (page state unreadable: {exc})"
    raise AssertionError(f"timed out waiting for {msg}{seen}")
