"""Models in memory -> ensemble (`vaefrag.bring`): the adapters of docs/import.md, run as written,
and the README's library example on a file written as docs/import.md says."""
from __future__ import annotations

import re
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

from byo_helpers import TutorialVAE, posteriors, torch_grid
from vaefrag import bring, members, store, traversal
from vaefrag.cli import main

REPO = Path(__file__).resolve().parents[1]


def code_block(path: Path, heading: str) -> str:
    """The first ```python block after ``heading`` in a markdown file."""
    text = path.read_text()
    start = text.index(heading)
    m = re.search(r"```python\n(.*?)```", text[start:], re.S)
    assert m, f"no python block after {heading!r} in {path}"
    return m.group(1)


def bc_info(mu, logvar):
    """I(X;U) in bits of one 1-D channel from the definitions (DESIGN §2), in float64 numpy."""
    m, v = np.asarray(mu, np.float64), np.exp(np.asarray(logvar, np.float64))
    s = (v[:, None] + v[None]) / 2
    d = (m[:, None] - m[None]) ** 2 / (8 * s) + 0.5 * np.log(s / np.sqrt(v[:, None] * v[None]))
    return float(-np.mean(np.log2(np.exp(-d).mean(1))))


@pytest.fixture
def models():
    rng = np.random.default_rng(0)
    x = rng.random((24, 1, 8, 8)).astype(np.float32)
    vaes = [TutorialVAE(latents=3, seed=s).eval() for s in (5, 6)]
    return vaes, x, rng.integers(0, 4, 24)


def check_ensemble(path, vaes, x, latent=1):
    ens = store.load_ensemble(path)
    mu, logvar = posteriors(vaes, x)
    np.testing.assert_allclose(ens.mu, mu, atol=1e-6)
    np.testing.assert_allclose(ens.logvar, logvar, atol=1e-6)
    assert ens.has_weights and ens.has_encoders
    grids, _ = traversal.channel_traversals(ens, [(1, latent)], n_values=5, rows=[0, 7], align=False)
    ref = torch_grid(vaes[1], mu[1, [0, 7]], latent, traversal.traversal_values(mu[1, :, latent], 5))
    assert np.abs(grids[0].astype(int) - ref.astype(int)).max() <= 1
    return ens


def test_docs_plain_torch_recipe_runs_as_written(models, tmp_path, monkeypatch):
    vaes, x, labels = models
    monkeypatch.setenv("VAEFRAG_ENSEMBLES", str(tmp_path / "ens"))
    code = code_block(REPO / "docs" / "import.md", "## From PyTorch, in memory")
    exec(code, {"vaes": vaes, "x": torch.from_numpy(x), "labels": labels, "betas": [1.0, 2.0], "seeds": [3, 4]})
    ens = check_ensemble(tmp_path / "ens" / "my-vaes", vaes, x)
    np.testing.assert_array_equal(ens.factors[:, 0], labels)
    assert ens.factor_names == ["digit"]
    assert members.member_metadata(ens) == {"beta": [1.0, 2.0], "seed": [3.0, 4.0]}


class ModelOutput(OrderedDict):
    """pythae's ModelOutput (pythae.models.base.base_utils): an OrderedDict whose keys are also attributes."""

    def __getattr__(self, name):
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class PythaeEncoder(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, x):
        mu, logvar = self.vae.encode(x)
        return ModelOutput(embedding=mu, log_covariance=logvar)


class PythaeDecoder(nn.Module):
    def __init__(self, vae):
        super().__init__()
        self.vae = vae

    def forward(self, z):
        return ModelOutput(reconstruction=self.vae.decode(z))


class PythaeLike(nn.Module):
    """The shape of a pythae model (BetaVAE, BetaTCVAE ...): .encoder / .decoder returning ModelOutputs."""

    def __init__(self, vae):
        super().__init__()
        self.encoder, self.decoder = PythaeEncoder(vae), PythaeDecoder(vae)


def test_docs_pythae_recipe_runs_as_written(models, tmp_path, monkeypatch):
    vaes, x, labels = models
    monkeypatch.setenv("VAEFRAG_ENSEMBLES", str(tmp_path / "ens"))
    code = code_block(REPO / "docs" / "import.md", "### pythae")
    exec(code, {"models": [PythaeLike(v) for v in vaes], "x": x, "labels": labels})
    check_ensemble(tmp_path / "ens" / "digits-pythae", vaes, x, latent=2)


