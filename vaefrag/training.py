"""Train an ensemble of VAEs and write it through the store.

Members are trained in groups of ``group_size`` as one member-batched network
(:class:`vaefrag.models.EnsembleVAE`). Member k's initial weights, its minibatch stream and its
reparameterisation noise come from its own seed only, so a member trains the same whether it is
batched with others or alone. Finished members are kept in a hidden ``.NAME.partial`` sibling of the
output; a rerun with the same recipe resumes from them. The ensemble directory itself appears only
once complete (``store.write_ensemble`` renames a temporary directory into place).
"""
from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import numpy as np
import torch

from vaefrag import members as member_io
from vaefrag import store
from vaefrag.datasets import make_dataset
from vaefrag.models import EnsembleVAE, make_objective, make_spec

log = logging.getLogger(__name__)

#: keyword arguments of :func:`train_ensemble` that make up the recipe (recorded in the manifest)
RECIPE_KEYS = ("dataset", "dataset_params", "family", "hyperparameters", "models", "latents", "steps",
               "batch_size", "lr", "seed", "width", "hidden", "decoder", "obs_std", "fingerprint_size",
               "fingerprint_seed", "weights_dtype")
DTYPES = {"float16": torch.float16, "float32": torch.float32}


def member_seeds(seed: int, models: int) -> list[int]:
    """Per-member seeds: ``seed * 10007 + k`` for k < models."""
    return [int(seed) * 10007 + k for k in range(models)]


def fingerprint_sample(dataset, size: int, seed: int):
    """Draw the fingerprint sample: ``size`` distinct items (all if fewer), seeded.

    Returns indices [N], x [N, *shape] float32 and factors [N, F] or None.
    """
    n = min(int(size), len(dataset))
    if n < 2:
        raise ValueError(f"fingerprint size must be >= 2, got {size}")
    idx = np.sort(np.random.default_rng(seed).choice(len(dataset), size=n, replace=False))
    x, factors = dataset.get(idx)
    return idx, x, factors


@torch.no_grad()
def encode_all(net: EnsembleVAE, x: np.ndarray, device="cpu", batch: int = 256):
    """Posteriors of every member: x [N, *shape] -> mu, logvar float32 [K, N, L]."""
    net.eval()
    mus, lvs = [], []
    for lo in range(0, len(x), batch):
        mu, lv = net.encode(torch.from_numpy(np.ascontiguousarray(x[lo:lo + batch])).to(device))
        mus.append(mu.cpu())
        lvs.append(lv.cpu())
    return (torch.cat(mus).transpose(0, 1).contiguous().numpy().astype(np.float32),
            torch.cat(lvs).transpose(0, 1).contiguous().numpy().astype(np.float32))


@torch.no_grad()
def encode_member(member, x: np.ndarray, device="cpu", batch: int = 256):
    """Posteriors of one member (`vaefrag.members.load_member`: our network or an ONNX one):
    x [N, *shape] -> mu, logvar float32 [N, L]."""
    mus, lvs = [], []
    for lo in range(0, len(x), batch):
        mu, lv = member.encode(torch.from_numpy(np.ascontiguousarray(x[lo:lo + batch])).to(device))
        mus.append(torch.as_tensor(mu).float().cpu())
        lvs.append(torch.as_tensor(lv).float().cpu())
    return torch.cat(mus).numpy(), torch.cat(lvs).numpy()


def dataset_of(ens: "store.Ensemble"):
    """The dataset an ensemble's manifest names (to draw new samples from).

    Raises EnsembleError when it names none (posteriors imported without ``--dataset``).
    """
    dsinfo = ens.manifest.get("dataset") or {}
    if dsinfo.get("name") in (None, "imported"):
        raise store.EnsembleError(f"{ens.path / store.MANIFEST}: field 'dataset.name' names no dataset to draw new "
                                  "points from (import with --dataset NAME --data-file/--data-dir)")
    return make_dataset(dsinfo["name"], **(dsinfo.get("params") or {}))
