"""The dashboard shows traversals of an ensemble imported with ONNX decoders (real browser).

Run only under the shared lock:
``flock /tmp/vaefrag-browser.lock python -m pytest tests/test_byo_browser.py --webdriver Chrome --headless``.
The ensemble's posteriors are a synthetic fragment ensemble (so it has hotspots); its decoders are
networks written here in plain torch, exported with ``torch.onnx.export`` and imported with
``vaefrag import --decoders``. The image the browser shows must be the grid the torch networks
decode.
"""
from __future__ import annotations

import base64
import io
import subprocess
import sys

import numpy as np
import pytest

pytest.importorskip("dash")

from selenium.webdriver.common.action_chains import ActionChains  # noqa: E402

from browser_helpers import _js, _wait  # noqa: E402
from byo_helpers import export  # noqa: E402

pytestmark = pytest.mark.browser
NAME = "outside-onnx"


def _decoders(k, latents, side, seed=0):
    import torch
    from torch import nn

    class Decoder(nn.Module):
        def __init__(self, g):
            super().__init__()
            self.lin = nn.Linear(latents, side * side)
            with torch.no_grad():
                self.lin.weight.copy_(torch.randn(self.lin.weight.shape, generator=g))
                self.lin.bias.copy_(torch.randn(self.lin.bias.shape, generator=g) * 0.1)

        def forward(self, z):
            return torch.sigmoid(self.lin(z)).reshape(-1, 1, side, side)

    g = torch.Generator().manual_seed(seed)
    return [Decoder(g).eval() for _ in range(k)]


@pytest.fixture(scope="module")
def imported(tmp_path_factory):
    import torch

    from vaefrag import store
    from vaefrag.cli import main
    from vaefrag.dashboard import data
    from vaefrag.synthetic import make_fragment_ensemble

    tmp = tmp_path_factory.mktemp("byo")
    src = store.load_ensemble(make_fragment_ensemble(tmp / "src", models=6, latents=5, n_points=160, seed=1,
                                                     weights=False))
    side = src.x.shape[-1]
    decs = _decoders(6, 5, side)
    for k, dec in enumerate(decs):
        export(dec, torch.zeros(2, 5), tmp / "decoders" / f"decoder_{k:02d}.onnx", dynamo=False)
    np.savez(tmp / "post.npz", mu=src.mu, logvar=src.logvar, x=src.x, factors=src.factors,
             factor_names=np.asarray(src.factor_names))
    root = tmp / "ensembles"
    assert main(["import", str(tmp / "post.npz"), "--name", NAME, "--ensembles", str(root),
                 "--decoders", str(tmp / "decoders")]) == 0
    cache = tmp / "cache"
    code = ("import sys; from vaefrag.dashboard import data; "
            "data.compute_analysis(sys.argv[1], data.clean_params(), sys.argv[2])")
    subprocess.run([sys.executable, "-c", code, str(root / NAME), str(cache)], check=True, timeout=1800)
    a = data.cached_analysis(root / NAME, data.clean_params(), cache)
    assert a is not None and a.hotspots
    return root, cache, a, decs, store.load_ensemble(root / NAME)


def _png(src: str) -> np.ndarray:
    from PIL import Image

    return np.asarray(Image.open(io.BytesIO(base64.b64decode(src.split(",", 1)[1]))))


def test_imported_onnx_ensemble_shows_the_torch_traversals(dash_duo, imported):
    import torch

    from vaefrag import traversal
    from vaefrag.dashboard import create_app, ids
    from vaefrag.dashboard.traversals import base_rows
    from vaefrag.figures import views

    root, cache, a, decs, ens = imported
    dash_duo.driver.set_window_size(1440, 900)
    dash_duo.start_server(create_app(root, default=NAME, cache_dir=cache))
    _wait(dash_duo, lambda: _js(dash_duo, "return document.querySelectorAll('#vf-matrix g.hm image').length") > 0,
          timeout=240, msg="first render")
    h = max(a.hotspots, key=lambda h: h.size)
    spans = views.hotspot_spans(a)
    offset = sum(b - a_ + 1 for hid, a_, b in spans[:[s[0] for s in spans].index(h.id)])
    width = next(b - a_ + 1 for hid, a_, b in spans if hid == h.id)
    bands = dash_duo.find_elements(f"#{ids.MATRIX} .barlayer .trace:nth-child(2) .point")
    ActionChains(dash_duo.driver).move_to_element(bands[offset + width // 2]).pause(0.3).click().perform()
    _wait(dash_duo, lambda: len(dash_duo.find_elements(f"img.{ids.TRAV_IMAGE}")) >= 2, msg="traversal images")
    imgs = dash_duo.find_elements(f"img.{ids.TRAV_IMAGE}")
    assert len(imgs) == min(9, h.n_models)
    # the first card is the medoid, traversed with the panel's defaults (7 steps, 2 bases, seed 0)
    m, lat = (int(v) for v in a.channel_ids[a.kept[h.medoid]])
    rows = base_rows(ens.n_points, 2, 0)
    vals = traversal.traversal_values(ens.mu[m, :, lat], 7, (0.05, 0.95), 1)
    z = np.repeat(ens.mu[m, rows][:, None], 7, 1)
    z[:, :, lat] = vals
    with torch.no_grad():
        y = decs[m](torch.from_numpy(z.reshape(14, -1).astype(np.float32))).numpy()
    grid = np.clip(np.rint(y[:, 0].reshape(2, 7, *y.shape[2:]) * 255.0), 0, 255).astype(np.uint8)
    shown = _png(imgs[0].get_attribute("src"))
    want = views.traversal_image(grid, gap=1)
    assert shown.shape[:2] == want.shape
    shown = shown if shown.ndim == 2 else shown[..., 0]
    assert np.abs(shown.astype(int) - want.astype(int)).max() <= 1
    assert dash_duo.get_logs() == []
