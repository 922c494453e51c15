"""The on-disk ensemble format (DESIGN §5): a directory per ensemble.

- ``ensemble.json``: manifest (``format_version``, name, dataset, model family + spec, latents,
  training recipe, fingerprint size/seed, members with id, seed, weights file, final loss).
- ``posteriors.npz``: ``mu`` and ``logvar`` float32 [K models, N points, L latents].
- ``fingerprint.npz`` (optional): ``x`` fingerprint inputs, ``factors`` int [N, F], ``factor_names``.
- ``members/*.safetensors`` (optional): model weights, needed only for traversals / re-encoding;
  or ``members/decoder_KKK.onnx`` (and ``encoder_KKK.onnx``) for models trained elsewhere
  (`vaefrag.models.onnx`), named in the members' ``decoder`` / ``encoder`` fields.
- ``checkpoints/posteriors.npz`` (optional): ``steps`` int [C] and ``mu``/``logvar`` float32
  [C checkpoints, K, N, L], the posteriors on the fingerprint during training (``train --checkpoints``).

Ensembles live under one root (`ensembles_root`: ``--ensembles``, ``$VAEFRAG_ENSEMBLES``,
``./data/ensembles``, ...); every command takes a name under it or a path (`resolve_ensemble`).

Writing is crash-safe: everything goes to a temporary sibling directory ``.NAME.tmp-PID-*`` that is
renamed into place; an overwrite swaps it with the old directory in one atomic exchange (Linux
renameat2), or, where the file system cannot, renames the old one aside first and `recover` puts it
back should the writer die between the two renames. A load after a crash at any point finds the old
or the new ensemble; temporaries of dead writers are removed by the next write or load.
Loading validates every field and never unpickles (``np.load(..., allow_pickle=False)``,
safetensors for weights).
"""
from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from vaefrag.archive import EnsembleError, check_archive, read_manifest  # noqa: F401  (re-exported)
from vaefrag.datasets.npz import check_factors, check_numeric, load_npz

FORMAT_VERSION = 1
MANIFEST = "ensemble.json"
POSTERIORS = "posteriors.npz"
FINGERPRINT = "fingerprint.npz"
MEMBERS_DIR = "members"
#: member fields naming files inside the ensemble directory
MEMBER_FILES = ("weights", "decoder", "encoder")
#: environment variable naming the ensembles root
ENSEMBLES_ENV = "VAEFRAG_ENSEMBLES"
CHECKPOINTS = "checkpoints/posteriors.npz"


@dataclass
class Ensemble:
    """An ensemble loaded from disk (see module docstring).

    Attributes
    ----------
    path : Path
    manifest : dict
    mu, logvar : np.ndarray, float32 [K, N, L]
    x : np.ndarray or None
        Fingerprint inputs [N, C, H, W] in [0, 1] or [N, D], float32.
    factors : np.ndarray or None
        int64 [N, F].
    factor_names : list of str
    """

    path: Path
    manifest: dict
    mu: np.ndarray
    logvar: np.ndarray
    x: np.ndarray | None = None
    factors: np.ndarray | None = None
    factor_names: list[str] = field(default_factory=list)

    @property
    def name(self) -> str:
        return str(self.manifest.get("name", self.path.name))

    @property
    def n_models(self) -> int:
        return int(self.mu.shape[0])

    @property
    def n_points(self) -> int:
        return int(self.mu.shape[1])

    @property
    def n_latents(self) -> int:
        return int(self.mu.shape[2])

    @property
    def has_weights(self) -> bool:
        """Every member can decode: safetensors weights of our networks, or an ONNX decoder."""
        members = self.manifest.get("members", [])
        return bool(members) and all(any(m.get(f) and (self.path / m[f]).is_file() for f in ("weights", "decoder"))
                                     for m in members)

    @property
    def has_encoders(self) -> bool:
        """Every member can encode new inputs: our networks' weights, or an ONNX encoder."""
        members = self.manifest.get("members", [])
        return bool(members) and all(any(m.get(f) and (self.path / m[f]).is_file() for f in ("weights", "encoder"))
                                     for m in members)

    @property
    def image_shape(self) -> tuple[int, ...] | None:
        """Shape of one input, e.g. (1, 64, 64) or (2,), or None when unknown."""
        shape = (self.manifest.get("dataset") or {}).get("shape")
        if shape:
            return tuple(int(s) for s in shape)
        return None if self.x is None else tuple(self.x.shape[1:])


