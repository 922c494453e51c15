"""Members trained elsewhere: ONNX decoders (and encoders) run with onnxruntime on the CPU.

An ONNX decoder maps latents float32 ``[B, L]`` to outputs ``[B, ...]`` shaped like one input of
the ensemble: images channels-first ``[B, C, H, W]``, channels-last ``[B, H, W, C]``, one-channel
``[B, H, W]``, flattened ``[B, C*H*W]``, or vectors ``[B, D]``. An encoder maps inputs (in one of
the same layouts) to its first two outputs, mean and log-variance ``[B, L]``. `OnnxMember` hides
the layouts: like our own `vaefrag.models.Member` it takes and returns channels-first torch
tensors, so traversals and re-encoding treat both kinds alike. onnxruntime is imported lazily.
"""
from __future__ import annotations

import math
from pathlib import Path

import numpy as np

#: how a model's arrays are laid out relative to the ensemble's channels-first shape
LAYOUTS = ("nchw", "nhwc", "nhw", "flat", "vector")
#: decoder outputs: probabilities / values as they are, or logits passed through a sigmoid
DECODER_OUTPUTS = ("probabilities", "logits")


class OnnxModelError(ValueError):
    """An ONNX file is unreadable or does not fit the ensemble; the message names the file."""


def open_session(path):
    """An onnxruntime CPU session for ``path``.

    Raises OnnxModelError naming the file when it is missing or not a loadable ONNX model.
    """
    import onnxruntime as ort

    path = Path(path)
    if not path.is_file():
        raise OnnxModelError(f"{path}: no such ONNX file")
    opts = ort.SessionOptions()
    opts.log_severity_level = 3
    opts.intra_op_num_threads = 1
    try:
        return ort.InferenceSession(str(path), sess_options=opts, providers=["CPUExecutionProvider"])
    except Exception as exc:  # onnxruntime raises its own exception types (InvalidProtobuf, Fail, ...)
        msg = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
        raise OnnxModelError(f"{path}: not a loadable ONNX model ({msg})") from None


def layout_shape(shape, layout: str) -> tuple[int, ...]:
    """The per-item shape a model sees for the ensemble's channels-first ``shape`` in ``layout``."""
    shape = tuple(int(s) for s in shape)
    if layout in ("nchw", "vector"):
        return shape
    if layout == "nhwc":
        return shape[1:] + shape[:1]
    if layout == "nhw":
        return shape[1:]
    if layout == "flat":
        return (int(math.prod(shape)),)
    raise ValueError(f"layout: expected one of {LAYOUTS}, got {layout!r}")


def to_layout(x: np.ndarray, layout: str) -> np.ndarray:
    """Channels-first batch ``[B, *shape]`` -> the model's layout."""
    if layout in ("nchw", "vector"):
        return x
    if layout == "nhwc":
        return np.moveaxis(x, 1, -1)
    if layout == "nhw":
        return x[:, 0]
    return x.reshape(len(x), -1)


def from_layout(y: np.ndarray, layout: str, shape) -> np.ndarray:
    """The model's layout ``[B, ...]`` -> channels-first ``[B, *shape]``."""
    if layout in ("nchw", "vector"):
        return y
    if layout == "nhwc":
        return np.moveaxis(y, -1, 1)
    return y.reshape((len(y),) + tuple(shape))


def fit_layout(item_shape, target) -> str | None:
    """The layout in which a model's per-item shape ``item_shape`` fits the ensemble's channels-first
    ``target`` shape (``(C, H, W)`` or ``(D,)``), or None. Channels-first wins when both fit."""
    item, target = tuple(int(s) for s in item_shape), tuple(int(s) for s in target)
    if len(target) == 1:
        return "vector" if item == target else None
    for layout in ("nchw", "nhwc", "nhw", "flat"):
        if layout == "nhw" and target[0] != 1:
            continue
        if item == layout_shape(target, layout):
            return layout
    return None


def guess_image_shape(item_shape) -> tuple[tuple[int, ...], str]:
    """Channels-first shape and layout of a decoder's output when no inputs tell: ``[C, H, W]`` with
    C in (1, 3, 4) first, else a trailing C in (1, 3, 4) means channels-last; ``[H, W]`` is one
    channel; ``[D]`` a vector."""
    s = tuple(int(v) for v in item_shape)
    if len(s) == 1:
        return s, "vector"
    if len(s) == 2:
        return (1,) + s, "nhw"
    if len(s) == 3:
        if s[0] in (1, 3, 4) or s[-1] not in (1, 3, 4):
            return s, "nchw"
        return (s[-1],) + s[:2], "nhwc"
    raise OnnxModelError(f"decoder output of shape [B, {', '.join(map(str, s))}] is neither an image nor a vector")


def _static(dim):
    return dim if isinstance(dim, int) and dim > 0 else None


