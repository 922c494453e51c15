"""Import of models trained elsewhere (`store.import_posteriors`): read the npz, read its intent,
validate the ONNX decoders / encoders against it, and write the ensemble through the store.

What the npz may hold (docs/import.md): ``mu``, ``logvar`` [K, N, L] (or [N, L]); ``x`` [N, ...];
``factors`` [N, F] and ``factor_names``; ``latent_mask`` bool [K, L]; and per-model metadata
arrays [K] (any other key whose first axis is K: ``beta``, ``seed``, ``final_loss``, ``family``).
Everything is validated before anything is written; notes on what was converted (channels-last
images transposed, uint8 scaled, keys ignored) are returned in the manifest's ``source.notes``.
"""
from __future__ import annotations

import logging
import tempfile
from pathlib import Path

import numpy as np

from vaefrag import store
from vaefrag.datasets.arrayfile import npz_keys
from vaefrag.datasets.npz import check_factors, check_numeric, images_channels_first, load_npz
from vaefrag.models.onnx import DECODER_OUTPUTS, OnnxModelError, probe_decoder, probe_encoder

log = logging.getLogger("vaefrag.import")

#: keys with a meaning of their own; every other key is metadata or ignored
KNOWN_KEYS = ("mu", "logvar", "x", "factors", "factor_names", "latent_mask")


def onnx_files(source, k: int, what: str) -> list[Path]:
    """K ONNX files from a directory (sorted by name) or a list; the count must be K."""
    if isinstance(source, (str, Path)):
        d = Path(source)
        if not d.is_dir():
            raise store.EnsembleError(f"{d}: --{what} must be a directory of .onnx files, one per model")
        files = sorted(d.glob("*.onnx"))
        where = f"{d}"
    else:
        files = [Path(f) for f in source]
        where = f"the {what} list"
    if len(files) != k:
        raise store.EnsembleError(f"{where}: holds {len(files)} .onnx files, expected one per model (K={k})"
                                  + (f": {[f.name for f in files][:10]}" if files else ""))
    return files


def embedded(path: Path, tmp_dir: Path) -> Path:
    """``path`` itself, or a copy with its external tensor data (``*.onnx.data`` beside it) embedded,
    so that the one file stored in the ensemble is the whole model."""
    try:
        import onnx
        from onnx.external_data_helper import uses_external_data
    except ImportError:
        return path
    try:
        proto = onnx.load(str(path), load_external_data=False)
    except Exception as exc:
        raise OnnxModelError(f"{path}: not a loadable ONNX model ({str(exc).splitlines()[0][:200]})") from None
    if not any(uses_external_data(t) for t in proto.graph.initializer):
        return path
    try:
        proto = onnx.load(str(path))
    except Exception as exc:
        raise OnnxModelError(f"{path}: its external tensor data cannot be read ({str(exc).splitlines()[0][:200]})") from None
    out = tmp_dir / f"{len(list(tmp_dir.iterdir())):03d}-{path.name}"
    onnx.save_model(proto, str(out), save_as_external_data=False)
    return out


def _metadata(where, data: dict, keys, k: int, n: int, notes: list):
    """Per-model metadata arrays [K] -> list of K dicts; scalars -> dict; others are noted and skipped."""
    per_model: list[dict] = [{} for _ in range(k)]
    scalars = {}
    for key in keys:
        if key in KNOWN_KEYS:
            continue
        a = data[key]
        if a.dtype.kind not in "biufUS":
            notes.append(f"{key}: ignored (dtype {a.dtype})")
            continue
        if a.ndim == 0:
            scalars[key] = a.item() if a.dtype.kind not in "US" else str(a)
        elif a.ndim == 1 and len(a) == k and (k != n or k == 1):
            if a.dtype.kind == "f" and not np.isfinite(a).all():
                raise ValueError(f"{where}: field {key!r} has non-finite values")
            for i, v in enumerate(a.tolist()):
                per_model[i][key] = str(v) if a.dtype.kind in "US" else v
        elif a.ndim == 1 and len(a) == k:
            notes.append(f"{key}: ignored (K = N = {k}: cannot tell per-model metadata from per-point values)")
        else:
            notes.append(f"{key}: ignored (shape {list(a.shape)} is neither per-model [K={k}] nor a scalar)")
    return per_model, scalars


