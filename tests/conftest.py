"""Shared test setup: headless Debian Chromium for dash[testing]'s dash_duo browser tests, served
by a runner that stops its server without killing other threads."""
import os
import shutil
import threading

import pytest

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"


def pytest_setup_options():
    """Chrome options for dash_duo (called by dash[testing]'s pytest plugin)."""
    from selenium.webdriver.chrome.options import Options

    options = Options()
    options.binary_location = CHROMIUM
    for arg in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                "--disable-dev-shm-usage", "--disable-component-update", "--disable-sync",
                "--no-first-run", "--window-size=1440,900"):
        options.add_argument(arg)
    return options


def pytest_collection_modifyitems(config, items):
    """Browser tests need Chromium and chromedriver; CI installs them and must run them."""
    if shutil.which("chromedriver") and os.path.exists(CHROMIUM):
        return
    if os.environ.get("CI"):
        raise pytest.UsageError("CI: chromium and chromedriver are required for the browser tests")
    skip = pytest.mark.skip(reason="chromium/chromedriver not installed (bash scripts/install.sh --test)")
    for item in items:
        if "browser" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def frag_env(tmp_path_factory):
    """(Config, Analysis, token) of a 6 x 5 fragment ensemble "frag" with a warm analysis cache
    (the dashboard's callback and traversal tests)."""
    from vaefrag.dashboard import data
    from vaefrag.dashboard.config import Config
    from vaefrag.synthetic import make_fragment_ensemble

    tmp = tmp_path_factory.mktemp("dash")
    root, cache = tmp / "ensembles", tmp / "cache"
    path = make_fragment_ensemble(root / "frag", models=6, latents=5, n_points=160, seed=1)
    params = data.clean_params()
    a = data.compute_analysis(path, params, cache)
    cfg = Config(root=root, cache_dir=cache, default="frag")
    return cfg, a, data.token("frag", params, a.key)


@pytest.fixture
def rng():
    import numpy as np

    return np.random.default_rng(0)


class _GracefulRunner:
    """dash_duo's server (the ``dash_thread_server`` fixture, overridden): werkzeug in one thread,
    stopped with ``shutdown()``, then the app's job runner closed.

    dash.testing's own ThreadedRunner stops a Flask app by raising SystemExit in *every* thread
    started since the server started. That kills threads of process-wide pools too: once it killed
    the thread of Dask's offload executor (created lazily by the first job's scheduler), every later
    Dask scheduler in the test process hung forever on its first task.
    """

    def __init__(self):
        self.scheme, self.host, self.port = "http", "127.0.0.1", None
        self.started, self._server, self._thread, self._app = False, None, None, None

    @property
    def url(self):
        return f"{self.scheme}://{self.host}:{self.port}"

    def start(self, app, start_timeout=10, **kwargs):
        import requests
        from werkzeug.serving import make_server

        app.scripts.config.serve_locally = app.css.config.serve_locally = True
        # port 0: the system picks a free one (a fixed range such as dash's 58050+ lies among the
        # ephemeral ports that Dask's sockets and chromedriver take, so it was sometimes in use)
        self._app, self._server = app, make_server(self.host, int(kwargs.get("port") or 0), app.server, threaded=True)
        self.port = self._server.server_port
        self._thread = threading.Thread(target=self._server.serve_forever, name="dash-test-server", daemon=True)
        self._thread.start()
        requests.get(self.url, timeout=start_timeout).raise_for_status()
        self.started = True

    def stop(self):
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._thread.join(timeout=10)
            self._server = None
        runner = getattr(self._app, "vaefrag_runner", None)
        if runner is not None:
            runner.close(timeout=30)
        self.started = False

    def __call__(self, *args, **kwargs):
        return self.start(*args, **kwargs)


@pytest.fixture
def dash_thread_server():
    """Overrides dash.testing's fixture of the same name, which dash_duo uses (`_GracefulRunner`)."""
    runner = _GracefulRunner()
    try:
        yield runner
    finally:
        runner.stop()