class _Runner:
    """One ONNX session with its first input; runs a batch in chunks of a fixed batch size if the
    graph declares one (exports without a dynamic batch axis)."""

    def __init__(self, path):
        self.path = Path(path)
        self.session = open_session(path)
        inputs = self.session.get_inputs()
        if len(inputs) != 1:
            raise OnnxModelError(f"{self.path}: expected a model with one input, it has {len(inputs)} "
                                 f"({[i.name for i in inputs]})")
        self.input = inputs[0]
        if "float" not in self.input.type:
            raise OnnxModelError(f"{self.path}: input {self.input.name!r} must be a float tensor, got {self.input.type}")
        self.input_shape = list(self.input.shape)
        self.batch = _static(self.input_shape[0]) if self.input_shape else None
        self.dtype = np.float64 if "double" in self.input.type else (np.float16 if "float16" in self.input.type
                                                                      else np.float32)
        self.outputs = [o.name for o in self.session.get_outputs()]

    def item_shape(self) -> list:
        """Declared per-item input shape (ints or None for symbolic dimensions)."""
        return [_static(d) for d in self.input_shape[1:]]

    def run(self, x: np.ndarray) -> list[np.ndarray]:
        x = np.ascontiguousarray(x, dtype=self.dtype)
        step = self.batch or 1024
        parts = []
        for lo in range(0, len(x), step):
            chunk = x[lo:lo + step]
            n = len(chunk)
            if self.batch and n < self.batch:
                chunk = np.concatenate([chunk, np.repeat(chunk[-1:], self.batch - n, 0)])
            try:
                out = self.session.run(None, {self.input.name: chunk})
            except Exception as exc:
                msg = str(exc).splitlines()[0][:300] if str(exc) else type(exc).__name__
                raise OnnxModelError(f"{self.path}: running the model on input [{', '.join(map(str, chunk.shape))}] "
                                     f"failed ({msg})") from None
            parts.append([np.asarray(o)[:n] for o in out])
        return [np.concatenate([p[i] for p in parts]) for i in range(len(parts[0]))]


class OnnxMember:
    """A model trained elsewhere, as ONNX files: the interface of `vaefrag.models.Member`.

    Parameters
    ----------
    decoder : path of the decoder ``.onnx``, or None (an encoder-only member cannot traverse).
    encoder : path of the encoder ``.onnx``, or None.
    shape : channels-first shape of one input, e.g. (1, 64, 64) or (2,).
    latents : L, the ensemble's latent size (z and mu have L columns).
    decoder_layout, encoder_layout : one of `LAYOUTS` (how the files lay out their images).
    decoder_output : "probabilities" (as is) or "logits" (a sigmoid is applied).
    used_latents : indices of the latents this model has (default all L; models with fewer
        latents than the ensemble see only theirs, the rest are padding).

    ``encode(x [B, *shape]) -> (mu, logvar) [B, L]``, ``decode(z [B, L]) -> [B, *shape]``; both take
    torch tensors or numpy arrays and return float32 torch tensors (padding latents get the prior:
    mu 0, logvar 0).
    """

    def __init__(self, decoder=None, encoder=None, *, shape, latents: int, decoder_layout: str = "nchw",
                 encoder_layout: str = "nchw", decoder_output: str = "probabilities", used_latents=None):
        if decoder is None and encoder is None:
            raise ValueError("OnnxMember: needs a decoder or an encoder file")
        if decoder_output not in DECODER_OUTPUTS:
            raise ValueError(f"decoder_output: expected one of {DECODER_OUTPUTS}, got {decoder_output!r}")
        for name, lay in (("decoder_layout", decoder_layout), ("encoder_layout", encoder_layout)):
            if lay not in LAYOUTS:
                raise ValueError(f"{name}: expected one of {LAYOUTS}, got {lay!r}")
        self.input_shape = tuple(int(s) for s in shape)
        self.latents = int(latents)
        self.used = np.arange(self.latents) if used_latents is None else np.asarray(used_latents, dtype=np.int64)
        self.decoder_layout, self.encoder_layout, self.decoder_output = decoder_layout, encoder_layout, decoder_output
        self._decoder = None if decoder is None else _Runner(decoder)
        self._encoder = None if encoder is None else _Runner(encoder)

    @property
    def has_decoder(self) -> bool:
        return self._decoder is not None

    @property
    def has_encoder(self) -> bool:
        return self._encoder is not None

    # torch-module look-alikes, so callers may treat it like a Member
    def eval(self):
        return self

    def to(self, device):
        return self

    def decode_numpy(self, z) -> np.ndarray:
        """z [B, L] -> float32 [B, *shape] (channels-first, sigmoid applied for logits)."""
        if self._decoder is None:
            raise ValueError("this member has no ONNX decoder (imported without --decoders)")
        z = np.asarray(z, dtype=np.float32)
        y = self._decoder.run(z[:, self.used])[0]
        expect = layout_shape(self.input_shape, self.decoder_layout)
        if tuple(y.shape[1:]) != expect:
            raise OnnxModelError(f"{self._decoder.path}: output has shape {list(y.shape)}, expected "
                                 f"[B, {', '.join(map(str, expect))}]")
        y = from_layout(y.astype(np.float32), self.decoder_layout, self.input_shape)
        if self.decoder_output == "logits":
            y = 1.0 / (1.0 + np.exp(-y))
        return np.ascontiguousarray(y, dtype=np.float32)

    def encode_numpy(self, x) -> tuple[np.ndarray, np.ndarray]:
        """x [B, *shape] channels-first -> mu, logvar float32 [B, L] (prior on padding latents)."""
        if self._encoder is None:
            raise ValueError("this member has no ONNX encoder (imported without --encoders)")
        x = np.asarray(x, dtype=np.float32)
        out = self._encoder.run(to_layout(x, self.encoder_layout))
        if len(out) < 2:
            raise OnnxModelError(f"{self._encoder.path}: an encoder needs two outputs (mean, log-variance), "
                                 f"it has {len(out)}")
        mu_u, lv_u = (np.asarray(o, dtype=np.float32) for o in out[:2])
        want = (len(x), len(self.used))
        for what, arr in (("mean", mu_u), ("log-variance", lv_u)):
            if arr.shape != want:
                raise OnnxModelError(f"{self._encoder.path}: {what} output has shape {list(arr.shape)}, "
                                     f"expected [{want[0]}, {want[1]}]")
        mu = np.zeros((len(x), self.latents), np.float32)
        lv = np.zeros((len(x), self.latents), np.float32)
        mu[:, self.used], lv[:, self.used] = mu_u, lv_u
        return mu, lv

    def decode(self, z):
        import torch

        z = z.detach().cpu().numpy() if hasattr(z, "detach") else np.asarray(z)
        return torch.from_numpy(self.decode_numpy(z))

    def encode(self, x):
        import torch

        x = x.detach().cpu().numpy() if hasattr(x, "detach") else np.asarray(x)
        mu, lv = self.encode_numpy(x)
        return torch.from_numpy(mu), torch.from_numpy(lv)

    def __call__(self, x):
        return self.decode(self.encode(x)[0])


