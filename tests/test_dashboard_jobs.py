"""The Dash side of the job runner (`callbacks.jobs`, the analysis panel's start / finish / cancel)
and the server-side checks of what the browser sends: plain functions, no server."""
from __future__ import annotations

import re
import subprocess
import sys

import pytest

pytest.importorskip("dash")

from dash import no_update  # noqa: E402

from vaefrag.dashboard import data  # noqa: E402
from vaefrag.dashboard.app import valid_token  # noqa: E402
from vaefrag.dashboard.callbacks import analysis as cba  # noqa: E402
from vaefrag.dashboard.callbacks import export as cbe  # noqa: E402
from vaefrag.dashboard.callbacks import jobs as jobs_ui  # noqa: E402
from vaefrag.dashboard.config import Config  # noqa: E402
from vaefrag.dashboard.jobs import JobRefused, job_id  # noqa: E402
from vaefrag.synthetic import make_fragment_ensemble  # noqa: E402

NAME = "frag"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jobsui")
    root, cache = tmp / "ensembles", tmp / "cache"
    path = make_fragment_ensemble(root / NAME, models=4, latents=4, n_points=80, seed=4)
    code = ("import sys; from vaefrag.dashboard import data; "
            "data.compute_analysis(sys.argv[1], data.clean_params(), sys.argv[2])")
    subprocess.run([sys.executable, "-c", code, str(path), str(cache)], check=True, timeout=900)
    a = data.cached_analysis(path, data.clean_params(), cache)
    return Config(root=root, cache_dir=cache, default=NAME), a


class Recorder:
    """A runner that records what reaches it (to check what the callbacks let through)."""

    def __init__(self):
        self.submitted = []

    def submit(self, kind, params, client):
        from vaefrag.dashboard import tasks

        try:
            params = tasks.check_params(kind, params)
        except ValueError as exc:
            raise JobRefused(str(exc)) from None
        self.submitted.append((kind, params, client))
        return job_id(kind, params)


def test_forged_requests_never_reach_the_runner():
    r = Recorder()
    for forged in ({"ensemble": NAME, "params": {**data.DEFAULT_PARAMS, "n_bootstrap": 10**6}},
                   {"ensemble": NAME, "params": {"measure": "nmi", "info_threshold": "inf"}},
                   {"ensemble": NAME, "params": {"min_samples": 1e300}},
                   {"ensemble": NAME, "params": "all"}, "string", [1, 2]):
        out = cba.start_job(forged, "c" * 32, r)
        assert out[0] is no_update and out[2] == jobs_ui.HIDE, forged
        assert "vf-alert-error" in out[5].className
    assert r.submitted == []
    good = {"ensemble": NAME, "params": {**data.DEFAULT_PARAMS, "info_threshold": 0.05}, "hotspot": 1}
    store, disabled, panel, apply_off, cancel_off, status = cba.start_job(good, "c" * 32, r)
    assert r.submitted == [("analysis", {"ensemble": NAME, **good["params"]}, "c" * 32)]
    assert store == {"id": job_id("analysis", r.submitted[0][1]), "hints": {"hotspot": 1}}
    assert (disabled, panel, apply_off, cancel_off) == (False, jobs_ui.SHOW, True, False)
    assert "Computing the analysis of frag" in status.children


def test_finish_gives_the_token_of_the_cached_analysis(env):
    cfg, a = env
    params = {"ensemble": NAME, **data.DEFAULT_PARAMS}
    status, tok, upload = cba.finish_job({"key": a.key}, params, {"hotspot": 0}, cfg)
    assert status is None and upload is None
    assert tok == data.token(NAME, data.DEFAULT_PARAMS, a.key) | {"hotspot": 0}
    assert valid_token(tok)
    # a hotspot the analysis does not have is dropped; a key not in the cache is an error, not a token
    assert "hotspot" not in cba.finish_job({"key": a.key}, params, {"hotspot": len(a.hotspots)}, cfg)[1]
    status, tok, _ = cba.finish_job({"key": "0" * 64}, params, {}, cfg)
    assert tok is no_update and "not in the cache" in status.children


