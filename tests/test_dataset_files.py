"""Readers of the dataset files researchers have: dSprites npz, 3D Shapes h5, MNIST / Fashion-MNIST
idx, image folders. Tiny files in each format are built here; items at known indices must match
the file's own arrays, big files must not be read whole, bad files give one error naming the file."""
from __future__ import annotations

import gzip
import io
import os
import struct
import tracemalloc
import zipfile

import numpy as np
import pytest

from vaefrag.datasets import dataset_params, make_dataset
from vaefrag.datasets.dsprites import DSpritesFile

NAMES = ("color", "form", "size", "angle", "px", "py")        # not dSprites' own: must come from the file


def dsprites_arrays(n=60, side=16, seed=0):
    rng = np.random.default_rng(seed)
    imgs = (rng.random((n, side, side)) < 0.3).astype(np.uint8)
    classes = np.c_[np.zeros(n, np.int64), rng.integers(0, 3, n), rng.integers(0, 6, n), rng.integers(0, 40, n),
                    rng.integers(0, 32, n), rng.integers(0, 32, n)]
    # as in DeepMind's file, the names are also keys of 'latents_possible_values', pickled first, so
    # 'latents_names' refers to them through the pickle's memo
    meta = np.array({"latents_possible_values": {n: np.arange(3.0) for n in NAMES}, "latents_names": NAMES,
                     "latents_sizes": np.array([1, 3, 6, 40, 32, 32]), "title": "dSprites dataset"}, dtype=object)
    return imgs, classes, meta


@pytest.mark.parametrize("compressed", [False, True])
def test_dsprites_file_items_match_the_arrays(tmp_path, compressed):
    imgs, classes, meta = dsprites_arrays()
    path = tmp_path / "dsprites.npz"
    (np.savez_compressed if compressed else np.savez)(path, imgs=imgs, latents_classes=classes,
                                                      latents_values=classes.astype(float), metadata=meta)
    ds = make_dataset("dsprites", path=str(path), cache_dir=str(tmp_path / "cache"))
    assert ds.factor_names == list(NAMES[1:])                 # read from the pickle's opcodes; constant colour dropped
    assert ds.factor_sizes == [int(v) + 1 for v in classes[:, 1:].max(0)]
    assert len(ds) == 60 and ds.shape == (1, 16, 16)
    idx = np.array([59, 3, 3, 17, 0])
    x, f = ds.get(idx)
    np.testing.assert_array_equal(x[:, 0], imgs[idx].astype(np.float32))
    np.testing.assert_array_equal(f, classes[idx, 1:])
    assert isinstance(ds._imgs, np.memmap)
    cached = sorted(p.name.split("-")[1] for p in (tmp_path / "cache").glob("*.npy"))
    assert cached == (["imgs", "latents_classes"] if compressed else [])      # deflated: decompressed once
    # rebuilt from its params (what a manifest records)
    again = make_dataset("dsprites", **ds.params())
    np.testing.assert_array_equal(again.get(idx)[0], x)


def test_dsprites_metadata_is_never_unpickled(tmp_path, monkeypatch):
    import pickle

    imgs, classes, meta = dsprites_arrays(n=10)
    np.savez(tmp_path / "d.npz", imgs=imgs, latents_classes=classes, metadata=meta)
    monkeypatch.setattr(pickle, "loads", lambda *a, **k: pytest.fail("unpickled"))
    monkeypatch.setattr(pickle, "load", lambda *a, **k: pytest.fail("unpickled"))
    assert DSpritesFile(str(tmp_path / "d.npz")).factor_names == list(NAMES[1:])


def _rss_bytes() -> int:
    with open("/proc/self/status") as fh:
        for line in fh:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


