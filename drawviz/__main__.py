"""Command line: ``python -m drawviz {train,evaluate,export,card,report} ...``."""

from __future__ import annotations

import argparse
import json
import os
import sys
from pathlib import Path
from typing import Optional


def _leg_budget(minutes: float, trained: float, cooldown) -> str:
    """What --minutes leaves this leg: it counts the training of all legs, which a resumed model has some of."""
    left = minutes - trained
    if left <= 0:
        return (
            f"  budget: nothing to train: the model has trained {trained:.1f} minutes and --minutes {minutes:g} "
            f"counts all its legs; give --minutes {trained + 60:.0f} for 60 more"
        )
    line = f"  budget: {left:.1f} more minutes of training (--minutes {minutes:g} counts all legs; {trained:.1f} done)"
    if cooldown:
        line += f", the last {min(cooldown, left):g} in a cooldown"
        if cooldown > left:
            line += f" that began {cooldown - left:.1f} minutes before this leg (the rate starts below its peak)"
    return line


def _train(args) -> int:
    from . import distributed

    try:
        ranks = distributed.init_from_env(args.device)  # under torchrun: one process of several
        code = _train_here(args, ranks)
        # the others wait for rank 0's evaluation: gloo aborts a rank that leaves while a peer is still connected
        ranks.barrier()
    finally:
        distributed.shutdown()
    if ranks.world > 1:
        # all is written and the group is gone; the interpreter's teardown can still meet one of gloo's threads and
        # abort the process (SIGABRT, "terminate called without an active exception"), so one of several leaves here
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(code)
    return code


def _dataset_of(checkpoint, init_from) -> str:
    """The dataset ``train`` uses when none is named: the checkpoint's it resumes, else that of the model it starts
    from, else MNIST (the paper's)."""
    from .checkpoints import load_checkpoint, settings_of

    for path in (checkpoint, init_from):
        if path and Path(path).is_file():
            named = settings_of(load_checkpoint(path)).get("dataset")
            if named:
                return named
    return "mnist"


def _train_here(args, ranks) -> int:
    from . import data
    from .evaluation import evaluate
    from .recipe import Recipe, TrainConfig
    from .start import CLI, start_from
    from .train import train

    if args.dataset is None:  # the data of the model resumed or started from, else MNIST
        args.dataset = _dataset_of(args.checkpoint, args.init_from)
    # the config flags given (None: not given), compared with a model resumed or started from (drawviz.start)
    fields = {"T": args.T, "read_n": args.read_n, "write_n": args.write_n, "likelihood": args.likelihood, "prior": args.prior}
    if args.no_attention:
        fields["attention"] = False
    if args.scale_canvas:
        fields["scale_canvas"] = True
    checkpoint = Path(args.checkpoint or f"runs/{args.dataset}.pt")
    start = start_from(
        checkpoint, args.init_from, dataset=args.dataset, preset=args.preset, fields=fields, words=CLI, say=ranks.main
    )
    config = start.config
    if start.given and ranks.main:
        from .checkpoints import check_writable

        check_writable(checkpoint)
    # --limit and --test-limit mean what they mean in the notebooks: N class-balanced images, drawn with seed 0
    # (ImageSet.balanced), the same N on every leg whatever its --seed
    train_set = data.load(args.dataset, "train", args.data_root, download=args.download).balanced(args.limit)
    test_set = data.load(args.dataset, "test", args.data_root, download=args.download).balanced(args.test_limit)
    start.fits(train_set.images, args.dataset)
    # copied only once the flags and the data have been checked: a failed start leaves no checkpoint
    copied = start.copy() if ranks.main else False
    ranks.barrier()  # the other ranks read the copy
    recipe = Recipe.from_flags(args)
    default = data.default_binarize(args.dataset, getattr(config, "likelihood", None))  # a classifier reads intensities
    binarize = {"none": None, None: default}.get(args.binarize, args.binarize)
    # flags not given keep TrainConfig's defaults; a time budget alone (--minutes) has no step limit
    given = {
        k: getattr(args, k)
        for k in (
            "minutes",
            "seed",
            "checkpoint_every",
            "eval_every",
            "eval_every_minutes",
            "limit",
            "test_limit",
            "rewarm",
            "cooldown_minutes",
        )
        if getattr(args, k) is not None
    }
    if args.steps is not None or args.minutes is not None:
        given["steps"] = args.steps
    settings = TrainConfig().replace(
        recipe=recipe,
        binarize=binarize,
        fast=args.fast,
        bf16=args.bf16,
        fresh_scenes=args.fresh_scenes,
        dataset=args.dataset,
        data_root=args.data_root,
        **given,
    )
    if args.history and ranks.main:  # found out now, not after the training
        from .files import check_writable as writable

        writable(args.history, "choose a writable --history file")
    if ranks.main:
        share = f" in {ranks.world} processes ({recipe.batch_size // ranks.world} images each)" if ranks.world > 1 else ""
        print(
            f"drawviz: training on {len(train_set)} {args.dataset} images from {train_set.source}{share}\n"
            f"  config {config}\n  recipe {recipe}\n  checkpoint {checkpoint}",
            file=sys.stderr,
        )
        if args.minutes is not None:
            print(_leg_budget(args.minutes, start.minutes, args.cooldown_minutes), file=sys.stderr)
    try:
        result = train(
            config,
            train_set,
            test_set,
            settings,
            device=args.device,
            checkpoint=checkpoint,
            progress=not args.no_progress,
            callbacks=[_log_line(args.log_every)] if args.log_every else (),
        )
    except BaseException:
        if copied:  # a start that failed leaves no copy to shadow a later --init-from
            start.undo()
        raise
    if not ranks.main:  # rank 0 reports
        return 0
    metrics = evaluate(result.model, test_set, seed=settings.seed, binarize=binarize is not None)
    metrics.update(
        dataset=args.dataset,
        step=result.step,
        checkpoint=str(checkpoint),
        seconds=float(result.history["seconds"].iloc[-1]) if len(result.history) else 0.0,
    )
    print(json.dumps(metrics, indent=2))
    if args.history:
        from .files import write_text

        write_text(args.history, result.history.to_csv(index=False))
    return 0