def probe_decoder(path, latents: int, target_shape=None, z=None):
    """Open a decoder file and find how its output fits one input.

    Parameters
    ----------
    path : the ``.onnx`` file.  latents : the number of latents it takes.
    target_shape : channels-first shape of the fingerprint inputs, or None (guess from the output).
    z : [B, latents] latents to decode for the check (default two zero rows).

    Returns
    -------
    (shape, layout, y) : channels-first item shape, layout, and the decoded outputs [B, ...] as the
    file gives them. Raises OnnxModelError naming the file when the input or output does not fit.
    """
    runner = _Runner(path)
    item = runner.item_shape()
    if len(item) != 1 or (item[0] is not None and item[0] != latents):
        raise OnnxModelError(f"{path}: decoder input {runner.input.name!r} has shape {runner.input_shape}, "
                             f"expected [B, {latents}] (the model's latents)")
    z = np.zeros((2, latents), np.float32) if z is None else np.asarray(z, np.float32)
    y = runner.run(z)[0]
    if y.ndim < 2 or len(y) != len(z):
        raise OnnxModelError(f"{path}: decoder output has shape {list(y.shape)}, expected [B={len(z)}, ...]")
    if target_shape is None:
        shape, layout = guess_image_shape(y.shape[1:])
    else:
        shape, layout = tuple(int(s) for s in target_shape), fit_layout(y.shape[1:], target_shape)
        if layout is None:
            raise OnnxModelError(f"{path}: decoder output [B, {', '.join(map(str, y.shape[1:]))}] does not fit the "
                                 f"inputs 'x' [N, {', '.join(map(str, shape))}] (channels-first, channels-last, "
                                 "one-channel or flattened)")
    return shape, layout, y


def probe_encoder(path, shape, x):
    """Open an encoder file and find the layout in which it takes inputs of channels-first ``shape``.

    x : [B, *shape] sample inputs (channels-first). Returns (layout, mu, logvar) as the file gives
    them; raises OnnxModelError naming the file when no layout fits or the outputs are wrong.
    """
    runner = _Runner(path)
    item = runner.item_shape()
    shape = tuple(int(s) for s in shape)
    candidates = ["vector"] if len(shape) == 1 else ["nchw", "nhwc", "nhw", "flat"]
    fitting = []
    for layout in candidates:
        if layout == "nhw" and shape[0] != 1:
            continue
        want = layout_shape(shape, layout)
        if len(item) == len(want) and all(d is None or d == w for d, w in zip(item, want)):
            fitting.append(layout)
    if not fitting:
        raise OnnxModelError(f"{path}: encoder input {runner.input.name!r} has shape {runner.input_shape}, which "
                             f"does not fit inputs [N, {', '.join(map(str, shape))}] in any layout")
    errors = []
    for layout in fitting:
        try:
            out = runner.run(to_layout(np.asarray(x, np.float32), layout))
        except OnnxModelError as exc:
            errors.append(str(exc))
            continue
        if len(out) < 2:
            raise OnnxModelError(f"{path}: an encoder needs two outputs (mean, log-variance), it has {len(out)}")
        return layout, np.asarray(out[0]), np.asarray(out[1])
    raise OnnxModelError(errors[0])
