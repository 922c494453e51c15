"""On-disk result caches (diskcache), shared by `analysis`, `spaces` and the dashboard.

Entries are bytes (npz + JSON written by the result classes), never pickles of objects, and are
keyed by content (`content_key`). An entry is written only after its computation finished, so an
interrupted computation leaves nothing behind. No torch here: the dashboard reads the cache on
its start-up path.
"""
from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path
from typing import Callable, Iterable, TypeVar

import numpy as np

#: environment variable naming the cache directory
CACHE_ENV = "VAEFRAG_CACHE"

T = TypeVar("T")


def default_cache_dir() -> Path:
    """``$VAEFRAG_CACHE`` if set, else ``~/.cache/vaefrag``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "vaefrag"


def content_key(arrays: Iterable, params: dict, code: Iterable[bytes | str] = ()) -> str:
    """SHA-256 over arrays (dtype, shape and bytes; None entries skipped), the parameters as sorted
    JSON, and code-version strings or bytes."""
    h = hashlib.sha256()
    for arr in arrays:
        if arr is None:
            continue
        a = np.ascontiguousarray(arr)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    h.update(json.dumps(params, sort_keys=True).encode())
    for c in code:
        h.update(c.encode() if isinstance(c, str) else c)
    return h.hexdigest()


def pack(arrays: dict, meta: dict) -> bytes:
    """npz bytes of named arrays plus a JSON ``meta`` dict (what cache entries hold; no pickle)."""
    buf = io.BytesIO()
    np.savez(buf, meta=np.array(json.dumps(meta)), **arrays)
    return buf.getvalue()


def unpack(data: bytes) -> tuple[dict, dict]:
    """(arrays, meta) from `pack` bytes; never unpickles."""
    with np.load(io.BytesIO(data), allow_pickle=False) as z:
        arrays = {k: z[k] for k in z.files}
    return arrays, json.loads(str(arrays.pop("meta")))


def _open(namespace: str, cache_dir):
    import diskcache

    return diskcache.Cache(str(Path(cache_dir or default_cache_dir()) / namespace))


def lookup(namespace: str, key: str, decode: Callable[[bytes], T], cache_dir=None) -> T | None:
    """The decoded entry ``key`` of cache ``namespace`` under ``cache_dir``, or None (never computes)."""
    with _open(namespace, cache_dir) as cache:
        hit = cache.get(key)
    return decode(hit) if isinstance(hit, bytes) else None


def store(namespace: str, key: str, data: bytes, cache_dir=None) -> None:
    """Write one entry (call only with a finished result)."""
    with _open(namespace, cache_dir) as cache:
        cache.set(key, data)


def cached(namespace: str, key: str, compute: Callable[[], T], *, encode: Callable[[T], bytes],
           decode: Callable[[bytes], T], cache_dir=None, use_cache: bool = True) -> tuple[T, bool]:
    """(result, from_cache): the cached entry, else ``compute()`` stored after it returns.

    ``use_cache=False`` neither reads nor writes.
    """
    if use_cache:
        hit = lookup(namespace, key, decode, cache_dir)
        if hit is not None:
            return hit, True
    out = compute()
    if use_cache:
        store(namespace, key, encode(out), cache_dir)
    return out, False


__all__ = ["CACHE_ENV", "default_cache_dir", "content_key", "pack", "unpack", "lookup", "store", "cached"]