def test_cancel_returns_the_controls_to_the_analysis_on_screen(env):
    _, a = env
    on_screen = data.token(NAME, {**data.DEFAULT_PARAMS, "info_threshold": 0.02, "min_samples": 3}, a.key)
    status, ensemble, measure, thr, ms, xi, upload, min_nmi = cba.cancelled_job(on_screen, "other-ensemble")
    assert (ensemble, measure, thr, ms, xi, min_nmi) == (NAME, "nmi", 0.02, 3, None, data.DEFAULT_PARAMS["min_nmi"])
    assert "Cancelled" in status.children and upload is None
    assert cba.cancelled_job(on_screen, NAME)[1] is no_update       # the same ensemble is not re-set


def test_job_stores_and_client_ids_are_checked():
    assert jobs_ui.job_ref({"id": "a" * 24, "hints": {"x": 1}}) == ("a" * 24, {"x": 1})
    for bad in (None, "x", {"id": "../" * 8}, {"id": 5}, {"id": "A" * 24}, {"id": "a" * 25}):
        assert jobs_ui.job_ref(bad) == (None, {})
    assert jobs_ui.job_ref({"id": "a" * 24, "hints": [1]}) == ("a" * 24, {})
    assert jobs_ui.client_id("f" * 32) == "f" * 32
    assert jobs_ui.client_id("x" * 10**5) == jobs_ui.client_id({"a": 1}) == "anonymous"


def test_malformed_tokens_are_refused():
    assert valid_token(None) and valid_token({"ensemble": "a", "params": {"measure": "nmi"}, "key": "k"})
    for bad in ({"ensemble": "a", "params": {"n_bootstrap": 5}, "key": "k"}, {"ensemble": 1, "params": {}, "key": "k"},
                {"ensemble": "a", "params": {}, "key": "k", "hotspot": -1}, {"ensemble": "a", "params": [], "key": "k"},
                {"ensemble": "a", "params": {"xi": [1]}, "key": "k"}, {"ensemble": "a", "params": {}, "key": "k", "x": 1},
                "token", 5):
        assert not valid_token(bad), bad


def test_upload_note_settles_once_an_analysis_is_shown():
    note = {"props": {"children": "Imported x.npz as ensemble 'x'; analysing it ...", "className": "vf-alert"}}
    assert cba.settled_upload_status({"key": "k"}, note).children == "Imported x.npz as ensemble 'x'."
    assert cba.settled_upload_status(None, note) is no_update
    assert cba.settled_upload_status({"key": "k"}, {"props": {"children": "Upload rejected: ..."}}) is no_update


def test_paper_export_refuses_sizes_beyond_its_bounds(env):
    cfg, a = env
    tok = data.token(NAME, data.DEFAULT_PARAMS, a.key)
    from vaefrag.dashboard import ids

    for steps, n_bases, match in ((100000, 3, "steps: expected an integer from 3 to 15"),
                                  (7, 10**9, "bases: expected an integer from 1 to 6"),
                                  ("nan", 3, "steps"), ([7], 3, "steps")):
        download, status = cbe.export(ids.EXPORT_FIGURE, tok, "png", "nmi", steps, n_bases, 0, cfg)
        assert download is no_update
        assert re.search(match, status.children), status.children
    download, status = cbe.export(ids.EXPORT_FIGURE, tok, "svg", "nmi", 3, 1, 0, cfg)
    assert status is None and download["content"]


class Scripted:
    """A runner whose polls answer from a script (to check what one poll of the page does)."""

    def __init__(self, answers):
        self.answers = list(answers)

    def poll(self, jid, client):
        return self.answers.pop(0)


def test_time_left_is_the_stage_rate_since_it_began():
    from vaefrag.dashboard.jobs import estimate_left

    ref = (100.0, 10, 100)                       # at t=100 s, 10 of 100 done
    assert estimate_left(ref, 30, 100, 110.0) == pytest.approx(35.0)     # 20 in 10 s, 70 to go
    assert estimate_left(ref, 30, 200, 110.0) is None                    # another stage (total)
    assert estimate_left(ref, 10, 100, 110.0) is None                    # nothing done since
    assert estimate_left(ref, 30, 100, 101.0) is None                    # too soon to tell
    assert estimate_left(None, 30, 100, 110.0) is None
    assert jobs_ui.time_left(35.2) == ", about 35 s left" and jobs_ui.time_left(600) == ", about 10 min left"
    assert jobs_ui.time_left(None) == jobs_ui.time_left(1.0) == jobs_ui.time_left("9") == jobs_ui.time_left(float("nan")) == ""
    running = {"state": "running", "done": 30, "total": 100, "message": "fusing", "left_s": 35.0, "partial": None,
               "result": None, "error": None, "params": {}}
    out = jobs_ui.poll_outputs(Scripted([running]), {"id": "a" * 24, "hints": {}}, "c" * 32, None, None, 0)
    assert out[:3] == ("30", "100", "fusing (30/100, about 35 s left)")