def checkpoint_steps(steps: int, count: int) -> list[int]:
    """The ``count`` training steps at which checkpoints are taken: ``round(steps * i / count)``,
    i = 1..count (evenly spaced, the last one is the end of training).

    Raises ValueError unless 0 <= count <= steps.
    """
    if not isinstance(count, int) or isinstance(count, bool) or count < 0:
        raise ValueError(f"checkpoints must be an int >= 0, got {count!r}")
    if count > steps:
        raise ValueError(f"checkpoints ({count}) must not exceed steps ({steps}): one checkpoint per step at most")
    return [int(round(steps * i / count)) for i in range(1, count + 1)]


def train_group(net: EnsembleVAE, objective, dataset, seeds, *, steps: int, batch_size: int, lr: float,
                device="cpu", progress=None, checkpoint_at=(), on_checkpoint=None) -> list[float]:
    """Train the K members of ``net`` in place; member k draws data and noise from ``seeds[k]``.

    ``on_checkpoint(step, net)`` is called after each step listed in ``checkpoint_at`` (steps done,
    1-based); the network is back in training mode afterwards and the training stream is unchanged.

    Returns the final loss of each member (mean over the last 10% of steps, nats per item).
    """
    checkpoint_at = set(int(s) for s in checkpoint_at)
    K, L = net.n_members, net.latents
    net.to(device).train()
    rngs = [np.random.default_rng(s) for s in seeds]
    gens = [torch.Generator().manual_seed(int(s) + 1) for s in seeds]
    opt = torch.optim.Adam(net.parameters(), lr=lr)
    tail = max(1, steps // 10)
    acc = torch.zeros(K, dtype=torch.float64)
    n = len(dataset)
    for step in range(steps):
        idx = np.concatenate([r.integers(0, n, batch_size) for r in rngs])
        xb, _ = dataset.get(idx)
        x = torch.from_numpy(xb).to(device).reshape(K, batch_size, *xb.shape[1:]).transpose(0, 1)
        eps = torch.stack([torch.randn(batch_size, L, generator=g) for g in gens], 1).to(device)
        mu, logvar = net.encode(x)
        z = mu + (0.5 * logvar).exp() * eps
        out = net.decode_logits(z)
        losses = objective.loss(x, out, mu, logvar, z, likelihood=net.likelihood, obs_std=net.spec["obs_std"],
                                step=step, total_steps=steps, dataset_size=n)
        if not torch.isfinite(losses).all():
            raise FloatingPointError(f"training diverged at step {step} (loss {losses.tolist()}); lower --lr")
        opt.zero_grad(set_to_none=True)
        losses.sum().backward()
        opt.step()
        if step >= steps - tail:
            acc += losses.detach().cpu().double()
        if on_checkpoint is not None and step + 1 in checkpoint_at:
            on_checkpoint(step + 1, net)
            net.train()
        if progress is not None:
            progress(step + 1, steps, f"loss {losses.detach().mean().item():.2f}")
    return (acc / tail).tolist()


def _round_weights(net: EnsembleVAE, dtype: torch.dtype) -> None:
    with torch.no_grad():
        for p in net.parameters():
            p.copy_(p.to(dtype).float())


def _write_json(path: Path, obj) -> None:
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(json.dumps(obj, indent=1) + "\n")
    os.replace(tmp, path)


def recipe_from_manifest(manifest: dict) -> dict:
    """The :func:`train_ensemble` keyword arguments recorded in a manifest (field ``recipe``)."""
    recipe = manifest.get("recipe")
    if isinstance(recipe, dict) and "decoder" not in recipe:
        recipe = {**recipe, "decoder": "mirror"}  # recorded before the broadcast decoder existed
    if not isinstance(recipe, dict) or set(recipe) != set(RECIPE_KEYS):
        raise ValueError(f"manifest field 'recipe' must hold exactly {sorted(RECIPE_KEYS)}")
    return dict(recipe)


def train_ensemble(out, *, dataset: str, dataset_params: dict | None = None, family: str = "beta-vae",
                   hyperparameters: dict | None = None, models: int = 10, latents: int = 10,
                   steps: int = 1000, batch_size: int = 64, lr: float = 1e-3, seed: int = 0,
                   width: int = 32, hidden: int = 256, decoder: str = "mirror", obs_std: float = 0.1,
                   fingerprint_size: int = 1000,
                   fingerprint_seed: int = 0, weights_dtype: str = "float32", group_size: int = 10,
                   device="cpu", name: str | None = None, overwrite: bool = False,
                   progress=None, member_progress=None, shard: tuple[int, int] | None = None,
                   checkpoints: int = 0) -> Path | None:
    """Train ``models`` VAEs and write them as an ensemble at ``out``.

    Parameters
    ----------
    out : str or Path
        Ensemble directory to create.
    dataset, dataset_params : registry name and its parameters (see :mod:`vaefrag.datasets`).
    family, hyperparameters : objective (see :data:`vaefrag.models.FAMILIES`) and its hyperparameters.
    models, latents, steps, batch_size, lr, seed : ensemble size, latent size, Adam steps per member,
        minibatch per member, learning rate, base seed (member seeds from :func:`member_seeds`).
    width, hidden, decoder, obs_std : network size, decoder kind and Gaussian likelihood std (see
        ``models.make_spec``).
    fingerprint_size, fingerprint_seed : the fingerprint sample.
    weights_dtype : "float16" or "float32"; stored posteriors are computed from the stored weights.
    group_size : members trained together as one batched network.
    device : torch device.
    progress : callable(done, total, message) over members; member_progress over steps of a group.
    shard : (i, n) or None
        Train only the groups ``g`` with ``g % n == i`` (groups of ``group_size`` consecutive
        members) and return None without writing the ensemble, so that n processes can share the
        work; a final call without ``shard`` finds all members done and writes the ensemble.
    checkpoints : int
        Store every member's posteriors on the fingerprint at this many points of training
        (:func:`checkpoint_steps`; full-precision weights, before the final ``weights_dtype``
        rounding) as ``checkpoints/posteriors.npz`` (see :func:`vaefrag.store.load_checkpoints`).
        Not part of the recipe; a resumed run must ask for the same count.

    Returns
    -------
    Path of the written ensemble (None for a shard).
    """
    out = Path(out)
    recipe = {"dataset": dataset, "dataset_params": dict(dataset_params or {}), "family": family,
              "hyperparameters": dict(hyperparameters or {}), "models": models, "latents": latents,
              "steps": steps, "batch_size": batch_size, "lr": lr, "seed": seed, "width": width,
              "hidden": hidden, "decoder": decoder, "obs_std": obs_std, "fingerprint_size": fingerprint_size,
              "fingerprint_seed": fingerprint_seed, "weights_dtype": weights_dtype}
    for key in ("models", "steps", "batch_size", "group_size"):
        value = group_size if key == "group_size" else recipe[key]
        if not isinstance(value, int) or value < 1:
            raise ValueError(f"{key} must be an int >= 1, got {value!r}")
    if not (lr > 0 and np.isfinite(lr)):
        raise ValueError(f"lr must be finite and > 0, got {lr!r}")
    if weights_dtype not in DTYPES:
        raise ValueError(f"weights_dtype must be one of {sorted(DTYPES)}, got {weights_dtype!r}")
    ckpt_steps = checkpoint_steps(steps, checkpoints)
    if out.exists() and not overwrite:
        raise FileExistsError(f"{out}: already exists (use --overwrite to replace it)")
    if shard is not None and not (isinstance(shard, tuple) and len(shard) == 2 and all(type(v) is int for v in shard)
                                  and 0 <= shard[0] < shard[1]):
        raise ValueError(f"shard must be (i, n) with 0 <= i < n, got {shard!r}")
    ds = make_dataset(dataset, **recipe["dataset_params"])
    objective = make_objective(family, **recipe["hyperparameters"])
    recipe["hyperparameters"] = objective.hyperparameters()
    recipe["dataset_params"] = ds.params()
    spec = make_spec(ds.shape, latents, width=width, hidden=hidden, likelihood=ds.likelihood, obs_std=obs_std,
                     decoder=decoder)
    seeds = member_seeds(seed, models)
    fp_idx, fp_x, fp_factors = fingerprint_sample(ds, fingerprint_size, fingerprint_seed)

    partial = out.parent / f".{out.name}.partial"
    partial.mkdir(parents=True, exist_ok=True)
    rpath = partial / "recipe.json"
    try:
        previous = json.loads(rpath.read_text()) if rpath.is_file() else None
    except (ValueError, OSError):
        previous = "unreadable"
    if previous != recipe:
        # finished members of another recipe are work a re-run must not lose silently (--overwrite
        # discards them); a run that failed before its first member left nothing to keep
        stale = sorted(partial.glob("member_*.json"))
        if stale and not overwrite:
            raise ValueError(f"{partial}: holds {len(stale)} finished members of a different recipe; run with the "
                             "same recipe to resume, or pass --overwrite to discard them")
        if stale:
            log.warning("%s: discarding %d finished member(s) of a different recipe", partial, len(stale))
        for f in partial.iterdir():
            (shutil.rmtree if f.is_dir() else os.remove)(f)
        _write_json(rpath, recipe)
    cpath = partial / "checkpoints.json"
    if cpath.is_file():
        if json.loads(cpath.read_text()) != {"steps": ckpt_steps}:
            raise ValueError(f"{partial}: holds members trained with other checkpoints "
                             f"({cpath.read_text().strip()}); ask for the same --checkpoints or remove it")
    elif any(partial.glob("member_*.json")) and ckpt_steps:
        raise ValueError(f"{partial}: holds members trained without checkpoints; remove it to start afresh")
    else:
        _write_json(cpath, {"steps": ckpt_steps})

    def done_member(k):
        return (partial / f"member_{k:03d}.json").is_file()

    if shard is not None:
        i, n_shards = shard
        todo = [k for k in range(models) if (k // group_size) % n_shards == i and not done_member(k)]
    else:
        todo = [k for k in range(models) if not done_member(k)]
    t_start = time.time()
    if progress is not None:
        progress(models - len(todo), models, "resumed" if len(todo) < models else "")
    for lo in range(0, len(todo), group_size):
        group = todo[lo:lo + group_size]
        t0 = time.time()
        net = EnsembleVAE(spec, len(group))
        net.init_members([seeds[k] for k in group])
        taken = []

        def take_checkpoint(step, trained):
            taken.append(encode_all(trained, fp_x, device=device))

        losses = train_group(net, objective, ds, [seeds[k] for k in group], steps=steps, batch_size=batch_size,
                             lr=lr, device=device, progress=member_progress, checkpoint_at=ckpt_steps,
                             on_checkpoint=take_checkpoint)
        net.cpu()
        _round_weights(net, DTYPES[weights_dtype])
        mu, logvar = encode_all(net, fp_x)
        elapsed = time.time() - t0
        from safetensors.torch import save_file

        for j, k in enumerate(group):
            state = {n: t.to(DTYPES[weights_dtype]).contiguous() for n, t in net.member_state(j).items()}
            tmp = partial / f"member_{k:03d}.safetensors.tmp"
            save_file(state, str(tmp))
            os.replace(tmp, partial / f"member_{k:03d}.safetensors")
            tmp = partial / f"member_{k:03d}.npz.tmp.npz"
            np.savez(tmp, mu=mu[j], logvar=logvar[j])
            os.replace(tmp, partial / f"member_{k:03d}.npz")
            if ckpt_steps:
                tmp = partial / f"member_{k:03d}.ckpt.tmp.npz"
                np.savez(tmp, mu=np.stack([c[0][j] for c in taken]), logvar=np.stack([c[1][j] for c in taken]))
                os.replace(tmp, partial / f"member_{k:03d}.ckpt.npz")
            _write_json(partial / f"member_{k:03d}.json",
                        {"id": k, "seed": seeds[k], "final_loss": float(losses[j]),
                         "train_time_s": round(elapsed / len(group), 3), "group_size": len(group)})
        if progress is not None:
            progress(models - len(todo) + lo + len(group), models, f"group done in {elapsed:.0f}s")
    if shard is not None:
        return None

    members, mus, lvs, weights, ck_mus, ck_lvs = [], [], [], [], [], []
    for k in range(models):
        info = json.loads((partial / f"member_{k:03d}.json").read_text())
        with np.load(partial / f"member_{k:03d}.npz", allow_pickle=False) as d:
            mus.append(d["mu"])
            lvs.append(d["logvar"])
        if ckpt_steps:
            with np.load(partial / f"member_{k:03d}.ckpt.npz", allow_pickle=False) as d:
                ck_mus.append(d["mu"])
                ck_lvs.append(d["logvar"])
        members.append(info)
        weights.append(partial / f"member_{k:03d}.safetensors")
    manifest = {
        "name": name or out.name,
        "dataset": ds.describe(),
        "model": {"family": family, "hyperparameters": recipe["hyperparameters"], "spec": spec},
        "training": {"steps": steps, "batch_size": batch_size, "lr": lr, "optimizer": "adam", "seed": seed,
                     "group_size": group_size, "weights_dtype": weights_dtype, "device": str(device),
                     "wall_time_s_this_run": round(time.time() - t_start, 1),
                     "train_time_s_total": round(sum(m["train_time_s"] for m in members), 1),
                     "torch": torch.__version__},
        "fingerprint": {"size": int(len(fp_idx)), "seed": fingerprint_seed},
        "recipe": recipe,
        "members": members,
    }
    ckpt = None
    if ckpt_steps:  # [models, C, N, L] -> [C, models, N, L]
        ckpt = {"steps": np.asarray(ckpt_steps, dtype=np.int64), "mu": np.stack(ck_mus).transpose(1, 0, 2, 3),
                "logvar": np.stack(ck_lvs).transpose(1, 0, 2, 3)}
    path = store.write_ensemble(out, manifest, np.stack(mus), np.stack(lvs), x=fp_x, factors=fp_factors,
                                factor_names=ds.factor_names if fp_factors is not None else None,
                                weights=weights, overwrite=overwrite, checkpoints=ckpt)
    shutil.rmtree(partial, ignore_errors=True)
    return path


def refingerprint(ensemble, size: int, seed: int = 0, *, out=None, device="cpu", progress=None) -> Path:
    """Re-encode a new fingerprint sample (``size`` points, ``seed``) with every member (our networks'
    weights or the members' ONNX encoders).

    The dataset is rebuilt from the manifest; the result is written to ``out`` (default: in place,
    atomically replacing the ensemble).
    """
    ens = ensemble if isinstance(ensemble, store.Ensemble) else store.load_ensemble(ensemble)
    if not ens.has_encoders:
        raise store.EnsembleError(f"{ens.path}: has no member weights or ONNX encoders; cannot re-encode "
                                  "(imported without --encoders?)")
    ds = dataset_of(ens)
    _, x, factors = fingerprint_sample(ds, size, seed)
    mus, lvs = [], []
    for k in range(ens.n_models):
        member = member_io.load_member(ens, k, device=device)
        mu, lv = encode_member(member, x, device=device)
        mus.append(mu)
        lvs.append(lv)
        if progress is not None:
            progress(k + 1, ens.n_models, "")
    manifest = json.loads(json.dumps(ens.manifest))
    manifest["fingerprint"] = {"size": int(len(x)), "seed": int(seed)}
    if isinstance(manifest.get("recipe"), dict):
        manifest["recipe"].update(fingerprint_size=int(size), fingerprint_seed=int(seed))
    members = manifest["members"]
    # our weights go through write_ensemble's `weights`; anything else (ONNX files, a mixed ensemble)
    # is carried over file by file under the same relative paths
    weights = [ens.path / m["weights"] for m in members] if all(m.get("weights") for m in members) else None
    carried = ("decoder", "encoder") if weights is not None else store.MEMBER_FILES
    extra = {m[f]: ens.path / m[f] for m in members for f in carried if m.get(f)}
    return store.write_ensemble(out or ens.path, manifest, np.stack(mus), np.stack(lvs), x=x, factors=factors,
                                factor_names=ds.factor_names if factors is not None else None,
                                weights=weights, overwrite=True if out is None else False, extra_files=extra or None)
