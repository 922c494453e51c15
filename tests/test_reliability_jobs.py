"""The dashboard's job runner (`dashboard.jobs`): whitelisted parameters, shared jobs, caps, cancel,
time limit, and workers that end with the server (close, SIGTERM, kill -9)."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest

from reliability import REPO, wait_for
from vaefrag.dashboard import data, tasks
from vaefrag.dashboard.jobs import JobRefused, JobRunner, job_id
from vaefrag.synthetic import make_fragment_ensemble

pytestmark = pytest.mark.slow
GOOD = {"ensemble": "frag", **data.DEFAULT_PARAMS}


@pytest.mark.parametrize("params, match", [
    ({**GOOD, "n_bootstrap": 10**6}, "unexpected parameters \\['n_bootstrap'\\]"),
    ({k: v for k, v in GOOD.items() if k != "xi"}, "missing \\['xi'\\]"),
    ({**GOOD, "info_threshold": float("inf")}, "must be finite"),
    ({**GOOD, "info_threshold": "0.1"}, "'info_threshold' must be float"),
    ({**GOOD, "min_samples": 2.5}, "'min_samples' must be int"),
    ({**GOOD, "min_samples": True}, "'min_samples' must be int"),
    ({**GOOD, "xi": 1.5}, "xi: expected a number in \\(0, 1\\)"),
    ({**GOOD, "ensemble": ["frag"]}, "'ensemble' must be str"),
    ({**GOOD, "measure": "cka"}, "measure: expected 'nmi' or 'vi'"),
])
def test_job_parameters_come_from_a_whitelist(params, match):
    with pytest.raises(ValueError, match=match):
        tasks.check_params("analysis", params)


def test_fusion_and_unknown_jobs_are_bounded():
    ok = {"ensemble": "e", "channels": [[0, 1]], "objective": "nmi", "steps": 10}
    assert tasks.check_params("fusion", ok) == ok
    for bad, match in (({**ok, "steps": 10**7}, "'steps' must lie in"), ({**ok, "channels": [[0, -1]]}, "pairs"),
                       ({**ok, "channels": [[0, 1]] * 41}, "1 to 40"), ({**ok, "channels": "all"}, "must be list")):
        with pytest.raises(ValueError, match=match):
            tasks.check_params("fusion", bad)
    with pytest.raises(ValueError, match="job kind"):
        tasks.check_params("sweep-everything", {})
    # the content key: equal requests, equal ids; any difference, another id
    assert job_id("analysis", dict(GOOD)) == job_id("analysis", dict(reversed(list(GOOD.items()))))
    assert job_id("analysis", GOOD) != job_id("analysis", {**GOOD, "info_threshold": 0.02})


@pytest.fixture(scope="module")
def runner(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jobs")
    make_fragment_ensemble(tmp / "ens" / "frag", models=4, latents=4, n_points=60, seed=2)
    r = JobRunner(tmp / "ens", tmp / "cache", n_workers=1, time_limit=900, max_jobs=3, max_per_client=2)
    yield r, tmp
    r.close()


def _fusion(steps: int, lr: float = 0.01) -> dict:
    return {"ensemble": "frag", "channels": [[0, 0], [1, 0], [2, 1]], "objective": "nmi", "steps": steps}


def _finish(r, jid, client, timeout=180):
    return wait_for(lambda: (lambda s: s if s["state"] not in ("queued", "running") else None)(r.poll(jid, client)),
                    timeout, 0.2)


def test_equal_requests_share_one_job_and_both_get_the_result(runner):
    r, tmp = runner
    a = r.submit("analysis", GOOD, "alice")
    b = r.submit("analysis", dict(GOOD), "bob")
    assert a == b and len(r.active()) == 1 and r.active()[0]["clients"] == 2
    sa, sb = _finish(r, a, "alice"), _finish(r, b, "bob")
    key = data.analysis_key(tmp / "ens" / "frag", data.DEFAULT_PARAMS)   # computed here, independently
    assert sa["state"] == sb["state"] == "done" and sa["result"]["key"] == sb["result"]["key"] == key
    assert data.cached_analysis(tmp / "ens" / "frag", data.DEFAULT_PARAMS, tmp / "cache").key == key
    assert r.poll(a, "alice")["state"] == "unknown"       # both read it: released


def test_an_analysis_job_hands_each_page_its_structure_stage_once(runner):
    """The worker publishes the structure-only analysis (`tasks.run(partial=)`); each subscriber's
    poll carries it once, its key is in the cache with the later stages pending, and it has the
    hotspots of the finished analysis."""
    r, tmp = runner
    params = {**GOOD, "info_threshold": 0.03}                          # not computed by another test
    jid = r.submit("analysis", params, "carol")
    polls = []
    done = wait_for(lambda: (lambda s: polls.append(s) or (s if s["state"] not in ("queued", "running") else None))(
        r.poll(jid, "carol")), 180, 0.1)
    seen = [s["partial"] for s in polls if s["partial"] is not None]
    assert len(seen) == 1                                                # once for this page, done or not
    part = data.analysis_from_token(seen[0], tmp / "cache")
    full = data.analysis_from_token(done["result"], tmp / "cache")
    assert part is not None and full is not None and part.key != full.key
    assert set(part.pending) == {"stability", "maps", "scores"} and full.pending == ()
    assert [h.members.tolist() for h in part.hotspots] == [h.members.tolist() for h in full.hotspots]


def test_caps_per_client_and_in_total(runner):
    r, _ = runner
    j1 = r.submit("fusion", _fusion(2000), "carol")
    j2 = r.submit("fusion", _fusion(1999), "carol")
    with pytest.raises(JobRefused, match="at most 2 per page"):
        r.submit("fusion", _fusion(1998), "carol")
    j3 = r.submit("fusion", _fusion(1997), "dave")
    with pytest.raises(JobRefused, match="at most 3"):
        r.submit("fusion", _fusion(1996), "erin")
    assert r.submit("fusion", _fusion(2000), "erin") == j1       # joining a running job is no new job
    for jid, client in ((j1, "carol"), (j1, "erin"), (j2, "carol"), (j3, "dave")):
        r.cancel(jid, client)
    assert r.active() == []


def test_cancel_by_one_subscriber_keeps_the_job_the_last_one_stops_it(runner):
    r, _ = runner
    jid = r.submit("fusion", _fusion(2000), "frank")
    r.submit("fusion", _fusion(2000), "grace")
    assert wait_for(lambda: r.poll(jid, "nobody")["state"] == "running", 120)
    assert r.cancel(jid, "frank")
    time.sleep(1.0)
    assert r.poll(jid, "grace")["state"] == "running"
    assert r.cancel(jid, "grace")
    assert r.poll(jid, "grace")["state"] == "cancelled"
    # the worker is free again: a short job finishes
    short = r.submit("fusion", _fusion(3), "grace")
    assert _finish(r, short, "grace", 120)["state"] == "done"


def test_a_job_past_its_time_limit_is_stopped(tmp_path):
    make_fragment_ensemble(tmp_path / "ens" / "frag", models=4, latents=4, n_points=60, seed=2)
    r = JobRunner(tmp_path / "ens", tmp_path / "cache", n_workers=1, time_limit=3)
    try:
        r.start(warm=False)
        jid = r.submit("fusion", _fusion(2000), "henry")
        s = _finish(r, jid, "henry", 120)
        assert s["state"] == "error" and "time limit of 3 s" in s["error"]
        fine = r.submit("fusion", _fusion(2), "henry")
        s = _finish(r, fine, "henry", 120)
        assert s["state"] == "done" and len(s["result"].history) == 2
    finally:
        r.close()


RUNNER_SCRIPT = """
import sys, time
from vaefrag.dashboard.jobs import JobRunner
r = JobRunner(sys.argv[1], sys.argv[2], n_workers=2)
r.start(warm=False)
print("ready", flush=True)
time.sleep(600)
"""


@pytest.mark.parametrize("how", [signal.SIGKILL, "close"])
def test_workers_end_with_the_server(tmp_path, how):
    if how == "close":
        before = set(psutil.Process().children(recursive=True))
        r = JobRunner(tmp_path, tmp_path / "cache", n_workers=2)
        r.start(warm=False)
        # (multiprocessing's resource tracker, started with the first spawn, lives as long as this process)
        workers = [c for c in psutil.Process().children(recursive=True)
                   if c not in before and "resource_tracker" not in " ".join(c.cmdline())]
        assert len(workers) >= 2
        r.close()
    else:
        proc = subprocess.Popen([sys.executable, "-c", RUNNER_SCRIPT, str(tmp_path), str(tmp_path / "c")],
                                stdout=subprocess.PIPE, text=True, cwd=REPO, env={**os.environ, "PYTHONPATH": str(REPO)})
        assert proc.stdout.readline().strip() == "ready"
        workers = psutil.Process(proc.pid).children(recursive=True)
        assert len(workers) >= 2
        os.kill(proc.pid, how)                      # kill -9 of the server: no clean-up code runs
        proc.wait(30)
    gone, alive = psutil.wait_procs(workers, timeout=30)
    assert alive == [], [p.pid for p in alive]


def test_a_sigterm_of_vaefrag_serve_stops_its_jobs(tmp_path):
    from reliability import Server

    make_fragment_ensemble(tmp_path / "ens" / "frag", models=4, latents=4, n_points=60, seed=2)
    srv = Server(tmp_path / "ens", tmp_path / "cache", workers=1)
    try:
        workers = wait_for(lambda: [psutil.Process(p) for p in srv.children()], 60)
        assert workers
    finally:
        rc = srv.stop(signal.SIGTERM)
    assert rc == 0
    gone, alive = psutil.wait_procs(workers, timeout=30)
    assert alive == []
    assert "Traceback" not in srv.log, srv.log[-3000:]
    assert np.isfinite(rc)
