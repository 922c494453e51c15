"""The dashboard's uploads and exports (CSV, NPZ, the paper figure) and their one palette and
numbering: plain functions, no server (the shared fixture `frag_env` lives in conftest)."""
from __future__ import annotations

import base64
import io

import numpy as np
import pytest

pytest.importorskip("dash")


from vaefrag.dashboard import data, ids  # noqa: E402
from vaefrag.dashboard import selection as selmod  # noqa: E402
from vaefrag.dashboard.callbacks import analysis as cba  # noqa: E402
from vaefrag.dashboard.callbacks import export as cbe  # noqa: E402
from vaefrag.dashboard.callbacks import traversal as cbt  # noqa: E402
from vaefrag.dashboard.callbacks import views as cbv  # noqa: E402
from vaefrag.figures import views  # noqa: E402

NAME = "frag"


def _npz_upload(**arrays) -> str:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return "data:application/octet-stream;base64," + base64.b64encode(buf.getvalue()).decode()


# --------------------------------------------------------------------------------------- upload
def test_upload_good_npz_is_imported_with_a_safe_name(frag_env):
    cfg, _, _ = frag_env
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(2, 40, 3)).astype(np.float32)
    contents = _npz_upload(mu=mu, logvar=np.full_like(mu, -2.0))
    status, options, value = cba.handle_upload(contents, "../../my posteriors!.npz", cfg)
    assert "Imported" in status.children and value == "my-posteriors"
    assert (cfg.root / value / "posteriors.npz").is_file()
    assert value in [o["value"] for o in options]
    ens = data.load_ensemble(cfg.root / value)
    np.testing.assert_array_equal(ens.mu, mu)
    again = cba.handle_upload(contents, "my posteriors!.npz", cfg)
    assert again[2] == "my-posteriors-2"


@pytest.mark.parametrize("payload, fname, match", [
    ("data:text/plain;base64," + base64.b64encode(b"hello, not a zip").decode(), "x.npz", "not an npz"),
    ("data:text/plain;base64," + base64.b64encode(b"abc").decode(), "x.txt", ".npz"),
    (None, "x.npz", "logvar"),                  # wrong shapes
    ("nan", "x.npz", "finite"),
])
def test_upload_bad_files_give_an_alert(frag_env, payload, fname, match):
    cfg, _, _ = frag_env
    before = sorted(p.name for p in cfg.root.iterdir())
    if payload is None:
        payload = _npz_upload(mu=np.zeros((2, 10, 3)), logvar=np.zeros((2, 10, 4)))
    elif payload == "nan":
        mu = np.zeros((2, 10, 3))
        mu[0, 0, 0] = np.nan
        payload = _npz_upload(mu=mu, logvar=np.zeros((2, 10, 3)))
    status, options, value = cba.handle_upload(payload, fname, cfg)
    assert "vf-alert-error" in status.className and match in status.children
    assert options is cba.no_update and value is cba.no_update
    assert sorted(p.name for p in cfg.root.iterdir()) == before      # nothing half-written


# --------------------------------------------------------------------------------------- export
def test_exports(frag_env):
    cfg, a, tok = frag_env
    csv = cbe.hotspots_csv(tok, cfg).splitlines()
    assert len(csv) == len(a.hotspots) + 1 and csv[0].startswith("hotspot,size,models")
    with np.load(io.BytesIO(cbe.matrices_npz(tok, cfg)), allow_pickle=False) as z:
        np.testing.assert_array_equal(z["nmi"], a.nmi)
        np.testing.assert_array_equal(z["ordering"], a.ordering)
    pdf = cbe.paper_bytes(tok, "pdf", "nmi", cfg, steps=5, n_bases=2)
    assert pdf.startswith(b"%PDF")
    svg = cbe.paper_bytes(tok, "svg", "vi", cfg, steps=5, n_bases=2)
    assert b"<svg" in svg[:2000]
    down, status = cbe.export(ids.EXPORT_CSV, tok, "pdf", "nmi", 7, 2, 0, cfg)
    assert down["filename"].endswith("-hotspots.csv") and status is None
    _, status = cbe.export(ids.EXPORT_FIGURE, None, "pdf", "nmi", 7, 2, 0, cfg)
    assert "Nothing to export" in status.children


def test_paper_figure_marks_the_selection(frag_env):
    from vaefrag.figures.paper import paper_figure

    cfg, a, tok = frag_env
    h = a.hotspots[-1]
    fig = paper_figure(a, None, selected=h.members, hotspot=h.id)
    pos = np.argsort(a.ordering)                                # kept index -> position in OPTICS order
    ticks = [ln for ax in fig.axes for ln in ax.get_lines() if ln.get_marker() == "|"]
    assert len(ticks) == 1
    np.testing.assert_array_equal(ticks[0].get_xdata(), np.sort(pos[h.members]))
    assert f"selection: {len(h.members)} channels (hotspot {h.id + 1})" in [ax.get_title("left") for ax in fig.axes]
    assert not [ln for ax in paper_figure(a, None).axes for ln in ax.get_lines() if ln.get_marker() == "|"]
    with pytest.raises(ValueError, match="selected"):
        paper_figure(a, None, selected=[len(a.kept)])


def test_callbacks_leave_the_analysis_unchanged(frag_env):
    cfg, a, tok = frag_env
    before = {k: np.copy(getattr(a, k)) for k in ("nmi", "vi", "ordering", "labels", "kept")}
    sel = selmod.hotspot(a, a.hotspots[0].id)
    cbv.matrix_view(tok, "vi", sel, {ids.ANALYSIS}, cfg)
    cbv.map_view(tok, "umap", "model", sel, {ids.ANALYSIS}, cfg)
    cbt.traversal_panel(tok, sel, 5, [0.05, 0.95], 1, 0, None, cfg)
    again = data.analysis_from_token(tok, cfg.cache_dir)
    for k, v in before.items():
        np.testing.assert_array_equal(getattr(again, k), v)


