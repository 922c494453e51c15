"""Traversal cards of the dashboard (`dashboard.traversals`, `callbacks.traversal`): which members,
in which order and pages, decoded how, and decoded ahead in the background (no server)."""
import base64
import io

import numpy as np
import pytest

pytest.importorskip("dash")

from vaefrag.dashboard import data, ids  # noqa: E402
from vaefrag.dashboard import selection as selmod  # noqa: E402
from vaefrag.dashboard import traversals as trav  # noqa: E402
from vaefrag.dashboard.callbacks import traversal as cbt  # noqa: E402
from vaefrag.figures import views  # noqa: E402

NAME = "frag"


def test_hotspot_traversals_are_every_member_by_nmi_with_the_medoid(frag_env):
    cfg, a, tok = frag_env
    h = max(a.hotspots, key=lambda h: h.size)
    cards, pager = trav.cards(cfg.root / NAME, a, selmod.hotspot(a, h.id), steps=5, n_bases=2, seed=0, show_all=True)
    kept = [c["kept"] for c in cards]
    assert kept[0] == h.medoid and sorted(kept) == sorted(int(m) for m in h.members)      # every member
    nmi = [a.nmi[h.medoid, k] for k in kept[1:]]
    assert nmi == sorted(nmi, reverse=True)                                  # most typical first
    assert pager == {"page": 0, "pages": 1, "first": 1, "last": len(kept), "total": len(kept)}
    ens = data.load_ensemble(cfg.root / NAME)
    ref = ens.mu[cards[0]["model"], :, cards[0]["latent"]]
    for c in cards[1:]:
        r = np.corrcoef(ref, ens.mu[c["model"], :, c["latent"]])[0, 1]
        assert c["sign"] == (1 if r > 0 else -1)
    from PIL import Image

    img = Image.open(io.BytesIO(base64.b64decode(cards[0]["uri"].split(",", 1)[1])))
    side = ens.x.shape[-1]
    assert img.size == (5 * side + 4, 2 * side + 1)          # 5 steps x 2 bases, 1-pixel gaps
    assert cards[0]["cell"] == (side, side) and cards[0]["scale"] * side >= trav.MIN_CELL_PX
    assert (cards[0]["scale"] - 1) * side < trav.MIN_CELL_PX