def _read(npz_path: Path, x_layout: str):
    """Everything the npz says, validated and converted (nothing written)."""
    if not npz_path.is_file():
        raise FileNotFoundError(f"{npz_path}: no such file")
    keys = npz_keys(npz_path)
    notes: list[str] = []
    data = load_npz(npz_path, required=("mu", "logvar"), optional=tuple(keys))
    mu = check_numeric(npz_path, "mu", data["mu"], ndims=(2, 3))
    logvar = check_numeric(npz_path, "logvar", data["logvar"], ndims=(2, 3))
    mu, logvar = (a[None] if a.ndim == 2 else a for a in (mu, logvar))
    mu, logvar = store._check_posteriors(npz_path, mu, logvar)
    k, n, lat = mu.shape
    mask = None
    if "latent_mask" in data:
        mask = np.asarray(data["latent_mask"])
        if mask.dtype.kind not in "bi" or mask.shape != (k, lat) or not np.isin(mask, (0, 1)).all():
            raise ValueError(f"{npz_path}: field 'latent_mask' must be bool [K={k}, L={lat}], got {mask.dtype} {mask.shape}")
        mask = mask.astype(bool)
        if not mask.any(axis=1).all():
            raise ValueError(f"{npz_path}: field 'latent_mask' leaves model(s) {np.flatnonzero(~mask.any(1)).tolist()} "
                             "without latents")
        # padding latents carry the prior N(0, 1): Bhattacharyya coefficient 1, zero information
        mu, logvar = np.where(mask[:, None], mu, 0.0).astype(np.float32), np.where(mask[:, None], logvar, 0.0).astype(np.float32)
        if not mask.all():
            notes.append(f"latent_mask: {int((~mask).sum())} padding latents set to the prior N(0, 1) (zero information)")
    x = data.get("x")
    if x is not None:
        x = check_numeric(npz_path, "x", x, ndims=(2, 3, 4))
        if len(x) != n:
            raise ValueError(f"{npz_path}: field 'x' has {len(x)} items but 'mu' has N={n}")
        x = x.astype(np.float32) if x.ndim == 2 else images_channels_first(npz_path, x, x_layout, notes)
    factors, names = check_factors(npz_path, data.get("factors"), data.get("factor_names"), n)
    per_model, scalars = _metadata(npz_path, data, keys, k, n, notes)
    return mu, logvar, mask, x, factors, names, per_model, scalars, notes


def _check_decoders(files, mu, mask, x, decoder_output):
    """Decode each model's posterior means once; returns (shape, [layout per model])."""
    shape = None if x is None else tuple(x.shape[1:])
    layouts = []
    for kk, f in enumerate(files):
        used = np.arange(mu.shape[2]) if mask is None else np.flatnonzero(mask[kk])
        got_shape, layout, y = probe_decoder(f, len(used), shape, mu[kk][:, used])
        if shape is not None and got_shape != shape:
            raise OnnxModelError(f"{f}: decoder output fits inputs {list(got_shape)}, but model 0's decoder gives {list(shape)}")
        shape = got_shape
        if not np.isfinite(y).all():
            raise OnnxModelError(f"{f}: decoding the posterior means of model {kk} gave non-finite values")
        if len(shape) == 3 and decoder_output == "probabilities" and (y.min() < -1e-4 or y.max() > 1 + 1e-4):
            raise OnnxModelError(f"{f}: decoded images lie in [{y.min():.3g}, {y.max():.3g}], not in [0, 1]; if the "
                                 "decoder outputs logits, pass decoder_output='logits' (--decoder-output logits)")
        layouts.append(layout)
    return shape, layouts


def _check_encoders(files, mu, logvar, mask, inputs, npz_path):
    """Encode 'x' with each encoder; its means must reproduce the npz's 'mu' (catches a wrong file order)."""
    layouts = []
    for kk, f in enumerate(files):
        used = np.arange(mu.shape[2]) if mask is None else np.flatnonzero(mask[kk])
        layout, m, lv = probe_encoder(f, inputs.shape[1:], inputs)
        for what, got, ref in (("mean", m, mu[kk][:, used]), ("log-variance", lv, logvar[kk][:, used])):
            if got.shape != ref.shape:
                raise OnnxModelError(f"{f}: {what} output has shape {list(got.shape)}, expected {list(ref.shape)} "
                                     f"(N points x model {kk}'s latents)")
            if not np.isfinite(got).all():
                raise OnnxModelError(f"{f}: {what} output has non-finite values")
        scale = float(np.abs(mu[kk][:, used]).max()) + 1.0
        diff = float(np.abs(m - mu[kk][:, used]).max())
        if diff > 1e-2 * scale:
            raise OnnxModelError(f"{f}: encodes the inputs 'x' to means that differ from {npz_path.name}'s 'mu' of "
                                 f"model {kk} (max difference {diff:.3g}); are the files in model order "
                                 "(sorted by file name)?")
        layouts.append(layout)
    return layouts


