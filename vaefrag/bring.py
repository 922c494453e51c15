"""Bring models in memory: encoders and decoders from your own code -> a vaefrag ensemble.

`write_ensemble_from_models` takes one encoder (and optionally one decoder) per model, computes
every model's posteriors on the fingerprint inputs, exports the torch modules to ONNX so that
traversals persist without your code, and writes the ensemble through `store.import_posteriors`
(the same validation as `vaefrag import`). Adapters turn common model shapes into the two
callables it needs:

- `plain_torch(vae)`: a tutorial-style VAE with ``vae.encode(x) -> (mu, logvar)`` and
  ``vae.decode(z) -> x`` (any output layout: channels-first, channels-last or flattened).
- `pythae(model)`: pythae's models, ``model.encoder(x).embedding`` / ``.log_covariance`` and
  ``model.decoder(z).reconstruction``.
- any callables ``encoder(x) -> (mu, logvar, ...)`` and ``decoder(z) -> x`` (torch modules for
  export; plain functions give posteriors but no ONNX files).

ONNX export uses torch's current exporter (``torch.onnx.export(..., dynamo=True)``, which needs
``onnx`` and ``onnxscript``): the TorchScript exporter (``dynamo=False``) has been deprecated since
torch 2.9 and warns that it will be removed. ``exporter="legacy"`` selects it for models that
``torch.export`` cannot capture (data-dependent Python control flow).
"""
from __future__ import annotations

import tempfile
import warnings
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

EXPORTERS = ("dynamo", "legacy")


def _torch():
    import torch

    return torch


def plain_torch(vae, encode: str = "encode", decode: str = "decode") -> tuple[Callable, Callable]:
    """(encoder, decoder) of a tutorial-style VAE: ``vae.encode(x) -> (mu, logvar)``, ``vae.decode(z)``.

    ``encode`` / ``decode`` name the methods when yours are called otherwise.
    """
    enc, dec = getattr(vae, encode, None), getattr(vae, decode, None)
    if not callable(enc) or not callable(dec):
        raise ValueError(f"plain_torch: {type(vae).__name__} has no methods {encode!r} and {decode!r}")
    return _Call(vae, encode), _Call(vae, decode)


def pythae(model) -> tuple[Callable, Callable]:
    """(encoder, decoder) of a pythae model: ``model.encoder(x)`` returns a ModelOutput with
    ``embedding`` and ``log_covariance`` (the log-variance), ``model.decoder(z)`` one with
    ``reconstruction``."""
    for part in ("encoder", "decoder"):
        if not callable(getattr(model, part, None)):
            raise ValueError(f"pythae: {type(model).__name__} has no {part!r} module")
    return _PythaeEncoder(model), _PythaeDecoder(model)


def _module_base():
    return _torch().nn.Module


class _Call(_module_base()):
    """A method of a module as a module (so it exports and keeps the module's weights)."""

    def __init__(self, owner, method: str):
        super().__init__()
        self.owner, self.method = owner, method

    def forward(self, t):
        return getattr(self.owner, self.method)(t)


class _PythaeEncoder(_module_base()):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, x):
        out = self.model.encoder(x)
        return out.embedding, out.log_covariance


class _PythaeDecoder(_module_base()):
    def __init__(self, model):
        super().__init__()
        self.model = model

    def forward(self, z):
        return self.model.decoder(z).reconstruction


class _Encoder(_module_base()):
    """channels-first x -> (mu, logvar) [B, L]: reshapes x to what the model wants."""

    def __init__(self, fn, model_shape):
        super().__init__()
        self.fn, self.model_shape = fn, tuple(model_shape)

    def forward(self, x):
        out = self.fn(x.reshape((x.shape[0],) + self.model_shape))
        mu, logvar = out[0], out[1]
        return mu.reshape(mu.shape[0], -1), logvar.reshape(logvar.shape[0], -1)


class _Decoder(_module_base()):
    """z [B, L] -> channels-first x: undoes the model's output layout."""

    def __init__(self, fn, layout: str, shape):
        super().__init__()
        self.fn, self.layout, self.shape = fn, layout, tuple(shape)

    def forward(self, z):
        y = self.fn(z)
        if self.layout == "nhwc":
            y = y.permute(0, 3, 1, 2)
        return y.reshape((y.shape[0],) + self.shape)