class FlatVAE(nn.Module):
    """As in the PyTorch examples' VAE: encode takes [B, 64] flattened inputs, decode gives [B, 64]."""

    def __init__(self):
        super().__init__()
        torch.manual_seed(3)
        self.fc1, self.fc21, self.fc22 = nn.Linear(64, 16), nn.Linear(16, 2), nn.Linear(16, 2)
        self.fc3, self.fc4 = nn.Linear(2, 16), nn.Linear(16, 64)

    def encode(self, x):
        h = torch.relu(self.fc1(x))
        return self.fc21(h), self.fc22(h)

    def decode(self, z):
        return torch.sigmoid(self.fc4(torch.relu(self.fc3(z))))


def test_flattened_tutorial_vae_and_plain_callables(tmp_path):
    vae = FlatVAE().eval()
    x = np.random.default_rng(1).random((12, 1, 8, 8)).astype(np.float32)
    path = bring.write_ensemble_from_models("flat", *zip(bring.plain_torch(vae)), x, root=tmp_path, exporter="legacy")
    ens = store.load_ensemble(path)
    with torch.no_grad():
        mu, lv = vae.encode(torch.from_numpy(x.reshape(12, 64)))
        np.testing.assert_allclose(ens.mu[0], mu.numpy(), atol=1e-6)
        z = torch.randn(5, 2)
        np.testing.assert_allclose(members.load_member(ens, 0).decode(z).numpy(),
                                   vae.decode(z).numpy().reshape(5, 1, 8, 8), atol=1e-5)
    # plain functions give posteriors, but cannot be exported
    enc = lambda t: vae.encode(t.reshape(len(t), -1))                      # noqa: E731
    with pytest.raises(ValueError, match="encoders\\[0\\]: is not a torch module"):
        bring.write_ensemble_from_models("fn", [enc], None, x, root=tmp_path)
    p2 = bring.write_ensemble_from_models("fn", [enc], None, x, root=tmp_path, export=False)
    np.testing.assert_allclose(store.load_ensemble(p2).mu[0], mu.numpy(), atol=1e-6)
    with pytest.raises(ValueError, match="metadata\\['beta'\\]: expected 1 values"):
        bring.write_ensemble_from_models("m", [enc], None, x, root=tmp_path, export=False, metadata={"beta": [1, 2]})


def test_by_hand_recipe_then_readme_library_example(models, tmp_path, monkeypatch):
    """docs/import.md's by-hand PyTorch block writes the npz and ONNX decoders; `vaefrag import` takes
    them; the README's five-line example runs on that npz and gives the channels' information."""
    vaes, x, labels = models

    class Decoder(nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, z):
            return self.model.decode(z)

    monkeypatch.chdir(tmp_path)
    (tmp_path / "decoders").mkdir()
    exec(code_block(REPO / "docs" / "import.md", "## From PyTorch, by hand"),
         {"fingerprint_images": torch.from_numpy(x), "models": vaes, "labels": labels, "Decoder": Decoder})
    assert main(["import", "my_posteriors.npz", "--name", "byhand", "--ensembles", str(tmp_path / "ens"),
                 "--decoders", "decoders"]) == 0
    ens = store.load_ensemble(tmp_path / "ens" / "byhand")
    grids, _ = traversal.channel_traversals(ens, [(0, 0)], n_values=3, rows=[1, 2], align=False)
    mu, logvar = posteriors(vaes, x)
    ref = torch_grid(vaes[0], mu[0, [1, 2]], 0, traversal.traversal_values(mu[0, :, 0], 3))
    assert np.abs(grids[0].astype(int) - ref.astype(int)).max() <= 1
    ns: dict = {}
    exec(code_block(REPO / "README.md", "## The library in five lines"), ns)
    res = ns["res"]
    assert res.nmi.shape == (6, 6) and res.info.shape == (6,)
    for c, (k, l) in enumerate([(k, l) for k in range(2) for l in range(3)]):
        assert res.info[c] == pytest.approx(bc_info(mu[k, :, l], logvar[k, :, l]), abs=1e-4)
