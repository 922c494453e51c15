"""Channel tiles: any tile map, and a real Dask cluster, give the untiled comparison."""
import numpy as np
import pytest

from vaefrag import measures as ms


def _channels(seed, m=23, n=40, d=1):
    rng = np.random.default_rng(seed)
    base = rng.normal(size=(4, n))
    mu = base[rng.integers(0, 4, m)][..., None] * rng.uniform(0.5, 2, (m, 1, 1)) + 0.4 * rng.normal(size=(m, n, d))
    return mu, rng.uniform(-3, 0, (m, n, d)), rng.integers(0, 3, (n, 2))


def _assert_same(res, ref, atol=1e-5):
    for name in ("info", "self_info", "mutual", "vi", "info_other", "factor_info", "factor_vi"):
        a, b = getattr(res, name), getattr(ref, name)
        if b is not None:
            np.testing.assert_allclose(a, b, atol=atol, err_msg=name)
    np.testing.assert_allclose(res.nmi, ref.nmi, atol=atol, equal_nan=True)
    if ref.factor_nmi is not None:
        np.testing.assert_allclose(res.factor_nmi, ref.factor_nmi, atol=atol, equal_nan=True)


@pytest.mark.parametrize("symmetric", [True, False])
@pytest.mark.parametrize("n_blocks", [1, 2, 5])
def test_plan_covers_every_pair_once_and_every_row_block_with_factors_once(symmetric, n_blocks):
    n_cols = n_blocks if symmetric else 3
    tasks = ms.plan_tiles(n_blocks, n_cols, symmetric)
    cover = np.zeros((n_blocks, n_cols), int)
    for t in tasks:
        col = t.row if t.col is None else t.col
        cover[t.row, col] += 1
        if symmetric and t.col is not None:
            cover[col, t.row] += 1                    # an off-diagonal tile stands for its mirror too
    assert (cover == 1).all()
    assert sorted(t.row for t in tasks if t.factors) == list(range(n_blocks))
    if symmetric:
        assert len(tasks) == n_blocks * (n_blocks + 1) // 2


@pytest.mark.parametrize("tile", [4, 7, 23])
def test_tiles_run_in_any_order_give_the_untiled_comparison(tile):
    mu, lv, factors = _channels(0)
    mu2, lv2, _ = _channels(1, m=9, d=2)
    calls = []

    def backwards(tasks, blocks_a, blocks_b, labels, options, progress=None):
        calls.append(len(tasks))
        out = {t: ms.run_tile_task(t, blocks_a, blocks_b, labels, options) for t in reversed(tasks)}
        return [out[t] for t in tasks]

    ref = ms.compare_channels(mu, lv, factors=factors, dtype="float64")
    res = ms.compare_channels(mu, lv, factors=factors, dtype="float64", block_channels=tile, map_tiles=backwards)
    _assert_same(res, ref, atol=1e-9)
    n_blocks = -(-23 // tile)
    assert calls[-1] == n_blocks * (n_blocks + 1) // 2          # only the upper triangle of tiles
    ref2 = ms.compare_channels(mu, lv, other=(mu2, lv2), factors=factors, dtype="float64")
    res2 = ms.compare_channels(mu, lv, other=(mu2, lv2), factors=factors, dtype="float64", block_channels=tile,
                               map_tiles=backwards)
    _assert_same(res2, ref2, atol=1e-9)


def test_a_tile_map_that_loses_tiles_is_an_error():
    mu, lv, _ = _channels(2)
    lossy = lambda tasks, *args, **kw: ms.map_tiles_here(tasks[:-1], *args, **kw)
    with pytest.raises(RuntimeError, match="map_tiles: expected 6 tile results, got 5"):
        ms.compare_channels(mu, lv, block_channels=8, map_tiles=lossy)


@pytest.fixture(scope="module")
def dask_client():
    pytest.importorskip("distributed")
    from vaefrag.distributed import cluster_client
    with cluster_client(n_workers=2) as client:
        yield client


@pytest.mark.slow
def test_dask_cluster_gives_the_in_process_comparison(dask_client):
    from vaefrag.distributed import dask_tile_map
    mu, lv, factors = _channels(3, m=30)
    mu2, lv2, _ = _channels(4, m=11)
    seen = []
    progress = lambda done, total, msg: seen.append((done, total))
    ref = ms.compare_channels(mu, lv, factors=factors)
    res = ms.compare_channels(mu, lv, factors=factors, block_channels=8, map_tiles=dask_tile_map(dask_client),
                              progress=progress)
    _assert_same(res, ref)
    assert seen[-1] == (10, 10)                                   # 4 blocks: 4 diagonal + 6 off-diagonal tiles
    ref2 = ms.compare_channels(mu, lv, other=(mu2, lv2))
    res2 = ms.compare_channels(mu, lv, other=(mu2, lv2), block_channels=8, map_tiles=dask_tile_map(dask_client))
    _assert_same(res2, ref2)


@pytest.mark.slow
def test_a_failing_task_raises_here_and_the_cluster_keeps_working(dask_client):
    from vaefrag.distributed import dask_tile_map
    mu, lv, _ = _channels(5)
    run = dask_tile_map(dask_client)
    blocks = [(mu[:10], lv[:10]), (mu[10:], lv[10:])]
    tasks = ms.plan_tiles(2, 2, True)
    with pytest.raises(ValueError, match="dtype: expected 'float32' or 'float64'"):
        run(tasks, blocks, None, None, {"dtype": "float16"})
    good = run(tasks, blocks, None, None, {"dtype": "float64"})
    here = ms.map_tiles_here(tasks, blocks, None, None, {"dtype": "float64"})
    for a, b in zip(good, here):
        np.testing.assert_allclose(a.joint, b.joint, atol=1e-12)


@pytest.mark.slow
def test_analyze_on_a_dask_cluster_finds_the_same_hotspots(dask_client, tmp_path):
    from vaefrag import analysis, synthetic
    from vaefrag.distributed import dask_tile_map
    path = synthetic.make_fragment_ensemble(tmp_path / "frag", models=6, latents=5, n_points=150, weights=False)
    kw = dict(n_bootstrap=2, maps=(), use_cache=False)
    here = analysis.analyze(path, **kw)
    there = analysis.analyze(path, block_channels=8, map_tiles=dask_tile_map(dask_client), **kw)
    assert len(here.hotspots) >= 3
    assert [h.members.tolist() for h in there.hotspots] == [h.members.tolist() for h in here.hotspots]
    np.testing.assert_allclose(there.nmi, here.nmi, atol=1e-5, equal_nan=True)


def test_unreachable_scheduler_is_a_clear_error():
    pytest.importorskip("distributed")
    from vaefrag.distributed import cluster_client
    with pytest.raises(ValueError, match="scheduler: could not connect to 'tcp://127.0.0.1:9'"):
        with cluster_client("tcp://127.0.0.1:9", timeout=1):
            pass


@pytest.mark.slow
def test_bench_scripts_run_small_and_agree(capsys):
    from vaefrag.cli import main
    assert main(["bench", "distributed", "--models", "4", "--latents", "5", "--points", "60", "--tile", "7",
                 "--workers", "1"]) == 0
    out = capsys.readouterr().out
    diff = float(next(line for line in out.splitlines() if line.startswith("largest NMI difference")).split()[-1])
    assert diff < 1e-4
    assert main(["bench", "measures", "--models", "2", "--latents", "5", "--points", "50", "--pairs", "3",
                 "--repeats", "1"]) == 0
    out = capsys.readouterr().out
    assert "M=10 channels" in out and "speed-up (reference / vaefrag)" in out
    assert "performed (symmetry" in out