def _batches(fn, x, batch_size):
    torch = _torch()
    outs = []
    with torch.no_grad():
        for lo in range(0, len(x), batch_size):
            outs.append(fn(torch.from_numpy(np.ascontiguousarray(x[lo:lo + batch_size]))))
    return outs


def _model_input_shape(fn, x) -> tuple[int, ...]:
    """The per-item shape the encoder takes: channels-first as given, else flattened."""
    torch = _torch()
    probe = torch.from_numpy(np.ascontiguousarray(x[:2]))
    errors = []
    for shape in (tuple(x.shape[1:]), (int(np.prod(x.shape[1:])),)):
        try:
            with torch.no_grad():
                out = fn(probe.reshape((len(probe),) + shape))
            if not isinstance(out, (tuple, list)) or len(out) < 2:
                raise ValueError(f"the encoder must return (mu, logvar, ...), got {type(out).__name__}")
            return shape
        except ValueError:
            raise
        except Exception as exc:  # the model's own shape errors (RuntimeError, ...)
            errors.append(f"{list(shape)}: {str(exc).splitlines()[0][:200]}")
    raise ValueError("encoder: takes neither channels-first nor flattened inputs (" + "; ".join(errors) + ")")


def _export(module, example, path: Path, exporter: str, n_outputs: int):
    torch = _torch()
    module.eval()
    names = ["mu", "logvar"] if n_outputs == 2 else ["x"]
    in_name = "z" if n_outputs == 1 else "x"
    with warnings.catch_warnings():
        # torch's own deprecation notices (the legacy exporter, internals) are not the user's to act on;
        # anything else, e.g. a TracerWarning that the graph depends on the example, still reaches them
        warnings.simplefilter("ignore", DeprecationWarning)
        warnings.simplefilter("ignore", FutureWarning)
        if exporter == "dynamo":
            batch = torch.export.Dim("batch", min=1)
            torch.onnx.export(module, (example,), str(path), input_names=[in_name], output_names=names,
                              dynamo=True, dynamic_shapes=({0: batch},), verbose=False, optimize=True,
                              external_data=False)
        else:
            axes = {in_name: {0: "batch"}, **{n: {0: "batch"} for n in names}}
            torch.onnx.export(module, (example,), str(path), input_names=[in_name], output_names=names,
                              dynamo=False, dynamic_axes=axes)


