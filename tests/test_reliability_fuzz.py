"""Fuzz: generated bad inputs to `vaefrag import / analyze / export / train` and to every Dash callback
of a `vaefrag serve` (waitress) on 127.0.0.1.

Asserts, for every case: the CLI exits 2 with one line naming what is wrong and no traceback;
the server answers each request with 200 / 204 (no update) / 400 / 413, never 500, keeps
serving, logs no traceback; nothing half-written is left in the ensembles root (no temporaries,
every listed ensemble loads). The cases are seeded and bounded (about 450 in all).
"""
from __future__ import annotations

import base64
import io
import json
import random
import zipfile

import numpy as np
import pytest

from reliability import Server
from vaefrag import store
from vaefrag.cli import main
from vaefrag.synthetic import make_fragment_ensemble

pytestmark = pytest.mark.slow
K, N, L = 3, 40, 4


# ------------------------------------------------------------------------------------------ files
def _npz(**arrays) -> bytes:
    buf = io.BytesIO()
    np.savez(buf, **arrays)
    return buf.getvalue()


def _declared_huge() -> bytes:
    """An npz whose 'mu' header declares [10**6, 10**6, 10] float64 over 64 bytes of data."""
    header = {"descr": "<f8", "fortran_order": False, "shape": (10**6, 10**6, 10)}
    buf = io.BytesIO()
    np.lib.format.write_array_header_1_0(buf, header)
    buf.write(b"\0" * 64)
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w") as z:
        z.writestr("mu.npy", buf.getvalue())
        z.writestr("logvar.npy", buf.getvalue())
    return out.getvalue()