def safe_name(name: str) -> str:
    """An ensemble name usable as one directory name: letters, digits, ``._-``; no path escapes.

    Raises ValueError for empty names or names made only of dots.
    """
    cleaned = re.sub(r"[^A-Za-z0-9._-]+", "-", str(name).strip()).strip("-")
    if not cleaned or set(cleaned) <= {"."} or cleaned.startswith("."):
        raise ValueError(f"name: {name!r} is not a usable ensemble name (letters, digits, '._-'; not starting with '.')")
    return cleaned


def list_ensembles(root) -> list[Path]:
    """Ensemble directories (holding an ``ensemble.json``) directly under ``root``, sorted by name;
    hidden and temporary directories are skipped (those of writers that died are removed, `recover`)."""
    root = Path(root)
    if not root.is_dir():
        return []
    for p in root.iterdir():          # temporaries of writers that died (`recover`)
        m = _TEMP_RE.match(p.name)
        if m and not _alive(int(m["pid"])):
            recover(root / m["name"])
    return sorted(p for p in root.iterdir()
                  if p.is_dir() and not p.name.startswith(".") and (p / MANIFEST).is_file())


def ensemble_problem(path) -> str | None:
    """Why the ensemble directory ``path`` would not load (one line), or None; cheap: the manifest and
    the posteriors' zip directory and headers only (what a listing can afford for every ensemble)."""
    path = Path(path)
    try:
        manifest = _check_manifest(path, read_manifest(path / MANIFEST))
        shapes = check_archive(path / POSTERIORS)
        if "mu" not in shapes or "logvar" not in shapes:
            raise EnsembleError(f"{path / POSTERIORS}: missing key 'mu' or 'logvar'")
        k = shapes["mu"][0][0] if shapes["mu"][0] else 0
        if manifest["members"] and len(manifest["members"]) != k:
            raise EnsembleError(f"{path / MANIFEST}: field 'members' lists {len(manifest['members'])} models "
                                f"but {POSTERIORS} holds {k}")
    except (ValueError, OSError) as exc:
        return str(exc)
    return None


# ----------------------------------------------------------------------------------------- checks
def _check_posteriors(where, mu, logvar) -> tuple[np.ndarray, np.ndarray]:
    mu = check_numeric(where, "mu", np.asarray(mu), ndims=(3,))
    logvar = check_numeric(where, "logvar", np.asarray(logvar), ndims=(3,))
    if mu.shape != logvar.shape:
        raise EnsembleError(f"{where}: fields 'mu' {mu.shape} and 'logvar' {logvar.shape} must have the same shape [K, N, L]")
    if min(mu.shape) < 1:
        raise EnsembleError(f"{where}: field 'mu' has an empty axis, shape {mu.shape}")
    # check_numeric refused values beyond float32's range (the one overflow check): no inf can appear here
    return mu.astype(np.float32), logvar.astype(np.float32)


def _check_manifest(path: Path, manifest) -> dict:
    where = path / MANIFEST
    if not isinstance(manifest, dict):
        raise EnsembleError(f"{where}: expected a JSON object, got {type(manifest).__name__}")
    version = manifest.get("format_version")
    if not isinstance(version, int) or isinstance(version, bool):
        raise EnsembleError(f"{where}: field 'format_version' must be an integer, got {version!r}")
    if version > FORMAT_VERSION:
        raise EnsembleError(f"{where}: field 'format_version' is {version}, newer than this vaefrag reads "
                            f"({FORMAT_VERSION}); upgrade vaefrag")
    if version < 1:
        raise EnsembleError(f"{where}: field 'format_version' must be >= 1, got {version}")
    members = manifest.get("members")
    if not isinstance(members, list) or not all(isinstance(m, dict) for m in members):
        raise EnsembleError(f"{where}: field 'members' must be a list of objects")
    for i, m in enumerate(members):
        for key in MEMBER_FILES:
            w = m.get(key)
            if w is not None:
                if not isinstance(w, str) or Path(w).is_absolute() or ".." in Path(w).parts:
                    raise EnsembleError(f"{where}: field 'members[{i}].{key}' must be a relative path inside the "
                                        f"ensemble, got {w!r}")
    return manifest