def write_ensemble_from_models(name, encoders: Sequence, decoders: Sequence | None, x, *, factors=None,
                               factor_names=None, metadata: dict | None = None, root=None,
                               decoder_output: str = "probabilities", export: bool = True,
                               exporter: str = "dynamo", batch_size: int = 256, overwrite: bool = False) -> Path:
    """Make an ensemble from models in memory.

    Parameters
    ----------
    name : ensemble name (under `store.ensembles_root`, ``root``).
    encoders : K callables ``encoder(x) -> (mu, logvar, ...)`` on torch tensors (torch modules, or
        adapters: `plain_torch`, `pythae`); x is given channels-first ``[B, C, H, W]`` (or flattened
        when the encoder takes only that) or ``[B, D]``.
    decoders : K callables ``decoder(z [B, L]) -> x`` (probabilities in [0, 1] for images, or
        logits with ``decoder_output="logits"``), or None (no traversals).
    x : [N, C, H, W] or [N, D] fingerprint inputs (numpy or torch), the same for every model.
    factors, factor_names : optional ground-truth labels int [N, F] and their names.
    metadata : dict name -> K values (``beta``, ``seed``, ``final_loss``, ``family``, ...), kept in
        the manifest's members.
    export : write ONNX files (needs torch modules); False stores posteriors only.
    exporter : "dynamo" (default, see the module docstring) or "legacy".

    Returns
    -------
    Path of the ensemble.
    """
    from vaefrag import importer
    from vaefrag.models.onnx import fit_layout

    torch = _torch()
    if exporter not in EXPORTERS:
        raise ValueError(f"exporter: expected one of {EXPORTERS}, got {exporter!r}")
    x = np.ascontiguousarray(x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x), dtype=np.float32)
    if x.ndim not in (2, 4) or len(x) < 2:
        raise ValueError(f"x: expected [N, C, H, W] or [N, D] with N >= 2, got shape {list(x.shape)}")
    k = len(encoders)
    if k < 1 or (decoders is not None and len(decoders) != k):
        raise ValueError(f"encoders / decoders: expected K >= 1 of each, got {k} and "
                         f"{None if decoders is None else len(decoders)}")
    shape = tuple(x.shape[1:])
    mus, lvs, enc_mods, dec_mods = [], [], [], []
    for i, enc in enumerate(encoders):
        if hasattr(enc, "eval"):
            enc.eval()
        model_shape = _model_input_shape(enc, x)
        wrapped = _Encoder(enc, model_shape)
        outs = _batches(wrapped, x, batch_size)
        mu = torch.cat([o[0] for o in outs]).float().numpy()
        lv = torch.cat([o[1] for o in outs]).float().numpy()
        if mu.shape != lv.shape or mu.ndim != 2:
            raise ValueError(f"encoders[{i}]: mu {list(mu.shape)} and logvar {list(lv.shape)} must both be [N, L]")
        mus.append(mu)
        lvs.append(lv)
        enc_mods.append(wrapped)
    lat = {m.shape[1] for m in mus}
    if len(lat) != 1:
        raise ValueError(f"encoders: models have different latent sizes {sorted(lat)}; pad them (docs/import.md, "
                         "'latent_mask') or make one ensemble per size")
    if decoders is not None:
        for i, dec in enumerate(decoders):
            if hasattr(dec, "eval"):
                dec.eval()
            with torch.no_grad():
                y = dec(torch.from_numpy(mus[i][:2]))
            layout = fit_layout(tuple(y.shape[1:]), shape)
            if layout is None:
                raise ValueError(f"decoders[{i}]: output [B, {', '.join(map(str, y.shape[1:]))}] does not fit the "
                                 f"inputs x [N, {', '.join(map(str, shape))}]")
            dec_mods.append(_Decoder(dec, layout, shape))
    arrays = {"mu": np.stack(mus), "logvar": np.stack(lvs), "x": x}
    if factors is not None:
        arrays["factors"] = np.asarray(factors)
        if factor_names is not None:
            arrays["factor_names"] = np.asarray(factor_names, dtype=str)
    for key, values in (metadata or {}).items():
        if key in importer.KNOWN_KEYS:
            raise ValueError(f"metadata: key {key!r} is reserved")
        arr = np.asarray(values)
        if arr.shape != (k,):
            raise ValueError(f"metadata[{key!r}]: expected {k} values (one per model), got shape {list(arr.shape)}")
        arrays[key] = arr
    with tempfile.TemporaryDirectory(prefix="vaefrag-bring-") as tmp:
        tmp = Path(tmp)
        np.savez(tmp / "posteriors.npz", **arrays)
        dec_dir = enc_dir = None
        if export:
            for what, mods in (("encoder", enc_mods), ("decoder", dec_mods)):
                if not mods:
                    continue
                d = tmp / f"{what}s"
                d.mkdir()
                for i, mod in enumerate(mods):
                    if not isinstance(mod.fn, torch.nn.Module):
                        raise ValueError(f"{what}s[{i}]: is not a torch module, so it cannot be exported to ONNX; "
                                         "pass export=False for posteriors only")
                    example = torch.from_numpy(x[:2]) if what == "encoder" else torch.from_numpy(mus[i][:2])
                    try:
                        _export(mod, example, d / f"{what}_{i:03d}.onnx", exporter, 2 if what == "encoder" else 1)
                    except Exception as exc:
                        raise ValueError(f"{what}s[{i}]: ONNX export failed ({str(exc).splitlines()[0][:300]}); "
                                         + ("try exporter='legacy'" if exporter == "dynamo" else "")) from None
                if what == "encoder":
                    enc_dir = d
                else:
                    dec_dir = d
        return importer.import_posteriors(tmp / "posteriors.npz", name, root, decoders=dec_dir, encoders=enc_dir,
                                          decoder_output=decoder_output, overwrite=overwrite)
