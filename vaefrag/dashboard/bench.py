"""`python -m vaefrag bench dashboard`: how fast the dashboard answers, measured on a live server.

Measures (printed as one table, nothing asserted):

- start: seconds from starting the server (``vaefrag serve`` in a fresh process, warm analysis
  cache) until the page's first full render in headless Chromium (matrix, map and hotspot table
  drawn, no callback pending), when the server first answered HTTP, and the browser's part: from
  the navigation to the page (a fresh browser, nothing cached) to that render;
- click: median seconds from a click on a hotspot row to the traversal images in the page
  (measured in the browser: click event to the last change of the traversal panel), first over
  every hotspot (members decoded), then again (decoded cards memoised); plus the summed server
  time of the click's callbacks (``Server-Timing``), which separates server from browser work;
- size: the largest callback response in bytes for the view of a 500-channel ensemble, and the
  size of the page layout (which carries the first page's matrix and map).

With ``--fresh`` it measures instead the first start on a fresh machine: the server starts with an
empty analysis cache and an empty numba cache (UMAP compiles again), and the times are those until
the page shows the hotspots (matrix and hotspot table: the structure stage) and until it is whole
(the map too).

The ensemble is ``--ensemble DIR`` or, by default, a synthetic fragment ensemble written to a
temporary directory by `synthetic.make_fragment_ensemble` (50 models x 10 latents = 500 channels): posteriors
built from the sprites factors (each factor recurs across models, some channels are empty), real
sprites fingerprint images, and *untrained* member networks of the sprites architecture. Its
traversals therefore time the real decode path but show nothing meaningful; tests use it for the
same reason (a real ensemble on disk, built in seconds).
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from vaefrag.synthetic import make_fragment_ensemble

# --------------------------------------------------------------------------------------- measuring
#: in-page probes: click time (capture phase), time traversal images last changed, callback sizes
PROBE_JS = """
window.__vf = {click: null, shown: null};
document.addEventListener('click', () => { window.__vf.click = performance.now(); window.__vf.shown = null; }, true);
new MutationObserver(() => {
    if (document.querySelector('#vf-traversals img')) { window.__vf.shown = performance.now(); }
}).observe(document.getElementById('vf-traversals'), {childList: true, subtree: true, attributes: true});
"""
SIZES_JS = """
const out = performance.getEntriesByType('resource').filter(e => e.name.includes('_dash-update-component'))
    .map(e => [e.decodedBodySize, e.transferSize, e.duration, (e.serverTiming[0] || {duration: 0}).duration]);
if (arguments[0]) { performance.clearResourceTimings(); }
return out;
"""
LAYOUT_JS = """
return Math.max(0, ...performance.getEntriesByType('resource').filter(e => e.name.includes('_dash-layout'))
    .map(e => e.decodedBodySize));
"""
RENDERED_JS = """
const q = s => document.querySelectorAll(s).length;
return q('#vf-matrix g.hm image') > 0 && q('#vf-map .scatterlayer .point') > 0 && q('#vf-hotspots .ag-center-cols-container .ag-row') > 0
    && q('[data-dash-is-loading="true"]') === 0;