def _log_line(every: int):
    """A callback printing one line every ``every`` steps and at each test bound (for logs of long runs)."""

    def log(row):
        tested = row["test_nll_bound"] == row["test_nll_bound"]
        if tested or row["step"] % every == 0:
            print(
                f"step {row['step']:7,d}  epoch {row['epoch']:7.2f}  {row['seconds'] / 60:7.1f} min  "
                f"loss {row['loss']:8.2f}  lr {row['lr']:.2e}" + (_tested(row) if tested else ""),
                file=sys.stderr,
                flush=True,
            )

    return log


def _tested(row: dict) -> str:
    """A test evaluation in a log line: a classifier's error and cross-entropy, a generator's bound."""
    if row.get("test_error") is not None:
        return f"  test error {100 * row['test_error']:.2f} %  cross-entropy {row['test_nll_bound']:.3f}"
    return f"  test bound {row['test_nll_bound']:.2f}"


def _evaluate(args) -> int:
    from . import data
    from .checkpoints import load_checkpoint, model_from_checkpoint, settings_of
    from .evaluation import evaluate

    state = load_checkpoint(args.checkpoint)
    saved = settings_of(state)
    dataset = args.dataset or saved.get("dataset", "mnist")
    # the folder saved at training time is a last resort: it may be another machine's
    root = args.data_root or os.environ.get("DRAWVIZ_DATA") or saved.get("data_root")
    test_set = data.load(dataset, "test", root).balanced(args.limit)  # class-balanced, seed 0, as training's
    model = model_from_checkpoint(args.checkpoint, device=args.device, state=state)
    binarize = saved.get("binarize", data.default_binarize(dataset, getattr(model.config, "likelihood", None))) is not None
    metrics = evaluate(
        model, test_set, batch_size=args.batch_size, seed=args.seed, binarize=binarize, progress=not args.no_progress
    )
    metrics.update(
        dataset=dataset,
        source=test_set.source,
        step=state["step"],
        binarized=binarize,
        binarization="stochastic, fixed seed" if binarize else "none",
    )
    print(json.dumps(metrics, indent=2))
    return 0


def _export(args) -> int:
    from .checkpoints import export_checkpoint

    out = args.out
    if not out:
        print("drawviz: error: export needs --out PATH, the file to write", file=sys.stderr)
        return 2
    path = export_checkpoint(args.checkpoint, out, keep_every=args.keep_every, half=args.half, int8=args.int8, force=args.force)
    stored = " in float16" if args.half else " as int8 rows (the rest float16)" if args.int8 else ""
    print(f"wrote {path} ({path.stat().st_size / 1e6:.1f} MB): weights{stored}, config, thinned history; no optimiser state")
    return 0


