"""Helpers shared by the browser tests (dash_duo): run page scripts and wait for conditions."""
from __future__ import annotations

import time

TIMEOUT = 60


def _js(duo, script, *args):
    return duo.driver.execute_script(script, *args)


def _wait(duo, cond, timeout=TIMEOUT, msg="condition"):
    end = time.time() + timeout
    while time.time() < end:
        try:
            if cond():
                return
        except Exception:           # element not there yet / stale
            pass
        time.sleep(0.1)
    raise AssertionError(f"timed out waiting for {msg}")
