"""Datasets: the procedural sprites against closed forms, digits/ring against their definitions, npz validation."""
import numpy as np
import pytest

from vaefrag.datasets import DATASETS, make_dataset
from vaefrag.datasets import sprites as sp


def one(shape=0, scale=5, orient=0, x=15, y=15, res=64, ss=4):
    return sp.render(np.array([[shape, scale, orient, x, y]]), res, ss)[0, 0]


def centre_px(i, res):
    """Continuous pixel coordinate of position index i (pixel j covers [j, j+1)); grid step 0.6 * res / 31 px."""
    return (sp.MARGIN + (1 - 2 * sp.MARGIN) * i / 31) * res


def test_registry_and_unknown_name():
    assert {"sprites", "digits", "ring", "npz"} <= set(DATASETS)
    with pytest.raises(ValueError, match="unknown name 'nope'"):
        make_dataset("nope")
    with pytest.raises(ValueError, match="resolution"):
        make_dataset("sprites", resolution=48)
    with pytest.raises(ValueError, match="bad parameters"):
        make_dataset("digits", colour=True)


def test_sprites_index_round_trip(rng):
    ds = make_dataset("sprites", resolution=32)
    assert len(ds) == 3 * 6 * 40 * 32 * 32 == 737280
    idx = np.concatenate([[0, len(ds) - 1], rng.integers(0, len(ds), 500)])
    f = sp.index_to_factors(idx)
    # mixed radix written out by hand (dSprites order: shape, scale, orientation, x, y)
    expect = (((f[:, 0] * 6 + f[:, 1]) * 40 + f[:, 2]) * 32 + f[:, 3]) * 32 + f[:, 4]
    np.testing.assert_array_equal(expect, idx)
    np.testing.assert_array_equal(sp.factors_to_index(f), idx)
    assert (f >= 0).all() and (f < np.array(sp.FACTOR_SIZES)).all()
    x, f2 = ds.get(idx[:20])
    assert x.shape == (20, 1, 32, 32) and x.dtype == np.float32 and 0 <= x.min() and x.max() <= 1
    np.testing.assert_array_equal(f2, f[:20])
    np.testing.assert_array_equal(x, sp.render(f[:20], 32, 2))
    with pytest.raises(ValueError, match="indices"):
        ds.get([len(ds)])


def test_sprites_area_follows_scale_closed_form():
    res = 64
    for shape in range(3):
        areas = np.array([one(shape, s, res=res).sum() for s in range(6)])
        assert (np.diff(areas) > 0).all(), f"shape {shape}: area must grow with scale: {areas}"
        # area scales as scale^2 (ratio of scale 1 to scale 0.5 is 4)
        assert areas[-1] / areas[0] == pytest.approx(4.0, rel=0.08)
    half = sp.BASE_SIZE * res  # half side of the scale-1 square in pixels
    assert one(0, 5, res=res).sum() == pytest.approx((2 * half) ** 2, rel=0.03)
    assert one(1, 5, res=res).sum() == pytest.approx(np.pi * 1.3 * 0.65 * half**2, rel=0.03)


@pytest.mark.parametrize("res", [32, 64])
def test_sprites_centroid_follows_position(res):
    cols = np.arange(res) + 0.5
    for shape in (0, 1):
        for x, y in [(0, 0), (5, 20), (31, 31), (17, 3)]:
            img = one(shape, 5, 0, x, y, res=res)
            m = img.sum()
            cx, cy = (img.sum(0) * cols).sum() / m, (img.sum(1) * cols).sum() / m
            assert cx == pytest.approx(centre_px(x, res), abs=0.15)
            assert cy == pytest.approx(centre_px(y, res), abs=0.15)
    # the heart is mirror-symmetric left-right: its column centroid is the centre too
    img = one(2, 5, 0, 9, 9, res=res)
    assert (img.sum(0) * cols).sum() / img.sum() == pytest.approx(centre_px(9, res), abs=0.15)
    # and its row centroid moves with y by the grid spacing
    rows = [(one(2, 5, 0, 9, y, res=res).sum(1) * cols).sum() / one(2, 5, 0, 9, y, res=res).sum() for y in (4, 20)]
    assert rows[1] - rows[0] == pytest.approx(centre_px(20, res) - centre_px(4, res), abs=0.15)


