"""`vaefrag analyze` and `vaefrag export` through vaefrag.cli.main: output, files, cache, bad input."""
import csv
import re

import numpy as np
import pytest

from test_analysis import write_planted
from test_structure import planted
from test_traversal import tiny_ensemble
from vaefrag import store
from vaefrag.analysis import analyze
from vaefrag.cli import main

FAST = ["--bootstrap", "2", "--maps", "mds"]


@pytest.fixture(scope="module")
def planted_path(tmp_path_factory):
    return write_planted(tmp_path_factory.mktemp("ens"))[0]


def test_analyze_prints_table_and_uses_cache(planted_path, tmp_path, capsys):
    args = ["analyze", str(planted_path), "--cache", str(tmp_path), *FAST]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "channels kept: 24 of 30" in out and "hotspots: 3" in out
    table = [line.split() for line in out.splitlines() if re.match(r"^[123] +6 +6/6", line)]
    assert len(table) == 3
    assert sorted(row[5] for row in table) == ["f0", "f1", "f2"]           # best factor column
    assert "computed in" in out
    assert main(args) == 0
    assert "served from cache" in capsys.readouterr().out


def test_export_formats(planted_path, tmp_path, capsys):
    for fmt in ("pdf", "svg", "png"):
        out = tmp_path / f"fig.{fmt}"
        assert main(["export", str(planted_path), "--cache", str(tmp_path / "c"), "--out", str(out), *FAST]) == 0
        assert out.is_file() and out.stat().st_size > 1000
    pdf = (tmp_path / "fig.pdf").read_bytes()
    assert b"/FontFile2" in pdf and b"/Type3" not in pdf                   # TrueType embedded, no Type 3
    assert b"<text" in (tmp_path / "fig.svg").read_bytes()                # SVG keeps text as text
    from PIL import Image

    with Image.open(tmp_path / "fig.png") as im:
        assert im.size[0] == 2100                                          # 7 in at 300 dpi
    assert "no member weights" in capsys.readouterr().out


def test_export_data(planted_path, tmp_path):
    d = tmp_path / "data"
    assert main(["export", str(planted_path), "--cache", str(tmp_path / "c"), "--out", str(tmp_path / "f.png"),
                 "--data", str(d), *FAST]) == 0
    a = analyze(planted_path, cache_dir=tmp_path / "c", n_bootstrap=2, maps=("mds",))
    assert a.from_cache
    with np.load(d / "analysis.npz", allow_pickle=False) as z:
        np.testing.assert_array_equal(z["nmi"], a.nmi)
        np.testing.assert_array_equal(z["ordering"], a.ordering)
        np.testing.assert_array_equal(z["kept"], a.kept)
        assert z["factor_names"].tolist() == ["f0", "f1", "f2"]
    with open(d / "channels.csv") as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == len(a.kept)
    assert sorted(int(r["optics_position"]) for r in rows) == list(range(len(a.kept)))
    with open(d / "hotspots.csv") as fh:
        hs = list(csv.DictReader(fh))
    assert len(hs) == 3
    for row, h in zip(hs, a.hotspots):
        members = {tuple(map(int, m.split(":"))) for m in row["members"].split(";")}
        assert members == {tuple(c) for c in h.channels.tolist()}
        in_csv = {(int(r["model"]), int(r["latent"])) for r in rows if r["hotspot"] == row["hotspot"]}
        assert in_csv == members
    with open(d / "models.csv") as fh:
        assert len(list(csv.DictReader(fh))) == 6


def test_export_with_traversals(tmp_path, capsys):
    path, _, _ = tiny_ensemble(tmp_path, k=3, n=60, clones=True)
    out = tmp_path / "t.png"
    assert main(["export", str(path), "--cache", str(tmp_path / "c"), "--out", str(out),
                 "--traversals", "yes", "--rows", "2", "--values", "4", *FAST]) == 0
    assert out.is_file()
    text = capsys.readouterr().out
    assert "no member weights" not in text and "hotspots: 3" in text


def _err(capsys):
    return capsys.readouterr().err


def test_bad_input(planted_path, tmp_path, capsys):
    c = ["--cache", str(tmp_path)]
    assert main(["analyze", str(tmp_path / "nope"), *c]) == 2
    assert "nope" in _err(capsys)
    (tmp_path / "plain").mkdir()
    assert main(["analyze", str(tmp_path / "plain"), *c]) == 2
    assert "ensemble.json" in _err(capsys)
    assert main(["analyze", str(planted_path), "--min-samples", "1", *c]) == 2
    assert "--min-samples" in _err(capsys)
    assert main(["analyze", str(planted_path), "--threshold", "-1", *c]) == 2
    assert "--threshold" in _err(capsys)
    assert main(["analyze", str(planted_path), "--xi", "2", *c]) == 2
    assert "xi" in _err(capsys)
    assert main(["analyze", str(planted_path), "--tile", "0", *c]) == 2
    assert "--tile: expected a number of channels >= 1" in _err(capsys)
    assert main(["analyze", str(planted_path), "--workers", "2", *c]) == 2
    assert "--workers: expected a number >= 1 together with --dask local" in _err(capsys)
    mu, lv, _, _ = planted()
    nf = store.write_ensemble(tmp_path / "nofactors", {"name": "nf"}, mu, lv)
    assert main(["analyze", str(nf), "--scores", "mig", *c, *FAST]) == 2
    assert "factors" in _err(capsys)
    assert main(["export", str(planted_path), "--out", str(tmp_path / "x.pdf"), "--traversals", "yes", *c, *FAST]) == 2
    assert "weights" in _err(capsys)
    assert main(["export", str(planted_path), "--out", str(tmp_path / "x.tiff"), *c, *FAST]) == 2
    assert "--format" in _err(capsys)
