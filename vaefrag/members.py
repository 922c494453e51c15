"""Members of an ensemble as models: our networks rebuilt from their spec and safetensors weights,
or ONNX decoders / encoders of models trained elsewhere; and the members' metadata as table columns."""
from __future__ import annotations

import numpy as np

from vaefrag.store import MANIFEST, Ensemble, EnsembleError, _with_error, load_ensemble

__all__ = ["member_metadata", "load_member_state", "load_member"]


#: member fields that are bookkeeping, not per-model metadata
_MEMBER_BOOKKEEPING = {"id", "weights", "decoder", "encoder", "decoder_file", "encoder_file", "decoder_layout",
                       "encoder_layout", "decoder_output", "latents_used", "group_size", "train_time_s"}


def member_metadata(ensemble, numeric_only: bool = False) -> dict:
    """Per-model metadata of the manifest's members, as model-table columns.

    Returns dict column -> list of K values (float for numbers, NaN where missing; str for text
    columns such as ``family``), for every field some member carries besides the bookkeeping
    (``seed``, ``beta``, ``final_loss``, ... as imported or trained). ``numeric_only=True`` keeps the
    numeric columns as float64 arrays [K], the form of ``Analysis.model_table``'s columns.
    """
    manifest = ensemble.manifest if isinstance(ensemble, Ensemble) else ensemble
    members = manifest.get("members") or []
    keys: list[str] = []
    for m in members:
        for key, v in m.items():
            if key not in _MEMBER_BOOKKEEPING and key not in keys and isinstance(v, (int, float, str, bool)):
                keys.append(key)
    out = {}
    for key in keys:
        vals = [m.get(key) for m in members]
        if all(v is None or (isinstance(v, (int, float)) and not isinstance(v, bool)) or isinstance(v, bool)
               for v in vals):
            out[key] = [float("nan") if v is None else float(v) for v in vals]
        elif not numeric_only:
            out[key] = ["" if v is None else str(v) for v in vals]
    if numeric_only:
        return {key: np.asarray(v, dtype=np.float64) for key, v in out.items()}
    return out


def load_member_state(ensemble: Ensemble, k: int) -> dict:
    """Member k's weights as a dict name -> float32 torch tensor (read with safetensors)."""
    from safetensors.torch import load_file

    members = ensemble.manifest.get("members", [])
    if not 0 <= k < len(members):
        raise ValueError(f"k: member index must lie in [0, {len(members)}), got {k}")
    rel = members[k].get("weights")
    if not rel:
        raise EnsembleError(f"{ensemble.path / MANIFEST}: field 'members[{k}].weights' is missing "
                            "(an imported ensemble has no weights)")
    wpath = ensemble.path / rel
    if not wpath.is_file():
        raise FileNotFoundError(f"{wpath}: weights file of member {k} is missing")
    try:
        state = load_file(str(wpath))
    except Exception as exc:  # safetensors raises its own error types
        raise EnsembleError(f"{wpath}: not a readable safetensors file ({exc})") from None
    return {key: t.float() for key, t in state.items()}


def load_member(ensemble, k: int, device="cpu"):
    """Member k, ready to encode and decode.

    Our networks are rebuilt from the manifest's model spec and their safetensors weights
    (strict) as a :class:`vaefrag.models.Member` in eval mode; members imported as ONNX files
    become a :class:`vaefrag.models.onnx.OnnxMember` (onnxruntime, CPU). Both give
    ``encode(x) -> (mu, logvar)`` [B, L] and ``decode(z) -> x`` in [0, 1] (images [B, C, H, W]) or
    vectors [B, D], on torch tensors.
    """
    if not isinstance(ensemble, Ensemble):
        ensemble = load_ensemble(ensemble)
    members = ensemble.manifest.get("members", [])
    if not 0 <= k < len(members):
        raise ValueError(f"k: member index must lie in [0, {len(members)}), got {k}")
    m = members[k]
    if m.get("decoder") or m.get("encoder"):
        return _load_onnx_member(ensemble, k, m)
    from vaefrag.models import Member

    spec = (ensemble.manifest.get("model") or {}).get("spec")
    if not isinstance(spec, dict):
        raise EnsembleError(f"{ensemble.path / MANIFEST}: field 'model.spec' is missing; cannot rebuild the network")
    with _with_error():
        member = Member(spec)
        member.load_state(load_member_state(ensemble, k))
    return member.to(device).eval()


def _load_onnx_member(ensemble: Ensemble, k: int, m: dict):
    from vaefrag.models.onnx import OnnxMember

    files = {}
    for key in ("decoder", "encoder"):
        if m.get(key):
            fpath = ensemble.path / m[key]
            if not fpath.is_file():
                raise FileNotFoundError(f"{fpath}: {key} file of member {k} is missing")
            files[key] = fpath
    shape = ensemble.image_shape
    if shape is None:
        raise EnsembleError(f"{ensemble.path / MANIFEST}: field 'dataset.shape' is missing; cannot lay out "
                            f"member {k}'s ONNX outputs")
    with _with_error():
        return OnnxMember(files.get("decoder"), files.get("encoder"), shape=shape, latents=ensemble.n_latents,
                          decoder_layout=m.get("decoder_layout", "nchw"), encoder_layout=m.get("encoder_layout", "nchw"),
                          decoder_output=m.get("decoder_output", "probabilities"), used_latents=m.get("latents_used"))