def test_sprites_orientation_symmetries():
    for o in (0, 3, 7):
        # square: period of 90 degrees = 10 of the 40 orientation steps
        a, b = one(0, 4, o), one(0, 4, o + 10)
        assert np.abs(a - b).mean() < 1e-3
        # ellipse: period of 180 degrees
        assert np.abs(one(1, 4, o) - one(1, 4, o + 20)).mean() < 1e-3
    # orientation really rotates: a quarter turn of the centred ellipse is its transpose
    e0, e10 = one(1, 5, 0, 14, 14), one(1, 5, 10, 14, 14)
    assert np.abs(e10 - e0.T).mean() < 1e-3
    assert np.abs(e10 - e0).mean() > 0.01
    # the heart has no half-turn symmetry
    assert np.abs(one(2, 5, 0) - one(2, 5, 20)).mean() > 0.01


def test_digits_are_sklearn_digits():
    from sklearn.datasets import load_digits

    ds = make_dataset("digits")
    ref = load_digits()
    assert len(ds) == 1797 and ds.shape == (1, 8, 8)
    x, f = ds.get(np.arange(len(ds)))
    np.testing.assert_allclose(x[:, 0] * 16, ref.images)
    np.testing.assert_array_equal(f[:, 0], ref.target)


def test_ring_points_and_angle_bins():
    ds = make_dataset("ring", n_points=360, n_bins=8)
    x, f = ds.get(np.arange(360))
    np.testing.assert_allclose(np.linalg.norm(x, axis=1), 1, atol=1e-6)
    angle = np.mod(np.arctan2(x[:, 1], x[:, 0]), 2 * np.pi)
    np.testing.assert_array_equal(f[:, 0], np.floor(angle / (2 * np.pi / 8)).astype(int))
    assert np.bincount(f[:, 0]).tolist() == [45] * 8
    with pytest.raises(ValueError, match="n_bins"):
        make_dataset("ring", n_points=10, n_bins=11)


def test_npz_dataset_valid_and_bad(tmp_path, rng):
    good = tmp_path / "good.npz"
    np.savez(good, x=rng.random((20, 8, 8)), factors=rng.integers(0, 3, (20, 2)), factor_names=np.array(["a", "b"]))
    ds = make_dataset("npz", path=str(good))
    assert ds.shape == (1, 8, 8) and ds.likelihood == "bernoulli" and ds.factor_names == ["a", "b"]
    x, f = ds.get([0, 3])
    assert x.shape == (2, 1, 8, 8) and f.shape == (2, 2)
    vec = tmp_path / "vec.npz"
    np.savez(vec, x=rng.normal(size=(30, 5)))
    assert make_dataset("npz", path=str(vec)).likelihood == "gaussian"

    cases = {
        "missing.npz": dict(y=np.zeros(3)),
        "nonfinite.npz": dict(x=np.array([[0.0, np.nan], [1, 2]])),
        "rows.npz": dict(x=rng.random((5, 3)), factors=np.zeros((4, 1), int)),
        "names.npz": dict(x=rng.random((5, 3)), factors=np.zeros((5, 2), int), factor_names=np.array(["a"])),
        "float_factors.npz": dict(x=rng.random((5, 3)), factors=np.zeros((5, 1))),
        "strings.npz": dict(x=np.array([["a", "b"], ["c", "d"]])),
    }
    for name, arrays in cases.items():
        np.savez(tmp_path / name, **arrays)
        with pytest.raises(ValueError, match=name):
            make_dataset("npz", path=str(tmp_path / name))
    pickled = tmp_path / "pickled.npz"
    np.savez(pickled, x=np.array([{"a": 1}, None], dtype=object))
    with pytest.raises(ValueError, match="pickle"):
        make_dataset("npz", path=str(pickled))
    trunc = tmp_path / "trunc.npz"
    trunc.write_bytes(good.read_bytes()[:200])
    with pytest.raises(ValueError, match="trunc.npz"):
        make_dataset("npz", path=str(trunc))
    with pytest.raises(FileNotFoundError):
        make_dataset("npz", path=str(tmp_path / "absent.npz"))