def _with_error(exc_type=EnsembleError):
    """Re-raise plain ValueErrors of the validators as EnsembleError (same message)."""
    class _Ctx:
        def __enter__(self):
            return self

        def __exit__(self, et, ev, tb):
            if et is not None and issubclass(et, ValueError) and not issubclass(et, exc_type):
                raise exc_type(str(ev)) from None
            return False
    return _Ctx()


# ------------------------------------------------------------------------------------------ load
def load_ensemble(path) -> Ensemble:
    """Load and validate an ensemble directory.

    Raises
    ------
    FileNotFoundError
        If the directory or its manifest / posteriors file is missing.
    EnsembleError
        Naming the file and field that is invalid (bad JSON, future ``format_version``, shapes
        that disagree, non-finite values, ...).
    """
    path = Path(path)
    if not path.exists():
        recover(path)                       # a writer killed between the renames of an overwrite
    if not path.is_dir():
        raise FileNotFoundError(f"{path}: no such ensemble directory")
    mpath = path / MANIFEST
    if not mpath.is_file():
        raise FileNotFoundError(f"{mpath}: missing manifest")
    manifest = read_manifest(mpath)
    manifest = _check_manifest(path, manifest)
    ppath = path / POSTERIORS
    check_archive(ppath)
    with _with_error():
        data = load_npz(ppath, required=("mu", "logvar"))
        mu, logvar = _check_posteriors(ppath, data["mu"], data["logvar"])
    k, n, lat = mu.shape
    members = manifest["members"]
    if members and len(members) != k:
        raise EnsembleError(f"{mpath}: field 'members' lists {len(members)} models but {ppath.name} holds {k}")
    if "latents" in manifest and manifest["latents"] != lat:
        raise EnsembleError(f"{mpath}: field 'latents' is {manifest['latents']} but {ppath.name} has {lat} latents")
    x = factors = None
    names: list[str] = []
    fpath = path / FINGERPRINT
    if fpath.is_file():
        check_archive(fpath)
        with _with_error():
            fp = load_npz(fpath, optional=("x", "factors", "factor_names"))
            if "x" in fp:
                x = check_numeric(fpath, "x", fp["x"], ndims=(2, 4)).astype(np.float32)
                if len(x) != n:
                    raise EnsembleError(f"{fpath}: field 'x' has {len(x)} items but posteriors have N={n}")
            factors, names = check_factors(fpath, fp.get("factors"), fp.get("factor_names"), n)
    return Ensemble(path=path, manifest=manifest, mu=mu, logvar=logvar, x=x, factors=factors, factor_names=names)


# ----------------------------------------------------------------------------------------- write
def _atomic_npz(path: Path, compressed: bool = True, **arrays) -> None:
    (np.savez_compressed if compressed else np.savez)(path, **arrays)


#: longest ensemble directory name (file systems allow 255 bytes; the temporaries add ~25)
MAX_NAME_BYTES = 200
#: environment variable naming a step of `write_ensemble` at which the process exits at once
#: (the reliability suite's kill test: "before-swap", "after-swap", "between-renames")
CRASH_ENV = "VAEFRAG_CRASH_AT"
_TEMP_RE = re.compile(r"^\.(?P<name>.+)\.(?P<kind>tmp|old)-(?P<pid>\d+)-[^.]+$")


def _crash_point(step: str) -> None:
    if os.environ.get(CRASH_ENV) == step:
        os._exit(97)