def _big_dsprites(path, n, side=64, compressed=False):
    """A dSprites-format npz of n images written in chunks (never all in memory); image i has row
    i % side set to 1."""
    npy = path.with_suffix(".imgs.npy")
    mm = np.lib.format.open_memmap(npy, mode="w+", dtype=np.uint8, shape=(n, side, side))
    for lo in range(0, n, 5000):
        hi = min(n, lo + 5000)
        block = np.zeros((hi - lo, side, side), np.uint8)
        block[np.arange(hi - lo), np.arange(lo, hi) % side] = 1
        mm[lo:hi] = block
    mm.flush()
    del mm
    classes = np.c_[np.zeros(n, np.int64), np.arange(n) % 3, np.arange(n) % 6, np.arange(n) % 40,
                    np.arange(n) % 32, (np.arange(n) // 32) % 32]
    buf = io.BytesIO()
    np.save(buf, classes)
    method = zipfile.ZIP_DEFLATED if compressed else zipfile.ZIP_STORED
    with zipfile.ZipFile(path, "w", method, compresslevel=1 if compressed else None) as zf:
        zf.write(npy, "imgs.npy")
        zf.writestr("latents_classes.npy", buf.getvalue())
    npy.unlink()
    return classes


@pytest.mark.slow
@pytest.mark.parametrize("compressed", [False, True])
def test_big_dsprites_file_is_not_read_whole(tmp_path, compressed):
    n = 75_000                                                  # 307 MB of images
    path = tmp_path / "big.npz"
    classes = _big_dsprites(path, n, compressed=compressed)
    assert path.stat().st_size > (250e6 if not compressed else 0)
    idx = np.array([74_999, 12, 40_000, 5_001])
    rss0 = _rss_bytes()
    tracemalloc.start()
    ds = DSpritesFile(str(path), cache_dir=str(tmp_path / "cache"))
    x, f = ds.get(idx)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    grow = _rss_bytes() - rss0
    assert peak < 40e6, f"Python allocations peaked at {peak / 1e6:.0f} MB for a 307 MB file"
    assert grow < 120e6, f"resident memory grew by {grow / 1e6:.0f} MB for a 307 MB file"
    want = np.zeros((4, 64, 64), np.float32)
    want[np.arange(4), idx % 64] = 1
    np.testing.assert_array_equal(x[:, 0], want)
    np.testing.assert_array_equal(f, classes[idx, 1:])


def test_dsprites_bad_files(tmp_path):
    imgs, classes, meta = dsprites_arrays(n=10)
    np.savez(tmp_path / "nokey.npz", imgs=imgs)
    with pytest.raises(ValueError, match=r"nokey\.npz: missing key 'latents_classes'"):
        DSpritesFile(str(tmp_path / "nokey.npz"))
    np.savez(tmp_path / "ok.npz", imgs=imgs, latents_classes=classes)
    raw = (tmp_path / "ok.npz").read_bytes()
    (tmp_path / "cut.npz").write_bytes(raw[: len(raw) // 2])
    with pytest.raises(ValueError, match=r"cut\.npz: not a readable npz"):
        DSpritesFile(str(tmp_path / "cut.npz"))
    np.savez(tmp_path / "obj.npz", imgs=np.array([None, 1], dtype=object), latents_classes=classes)
    with pytest.raises(ValueError, match=r"obj\.npz: key 'imgs' holds Python objects"):
        DSpritesFile(str(tmp_path / "obj.npz"))


# ------------------------------------------------------------------------------------ 3D Shapes
def _shapes3d(path, n=40, side=8, seed=0, chunk=None):
    import h5py

    rng = np.random.default_rng(seed)
    levels = [np.linspace(0, 0.9, 10), np.linspace(0, 0.9, 10), np.linspace(0, 0.9, 10),
              np.linspace(0.75, 1.25, 8), np.arange(4.0), np.linspace(-30, 30, 15)]
    idx = np.stack([rng.integers(0, len(lv), n) for lv in levels], 1)
    labels = np.stack([levels[j][idx[:, j]] for j in range(6)], 1)
    with h5py.File(path, "w") as f:
        d = f.create_dataset("images", (n, side, side, 3), np.uint8)
        step = chunk or n
        for lo in range(0, n, step):
            d[lo:lo + step] = rng.integers(0, 256, (min(step, n - lo), side, side, 3), dtype=np.uint8)
        f.create_dataset("labels", data=labels)
    return idx, labels


def test_shapes3d_items_match_the_file(tmp_path):
    import h5py

    path = tmp_path / "3dshapes.h5"
    idx_true, labels = _shapes3d(path)
    ds = make_dataset("shapes3d", **dataset_params("shapes3d", data_file=str(path)))
    with h5py.File(path) as f:
        images = f["images"][()]
    order = np.array([39, 2, 2, 0, 17])                          # unsorted, repeated
    x, fac = ds.get(order)
    np.testing.assert_allclose(x, np.transpose(images[order], (0, 3, 1, 2)) / 255.0, atol=1e-7)
    np.testing.assert_array_equal(fac, idx_true[order] - idx_true.min(0))   # indices into the levels present
    for j in range(6):                                           # each index maps back to the file's value
        np.testing.assert_allclose(ds.levels[j][fac[:, j]], labels[order, j])
    assert ds.shape == (3, 8, 8) and ds.factor_names[0] == "floor_hue" and ds.factor_names[-1] == "orientation"


def test_shapes3d_truncated_file_names_the_file(tmp_path):
    path = tmp_path / "3dshapes.h5"
    _shapes3d(path, n=2000, side=16)
    raw = path.read_bytes()
    (tmp_path / "cut.h5").write_bytes(raw[: len(raw) // 3])
    with pytest.raises(ValueError, match=r"cut\.h5: (not a readable HDF5 file|dataset '\w+' cannot be read)"):
        ds = make_dataset("shapes3d", path=str(tmp_path / "cut.h5"))
        ds.get(np.arange(len(ds)))
    (tmp_path / "text.h5").write_text("not hdf5")
    with pytest.raises(ValueError, match=r"text\.h5: not a readable HDF5 file"):
        make_dataset("shapes3d", path=str(tmp_path / "text.h5"))


@pytest.mark.slow
def test_big_shapes3d_file_is_not_read_whole(tmp_path):
    path = tmp_path / "big.h5"
    _shapes3d(path, n=25_000, side=64, chunk=2_500)                # 307 MB of images
    assert path.stat().st_size > 300e6
    rss0 = _rss_bytes()
    tracemalloc.start()
    ds = make_dataset("shapes3d", path=str(path))
    x, _ = ds.get(np.array([24_999, 3, 12_000]))
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    grow = _rss_bytes() - rss0
    assert peak < 40e6 and grow < 120e6, f"peak {peak / 1e6:.0f} MB, RSS grew {grow / 1e6:.0f} MB"
    import h5py

    with h5py.File(path) as f:
        np.testing.assert_allclose(x[0], np.moveaxis(f["images"][24_999], -1, 0) / 255.0, atol=1e-7)


# ---------------------------------------------------------------------------------------- MNIST
def _idx(path, arr, magic, gz):
    head = struct.pack(">I", magic) + struct.pack(f">{arr.ndim}I", *arr.shape)
    data = head + arr.astype(np.uint8).tobytes()
    path.parent.mkdir(parents=True, exist_ok=True)
    if gz:
        with gzip.open(str(path) + ".gz", "wb") as fh:
            fh.write(data)
    else:
        path.write_bytes(data)


@pytest.mark.parametrize("name,folder", [("mnist", "MNIST"), ("fashion-mnist", "FashionMNIST")])
def test_mnist_idx_files_as_torchvision_saves_them(tmp_path, name, folder):
    rng = np.random.default_rng(1)
    raw = tmp_path / folder / "raw"
    tr_x, tr_y = rng.integers(0, 256, (30, 28, 28)), rng.integers(0, 10, 30)
    te_x, te_y = rng.integers(0, 256, (8, 28, 28)), rng.integers(0, 10, 8)
    _idx(raw / "train-images-idx3-ubyte", tr_x, 0x803, gz=True)
    _idx(raw / "train-labels-idx1-ubyte", tr_y, 0x801, gz=True)
    _idx(raw / "t10k-images-idx3-ubyte", te_x, 0x803, gz=False)
    _idx(raw / "t10k-labels-idx1-ubyte", te_y, 0x801, gz=False)
    ds = make_dataset(name, **dataset_params(name, data_dir=str(tmp_path)))
    x, f = ds.get(np.array([29, 0, 5]))
    np.testing.assert_allclose(x[:, 0], tr_x[[29, 0, 5]] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(f[:, 0], tr_y[[29, 0, 5]])
    test = make_dataset(name, data_dir=str(raw), split="test")      # the raw folder itself works too
    assert len(test) == 8 and isinstance(test._images, np.memmap)
    np.testing.assert_array_equal(test.get(np.array([7]))[1][:, 0], te_y[[7]])


def test_idx_with_wrong_magic_names_the_file(tmp_path):
    rng = np.random.default_rng(2)
    _idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 256, (5, 28, 28)), 0x801 + 0x10000, gz=False)
    _idx(tmp_path / "train-labels-idx1-ubyte", rng.integers(0, 10, 5), 0x801, gz=False)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: wrong idx magic number 0x00010801, expected 0x00000803"):
        make_dataset("mnist", data_dir=str(tmp_path))
    _idx(tmp_path / "train-images-idx3-ubyte", rng.integers(0, 256, (5, 28, 28)), 0x803, gz=False)
    with open(tmp_path / "train-images-idx3-ubyte", "ab") as fh:
        fh.write(b"\0" * 7)
    with pytest.raises(ValueError, match=r"train-images-idx3-ubyte: holds 3927 data bytes, the header says 3920"):
        make_dataset("mnist", data_dir=str(tmp_path))


# ---------------------------------------------------------------------------------- image folder
def test_image_folder_with_labels(tmp_path):
    from PIL import Image

    rng = np.random.default_rng(3)
    arrays = {}
    for i in range(5):
        a = rng.integers(0, 256, (6, 10, 3), dtype=np.uint8)                 # H=6, W=10
        name = f"sub/img_{i}.png" if i % 2 else f"img_{i}.png"
        (tmp_path / name).parent.mkdir(exist_ok=True)
        Image.fromarray(a).save(tmp_path / name)
        arrays[name] = a
    rows = ["file,colour,size"] + [f"{n},{['red', 'blue'][i % 2]},{i}" for i, n in enumerate(arrays)]
    (tmp_path / "labels.csv").write_text("\n".join(rows) + "\n")
    ds = make_dataset("images", **dataset_params("images", data_dir=str(tmp_path)))
    assert ds.shape == (3, 6, 10) and ds.factor_names == ["colour", "size"]
    files = sorted(arrays)
    x, f = ds.get(np.array([4, 1]))
    for row, i in enumerate([4, 1]):
        np.testing.assert_allclose(x[row], np.moveaxis(arrays[files[i]], -1, 0) / 255.0, atol=1e-7)
        k = list(arrays).index(files[i])
        assert f[row].tolist() == [0 if k % 2 else 1, k]                     # 'blue' < 'red'
    Image.fromarray(np.zeros((7, 10, 3), np.uint8)).save(tmp_path / "z_odd.png")
    (tmp_path / "labels.csv").unlink()
    ds = make_dataset("images", data_dir=str(tmp_path))
    with pytest.raises(ValueError, match=r"z_odd\.png: size \(10, 7\) differs"):
        ds.get(np.arange(len(ds)))
    (tmp_path / "z_odd.png").write_bytes(b"not a png")
    with pytest.raises(ValueError, match=r"z_odd\.png: not a readable image"):
        make_dataset("images", data_dir=str(tmp_path)).get(np.array([5]))


def test_train_on_mnist_files(tmp_path):
    """`vaefrag train --dataset mnist --data-dir DIR`: the fingerprint comes from the files."""
    from vaefrag import store
    from vaefrag.cli import main

    rng = np.random.default_rng(4)
    tr_x, tr_y = rng.integers(0, 256, (40, 28, 28)), rng.integers(0, 10, 40)
    _idx(tmp_path / "mnist" / "train-images-idx3-ubyte", tr_x, 0x803, gz=True)
    _idx(tmp_path / "mnist" / "train-labels-idx1-ubyte", tr_y, 0x801, gz=True)
    assert main(["train", "--dataset", "mnist", "--data-dir", str(tmp_path / "mnist"), "--models", "1",
                 "--latents", "2", "--steps", "2", "--batch-size", "4", "--hidden", "8",
                 "--fingerprint-size", "12", "--out", "m", "--ensembles", str(tmp_path / "ens"),
                 "--device", "cpu"]) == 0
    ens = store.load_ensemble(tmp_path / "ens" / "m")
    idx = np.sort(np.random.default_rng(0).choice(40, 12, replace=False))
    np.testing.assert_allclose(ens.x[:, 0], tr_x[idx] / 255.0, atol=1e-7)
    np.testing.assert_array_equal(ens.factors[:, 0], tr_y[idx])
    assert ens.manifest["dataset"]["name"] == "mnist" and ens.factor_names == ["digit"]
    assert main(["train", "--dataset", "mnist", "--out", str(tmp_path / "x")]) == 2      # no --data-dir
    assert not (tmp_path / "x").exists()
    assert os.path.isabs(ens.manifest["dataset"]["params"]["data_dir"])


def test_npz_dataset_reads_channels_last_uint8(tmp_path):
    x8 = np.random.default_rng(5).integers(0, 256, (6, 8, 8, 3), dtype=np.uint8)
    np.savez(tmp_path / "d.npz", x=x8)
    ds = make_dataset("npz", path=str(tmp_path / "d.npz"))
    assert ds.shape == (3, 8, 8) and ds.likelihood == "bernoulli"
    np.testing.assert_allclose(ds.get(np.array([4]))[0][0], np.moveaxis(x8[4], -1, 0) / 255.0, atol=1e-7)
    assert any("uint8" in n for n in ds.notes) and any("channels-last" in n for n in ds.notes)
