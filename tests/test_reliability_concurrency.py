"""Eight simulated users on one `vaefrag serve` (waitress, job workers) on 127.0.0.1.

Two users ask for the same uncached analysis at once: one job runs and both get its result; two
ask for other uncached analyses; one cancels a job; one browses meanwhile (one worker: the jobs
queue). Checked against an
independent computation of each analysis' cache key (`data.analysis_key`) and of its hotspots
(`analysis.analyze` here, in the test process), with the server's memory (server plus workers)
sampled throughout.
"""
from __future__ import annotations

import threading
import time
import uuid

import pytest

from reliability import Server, response_value, wait_for
from vaefrag.dashboard import data, ids
from vaefrag.synthetic import make_fragment_ensemble

pytestmark = pytest.mark.slow
#: peak resident memory allowed for the server and its workers together
MAX_RSS = 2 * 2**30
TIMEOUT = 240
JOBS = {"twin1", "twin2", "other0", "other1", "canceller"}


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("conc")
    make_fragment_ensemble(tmp / "ens" / "frag", models=6, latents=5, n_points=120, seed=3)
    srv = Server(tmp / "ens", tmp / "cache", workers=1)
    yield srv, tmp
    srv.stop()


def _params(thr: float) -> dict:
    return {**data.DEFAULT_PARAMS, "info_threshold": thr}


class User:
    """One page: its client id and the callbacks it calls."""

    def __init__(self, srv: Server):
        self.srv, self.client = srv, uuid.uuid4().hex
        self.start = srv.callback(f"{ids.PENDING}.data")
        self.poll = srv.callback("vf-job-analysis-poll.n_intervals")
        self.cancel_dep = srv.callback(f"{ids.CANCEL}.n_clicks")

    def submit(self, thr: float, path=None) -> dict:
        self.thr, self.path, self.previews = thr, path, 0
        status, body = self.srv.call(self.start, [{"ensemble": "frag", "params": _params(thr)}], [self.client])
        assert status == 200, body
        return response_value(body, "vf-job-analysis", "data")

    def wait(self, job: dict) -> dict | None:
        n = [0]

        def step():
            n[0] += 1
            status, body = self.srv.call(self.poll, [n[0]], [job, self.client])
            assert status in (200, 204), body
            if status != 200:
                return None
            resp = body["response"]
            ended = "vf-job-analysis" in resp and resp["vf-job-analysis"].get("data", "x") is None
            if ids.ANALYSIS in resp and ended:
                return resp[ids.ANALYSIS]["data"]
            if ended:
                return {"ended": resp.get(ids.STATUS)}
            if ids.ANALYSIS in resp:                # the structure stage, shown while the rest computes
                if self.path is not None:
                    assert resp[ids.ANALYSIS]["data"]["key"] != data.analysis_key(self.path, _params(self.thr))
                self.previews += 1
            return None

        return wait_for(step, TIMEOUT, 0.4)


def test_eight_users_two_identical_uncached_requests(server):
    srv, tmp = server
    path = tmp / "ens" / "frag"
    peak, stop = [0], threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], srv.rss_bytes())
            time.sleep(0.2)

    threading.Thread(target=sample, daemon=True).start()
    results: dict[str, object] = {}
    errors: list[str] = []
    barrier = threading.Barrier(8)

    def computing(name: str, thr: float):
        try:
            u = User(srv)
            barrier.wait(30)
            job = u.submit(thr, path)
            results[name] = (job["id"], u.wait(job))
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(f"{name}: {type(exc).__name__}: {exc}")

    def cancelling():
        try:
            u = User(srv)
            barrier.wait(30)
            job = u.submit(0.21)
            status, body = srv.call(u.cancel_dep, [1], [job, u.client, None, "frag"])
            results["canceller"] = (status, body["response"]["vf-job-panel"]["style"])
        except Exception as exc:  # noqa: BLE001
            errors.append(f"canceller: {type(exc).__name__}: {exc}")

    def browsing(name: str):
        try:
            barrier.wait(30)
            codes = []
            info = srv.callback(f"{ids.ANALYSIS}.data", output_has=ids.ENSEMBLE_INFO)
            while len(set(results) & JOBS) < len(JOBS) and len(codes) < 600:
                codes.append(srv.get("/")[0])
                codes.append(srv.get("/_dash-layout")[0])
                codes.append(srv.call(info, [{"ensemble": "frag", "params": {}, "key": "0" * 64}])[0])
                time.sleep(0.1)
            results[name] = codes
        except Exception as exc:  # noqa: BLE001
            errors.append(f"{name}: {type(exc).__name__}: {exc}")

    threads = [threading.Thread(target=computing, args=("twin1", 0.13)),
               threading.Thread(target=computing, args=("twin2", 0.13))]
    threads += [threading.Thread(target=computing, args=(f"other{i}", thr)) for i, thr in
                enumerate((0.14, 0.15))]
    threads += [threading.Thread(target=cancelling)]
    threads += [threading.Thread(target=browsing, args=(f"browser{i}",)) for i in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(TIMEOUT + 60)
    stop.set()
    assert not errors, errors
    # the twins shared one job and both got its result: the analysis with their parameters
    (id1, tok1), (id2, tok2) = results["twin1"], results["twin2"]
    assert id1 == id2
    assert tok1 == tok2 and tok1["key"] == data.analysis_key(path, _params(0.13))
    for i, thr in enumerate((0.14, 0.15)):
        jid, tok = results[f"other{i}"]
        assert jid != id1 and tok["key"] == data.analysis_key(path, _params(thr)), (thr, tok)
    # every result is the analysis computed here, independently of the server and its workers
    from vaefrag.analysis import analyze

    for thr, tok in ((0.13, tok1), (0.15, results["other1"][1])):
        here = analyze(path, **_params(thr), use_cache=False, maps=("mds",))
        got = data.cached_analysis(path, _params(thr), tmp / "cache")
        assert [h.channels.tolist() for h in got.hotspots] == [h.channels.tolist() for h in here.hotspots]
    status, style = results["canceller"]
    assert status == 200 and style == {"display": "none"}
    for i in range(3):
        codes = results[f"browser{i}"]
        assert codes and set(codes) <= {200, 204}, set(codes)
    assert srv.proc.poll() is None, "the server died"
    assert "Traceback" not in srv.log, srv.log[-3000:]
    print(f"peak memory of the server and its worker: {peak[0] / 2**20:.0f} MiB")
    assert 0 < peak[0] < MAX_RSS, f"peak memory {peak[0] / 2**20:.0f} MiB"