def test_the_runner_times_a_stage_from_its_first_progress(tmp_path, monkeypatch):
    """The runner's time left: from the first progress of a stage (a new total starts a new one)."""
    from types import SimpleNamespace

    from vaefrag.dashboard import jobs
    from vaefrag.dashboard.jobs import Job, JobRunner

    r = JobRunner(tmp_path, tmp_path / "cache")                 # no cluster: the Dask client is faked
    job = Job(id="a" * 24, kind="fusion", params={}, name="n", future=SimpleNamespace(status="pending"),
              clients={"x"})
    r._jobs[job.id] = job
    events, clock = {}, [100.0]
    r._client = SimpleNamespace(get_events=lambda topic: events.get(topic, []))
    monkeypatch.setattr(jobs.time, "monotonic", lambda: clock[0])
    try:
        for t, value in ((100.0, [10, 100, "fusing"]), (110.0, [30, 100, "fusing"])):
            clock[0], events["n-progress"] = t, [(t, value)]
            r._update(job)
        s = r.poll(job.id, "x")
        assert s["state"] == "running" and s["left_s"] == pytest.approx(35.0)   # 20 in 10 s, 70 to go
        clock[0], events["n-progress"] = 111.0, [(111.0, [1, 8, "maps"])]      # the next stage
        r._update(job)
        assert r.poll(job.id, "x")["left_s"] is None and job.rate_ref == (111.0, 1, 8)
    finally:
        r._client = None
        r.close()


def test_a_running_analysis_shows_its_structure_stage_once_then_the_whole(env):
    cfg, a = env
    path = cfg.root / NAME
    quick = data.compute_structure(path, data.clean_params(), cfg.cache_dir)      # what the worker previews
    assert quick.key != a.key and "maps" in quick.pending
    params = {"ensemble": NAME, **data.DEFAULT_PARAMS}
    running = {"state": "running", "done": 2, "total": 9, "message": "hotspots", "partial": {"key": quick.key},
               "result": None, "error": None, "params": params}
    again = {**running, "partial": None}                                 # the runner gives it once per page
    done = {**running, "state": "done", "done": 9, "partial": None, "result": {"key": a.key}}
    runner = Scripted([running, again, done])

    def finish(result, p, hints):
        return cba.finish_job(result, p, hints, cfg)

    def preview(partial, p, hints):
        return cba.preview_job(partial, p, hints, cfg)

    store = {"id": "a" * 24, "hints": {}}
    out = jobs_ui.poll_outputs(runner, store, "c" * 32, finish, preview, 2)
    status, (tok, upload) = out[8], out[9:]
    assert tok == data.token(NAME, data.DEFAULT_PARAMS, quick.key) and upload is no_update
    assert out[3:8] == (no_update,) * 5           # a running poll never writes the job store: still polling
    assert "stability, maps and scores are computing" in status.children
    out = jobs_ui.poll_outputs(runner, store, "c" * 32, finish, preview, 2)
    assert out[9] is no_update and out[3] is no_update
    last = jobs_ui.poll_outputs(runner, store, "c" * 32, finish, preview, 2)
    assert last[9] == data.token(NAME, data.DEFAULT_PARAMS, a.key) and last[3] is None and last[4] is True
    assert out[:3] == ("2", "9", "hotspots (2/9)") and last[:3] == ("0", "1", "")   # the next job's bar starts empty
    # a cancel after the preview says what the page shows; after a whole analysis it does not
    assert "Recompute finishes it" in cba.cancelled_job(tok, NAME, cfg)[0].children
    assert "Recompute finishes it" not in cba.cancelled_job(last[9], NAME, cfg)[0].children
    # a preview whose key is not in the cache shows nothing
    assert cba.preview_job({"key": "0" * 64}, params, {}, cfg) is None
