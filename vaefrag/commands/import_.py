"""`vaefrag import FILE.npz --name NAME [--decoders DIR] [--encoders DIR]`: make an ensemble from
posteriors (and ONNX decoders / encoders) computed elsewhere."""
from __future__ import annotations


def register(subparsers) -> None:
    from vaefrag.datasets import DATASETS

    p = subparsers.add_parser(
        "import", help="make an ensemble from posteriors in an npz file",
        description="Make an ensemble from posteriors computed elsewhere. FILE.npz holds mu and logvar "
                    "[K models, N points, L latents] (or [N, L] for one model), optionally x (the "
                    "fingerprint inputs [N, ...]; channels-last and uint8 images are converted), factors "
                    "(int [N, F]), factor_names ([F] strings), latent_mask (bool [K, L]) and per-model "
                    "metadata arrays [K] (beta, seed, final_loss, family, ...). --decoders DIR (one .onnx "
                    "per model, in model order when sorted by file name) makes traversals work; "
                    "--encoders DIR makes `fingerprint` and `spaces --sample-size` work. See docs/import.md.")
    p.add_argument("file", help="npz file")
    p.add_argument("--name", required=True, help="ensemble name (directory under --ensembles)")
    p.add_argument("--ensembles", "--root", dest="ensembles", metavar="DIR",
                   help="directory of ensembles (default $VAEFRAG_ENSEMBLES, else ./data/ensembles)")
    p.add_argument("--decoders", metavar="DIR", help="directory of ONNX decoders, latents [B, L] -> inputs [B, ...]")
    p.add_argument("--encoders", metavar="DIR", help="directory of ONNX encoders, inputs -> (mean, logvar) [B, L]")
    p.add_argument("--decoder-output", choices=("probabilities", "logits"), default="probabilities",
                   help="what the decoders output: values as they are, or logits (a sigmoid is applied)")
    p.add_argument("--x-layout", choices=("auto", "nchw", "nhwc"), default="auto",
                   help="layout of image inputs x (default auto: channels-last when axis 3 has 1, 3 or 4 entries)")
    p.add_argument("--dataset", choices=sorted(DATASETS),
                   help="dataset to draw new fingerprint samples from (for `fingerprint`, `spaces --sample-size`)")
    p.add_argument("--data-file", help="file of --dataset (npz, dsprites npz, shapes3d h5)")
    p.add_argument("--data-dir", help="directory of --dataset (mnist, fashion-mnist idx files; images)")
    p.add_argument("--overwrite", action="store_true", help="replace an existing ensemble of that name")
    p.set_defaults(func=run)


def run(args) -> int:
    from vaefrag.cli import CLIError
    from vaefrag.datasets import dataset_params
    from vaefrag.members import member_metadata
    from vaefrag.store import check_archive, import_posteriors, load_ensemble

    dataset = None
    if args.dataset:
        dataset = (args.dataset, dataset_params(args.dataset, args.data_file, args.data_dir))
    elif args.data_file or args.data_dir:
        raise CLIError("--data-file / --data-dir need --dataset NAME")
    check_archive(args.file)            # sizes from the zip directory and .npy headers, before reading
    try:
        path = import_posteriors(args.file, args.name, args.ensembles, decoders=args.decoders, encoders=args.encoders,
                                 decoder_output=args.decoder_output, x_layout=args.x_layout, dataset=dataset,
                                 overwrite=args.overwrite)
    except FileExistsError as exc:
        raise CLIError(str(exc)) from None
    ens = load_ensemble(path)
    kinds = [w for w, ok in (("decoders", ens.has_weights), ("encoders", ens.has_encoders)) if ok]
    print(f"wrote {path}: {ens.n_models} models x {ens.n_latents} latents, {ens.n_points} points"
          + (f", factors {ens.factor_names}" if ens.factor_names else "")
          + (f", ONNX {' and '.join(kinds)}" if kinds else ""))
    for note in (ens.manifest.get("source") or {}).get("notes", []):
        print(f"note: {note}")
    meta = member_metadata(ens)
    if meta:
        print("per-model metadata: " + ", ".join(meta))
    return 0