def test_exports_number_hotspots_from_1_and_the_structure_stage_is_served_by_token(frag_env):
    """CSV and NPZ number hotspots as the page does (1, 2, ...; 0 = none in the NPZ); the structure
    stage alone is cached under its own key, so a token finds it before stability and maps exist."""
    import csv as csvmod

    from vaefrag.results import hotspot_numbers

    cfg, a, tok = frag_env
    rows = list(csvmod.DictReader(io.StringIO(cbe.hotspots_csv(tok, cfg))))
    assert [int(r["hotspot"]) for r in rows] == [h.id + 1 for h in a.hotspots] == list(range(1, len(a.hotspots) + 1))
    with np.load(io.BytesIO(cbe.matrices_npz(tok, cfg)), allow_pickle=False) as z:
        np.testing.assert_array_equal(z["hotspot"], hotspot_numbers(a.labels))
        assert set(z["hotspot"].tolist()) == set(range(len(a.hotspots) + 1)) - ({0} if (a.labels >= 0).all() else set())
    params = data.clean_params(min_samples=3)
    quick = data.compute_structure(cfg.root / NAME, params, cfg.cache_dir)
    assert set(quick.pending) == {"stability", "maps", "scores"}
    got = data.analysis_from_token(data.token(NAME, params, quick.key), cfg.cache_dir)
    assert got is not None and got.key == quick.key
    full = data.compute_analysis(cfg.root / NAME, params, cfg.cache_dir)
    assert sorted(map(sorted, (h.members.tolist() for h in full.hotspots))) == \
        sorted(map(sorted, (h.members.tolist() for h in quick.hotspots)))


def test_one_palette_and_numbering_across_page_npz_and_paper(frag_env):
    """The hotspot colours and numbers of the page (table rows, matrix labels), the NPZ export and
    the paper figure are the same: the numbers are id + 1, the colours `palette.hotspot_color`."""
    from matplotlib.colors import to_hex

    from vaefrag.figures import palette
    from vaefrag.figures.paper import paper_figure

    cfg, a, tok = frag_env
    rows, _ = cbv.tables(tok, cfg)
    assert [(r["number"], r["color"]) for r in rows] == [(h.id + 1, palette.hotspot_color(h.id)) for h in a.hotspots]
    ann = {x.name: (x.text, x.font.color) for x in views.matrix_figure(a, "nmi").layout.annotations if x.name}
    assert ann == {f"hotspot:{h.id}": (f"<b>{h.id + 1}</b>", palette.hotspot_color(h.id)) for h in a.hotspots}
    with np.load(io.BytesIO(cbe.matrices_npz(tok, cfg)), allow_pickle=False) as z:
        np.testing.assert_array_equal(z["hotspot"], np.where(a.labels >= 0, a.labels + 1, 0))
        assert list(z["hotspot_colors"]) == [palette.hotspot_color(h.id) for h in a.hotspots]
        assert list(z["channel_labels"][:2]) == [views.channel_label(*a.channel_ids[a.kept[i]]) for i in (0, 1)]
    fig = paper_figure(a, None)
    ax_r = fig.axes[0]
    texts = {t.get_text(): to_hex(t.get_color()) for t in ax_r.texts}
    assert texts == {str(h.id + 1): palette.hotspot_color(h.id) for h in a.hotspots}


def test_model_palette_is_distinct_for_50_models():
    """50 model colours, pairwise at least 15 CIE76 units apart (a difference any reader sees;
    2.3 is a just-noticeable difference), computed with an independent sRGB -> Lab conversion."""
    from matplotlib.colors import to_rgb

    from vaefrag.figures.palette import model_colors

    cols = model_colors(50)
    assert len(set(cols)) == 50
    rgb = np.array([to_rgb(c) for c in cols])
    lin = np.where(rgb <= 0.04045, rgb / 12.92, ((rgb + 0.055) / 1.055) ** 2.4)
    xyz = lin @ np.array([[0.4124564, 0.3575761, 0.1804375], [0.2126729, 0.7151522, 0.0721750],
                          [0.0193339, 0.1191920, 0.9503041]]).T / np.array([0.95047, 1.0, 1.08883])
    f = np.where(xyz > (6 / 29) ** 3, np.cbrt(xyz), xyz / (3 * (6 / 29) ** 2) + 4 / 29)
    lab = np.c_[116 * f[:, 1] - 16, 500 * (f[:, 0] - f[:, 1]), 200 * (f[:, 1] - f[:, 2])]
    dist = np.linalg.norm(lab[:, None] - lab[None], axis=-1) + np.eye(50) * 1e9
    assert dist.min() > 15
    assert model_colors(8) == cols[:8]                       # adding models never recolours the first ones


def test_paper_figure_draws_vector_outputs_as_points(frag_env):
    """A vector-output ensemble (2-D outputs) gets its traversal drawn as the decoded points."""
    from vaefrag.figures.paper import paper_figure

    _, a, _ = frag_env
    h = a.hotspots[0]
    pts = np.stack([np.c_[np.cos(t), np.sin(t)] for t in (np.linspace(0, 3, 7),)] * 2)      # [2, 7, 2]
    fig = paper_figure(a, {h.id: pts})
    ax = next(x for x in fig.axes if x.get_title(loc="left").startswith(f"hotspot {h.id + 1}:"))
    lines = [ln for ln in ax.get_lines()]
    assert len(lines) == 2
    np.testing.assert_allclose(np.c_[lines[0].get_xdata(), lines[0].get_ydata()], pts[0])