def _zip_bomb() -> bytes:
    """300 MiB of zeros in well under 1 MiB."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
        with z.open("mu.npy", "w", force_zip64=True) as f:
            np.lib.format.write_array_header_1_0(f, {"descr": "<f4", "fortran_order": False, "shape": (3, 100, 262144)})
            block = bytes(2**20)
            for _ in range(300):
                f.write(block)
    return out.getvalue()


def bad_files(rng) -> dict[str, bytes]:
    """Named byte strings that are not importable posteriors."""
    mu = rng.normal(size=(K, N, L)).astype(np.float32)
    lv = np.full((K, N, L), -1.0, np.float32)
    npy = io.BytesIO()
    np.save(npy, mu)
    return {
        "text": b"mu,logvar\n1,2\n",
        "npy": npy.getvalue(),
        "empty": b"",
        "truncated": _npz(mu=mu, logvar=lv)[:300],
        "random": bytes(rng.integers(0, 256, 400, dtype=np.uint8)),
        "pickled": _npz(mu=np.array([None, 1], dtype=object), logvar=lv),
        "missing-logvar": _npz(mu=mu),
        "shape-mismatch": _npz(mu=mu, logvar=lv[:, :5]),
        "nan": _npz(mu=np.where(mu > 1, np.nan, mu), logvar=lv),
        "inf": _npz(mu=mu, logvar=np.full_like(lv, np.inf)),
        "overflow-f32": _npz(mu=mu.astype(np.float64) * 1e300, logvar=lv),
        "string-mu": _npz(mu=np.array(["a"] * 6).reshape(1, 2, 3), logvar=lv),
        "1-d": _npz(mu=mu.ravel(), logvar=lv.ravel()),
        "5-d": _npz(mu=mu[None, None], logvar=lv[None, None]),
        "empty-axis": _npz(mu=np.zeros((K, 0, L), np.float32), logvar=np.zeros((K, 0, L), np.float32)),
        "0-d-factor-names": _npz(mu=mu, logvar=lv, factors=np.zeros((N, 1), np.int64), factor_names=np.array("a")),
        "negative-factors": _npz(mu=mu, logvar=lv, factors=-np.ones((N, 1), np.int64)),
        "float-factors": _npz(mu=mu, logvar=lv, factors=np.full((N, 1), 0.5)),
        "factor-rows": _npz(mu=mu, logvar=lv, factors=np.zeros((N + 1, 1), np.int64)),
        "names-without-factors": _npz(mu=mu, logvar=lv, factor_names=np.array(["a"])),
        "x-wrong-n": _npz(mu=mu, logvar=lv, x=np.zeros((N - 1, 2), np.float32)),
        "x-overflow": _npz(mu=mu, logvar=lv, x=np.full((N, 2), 1e300)),
        "declared-huge": _declared_huge(),
        "zip-bomb": _zip_bomb(),
        "not-npy-member": (lambda b: (zipfile.ZipFile(b, "w").writestr("readme.txt", "hi"), b.getvalue())[1])(io.BytesIO()),
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """(tmp, ensembles root with a good and several broken ensembles, bad files)."""
    tmp = tmp_path_factory.mktemp("fuzz")
    root = tmp / "ens"
    make_fragment_ensemble(root / "good", models=K, latents=L, n_points=N, seed=1)
    for name, text in (("broken-json", "{nope"), ("deep", "[" * 100000 + "]" * 100000),
                       ("future", json.dumps({"format_version": 99, "members": []})),
                       ("members", json.dumps({"format_version": 1, "members": [{}]}))):
        (root / name).mkdir()
        (root / name / "ensemble.json").write_text(text)
        (root / name / "posteriors.npz").write_bytes((root / "good" / "posteriors.npz").read_bytes())
    (root / "text-posteriors").mkdir()
    (root / "text-posteriors" / "ensemble.json").write_text((root / "good" / "ensemble.json").read_text())
    (root / "text-posteriors" / "posteriors.npz").write_text("hello")
    rng = np.random.default_rng(0)
    files = {}
    for name, blob in bad_files(rng).items():
        files[name] = tmp / "bad" / f"{name}.npz"
        files[name].parent.mkdir(exist_ok=True)
        files[name].write_bytes(blob)
    return tmp, root, files


def _assert_clean(root, allowed) -> None:
    """No temporaries or new directories under ``root``; every listed ensemble that should load, loads."""
    names = sorted(p.name for p in root.iterdir())
    assert not [n for n in names if n.startswith(".")], names
    assert set(names) <= set(allowed), sorted(set(names) - set(allowed))
    store.load_ensemble(root / "good")


# -------------------------------------------------------------------------------------------- CLI
def cli_cases(tmp, root, files) -> list[list[str]]:
    good, out = str(root / "good"), str(tmp / "out")
    cases = [["import", str(f), "--name", f"imp-{n}", "--root", str(root)] for n, f in files.items()]
    cases += [["import", str(tmp), "--name", "dir", "--root", str(root)],
              ["import", str(tmp / "missing.npz"), "--name", "m", "--root", str(root)],
              ["import", str(files["text"]), "--name", "x" * 250, "--root", str(root)],
              ["import", str(files["npy"]), "--name", "..", "--root", str(root)],
              ["import", str(files["npy"]), "--name", "", "--root", str(root)]]
    broken = [str(root / n) for n in ("broken-json", "deep", "future", "members", "text-posteriors")]
    broken += [str(tmp / "nowhere"), str(files["text"])]
    for ens in broken:
        cases += [["analyze", ens, "--no-cache", "--maps", "none", "--bootstrap", "0"], ["export", ens, "--out", f"{out}.pdf"],
                  ["spaces", ens, "--no-cache"], ["compare", good, ens]]
    bad_analyze = {"--threshold": ["-1", "nan", "inf", "abc", "1e999"], "--min-samples": ["1", "0", "x", "1e9", "-3"],
                   "--xi": ["0", "1", "2", "nan", "-0.1"], "--bootstrap": ["-1", "1e9", "x", "100001"],
                   "--min-nmi": ["-0.5", "2", "nan"], "--device": ["bogus", "cuda:x", ""], "--seed": ["-1", "x", "1e30"],
                   "--cache": [str(files["text"])], "--tile": ["0", "-5", "x"], "--workers": ["0", "-1"],
                   "--maps": ["foo", "umap,foo"], "--scores": ["bogus", "mig,xyz"], "--measure": ["nmx"]}
    for opt, values in bad_analyze.items():
        cases += [["analyze", good, opt, v] for v in values]
    bad_export = {"--values": ["100000", "-1", "1", "x", "65"], "--rows": ["0", "100", "-2"], "--width": ["0", "inf", "-3", "nan"],
                  "--format": ["bogus"], "--matrix": ["foo"], "--traversals": ["maybe"]}
    for opt, values in bad_export.items():
        cases += [["export", good, "--out", f"{out}.pdf", opt, v] for v in values]
    cases += [["export", good, "--out", str(tmp)], ["export", good, "--out", f"{out}.docx"],
              ["export", good, "--out", str(files["text"] / "f.pdf")]]
    train = ["train", "--dataset", "ring", "--models", "2", "--latents", "1", "--steps", "2", "--batch-size", "8",
             "--hidden", "4", "--fingerprint-size", "12", "--device", "cpu", "--out"]
    bad_train = {"--lr": ["1e10", "0", "-1", "nan", "inf"], "--threads": ["-1", "0", "1e9"], "--batch-size": ["1e9", "0", "-3"],
                 "--models": ["0", "-5", "1e9", "x"], "--steps": ["0", "-1"], "--latents": ["0", "99999"],
                 "--device": ["bogus", "gpu"], "--dataset": ["bogus"], "--fingerprint-size": ["0", "1", "1e9"],
                 "--beta": ["-1", "nan"], "--shard": ["3/2", "x", "-1/2", "1/0"], "--group-size": ["0"],
                 "--data-file": [str(files["text"]), str(tmp)], "--recipe": [str(files["text"]), str(root / "deep")],
                 "--width": ["0"], "--hidden": ["-4"], "--weights-dtype": ["int8"], "--seed": ["-2"]}
    for opt, values in bad_train.items():
        cases += [[*train, str(tmp / f"train-{opt[2:]}-{i}"), opt, v] for i, v in enumerate(values)]
    cases += [[*train, str(files["text"])], [*train, str(root / "good")]]
    cases += [["fuse", good, "--out", f"{out}.npz", "--channels", c] for c in ("9:9", "x", "0:", "-1:0", "")]
    cases += [["fuse", good, "--out", f"{out}.npz", "--k", "0"], ["fuse", good, "--out", f"{out}.npz", "--lr", "1e10"],
              ["fingerprint", good, "--size", "0"], ["fingerprint", good, "--size", "1e9"],
              ["fingerprint", str(root / "deep"), "--size", "10"], ["spaces", good, "--samples", "0"],
              ["spaces", good, "--cache-dir", str(files["text"])], ["nonsense"], ["analyze"], ["import", "--name"]]
    return cases


def test_cli_refuses_bad_input_in_one_line(world, capsys):
    tmp, root, files = world
    allowed = [p.name for p in root.iterdir()]
    cases = cli_cases(tmp, root, files)
    assert len(cases) >= 150
    failures = []
    for argv in cases:
        try:
            rc = main(argv)
        except SystemExit as exc:          # argparse
            rc = exc.code
        err = capsys.readouterr().err
        lines = [ln for ln in err.splitlines() if ln.strip() and "Warning" not in ln]
        if rc != 2 or "Traceback" in err or len(lines) != 1 or "error" not in lines[0]:
            failures.append((argv, rc, err[-500:]))
    assert not failures, f"{len(failures)} of {len(cases)} cases:\n" + "\n".join(map(str, failures[:10]))
    _assert_clean(root, allowed)
    assert not [p for p in tmp.iterdir() if p.name.startswith((".", "train-"))]


# ------------------------------------------------------------------------------------------- HTTP
BAD_VALUES = [None, "", "x" * 5000, -1, 10**20, 1e308, [], {}, [[[[]]]], {"a": {"b": [1]}}, True, "../../etc/passwd",
              {"ensemble": "../good", "params": {}}, {"ensemble": "good", "params": {"n_bootstrap": 10**6}},
              {"id": "../x", "hints": []}, {"id": "0" * 24, "hints": {"hotspot": -5}}, "?ms=inf&hotspot=" + "9" * 30,
              {"ensemble": "good", "params": {"measure": "nmi", "info_threshold": "inf", "min_samples": 1e300, "xi": [1]}},
              {"channels": [10**9, -1], "key": None}, {"ensemble": "broken-json", "params": {}, "key": "k"}]


def http_cases(srv: Server, files, rng) -> list[tuple[dict, list, list]]:
    cases = []
    for dep in srv.deps:
        if dep.get("clientside_function") or any(isinstance(i["id"], dict) or i["id"].startswith("{")
                                                 for i in dep["inputs"]):
            continue                    # runs in the browser / pattern-matching ids
        slots = len(dep["inputs"]) + len(dep["state"])
        for _ in range(max(4, 2 * slots)):
            values = [None] * slots
            for j in rng.sample(range(slots), k=min(slots, rng.randint(1, 2))):
                values[j] = rng.choice(BAD_VALUES)
            cases.append((dep, values[:len(dep["inputs"])], values[len(dep["inputs"]):]))
    upload = srv.callback("vf-upload.contents")
    for name, f in files.items():
        b64 = "data:application/octet-stream;base64," + base64.b64encode(f.read_bytes()).decode()
        cases.append((upload, [b64], [f"{name}.npz"]))
    cases.append((upload, ["data:x;base64,!!!notbase64"], ["x.npz"]))
    cases.append((upload, [b"raw".hex()], [["list", "name"]]))
    url = srv.callback("vf-url-query.data", output_has="vf-analysis")
    for q in ("?ms=inf", "?ms=nan", "?ms=1e400", "?thr=-1", "?xi=2", "?hotspot=" + "9" * 30, "?hotspot=%C2%B2",
              "?ensemble=../good", "?ensemble=/etc", "?ensemble=broken-json", "?ensemble=deep", "?measure=" + "x" * 10000,
              "?view=1&map=2", "?" + "&".join(f"k{i}=v" for i in range(2000))):
        cases.append((url, [q, None, None], [None] * len(url["state"])))
    return cases


def test_http_callbacks_never_500(world):
    tmp, root, files = world
    allowed = [p.name for p in root.iterdir()]
    srv = Server(root, tmp / "cache-http", workers=1, extra=["--no-warm"])
    try:
        rng = random.Random(0)
        cases = http_cases(srv, files, rng)
        assert len(cases) >= 150
        codes = {}
        for dep, ins, states in cases:
            status, body = srv.call(dep, ins, states)
            codes.setdefault(status, []).append(dep["output"][:60])
        # malformed requests: no JSON, missing fields, an unknown output, a huge body, another host
        raw = [b"not json", b"{}", b"[]", json.dumps({"output": "nope.children", "inputs": []}).encode(),
               json.dumps({"output": srv.deps[0]["output"]}).encode(), json.dumps({"output": 5, "inputs": 7}).encode()]
        for body in raw:
            status, _ = srv.post_json("/_dash-update-component", body)
            codes.setdefault(status, []).append("raw")
        try:       # waitress answers 413 from the headers and closes: the client may see the reset first
            status, _, _ = srv.request("POST", "/_dash-update-component", b"x" * (120 * 2**20),
                                       {"Content-Type": "application/json"})
        except OSError:
            status = 413
        assert status == 413
        assert srv.get("/", headers={"Host": "attacker.example"})[0] == 400
        status, _, headers = srv.request("GET", "/")
        assert status == 200 and headers["X-Frame-Options"] == "DENY" and headers["X-Content-Type-Options"] == "nosniff"
        assert "frame-ancestors 'none'" in headers["Content-Security-Policy"]
        for path in ("/?ms=inf", "/?hotspot=99999999999999999999999", "/_dash-layout", "/assets/vaefrag.css",
                     "/assets/../../../etc/passwd", "/_dash-component-suites/../x"):
            codes.setdefault(srv.get(path)[0], []).append(path)
        total = sum(map(len, codes.values()))
        assert total >= 150
        assert 500 not in codes, codes[500][:10]
        assert set(codes) <= {200, 204, 400, 404, 413}, sorted(codes)
        assert srv.proc.poll() is None
        assert "Traceback" not in srv.log, srv.log[-4000:]
    finally:
        srv.stop()
    _assert_clean(root, allowed)