def test_traversal_pages(frag_env, monkeypatch):
    cfg, a, tok = frag_env
    h = max(a.hotspots, key=lambda h: h.size)
    monkeypatch.setattr(trav, "PAGE_SIZE", 2)
    every = trav.channels_to_show(a, selmod.hotspot(a, h.id))
    seen = []
    for page in range(10):
        cards, pager = trav.cards(cfg.root / NAME, a, selmod.hotspot(a, h.id), steps=3, n_bases=1, page=page)
        if pager["page"] != page:                     # past the last page: the last one again
            assert page == pager["pages"] and [c["kept"] for c in cards] == seen[-len(cards):]
            break
        seen += [c["kept"] for c in cards]
        assert pager["first"] == 2 * page + 1 and cards[0]["reference"] == (page == 0)
    assert seen == every and pager["pages"] == -(-len(every) // 2)


def test_vector_outputs_are_drawn_as_points():
    """A 2-D output traversal is drawn as paths in the plane: the decoded points themselves."""
    pts = np.stack([np.c_[np.cos(t), np.sin(t)] for t in (np.linspace(0, 1, 5), np.linspace(2, 3, 5))])   # [2, 5, 2]
    fig = views.vector_traversal_figure(pts, backdrop=np.zeros((7, 2)))
    paths = [t for t in fig.data if t.mode == "lines+markers"]
    assert len(paths) == 2
    for tr, want in zip(paths, pts):
        np.testing.assert_allclose(np.c_[tr.x, tr.y], want, atol=1e-4)
    assert len(fig.data[0].x) == 7                                     # the backdrop
    one_d = views.vector_traversal_figure(pts[:, :, :1])
    np.testing.assert_allclose(one_d.data[0].y, pts[0, :, 0], atol=1e-4)
    np.testing.assert_array_equal(one_d.data[0].x, np.arange(5))


def test_decode_grid_matches_library_traverse(frag_env):
    """Decoding from stored means = `traversal.traverse` (which encodes) when the means are the encodings."""
    import torch

    from vaefrag import traversal

    cfg, _, _ = frag_env
    ens = data.load_ensemble(cfg.root / NAME)
    model = data.load_member(cfg.root / NAME, 2)
    x = ens.x[[3, 8, 11]]
    with torch.no_grad():
        mu, _ = model.encode(torch.from_numpy(x))
    vals = np.linspace(-2, 2, 5)
    got = trav.decode_grid(model, mu.numpy(), 1, vals)
    want = traversal.traverse(model, x, 1, vals)
    assert got.shape == want.shape == (3, 5) + ens.x.shape[2:]
    assert np.abs(got.astype(int) - want.astype(int)).max() <= 1


def test_traversal_panel_for_one_channel_and_bases(frag_env):
    cfg, a, tok = frag_env
    kids, desc, pager = cbt.traversal_panel(tok, selmod.channel(a, 0), 7, [0.1, 0.9], 2, 0, [5, 7, 9], cfg)
    assert len(kids) == 1 and "Channel" in desc and pager["total"] == 1
    img = kids[0].children[0]
    assert img.className == ids.TRAV_IMAGE and img.src.startswith("data:image/png;base64,")
    side = data.load_ensemble(cfg.root / NAME).x.shape[-1]
    k = trav.display_scale(side)
    assert img.style == {"width": f"{(7 * side + 6) * k}px", "height": f"{(3 * side + 2) * k}px"}   # 3 picked bases
    assert cbt.pick_bases({"type": ids.BASE_THUMB_TYPE, "index": 4}, [1], [2]) == [2, 4]
    assert cbt.pick_bases({"type": ids.BASE_THUMB_TYPE, "index": 4}, [1], [2, 4]) == [2]
    assert cbt.pick_bases(ids.BASE_RANDOM, [], [2]) is None
    np.testing.assert_array_equal(trav.base_rows(160, 3, 0, [9, 1]), [9, 1])


@pytest.mark.parametrize("steps, bases, seed, match", [("16", "2", "0", "steps: expected an integer from 3 to 15"),
                                                        ("7", "0", "0", "bases: expected an integer from 1 to 6"),
                                                        ("7", "2", "-1", "seed: expected an integer"),
                                                        ("7.5", "2", "0", "steps"), ("abc", "2", "0", "steps: expected a number")])
def test_traversal_settings_out_of_range_are_errors(frag_env, steps, bases, seed, match):
    cfg, a, tok = frag_env
    with pytest.raises(ValueError, match=match):
        cbt.traversal_panel(tok, selmod.channel(a, 0), steps, [0.05, 0.95], bases, seed, None, cfg)


def test_a_shown_analysis_has_its_hotspots_decoded_in_the_background(frag_env):
    cfg, a, tok = frag_env
    path = cfg.root / NAME
    assert cbt.base_strip(tok, 0, cfg)                   # what the page calls for each analysis it shows
    trav._card_grid.cache_clear()
    done = trav.prefetch(path, a, delay=0.0, steps=7)    # the panel's defaults, spelled out: a new key
    assert done is not None and trav.prefetch(path, a, delay=0.0, steps=7) is None     # queued once
    assert done.wait(120)        # FIFO: what other tests' pages queued before ran too; nothing runs after
    first_pages = sum(len(trav.page_of(trav.channels_to_show(a, selmod.hotspot(a, h.id)))[0]) for h in a.hotspots)
    # a first click on any hotspot, with the panel's default settings, decodes nothing
    before = trav._card_grid.cache_info()
    for h in a.hotspots:
        cbt.traversal_panel(tok, selmod.hotspot(a, h.id), 7, [0.05, 0.95], 2, 0, None, cfg)
    after = trav._card_grid.cache_info()
    assert after.misses == before.misses and after.hits - before.hits == first_pages
    # an analysis whose channels the ensemble does not have is not decoded
    import dataclasses

    other = dataclasses.replace(a, key="other", channel_ids=a.channel_ids + [[100, 0]])
    assert trav.prefetch(path, other, delay=0.0) is None


def test_the_first_page_is_decoded_once_the_server_is_idle(tmp_path):
    """The page as served queues no decoding (the server starts it once the page is answered and torch
    is imported: `first_page.prefetch`); after it, a first click on any hotspot decodes nothing."""
    from vaefrag.dashboard.callbacks import first_page
    from vaefrag.dashboard.config import Config
    from vaefrag.synthetic import make_fragment_ensemble

    root, cache = tmp_path / "ensembles", tmp_path / "cache"
    make_fragment_ensemble(root / "solo", models=6, latents=5, n_points=160, seed=1)
    cfg = Config(root=root, cache_dir=cache, default="solo")
    assert first_page.prefetch("solo", cfg) is None                  # not analysed yet: nothing to decode
    a = data.compute_analysis(root / "solo", data.clean_params(), cache)
    tok, values = first_page.values("solo", cfg)
    assert values[(ids.BASE_STRIP, "children")]                       # the strip is built ...
    done = first_page.prefetch("solo", cfg)                           # ... without queueing the decoding
    assert done is not None and first_page.prefetch("solo", cfg) is None
    assert done.wait(120)
    before = trav._card_grid.cache_info()
    for h in a.hotspots:
        cbt.traversal_panel(tok, selmod.hotspot(a, h.id), 7, [0.05, 0.95], 2, 0, None, cfg)
    after = trav._card_grid.cache_info()
    assert a.hotspots and after.misses == before.misses and after.hits > before.hits