def _sample(args) -> int:
    from .checkpoints import load_checkpoint, model_from_checkpoint, settings_of
    from .data import class_names
    from .sampling import condition, sample, write

    state = load_checkpoint(args.checkpoint)
    model = model_from_checkpoint(args.checkpoint, device=args.device, state=state)
    classes = getattr(model.config, "classes", 10)
    names = class_names(settings_of(state).get("dataset") or "mnist", classes) if args.label is not None else ()
    images = sample(model, args.n, label=args.label, caption=args.caption, names=names, seed=args.seed)
    path = write(images, args.out)
    if args.label is not None:
        k = int(condition(model, 1, label=args.label, names=names)["labels"][0])
        asked = f" of {k}" + (f" ({names[k]})" if names[k] != str(k) else "")
    else:
        asked = f" of {args.caption!r}" if args.caption else ""
    print(f"wrote {path}: {len(images)} samples{asked}, {'x'.join(map(str, images.shape[1:]))} each, seed {args.seed}")
    return 0


def _card_destinations(args) -> Optional[str]:
    """Why --out or --into cannot take the card, found before the minutes of measuring (None: both can)."""
    from .files import WriteError, check_writable

    for flag, where in (("--out", args.out), ("--into", args.into)):
        if not where:
            continue
        path = Path(where)
        if path.is_dir():
            return f"{flag} {where} is a folder; give a file (e.g. models/README.md)"
        try:
            check_writable(path, f"choose a writable {flag} file")
        except WriteError as err:
            return str(err)
        if flag == "--into" and path.exists():
            try:
                path.read_text(encoding="utf-8")
            except (UnicodeDecodeError, OSError) as err:
                return f"--into {where} is not a readable text page ({type(err).__name__}); give a Markdown file"
    return None


def _card(args) -> int:
    from .card import model_card

    refused = _card_destinations(args)
    if refused:
        print(f"drawviz: error: {refused}", file=sys.stderr)
        return 2
    text = model_card(
        args.checkpoint,
        data_root=args.data_root,
        reference=args.reference,
        images=args.images,
        command=args.command_line,
        hardware=args.hardware,
        progress=not args.no_progress,
    )
    if args.out:
        from .files import write_text

        write_text(args.out, text)
    if args.into:
        from .card import into_file

        into_file(args.into, text)
    print(text)
    return 0