"""


def _driver(width: int = 1440, height: int = 900):
    from selenium import webdriver
    from selenium.webdriver.chrome.options import Options

    opts = Options()
    opts.binary_location = "/usr/bin/chromium" if Path("/usr/bin/chromium").exists() else opts.binary_location
    for a in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
              "--disable-background-networking", f"--window-size={width},{height}"):
        opts.add_argument(a)
    return webdriver.Chrome(options=opts)


def _until(cond, timeout: float, what: str, poll: float = 0.01):
    end = time.perf_counter() + timeout
    while time.perf_counter() < end:
        try:
            if cond():
                return time.perf_counter()
        except Exception:           # element missing / stale while the page re-renders
            pass
        time.sleep(poll)
    raise TimeoutError(f"timed out after {timeout:.0f} s waiting for {what}")


STRUCTURE_JS = """
const q = s => document.querySelectorAll(s).length;
return q('#vf-matrix g.hm image') > 0 && q('#vf-hotspots .ag-center-cols-container .ag-row') > 0;
"""


def _open_when_up(url: str, driver) -> float:
    """Wait until the server at ``url`` answers, then open the page; returns when it answered."""
    import urllib.request

    def up():
        with urllib.request.urlopen(url, timeout=2) as r:
            return r.status == 200

    t_up = _until(up, 120, "the server to answer", poll=0.05)
    driver.get(url)
    return t_up


def measure_fresh(url: str, t0: float, driver) -> dict:
    """Seconds from the server's start (perf_counter ``t0``) until it answers, until the hotspots
    are drawn, and until the first full render."""
    t_up = _open_when_up(url, driver)
    t_structure = _until(lambda: driver.execute_script(STRUCTURE_JS), 600, "the hotspots", poll=0.02)
    t_render = _until(lambda: driver.execute_script(RENDERED_JS), 600, "the first full render", poll=0.05)
    return {"up_s": t_up - t0, "structure_s": t_structure - t0, "start_s": t_render - t0}


def measure(url: str, t0: float, analysis, driver, repeats: int = 3) -> dict:
    """Drive the page at ``url`` (server started at perf_counter ``t0``); see the module docstring."""
    from vaefrag.figures.views import channel_label

    t_up = _open_when_up(url, driver)
    t_render = _until(lambda: driver.execute_script(RENDERED_JS), 300, "the first full render", poll=0.02)
    nav_s = driver.execute_script("return performance.now() / 1000;")     # since the navigation started
    driver.execute_script("performance.setResourceTimingBufferSize(10000);")
    driver.execute_script(PROBE_JS)
    kept_ids = analysis.channel_ids[analysis.kept]
    clicks, server, n = [], [], len(analysis.hotspots)
    layout_bytes = driver.execute_script(LAYOUT_JS)
    sizes = driver.execute_script(SIZES_JS, True)                     # the first render's responses
    order = [int(driver.find_element("css selector", f"#vf-hotspots .ag-row[row-index='{i}'] .ag-cell[col-id='number']")
                 .get_attribute("textContent")) - 1          # the table shows hotspot numbers (id + 1)
             for i in range(len(analysis.hotspots))]
    for rep in range(repeats):
        for i in range(n):
            hid = order[i]
            h = next(h for h in analysis.hotspots if h.id == hid)
            want = channel_label(*kept_ids[h.medoid])
            cell = driver.find_element("css selector", f"#vf-hotspots .ag-center-cols-container .ag-row[row-index='{i}'] "
                                                       ".ag-cell[col-id='factor']")
            driver.execute_script("arguments[0].scrollIntoView({block: 'center'});", cell)
            cell.click()
            _until(lambda: driver.find_element("css selector", "#vf-traversals figcaption b")
                   .get_attribute("textContent") == want
                   and driver.execute_script("return window.__vf.shown") is not None, 60, f"traversals of hotspot {hid}")
            time.sleep(0.05)          # let the last mutation land
            clicks.append((rep, driver.execute_script("return (window.__vf.shown - window.__vf.click) / 1000;")))
            got = driver.execute_script(SIZES_JS, True)
            sizes += got
            server.append((rep, sum(g[3] for g in got) / 1000))     # server time of the click's callbacks
    # the other heavy views: VI matrix, MDS map coloured by a factor
    for sel in ("#vf-matrix-measure input[value='vi']", "#vf-map-method input[value='mds']"):
        driver.execute_script("arguments[0].click();", driver.find_element("css selector", sel))
        time.sleep(2.0)
    sizes += driver.execute_script(SIZES_JS, True)
    biggest = max(sizes, key=lambda s: s[0]) if sizes else [0, 0, 0]
    cold = [c for r, c in clicks if r == 0]
    warm = [c for r, c in clicks if r > 0] or [float("nan")]
    srv_cold = [c for r, c in server if r == 0]
    srv_warm = [c for r, c in server if r > 0] or [float("nan")]
    return {"start_s": t_render - t0, "up_s": t_up - t0, "nav_s": nav_s, "click_median_s": statistics.median(cold),
            "click_warm_s": statistics.median(warm), "server_cold_s": statistics.median(srv_cold),
            "server_warm_s": statistics.median(srv_warm), "click_max_s": max(c for _, c in clicks), "n_clicks": len(clicks),
            "max_bytes": int(biggest[0]), "layout_bytes": int(layout_bytes or 0), "n_responses": len(sizes)}


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="vaefrag bench dashboard", description=__doc__.splitlines()[0])
    parser.add_argument("--ensemble", help="ensemble directory (default: a synthetic 50 x 10 ensemble)")
    parser.add_argument("--models", type=int, default=50)
    parser.add_argument("--latents", type=int, default=10)
    parser.add_argument("--points", type=int, default=1000)
    parser.add_argument("--port", type=int, default=8071)
    parser.add_argument("--repeats", type=int, default=3, help="passes over the hotspots for the click time")
    parser.add_argument("--cache-dir", help="analysis cache (default: a temporary directory)")
    parser.add_argument("--fresh", action="store_true",
                        help="time the first start on a fresh machine instead (empty analysis and numba caches)")
    args = parser.parse_args(argv)
    if args.fresh:
        return _fresh(args)
    with tempfile.TemporaryDirectory(prefix="vaefrag-bench-") as tmp:
        tmp = Path(tmp)
        if args.ensemble:
            ens = Path(args.ensemble)
        else:
            print(f"writing a synthetic {args.models} x {args.latents} ensemble (N={args.points}) ...", flush=True)
            ens = make_fragment_ensemble(tmp / "ensembles" / "bench-fragments", models=args.models,
                                         latents=args.latents, n_points=args.points, resolution=64,
                                         width=32, hidden=256, empty_fraction=0.1)
        cache = Path(args.cache_dir) if args.cache_dir else tmp / "cache"
        print("warming the analysis cache (as `vaefrag analyze` would) ...", flush=True)
        from vaefrag.dashboard import data

        t = time.perf_counter()
        a = data.compute_analysis(ens, data.clean_params(), cache)
        print(f"  {len(a.kept)} of {len(a.info)} channels kept, {len(a.hotspots)} hotspots, "
              f"{time.perf_counter() - t:.1f} s{' (cached)' if a.from_cache else ''}", flush=True)
        driver = _driver()
        cmd = [sys.executable, "-m", "vaefrag", "serve", "--ensembles", str(ens.parent), "--default", ens.name,
               "--port", str(args.port), "--cache-dir", str(cache)]
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            res = measure(f"http://127.0.0.1:{args.port}/", t0, a, driver, repeats=args.repeats)
        finally:
            driver.quit()
            proc.terminate()
            proc.wait(timeout=20)
    print()
    print(f"{'measure':<48}{'value':>10}  target")
    print(f"{'server start -> first full render (s)':<48}{res['start_s']:>10.2f}  <= 2.5")
    print(f"{'  (server answering HTTP after) (s)':<48}{res['up_s']:>10.2f}")
    print(f"{'  (page opened -> first full render) (s)':<48}{res['nav_s']:>10.2f}  (the browser's part)")
    print(f"{'hotspot click -> traversal images, median (s)':<48}{res['click_median_s']:>10.3f}  <= 0.15")
    print(f"{'  again (decoded cards cached), median (s)':<48}{res['click_warm_s']:>10.3f}")
    print(f"{'  slowest click (s)':<48}{res['click_max_s']:>10.3f}")
    print(f"{'  server time of a click, first / again (s)':<48}{res['server_cold_s']:>10.3f} / "
          f"{res['server_warm_s']:.3f}  (the rest is the browser)")
    print(f"{'largest callback response (MB)':<48}{res['max_bytes'] / 1e6:>10.3f}  < 2")
    print(f"{'  the page layout (carries the first figures) (MB)':<48}{res['layout_bytes'] / 1e6:>10.3f}")
    print(f"channels: {len(a.info)} ({len(a.kept)} kept), hotspots: {len(a.hotspots)}, "
          f"clicks timed: {res['n_clicks']}, callback responses seen: {res['n_responses']}")
    return 0


def _fresh(args) -> int:
    import os

    ens = Path(args.ensemble) if args.ensemble else Path(__file__).resolve().parents[2] / "data" / "ensembles" / "sprites-beta-vae"
    with tempfile.TemporaryDirectory(prefix="vaefrag-bench-") as tmp:
        env = {**os.environ, "VAEFRAG_CACHE": str(Path(tmp) / "cache"), "NUMBA_CACHE_DIR": str(Path(tmp) / "numba")}
        cmd = [sys.executable, "-m", "vaefrag", "serve", "--ensembles", str(ens.parent), "--default", ens.name,
               "--port", str(args.port)]
        driver = _driver()
        t0 = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        try:
            res = measure_fresh(f"http://127.0.0.1:{args.port}/", t0, driver)
        finally:
            driver.quit()
            proc.terminate()
            proc.wait(timeout=30)
    print()
    print(f"first start on a fresh machine ({ens.name}; empty analysis and numba caches)")
    print(f"{'measure':<48}{'value':>10}  target")
    print(f"{'server start -> answering HTTP (s)':<48}{res['up_s']:>10.2f}")
    print(f"{'server start -> hotspots drawn (s)':<48}{res['structure_s']:>10.2f}  < 10")
    print(f"{'server start -> whole page (map too) (s)':<48}{res['start_s']:>10.2f}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
