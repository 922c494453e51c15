"""The shipped ensembles in data/ensembles: within the size budget, members reproduce their stored
posteriors, the sprites beta-TCVAE ensemble carries x, y and scale in single channels (factor NMI >=
0.5) that recur across models as hotspots, and the beta-VAE ensemble on the same points shares its
scale fragment but mostly cuts x and y differently."""
from pathlib import Path

import numpy as np
import pytest
import torch

from vaefrag import members, store
from vaefrag.analysis import analyze
from vaefrag.measures import split_channels, compare_channels

SHIPPED = Path(__file__).resolve().parents[1] / "data" / "ensembles"
SPRITES = SHIPPED / "sprites-beta-tcvae"
BETA_VAE = SHIPPED / "sprites-beta-vae"          # beta-VAE on the same fingerprint points
NEEDED = ("x", "y", "scale")


def test_data_directory_is_within_40_mb():
    size = sum(p.stat().st_size for p in SHIPPED.parent.rglob("*") if p.is_file())
    assert size <= 40 * 2**20, f"data/ is {size / 2**20:.1f} MB"


@pytest.mark.parametrize("name", [p.name for p in store.list_ensembles(SHIPPED)])
def test_shipped_members_reproduce_their_posteriors(name):
    ens = store.load_ensemble(SHIPPED / name)
    assert ens.n_models >= 10
    for k in (0, ens.n_models - 1):
        with torch.no_grad():
            mu, logvar = members.load_member(ens, k).encode(torch.from_numpy(ens.x))
        np.testing.assert_allclose(mu.numpy(), ens.mu[k], rtol=1e-4, atol=1e-4)
        np.testing.assert_allclose(logvar.numpy(), ens.logvar[k], rtol=1e-4, atol=1e-4)


def test_shipped_sprites_channels_carry_x_y_and_scale():
    ens = store.load_ensemble(SPRITES)
    assert ens.n_models >= 20 and ens.n_latents == 10 and ens.n_points == 1000
    res = compare_channels(*split_channels(ens.mu, ens.logvar), factors=ens.factors)
    best = np.nanmax(res.factor_nmi, axis=0)
    for factor in NEEDED:
        assert best[ens.factor_names.index(factor)] >= 0.5, (factor, best)


def test_shipped_sprites_hotspots_match_x_y_and_scale(tmp_path):
    a = analyze(SPRITES, maps=(), n_bootstrap=0, cache_dir=tmp_path, device="cpu")
    names = a.factor_names
    found = [(names[h.best_factor], round(h.best_factor_nmi, 2), h.n_models) for h in a.hotspots]
    for factor in NEEDED:
        assert any(f == factor and nmi >= 0.5 and models >= 3 for f, nmi, models in found), found


def test_shipped_sprites_ensembles_share_scale_but_mostly_cut_x_and_y_differently(tmp_path):
    from vaefrag.crossrun import compare_ensembles

    res = compare_ensembles(SPRITES, BETA_VAE, maps=(), n_bootstrap=0, cache_dir=tmp_path, device="cpu")
    by_factor = {m.best_factor: m for m in res.matches_a}
    scale = by_factor["scale"]
    assert scale.best_hotspot_nmi >= 0.9 and scale.models_matched == scale.n_models_other
    for f in ("x", "y"):
        m = by_factor[f]
        assert m.best_channel_nmi >= 0.8                      # some beta-VAE models have the aligned channel,
        assert m.models_matched <= m.n_models_other // 2      # but at most half of them


SWEEP = SHIPPED.parent / "sweeps" / "sprites-beta-tcvae"


def test_shipped_sweep_shares_the_points_and_has_checkpoints():
    from vaefrag.crossrun import check_same_points
    from vaefrag.sweep import load_sweep

    sw = load_sweep(SWEEP)
    assert sw.key == "beta" and len(sw.values) >= 4
    ref = store.load_ensemble(SPRITES)
    for i, value in enumerate(sw.values):
        ens = sw.load(i)
        assert ens.n_models >= 10 and ens.manifest["recipe"]["hyperparameters"]["beta"] == value
        check_same_points(ref, ens)
        ck = store.load_checkpoints(ens)
        assert ck is not None and len(ck["steps"]) >= 2 and ck["steps"][-1] == ens.manifest["recipe"]["steps"]


def test_shipped_sweep_hotspots_recur_more_as_beta_grows(tmp_path):
    """The README's reading of the sweep: from the smallest to the largest beta, hotspots take in a
    larger share of the informative channels and recur in more of the models."""
    from vaefrag.sweep import analyze_sweep
    from vaefrag.tracking import level_rows

    tracking, _ = analyze_sweep(SWEEP, cache_dir=tmp_path, device="cpu")
    rows = level_rows(tracking)
    assert rows[-1]["fraction_in_hotspots"] > rows[0]["fraction_in_hotspots"] + 0.2
    assert rows[-1]["mean_models_fraction"] > rows[0]["mean_models_fraction"] + 0.2
    assert rows[-1]["informative"] < rows[0]["informative"]
    assert any(f == "scale" for f in tracking.levels[-1].best_factor)