def _fsync_tree(root: Path) -> None:
    """fsync every file and directory under ``root`` (the new ensemble is on disk before it is swapped in)."""
    for dirpath, _dirs, files in os.walk(root):
        for name in files:
            fd = os.open(os.path.join(dirpath, name), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(Path(dirpath))


def _fsync_dir(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def _rename_exchange(a: Path, b: Path) -> bool:
    """Atomically swap directories ``a`` and ``b`` (Linux renameat2 RENAME_EXCHANGE). False when the
    system or file system cannot (then `write_ensemble` renames twice and `recover` repairs a crash)."""
    import ctypes
    import errno

    try:
        fn = ctypes.CDLL(None, use_errno=True).renameat2
    except (OSError, AttributeError):
        return False
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    at_fdcwd, rename_exchange = -100, 2
    if fn(at_fdcwd, os.fsencode(a), at_fdcwd, os.fsencode(b), rename_exchange) == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.EOPNOTSUPP, errno.ENOTSUP):
        return False
    raise OSError(err, os.strerror(err), str(b))


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def recover(path) -> None:
    """Repair what a writer of ensemble ``path`` killed mid-write left in its parent directory.

    Temporary siblings ``.NAME.tmp-PID-*`` / ``.NAME.old-PID-*`` of writers that are no longer
    running are removed; if ``path`` itself is missing because a writer died between the two
    renames of an overwrite (file systems without an atomic exchange), the old ensemble it moved
    aside is put back first. Writers that are still running are left alone.
    """
    path = Path(path)
    parent = path.parent
    if not parent.is_dir():
        return
    for entry in sorted(parent.iterdir()):
        m = _TEMP_RE.match(entry.name)
        if not m or m["name"] != path.name or _alive(int(m["pid"])) or not entry.is_dir():
            continue
        stranded = entry / "ensemble"
        if m["kind"] == "old" and not path.exists() and (stranded / MANIFEST).is_file():
            os.replace(stranded, path)
            _fsync_dir(parent)
        shutil.rmtree(entry, ignore_errors=True)


def write_ensemble(path, manifest: dict, mu, logvar, *, x=None, factors=None, factor_names=None,
                   weights=None, overwrite: bool = False, extra_files=None,
                   checkpoints: dict | None = None) -> Path:
    """Write an ensemble directory atomically (temporary sibling directory renamed into place).

    Parameters
    ----------
    path : str or Path
        Target directory; its parent is created if needed.
    manifest : dict
        Manifest fields; ``format_version``, ``name`` (default: the directory name), ``latents``
        and ``members`` (default: one ``{"id": k}`` per model) are filled in.
    mu, logvar : array [K, N, L]
    x : array [N, ...] or None
        Fingerprint inputs.
    factors : int array [N, F] or None
    factor_names : list of F str or None
    weights : list of K (dict name -> tensor/array, or path of a .safetensors file) or None
        Member weights, saved as ``members/member_KKK.safetensors`` (dtype kept).
    overwrite : bool
        Replace an existing directory; otherwise an existing target raises FileExistsError.
    extra_files : dict relative path -> source file, or None
        Files copied into the ensemble (e.g. ``members/decoder_000.onnx``), written with the rest.
    checkpoints : dict or None
        ``steps`` int [C] and ``mu``/``logvar`` [C, K, N, L]: posteriors during training, saved as
        ``checkpoints/posteriors.npz``.

    Returns
    -------
    Path of the written ensemble.
    """
    path = Path(path)
    where = f"{path}"
    if len(path.name.encode()) > MAX_NAME_BYTES:
        raise EnsembleError(f"{path.name[:40]}...: ensemble name longer than {MAX_NAME_BYTES} bytes")
    with _with_error():
        mu, logvar = _check_posteriors(where, mu, logvar)
        k, n, lat = mu.shape
        if x is not None:
            x = check_numeric(where, "x", np.asarray(x), ndims=(2, 4)).astype(np.float32)
            if len(x) != n:
                raise EnsembleError(f"{where}: 'x' has {len(x)} items, expected N={n}")
        factors, names = check_factors(where, factors, factor_names, n)
        if checkpoints is not None:
            checkpoints = _check_checkpoints(where, checkpoints, (k, n, lat))
    if weights is not None and len(weights) != k:
        raise EnsembleError(f"{where}: 'weights' has {len(weights)} entries, expected K={k}")
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists (pass overwrite=True / --overwrite to replace it)")
    manifest = json.loads(json.dumps(manifest))  # deep copy; fails early on non-JSON values
    manifest["format_version"] = FORMAT_VERSION
    manifest.setdefault("name", path.name)
    manifest["latents"] = lat
    members = manifest.get("members") or [{"id": i} for i in range(k)]
    if len(members) != k:
        raise EnsembleError(f"{where}: manifest field 'members' lists {len(members)} models, expected K={k}")
    manifest["members"] = members
    manifest["n_points"] = n
    path.parent.mkdir(parents=True, exist_ok=True)
    recover(path)
    if path.exists() and not overwrite:
        raise FileExistsError(f"{path}: already exists (pass overwrite=True / --overwrite to replace it)")
    if path.exists() and not (path.is_dir() and not path.is_symlink()):
        raise EnsembleError(f"{path}: exists and is not an ensemble directory; not replaced")
    tmp = Path(tempfile.mkdtemp(prefix=f".{path.name}.tmp-{os.getpid()}-", dir=path.parent))
    try:
        tmp.chmod(0o755)
        for rel, src in (extra_files or {}).items():
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copyfile(src, tmp / rel)
        if weights is not None:
            from safetensors.numpy import save_file

            (tmp / MEMBERS_DIR).mkdir(exist_ok=True)
            for i, w in enumerate(weights):
                rel = f"{MEMBERS_DIR}/member_{i:03d}.safetensors"
                if isinstance(w, (str, Path)):
                    shutil.copyfile(w, tmp / rel)
                else:
                    arrays = {name: np.ascontiguousarray(t.detach().cpu().numpy() if hasattr(t, "detach") else np.asarray(t))
                              for name, t in w.items()}
                    save_file(arrays, str(tmp / rel))
                members[i]["weights"] = rel
        _atomic_npz(tmp / POSTERIORS, compressed=False, mu=mu, logvar=logvar)
        if x is not None or factors is not None:
            arrays = {}
            if x is not None:
                arrays["x"] = x
            if factors is not None:
                arrays["factors"] = factors
                arrays["factor_names"] = np.asarray(names, dtype=str)
            _atomic_npz(tmp / FINGERPRINT, **arrays)
        if checkpoints is not None:
            (tmp / CHECKPOINTS).parent.mkdir()
            _atomic_npz(tmp / CHECKPOINTS, **checkpoints)
        (tmp / MANIFEST).write_text(json.dumps(manifest, indent=1) + "\n")
        _fsync_tree(tmp)
        _crash_point("before-swap")
        if not path.exists():
            os.replace(tmp, path)
        elif _rename_exchange(tmp, path):
            _crash_point("after-swap")         # tmp now holds the old ensemble
            shutil.rmtree(tmp, ignore_errors=True)
        else:
            old = Path(tempfile.mkdtemp(prefix=f".{path.name}.old-{os.getpid()}-", dir=path.parent))
            os.replace(path, old / "ensemble")
            _crash_point("between-renames")    # `recover` puts the old one back
            os.replace(tmp, path)
            _crash_point("after-swap")
            shutil.rmtree(old, ignore_errors=True)
        _fsync_dir(path.parent)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return path


def _check_checkpoints(where, checkpoints: dict, kns: tuple[int, int, int]) -> dict:
    steps = np.asarray(checkpoints.get("steps"))
    mu = check_numeric(where, "checkpoints.mu", np.asarray(checkpoints.get("mu")), ndims=(4,))
    logvar = check_numeric(where, "checkpoints.logvar", np.asarray(checkpoints.get("logvar")), ndims=(4,))
    if mu.shape != logvar.shape or mu.shape[1:] != kns:
        raise EnsembleError(f"{where}: checkpoint 'mu' {mu.shape} / 'logvar' {logvar.shape} must both be "
                            f"[C, K, N, L] with [K, N, L] = {list(kns)}")
    if steps.shape != (mu.shape[0],) or not np.issubdtype(steps.dtype, np.integer) or \
            (len(steps) > 1 and not np.all(np.diff(steps) > 0)) or (len(steps) and steps[0] < 1):
        raise EnsembleError(f"{where}: checkpoint 'steps' must be {mu.shape[0]} increasing ints >= 1, got {steps.tolist()}")
    return {"steps": steps.astype(np.int64), "mu": mu.astype(np.float32), "logvar": logvar.astype(np.float32)}


def load_checkpoints(ensemble) -> dict | None:
    """Posteriors during training (``checkpoints/posteriors.npz``) of an ensemble, or None if absent.

    Returns
    -------
    dict with ``steps`` int64 [C] and ``mu``, ``logvar`` float32 [C, K, N, L] (validated against the
    ensemble's [K, N, L]).
    """
    ens = ensemble if isinstance(ensemble, Ensemble) else load_ensemble(ensemble)
    path = ens.path / CHECKPOINTS
    if not path.is_file():
        return None
    with _with_error():
        data = load_npz(path, required=("steps", "mu", "logvar"))
        return _check_checkpoints(path, data, ens.mu.shape)


def import_posteriors(npz_path, name: str, root=None, *, decoders=None, encoders=None,
                      decoder_output: str = "probabilities", x_layout: str = "auto", dataset=None,
                      overwrite: bool = False) -> Path:
    """Make an ensemble from posteriors (and optionally ONNX decoders / encoders) computed elsewhere.

    The npz holds ``mu`` and ``logvar`` [K, N, L] (or [N, L] for one model), and optionally ``x``
    [N, ...] (fingerprint inputs; channels-last and uint8 images are converted), ``factors`` int
    [N, F], ``factor_names`` [F] str, ``latent_mask`` bool [K, L] (models with fewer latents) and
    any per-model metadata array [K] (``beta``, ``seed``, ``final_loss``, ``family``, ...).
    ``decoders`` / ``encoders``: a directory of K ``.onnx`` files (model order = file names sorted)
    or a list of K files. See :func:`vaefrag.importer.import_posteriors` and docs/import.md.

    Returns the path ``ensembles_root(root) / safe_name(name)``.

    Raises
    ------
    EnsembleError
        Naming the file and field when the npz or an ONNX file is unreadable or does not fit.
    """
    from vaefrag import importer

    return importer.import_posteriors(npz_path, name, root, decoders=decoders, encoders=encoders,
                                      decoder_output=decoder_output, x_layout=x_layout, dataset=dataset,
                                      overwrite=overwrite)


# -------------------------------------------------------------------------- names and the root
def ensembles_root(root=None) -> Path:
    """The one directory of ensembles every command uses.

    ``root`` when given (``--ensembles DIR``), else ``$VAEFRAG_ENSEMBLES``, else ``./data/ensembles``
    when it exists (a checkout), else the ``data/ensembles`` of the checkout vaefrag runs from
    (an editable install), else ``$XDG_DATA_HOME/vaefrag/ensembles`` (``~/.local/share/...``).
    """
    if root not in (None, ""):
        return Path(root).expanduser()
    env = os.environ.get(ENSEMBLES_ENV)
    if env:
        return Path(env).expanduser()
    local = Path("data") / "ensembles"
    if local.is_dir():
        return local
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / "pyproject.toml").is_file() and (checkout / "data" / "ensembles").is_dir():
        return checkout / "data" / "ensembles"
    return Path(os.environ.get("XDG_DATA_HOME") or "~/.local/share").expanduser() / "vaefrag" / "ensembles"