def import_posteriors(npz_path, name: str, root=None, *, decoders=None, encoders=None,
                      decoder_output: str = "probabilities", x_layout: str = "auto", dataset=None,
                      overwrite: bool = False):
    """Validate everything, then write the ensemble (see `store.import_posteriors`).

    dataset : (name, params) of a registered dataset to draw new fingerprint samples from
        (`vaefrag fingerprint`, `vaefrag spaces --sample-size`), or None.
    """
    npz_path = Path(npz_path)
    target = store.ensembles_root(root) / store.safe_name(name)
    if decoder_output not in DECODER_OUTPUTS:
        raise ValueError(f"decoder_output: expected one of {DECODER_OUTPUTS}, got {decoder_output!r}")
    with store._with_error():
        mu, logvar, mask, x, factors, names, per_model, scalars, notes = _read(npz_path, x_layout)
        k, n, lat = mu.shape
        dec_files = None if decoders is None else onnx_files(decoders, k, "decoders")
        enc_files = None if encoders is None else onnx_files(encoders, k, "encoders")
        shape = None if x is None else tuple(x.shape[1:])
        dec_layouts = enc_layouts = None
        if dec_files is not None:
            shape, dec_layouts = _check_decoders(dec_files, mu, mask, x, decoder_output)
        if enc_files is not None:
            if x is not None:
                inputs = x
            elif dec_files is not None:
                from vaefrag.models.onnx import OnnxMember

                inputs = OnnxMember(dec_files[0], shape=shape, latents=lat, decoder_layout=dec_layouts[0],
                                    decoder_output=decoder_output,
                                    used_latents=None if mask is None else np.flatnonzero(mask[0])).decode_numpy(mu[0])
            else:
                raise ValueError(f"{npz_path}: encoders need the inputs 'x' (or decoders) to be checked against 'mu'")
            enc_layouts = _check_encoders(enc_files, mu, logvar, mask, inputs, npz_path) if x is not None else \
                _check_encoders_shape_only(enc_files, mu, mask, inputs)
        ds_entry = {"name": "imported", "shape": None if shape is None else list(shape), "factor_names": names}
        if dataset is not None:
            from vaefrag.datasets import make_dataset

            ds_name, ds_params = dataset
            ds = make_dataset(ds_name, **(ds_params or {}))
            if shape is not None and tuple(ds.shape) != tuple(shape):
                raise ValueError(f"dataset {ds_name!r}: items have shape {list(ds.shape)}, the imported models "
                                 f"take {list(shape)}")
            ds_entry = ds.describe()
            shape = tuple(ds.shape)
    members, extra = [], {}
    for kk in range(k):
        m = {"id": kk, **per_model[kk]}
        if mask is not None:
            m["latents_used"] = np.flatnonzero(mask[kk]).tolist()
        for what, files, layouts in (("decoder", dec_files, dec_layouts), ("encoder", enc_files, enc_layouts)):
            if files is not None:
                rel = f"{store.MEMBERS_DIR}/{what}_{kk:03d}.onnx"
                extra[rel] = files[kk]
                m.update({what: rel, f"{what}_file": files[kk].name, f"{what}_layout": layouts[kk]})
        if dec_files is not None:
            m["decoder_output"] = decoder_output
        members.append(m)
    families = {str(m.get("family")) for m in per_model if "family" in m}
    manifest = {
        "name": target.name,
        "source": {"kind": "imported", "file": npz_path.name, "notes": notes,
                   "format": "onnx" if extra else "posteriors"},
        "dataset": ds_entry,
        "model": {"family": families.pop() if len(families) == 1 else "imported"},
        "fingerprint": {"size": n},
        "metadata": scalars,
        "members": members,
    }
    for note in notes:
        log.info("import %s: %s", npz_path.name, note)
    with tempfile.TemporaryDirectory(prefix="vaefrag-import-") as tmp:
        extra = {rel: embedded(Path(src), Path(tmp)) for rel, src in extra.items()}
        return store.write_ensemble(target, manifest, mu, logvar, x=x, factors=factors, factor_names=names or None,
                                    overwrite=overwrite, extra_files=extra or None)


def _check_encoders_shape_only(files, mu, mask, inputs):
    """Encoders checked on decoded inputs (no 'x' to compare with): shapes and finiteness only."""
    layouts = []
    for kk, f in enumerate(files):
        used = np.arange(mu.shape[2]) if mask is None else np.flatnonzero(mask[kk])
        layout, m, lv = probe_encoder(f, inputs.shape[1:], inputs)
        for what, got in (("mean", m), ("log-variance", lv)):
            if got.shape != (len(inputs), len(used)):
                raise OnnxModelError(f"{f}: {what} output has shape {list(got.shape)}, expected "
                                     f"[{len(inputs)}, {len(used)}]")
            if not np.isfinite(got).all():
                raise OnnxModelError(f"{f}: {what} output has non-finite values")
        layouts.append(layout)
    return layouts