class _Removed(argparse.Action):
    """A spelling of a flag that was renamed: refused, naming the new one (argparse alone would only call it
    unrecognised)."""

    def __init__(self, option_strings, dest, new: str, **kwargs):
        self.new = new
        super().__init__(option_strings, dest, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        parser.error(f"{option_string} was renamed {self.new}")


def _removed(p: argparse.ArgumentParser, old: str, new: str) -> None:
    p.add_argument(old, dest="_removed", action=_Removed, new=new, help=argparse.SUPPRESS)


def _report(args) -> int:
    from .report import run

    return run(args)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="drawviz", description="Train, evaluate and look inside DRAW.")
    sub = p.add_subparsers(dest="command", required=True)

    t = sub.add_parser("train", help="train DRAW on a dataset (resumes from --checkpoint when it exists)")
    from .data import REGISTRY

    t.add_argument(
        "--dataset",
        help="default: the dataset of the checkpoint resumed or the model started from, else mnist. "
        + "; ".join(f"{k} ({d.help})" if d.help else k for k, d in REGISTRY.items()),
    )
    from .kinds import presets

    t.add_argument(
        "--preset",
        help="the model and its sizes (Table 3): "
        + ", ".join(f"{name} ({kind.name})" for name, kind in presets().items())
        + " (default: the dataset's; the preset's kind is the model's: drawviz.kinds)",
    )
    t.add_argument(
        "--drawing-steps",
        dest="T",
        type=int,
        metavar="T",
        help="T, the number of drawing steps, or a classifier's glimpses (default: the preset's, 64 for MNIST)",
    )
    _removed(t, "--T", "--drawing-steps")
    t.add_argument("--read-n", type=int)
    t.add_argument("--write-n", type=int)
    t.add_argument("--no-attention", action="store_true", help="the paper's no-attention baseline")
    from .likelihood import LIKELIHOODS

    t.add_argument(
        "--likelihood",
        choices=list(LIKELIHOODS),
        help="D(x | c_T): "
        + "; ".join(f"{k} ({v.help})" if v.help else k for k, v in LIKELIHOODS.items())
        + ". Default: the preset's (bernoulli for greyscale, logistic for colour)",
    )
    t.add_argument(
        "--scale-canvas",
        action="store_true",
        help="not in the paper (issue 33): the decoder also draws the logistic likelihood's per-subpixel log-scale as a "
        "second canvas, through the canvas's write window (needs the logistic likelihood; --fast too)",
    )
    from .model import PRIORS

    t.add_argument(
        "--prior",
        choices=list(PRIORS),
        help="p(z_t): standard (the paper's N(0, I)) or learned (N(mu_p, sigma_p) from h_dec_(t-1), not in the paper: "
        "Bachman 2016, Gregor et al. 2016; trains without --fast). Default: the preset's (standard)",
    )
    t.add_argument("--steps", type=int, help="total optimiser steps (default 1000, or none with --minutes)")
    t.add_argument(
        "--minutes",
        type=float,
        help="time budget: stop after this many minutes of training "
        "(evaluations not counted); the recipe's schedule anneals over it",
    )
    t.add_argument(
        "--recipe",
        default="constant",
        help="optimisation recipe (drawviz.recipe.RECIPES): constant (Adam 1e-3 throughout; the best "
        "measured for budgets of about an hour on a CPU) or anneal (100-step warm-up, cosine decay "
        "to 5%% over the budget: the shipped models'); default constant",
    )
    t.add_argument("--batch-size", type=int, help="default: the recipe's (64)")
    t.add_argument("--lr", type=float, help="peak learning rate (default: the recipe's)")
    t.add_argument("--clip", type=float, help="gradient-norm clip (default: the recipe's, 10)")
    t.add_argument("--warmup", type=int, help="steps of linear learning-rate warm-up (default: the recipe's)")
    t.add_argument("--decay", choices=["constant", "cosine", "linear"], help="schedule after warm-up")
    t.add_argument("--final-lr", type=float, help="rate at the end of the horizon, as a fraction of --lr")
    t.add_argument("--device", default="auto")
    t.add_argument("--seed", type=int, help="default 0 (TrainConfig.seed)")
    t.add_argument(
        "--binarize",
        choices=["dynamic", "static", "none"],
        default=None,
        help="default: dynamic for greyscale datasets, none for colour",
    )
    t.add_argument("--data-root", help="dataset folder (default: $DRAWVIZ_DATA)")
    t.add_argument("--download", action="store_true", help="let torchvision download missing datasets")
    t.add_argument("--limit", type=int, help="use N training images only, class-balanced (drawn with seed 0)")
    t.add_argument("--test-limit", type=int, help="use N test images only, class-balanced (drawn with seed 0)")
    t.add_argument("--checkpoint", help="checkpoint path (default runs/<dataset>.pt)")
    t.add_argument(
        "--init-from",
        metavar="PATH",
        help="start a new leg from this model (e.g. models/mnist.pt) when --checkpoint does not exist "
        "yet: its weights, step, history and legs are copied; PATH itself is never written",
    )
    t.add_argument(
        "--rewarm", type=int, help="steps of learning-rate warm-up after resuming without optimiser state (default 100)"
    )
    t.add_argument(
        "--cooldown-minutes",
        type=float,
        metavar="M",
        help="the last M minutes of --minutes: the rate falls linearly to --final-lr × --lr (a "
        "constant-rate leg of a long campaign that ends annealed)",
    )
    t.add_argument(
        "--fresh-scenes",
        action="store_true",
        help="a scene set (cluttered-mnist, two-digit-mnist): the same digits in new places, with new "
        "distractors, every epoch after the first",
    )
    t.add_argument("--checkpoint-every", type=int, help="steps between checkpoints (default 500)")
    t.add_argument("--eval-every", type=int, default=None, help="steps between test bounds")
    t.add_argument("--eval-every-minutes", type=float, help="minutes of training between test bounds")
    t.add_argument("--history", help="write the per-step history to this CSV")
    t.add_argument("--fast", action="store_true", help="the fused fast path (drawviz.fast): same numbers")
    t.add_argument(
        "--bf16", action="store_true", help="the fast path with bfloat16 GEMMs (implies --fast): faster, loss within ~0.1%%"
    )
    t.add_argument("--no-progress", action="store_true")
    t.add_argument(
        "--log-every",
        type=int,
        metavar="N",
        help="print a line every N steps and at every test bound (for the log of a long run)",
    )
    t.set_defaults(func=_train)

    e = sub.add_parser("evaluate", help="test-set NLL bound (nats, bits/dim) of a checkpoint")
    e.add_argument("checkpoint")
    e.add_argument("--dataset", help="default: the dataset the checkpoint was trained on")
    e.add_argument("--data-root")
    e.add_argument(
        "--test-limit",
        dest="limit",
        type=int,
        metavar="N",
        help="N test images only, class-balanced, drawn with seed 0 (default: all)",
    )
    _removed(e, "--limit", "--test-limit")
    e.add_argument("--batch-size", type=int, default=500)
    e.add_argument("--seed", type=int, default=0)
    e.add_argument("--device", default="auto")
    e.add_argument("--no-progress", action="store_true")
    e.set_defaults(func=_evaluate)

    x = sub.add_parser("export", help="a slim checkpoint to ship: no optimiser state, thinned history")
    x.add_argument("checkpoint")
    x.add_argument("--out", required=True, metavar="PATH", help="the file to write (e.g. models/mnist.pt)")
    x.add_argument("--keep-every", type=int, default=50, help="keep every N-th history row (and all evaluations)")
    size = x.add_mutually_exclusive_group()
    size.add_argument("--half", action="store_true", help="store the weights as float16 (half the file; loads as float32)")
    size.add_argument(
        "--int8",
        action="store_true",
        help="store each large weight matrix as int8 with a scale per row, the rest float16 (a quarter of the file; "
        "for a model over 10 MB in float16; check its bound with drawviz evaluate)",
    )
    x.add_argument("--force", action="store_true", help="replace --out even when it is not an earlier export of the same model")
    x.set_defaults(func=_export)

    s = sub.add_parser(
        "sample",
        help="draw samples from a generator, told what to draw where it takes a class or a caption",
        description="Draw N samples from a generator checkpoint (DRAW, a conditional DRAW, the conv VAE) and write a "
        "PNG grid or an .npz (images, (N, C, H, W) in [0, 1]).",
    )
    s.add_argument("checkpoint")
    s.add_argument("--n", type=int, default=16, help="how many samples (default 16)")
    s.add_argument("--label", help="the class to draw (a label-conditional model): its number, or its name (e.g. dress)")
    s.add_argument("--caption", help='the caption to draw, e.g. "the digit 3 is on the left of the digit 5 ."')
    s.add_argument("--out", required=True, metavar="FILE", help="a .png (a grid) or an .npz (the images)")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--device", default="auto")
    s.set_defaults(func=_sample)

    c = sub.add_parser("card", help="a Markdown model card: config, recipe, training, test bound, attention diagnostics")
    c.add_argument("checkpoint")
    c.add_argument("--reference", help="a model without attention: its edit area is shown beside this one's")
    c.add_argument(
        "--test-limit",
        dest="images",
        type=int,
        default=256,
        metavar="N",
        help="test images for the diagnostics (default 256; the bound always uses all)",
    )
    _removed(c, "--images", "--test-limit")
    c.add_argument("--data-root")
    c.add_argument("--command-line", help="the command that trained the model, for the card")
    c.add_argument("--hardware", help="what it trained on, when the checkpoint does not record it")
    c.add_argument("--out", help="also write the card to this file")
    c.add_argument(
        "--into",
        metavar="PAGE",
        help="replace the model's table in PAGE (e.g. models/README.md), keeping its heading's title and the prose "
        "after the table; appended when PAGE has no section for the model",
    )
    c.add_argument("--no-progress", action="store_true")
    c.set_defaults(func=_card)

    r = sub.add_parser(
        "report",
        help="run the notebooks for the runs in reports/runs.yaml and write HTML reports",
        description="Run the notebooks for a list of runs and write reports/<run>/<notebook>.{ipynb,html}, "
        "reports/<run>/metrics.json and reports/index.html.",
    )
    from .report import add_arguments

    add_arguments(r)
    r.set_defaults(func=_report)
    return p


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    args = parser().parse_args(argv)
    from .data import DatasetNotFoundError
    from .files import WriteError
    from .checkpoints import CheckpointError
    from .evaluation import TrainingDiverged

    try:
        return args.func(args)
    except (
        DatasetNotFoundError,
        CheckpointError,
        TrainingDiverged,
        FileNotFoundError,
        ValueError,
        WriteError,
        MemoryError,
    ) as err:
        print(f"drawviz: error: {err}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("drawviz: interrupted; the checkpoint holds every completed step", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
