"""The dashboard's job runner: long work in a bounded pool of spawned worker processes (Dask).

Jobs are `tasks.run` calls. A job's id is the content key of its kind and parameters, so equal
requests share one job and every requester gets its result; each requester (a page, named by the
client id it sends) subscribes to the job, and the job is cancelled only when its last subscriber
cancels. Workers are processes of a Dask ``LocalCluster`` (spawned, one thread each, a memory
limit each: the per-job memory budget), or of the cluster at ``scheduler`` ("tcp://host:port"; its
workers must see the same ensembles root and cache directory). The cluster starts with the first
job, not with the server.

Progress travels as Dask worker events (one topic per job, logged at most every 0.25 s); cancel
through a Dask ``Event`` the worker checks at each progress call. A job that outlives its time limit
is stopped the same way, and a job that does not stop within `GRACE_S` of a cancel or its time
limit has its worker restarted. Caps: at most ``max_jobs`` distinct jobs queued or running, at most
``max_per_client`` subscriptions per client. Finished jobs are kept `KEEP_S` seconds for requesters
still polling. `close` (SIGTERM, normal exit; registered with atexit) cancels every job and stops the
workers; on a kill -9 of the server the workers exit by themselves (each watches a pipe from its
parent, `distributed.process`).
"""
from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import threading
import time
from dataclasses import dataclass, field

from vaefrag.dashboard import tasks

log = logging.getLogger(__name__)

#: seconds a job may take to stop after a cancel or its time limit before its worker is restarted
GRACE_S = 5.0
#: seconds a finished job's result stays available to requesters that have not polled it yet
KEEP_S = 600.0
#: how often the monitor thread reads progress and enforces limits (seconds)
MONITOR_S = 0.3


class JobRefused(ValueError):
    """A job was not started (a cap reached, bad parameters); the message says why."""


class JobCancelled(Exception):
    """Raised inside a worker's task when its job was cancelled or ran out of time."""