def resolve_ensemble(name_or_path, root=None) -> Path:
    """An ensemble directory from a path, or from a name under `ensembles_root` (``root``).

    Raises FileNotFoundError naming the argument, the root and the ensembles found there.
    """
    arg = str(name_or_path)
    path = Path(arg).expanduser()
    if (path / MANIFEST).is_file():
        return path
    base = ensembles_root(root)
    if not path.is_absolute() and (base / arg / MANIFEST).is_file():
        return base / arg
    if path.is_dir():
        raise FileNotFoundError(f"ENSEMBLE: {arg} is a directory without {MANIFEST}, not an ensemble")
    known = [p.name for p in list_ensembles(base)]
    raise FileNotFoundError(f"ENSEMBLE: {arg} is neither an ensemble directory nor the name of one under {base}"
                            + (f" (there: {', '.join(known[:12])}{' ...' if len(known) > 12 else ''})" if known
                               else " (none there; set --ensembles DIR or $VAEFRAG_ENSEMBLES)"))


def output_path(name_or_path, root=None) -> Path:
    """Where to write an ensemble: a bare name (no ``/``, not starting with ``.``) goes under
    `ensembles_root` (``root``); anything else is a path."""
    arg = str(name_or_path)
    if os.sep in arg or "/" in arg or arg.startswith((".", "~")):
        return Path(arg).expanduser()
    return ensembles_root(root) / safe_name(arg)