def job_id(kind: str, params: dict) -> str:
    """Content key of a request: sha256 of the kind and the parameters as sorted JSON (24 hex digits)."""
    blob = json.dumps([kind, params], sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(blob).hexdigest()[:24]


def _run_in_worker(kind, params, root, cache_dir, name, time_limit):
    """The function a Dask worker runs: `tasks.run` with a progress callback that publishes progress
    and raises `JobCancelled` on a cancel or when ``time_limit`` seconds have passed, and a partial
    callback that publishes an intermediate result (topic ``<name>-partial``)."""
    import warnings

    from distributed import Event, get_client, get_worker

    warnings.filterwarnings("ignore", category=UserWarning, module="sklearn")   # per-job noise in the log
    worker, stop = get_worker(), Event(f"{name}-cancel", client=get_client())
    start, last = time.monotonic(), [0.0]

    def progress(done, total, message=""):
        now = time.monotonic()
        if now - start > time_limit:
            raise JobCancelled(f"stopped after its time limit of {time_limit:g} s")
        if now - last[0] >= 0.25:
            last[0] = now
            if stop.is_set():
                raise JobCancelled("cancelled")
            worker.log_event(f"{name}-progress", [int(done), int(max(total, 1)), str(message)[:200]])

    def partial(value):
        worker.log_event(f"{name}-partial", [value])     # a list: Dask adds its worker address to a dict

    try:
        return tasks.run(kind, params, root, cache_dir, progress, partial)
    except (ValueError, OSError, FloatingPointError, JobCancelled) as exc:
        # an expected failure is a result (Dask would log a traceback for a raised one)
        return Failed(type(exc).__name__, _error_message(exc), isinstance(exc, JobCancelled))


@dataclass(frozen=True)
class Failed:
    """What a task returns when it failed on bad input, was cancelled or ran out of time."""

    kind: str
    message: str
    cancelled: bool = False


def _warm_worker() -> float:
    """Import the numerics in a fresh worker (torch, scikit-learn: a few seconds) so that the first
    job does not pay it. umap is not imported here: on a fresh machine its import and first fit
    compile 30-70 s of numba code, and a job submitted meanwhile would wait for it; a job pays that
    in its maps stage, after its hotspots were shown (`tasks.run` previews), and numba's on-disk
    cache keeps the code for later workers. Returns seconds."""
    import numpy as np

    from vaefrag import measures, structure  # noqa: F401

    t0 = time.perf_counter()
    rng = np.random.default_rng(0)
    d = rng.random((24, 24))
    d = d + d.T
    np.fill_diagonal(d, 0.0)
    structure.channel_maps(d, methods=("mds",))
    return time.perf_counter() - t0


@dataclass
class Job:
    """One distinct request. state: queued, running, done, error, cancelled."""

    id: str
    kind: str
    params: dict
    name: str                                   # Dask key (id + generation)
    future: object = None
    clients: set = field(default_factory=set)
    state: str = "queued"
    progress: tuple = (0, 1, "waiting for a worker ...")
    partial: object = None                      # the task's last intermediate result (`tasks.run`)
    partial_sent: dict = field(default_factory=dict)   # client -> the partial it was last given
    result: object = None
    error: str | None = None
    submitted: float = field(default_factory=time.monotonic)
    rate_ref: tuple | None = None               # (time, done, total) the time left is measured from
    stop_asked: float | None = None             # when a cancel / the time limit asked it to stop
    finished: float | None = None


class JobRunner:
    """Bounded pool of worker processes for the dashboard's jobs (see the module docstring).

    Parameters
    ----------
    root, cache_dir : the app's ensembles root and analysis cache (passed to every task).
    scheduler : "tcp://host:port" of a running Dask scheduler, or None for a local cluster.
    n_workers : local worker processes (default: half the CPUs, at least 1, at most 4).
    memory_limit : per worker (Dask's format, e.g. "4GiB"); a job beyond it loses its worker and fails.
    time_limit : seconds a job may run.  max_jobs, max_per_client : the caps.
    """

    def __init__(self, root, cache_dir, *, scheduler: str | None = None, n_workers: int | None = None,
                 memory_limit: str = "4GiB", time_limit: float = 1800.0, max_jobs: int = 16,
                 max_per_client: int = 3):
        if n_workers is not None and not (isinstance(n_workers, int) and 1 <= n_workers <= 64):
            raise ValueError(f"n_workers: expected an integer in [1, 64], got {n_workers!r}")
        if not (isinstance(time_limit, (int, float)) and 0 < time_limit <= 7 * 86400):
            raise ValueError(f"time_limit: expected seconds in (0, 604800], got {time_limit!r}")
        self.root, self.cache_dir = str(root), str(cache_dir)
        self.scheduler, self.memory_limit, self.time_limit = scheduler, memory_limit, float(time_limit)
        self.n_workers = n_workers or max(1, min(4, (os.cpu_count() or 2) // 2))
        self.max_jobs, self.max_per_client = int(max_jobs), int(max_per_client)
        self._jobs: dict[str, Job] = {}
        self._lock = threading.RLock()
        self._client = self._cluster = None
        self._monitor: threading.Thread | None = None
        self._closed = threading.Event()
        self._generation = 0
        self._stopping: list[tuple[str, float]] = []      # (Dask key, when asked to stop)
        self._warming: list = []                           # futures of `_warm_worker`
        atexit.register(self.close, timeout=10.0)    # bounded: at interpreter exit the loop may be gone

    # ------------------------------------------------------------------------------- cluster
    def _ensure_client(self):
        """The Dask client, starting the local cluster on first use (under the lock)."""
        if self._client is not None:
            return self._client
        import dask
        from distributed import Client, LocalCluster

        logging.getLogger("distributed").setLevel(max(logging.WARNING, logging.getLogger("distributed").level))
        dask.config.set({"distributed.scheduler.allowed-failures": 0,
                         "distributed.scheduler.worker-saturation": 1.0,     # a worker holds only its job
                         "distributed.worker.multiprocessing-method": "spawn",
                         "distributed.admin.tick.limit": "60s"})
        if self.scheduler:
            self._client = Client(self.scheduler, timeout=20, set_as_default=False)
        else:
            self._cluster = LocalCluster(n_workers=self.n_workers, threads_per_worker=1, processes=True,
                                         memory_limit=self.memory_limit, host="127.0.0.1", scheduler_port=0,
                                         dashboard_address="127.0.0.1:0",   # the scheduler's HTTP: local only
                                         silence_logs=logging.ERROR)
            self._client = Client(self._cluster, set_as_default=False)
        self._monitor = threading.Thread(target=self._watch, name="vaefrag-jobs", daemon=True)
        self._monitor.start()
        return self._client

    def start(self, warm: bool = True) -> None:
        """Start the workers now (instead of with the first job); with ``warm`` each worker first
        imports the numerics (`_warm_worker`). A thread target for servers; never raises."""
        try:
            with self._lock:
                if self._closed.is_set():
                    return
                client = self._ensure_client()
                workers = list(client.scheduler_info(n_workers=-1)["workers"]) if warm and not self.scheduler else []
                for w in workers:                   # held, or Dask would forget the task
                    self._warming.append(client.submit(_warm_worker, key=f"vaefrag-warm-{w}", workers=[w],
                                                       allow_other_workers=False, pure=False))
        except Exception as exc:  # noqa: BLE001 - jobs then start the cluster themselves
            log.warning("jobs: starting the workers: %s", exc)

    # ---------------------------------------------------------------------------------- API
    def submit(self, kind: str, params: dict, client: str) -> str:
        """Start (or join) the job for this request; returns its id.

        Raises JobRefused for bad parameters (`tasks.check_params`), a closed runner or a cap reached.
        """
        try:
            params = tasks.check_params(kind, params)
        except ValueError as exc:
            raise JobRefused(str(exc)) from None
        client = str(client)[:64]
        jid = job_id(kind, params)
        with self._lock:
            if self._closed.is_set():
                raise JobRefused("the server is shutting down")
            self._sweep()
            job = self._jobs.get(jid)
            if job is not None and job.state in ("queued", "running", "done"):
                job.clients.add(client)
                return jid
            mine = sum(client in j.clients for j in self._jobs.values() if j.state in ("queued", "running"))
            if mine >= self.max_per_client:
                raise JobRefused(f"you already run {mine} jobs (at most {self.max_per_client} per page): "
                                 "wait for one or cancel it")
            active = sum(j.state in ("queued", "running") for j in self._jobs.values())
            if active >= self.max_jobs:
                raise JobRefused(f"the server runs {active} jobs already (at most {self.max_jobs}): try again soon")
            dclient = self._ensure_client()
            self._generation += 1
            job = Job(id=jid, kind=kind, params=params, name=f"vaefrag-{kind}-{jid}-{self._generation}",
                      clients={client})
            job.future = dclient.submit(_run_in_worker, kind, params, self.root, self.cache_dir, job.name,
                                        self.time_limit, key=job.name, pure=False)
            self._jobs[jid] = job
            return jid

    def poll(self, jid, client: str) -> dict:
        """{"state", "done", "total", "message", "left_s", "partial", "result", "error", "params"} of job
        ``jid`` for ``client``. left_s: the stage's estimated seconds left (`estimate_left`) or None.
        partial: the task's last intermediate result the first time this client polls after it
        appeared, else None (so a page shows each one once; the job keeps it).

        A finished job is reported to each subscriber; the subscriber that reads it last releases
        it. An unknown id reads as state "unknown".
        """
        with self._lock:
            job = self._jobs.get(jid) if isinstance(jid, str) else None
            if job is None:
                return {"state": "unknown", "done": 0, "total": 1, "message": "", "partial": None, "result": None,
                        "error": None}
            done, total, message = job.progress
            me = str(client)[:64]
            fresh = job.partial is not None and job.partial_sent.get(me) != job.partial
            if fresh:
                job.partial_sent[me] = job.partial
            left = estimate_left(job.rate_ref, done, total, time.monotonic()) if job.state == "running" else None
            out = {"state": job.state, "done": done, "total": total, "message": message, "left_s": left,
                   "partial": job.partial if fresh else None, "result": job.result, "error": job.error,
                   "params": dict(job.params)}
            if job.state in ("done", "error", "cancelled"):
                job.clients.discard(str(client)[:64])
                if not job.clients:
                    self._forget(job)
            return out

    def cancel(self, jid, client: str) -> bool:
        """Unsubscribe ``client`` from job ``jid``; the job stops when no subscriber is left.
        True when the client was subscribed."""
        with self._lock:
            job = self._jobs.get(jid) if isinstance(jid, str) else None
            if job is None or str(client)[:64] not in job.clients:
                return False
            job.clients.discard(str(client)[:64])
            if not job.clients and job.state in ("queued", "running"):
                self._stop(job, "cancelled")
            return True

    def active(self) -> list[dict]:
        """Summary of the jobs queued or running (kind, id, state, subscribers)."""
        with self._lock:
            return [{"kind": j.kind, "id": j.id, "state": j.state, "clients": len(j.clients)}
                    for j in self._jobs.values() if j.state in ("queued", "running")]

    def close(self, timeout: float | None = None) -> None:
        """Cancel every job and stop the workers (idempotent); ``timeout``: seconds to wait for the
        cluster to close (None: as long as it takes)."""
        if self._closed.is_set():
            return
        self._closed.set()
        with self._lock:
            for job in list(self._jobs.values()):
                if job.state in ("queued", "running"):
                    self._stop(job, "cancelled")
            client, cluster, self._client, self._cluster = self._client, self._cluster, None, None
        for thing in (client, cluster):
            if thing is not None:
                try:
                    thing.close(timeout=10) if thing is client else thing.close(timeout=timeout)
                except Exception as exc:  # noqa: BLE001 - shutting down: report, never raise
                    log.warning("jobs: closing %s: %s", type(thing).__name__, exc)

    # ----------------------------------------------------------------------------- internals
    def _stop(self, job: Job, state: str, error: str | None = None) -> None:
        """Ask job's task to stop (Event), cancel its future, mark it (lock held)."""
        job.state, job.error, job.finished = state, error, time.monotonic()
        job.stop_asked = job.stop_asked or time.monotonic()
        if self._client is not None:
            try:
                from distributed import Event

                Event(f"{job.name}-cancel", client=self._client).set()
                job.future.cancel()
            except Exception as exc:  # noqa: BLE001
                log.warning("jobs: cancelling %s: %s", job.name, exc)
            self._stopping.append((job.name, time.monotonic()))

    def _forget(self, job: Job) -> None:
        if self._jobs.get(job.id) is job:
            del self._jobs[job.id]

    def _sweep(self) -> None:
        """Drop finished jobs older than `KEEP_S` (lock held)."""
        now = time.monotonic()
        for job in list(self._jobs.values()):
            if job.finished is not None and now - job.finished > KEEP_S:
                self._forget(job)

    def _watch(self) -> None:
        """Monitor thread: progress, results, time limits, hard stops."""
        while not self._closed.wait(MONITOR_S):
            with self._lock:
                jobs = [j for j in self._jobs.values() if j.state in ("queued", "running")]
            for job in jobs:
                try:
                    self._update(job)
                except Exception as exc:  # noqa: BLE001 - the monitor must survive anything
                    log.warning("jobs: monitoring %s: %s", job.name, exc)
            try:
                self._hard_stop()
            except Exception as exc:  # noqa: BLE001
                log.warning("jobs: stopping workers: %s", exc)

    def _update(self, job: Job) -> None:
        fut = job.future
        status = fut.status
        parts = self._client.get_events(f"{job.name}-partial")
        if parts:
            with self._lock:
                job.partial = parts[-1][1][0]
        if status == "finished":
            result = fut.result()
            with self._lock:
                if job.state not in ("queued", "running"):
                    return
                job.finished = time.monotonic()
                if isinstance(result, Failed):
                    job.state = "cancelled" if result.cancelled and job.stop_asked else "error"
                    job.error = result.message
                else:
                    job.state, job.result = "done", result
                    job.progress = (job.progress[1], job.progress[1], "done")
            return
        if status in ("error", "lost", "cancelled"):
            exc = fut.exception() if status == "error" else None
            msg = _error_message(exc) if exc is not None else f"the job was {status}"
            with self._lock:
                if job.state in ("queued", "running"):
                    job.state = "cancelled" if isinstance(exc, JobCancelled) and job.stop_asked else "error"
                    job.error, job.finished = msg, time.monotonic()
            return
        events = self._client.get_events(f"{job.name}-progress")
        value = events[-1][1] if events else None
        with self._lock:
            if value is not None and job.state in ("queued", "running"):
                job.state, job.progress = "running", tuple(value)
                ref = job.rate_ref
                if ref is None or ref[2] != value[1] or value[0] < ref[1]:     # a new stage: measure afresh
                    job.rate_ref = (time.monotonic(), value[0], value[1])
            if time.monotonic() - job.submitted > self.time_limit + GRACE_S and job.state in ("queued", "running"):
                self._stop(job, "error", f"stopped after its time limit of {self.time_limit:g} s")

    def _hard_stop(self) -> None:
        """Restart the workers still running a task asked to stop more than `GRACE_S` ago."""
        now = time.monotonic()
        due = [name for name, t in self._stopping if now - t > GRACE_S]
        if not due or self._client is None:
            return
        self._stopping[:] = [(n, t) for n, t in self._stopping if n not in due]
        processing = self._client.processing()
        workers = [w for w, keys in processing.items() if any(k in due for k in keys)]
        if workers:
            log.warning("jobs: restarting %d worker(s) that did not stop in %g s", len(workers), GRACE_S)
            self._client.restart_workers(workers)


def estimate_left(ref: tuple | None, done: int, total: int, now: float, min_s: float = 3.0) -> float | None:
    """Seconds a job stage has left at its rate since ``ref`` = (time, done, total), or None when the
    stage changed (another total), nothing was done since, or less than ``min_s`` passed (too little
    to tell)."""
    if ref is None or ref[2] != total or done <= ref[1] or now - ref[0] < min_s:
        return None
    return (now - ref[0]) * (total - done) / (done - ref[1])


def _error_message(exc: BaseException) -> str:
    """One line for a failed job: the message of a ValueError / OSError, else the type and message."""
    if isinstance(exc, JobCancelled):
        return str(exc)
    if isinstance(exc, (ValueError, OSError)):
        return str(exc)
    name = type(exc).__name__
    if name == "KilledWorker":
        return "its worker process died (out of memory?)"
    log.warning("jobs: a job failed: %s: %s", name, exc)
    return f"internal error ({name}: {exc})"
