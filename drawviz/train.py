"""The training loop for notebooks and the CLI: Adam, gradient-norm clipping, a periodic test-set NLL
bound, atomic checkpoints that resume exactly, legs recorded across sessions, and a history DataFrame.
It reports through ``callbacks`` (called with each history row); ``progress`` picks a tqdm.auto bar or
silence. Checkpoints (drawviz.checkpoints), the recipe and settings (drawviz.recipe), evaluation
(drawviz.evaluation) and the device (drawviz.device) have modules of their own; their names are
importable from here too.
"""

from __future__ import annotations

import json
import math
import signal
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Iterable, Optional

import pandas as pd
import torch

from . import data as _data
from . import distributed as _distributed
from . import files as _files
from .campaign import legs_of
from .checkpoints import (
    FORMAT,
    VERSION,
    CheckpointError,
    _load_weights,
    check_writable,
    export_checkpoint,
    load_checkpoint,
    model_from_checkpoint,
    save_checkpoint,
    training_summary,
)
from .device import describe_hardware, pick_device
from .evaluation import TrainingDiverged, _as_images, evaluate
from .model import DRAW, DrawConfig, check_images
from .recipe import RECIPES, Recipe, TrainConfig

__all__ = [
    "TrainConfig",
    "train",
    "evaluate",
    "Recipe",
    "RECIPES",
    "TrainResult",
    "TrainingDiverged",
    "CheckpointError",
    "save_checkpoint",
    "load_checkpoint",
    "model_from_checkpoint",
    "export_checkpoint",
    "pick_device",
    "describe_hardware",
    "training_summary",
    "check_writable",
    "FORMAT",
    "VERSION",
]


def _after_divergence(checkpoint, rate: float, clip: float) -> str:
    """What to do after a divergence, naming a checkpoint only where one exists."""
    advice = f"a lower learning rate (now {rate:.3g}, --lr) or a smaller clip (now {clip:g}, --clip)"
    if checkpoint is not None and Path(checkpoint).exists():
        step = load_checkpoint(checkpoint)["step"]
        return f"The last good checkpoint, {checkpoint} (step {step:,}), is kept: resume from it with {advice}."
    return f"No checkpoint was written before it; train again with {advice}."


def _on_stop_signals(callback) -> Callable[[], None]:
    """Call ``callback`` on SIGTERM or SIGINT (Ctrl-C, a notebook's interrupt) while training (main
    thread only), so the loop can finish the step in hand and save once; returns the undo.

    A second Ctrl-C is the user insisting: it raises KeyboardInterrupt at once (nothing is saved
    then, so no half-applied step is ever written; the last checkpoint stays).
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None
    previous = {sig: signal.getsignal(sig) for sig in (signal.SIGTERM, signal.SIGINT)}
    pressed = []

    def on_sigint(signum, frame):
        if pressed:
            raise KeyboardInterrupt("interrupted twice: stopped at once; the last checkpoint is kept")
        pressed.append(True)
        callback()

    signal.signal(signal.SIGTERM, lambda signum, frame: callback())
    signal.signal(signal.SIGINT, on_sigint)
    return lambda: [signal.signal(sig, handler) for sig, handler in previous.items()]


class _Stop(Exception):
    """A stop signal arrived: the loop finished its step; save and stop."""


class _Stopping:
    """A run's one stop flag. A signal asks (SIGTERM, the first Ctrl-C); with several processes the ranks
    agree after each step, so that all stop after the same one. in_step: a step is half done (its weights,
    RNG and step count disagree), so nothing may be saved until it ends."""

    def __init__(self, world: int):
        self.world, self.asked, self.agreed, self.in_step = world, False, False, False

    def ask(self) -> None:
        self.asked = True

    @property
    def now(self) -> bool:
        return self.asked if self.world == 1 else self.agreed


@dataclass
class TrainResult:
    model: DRAW
    history: pd.DataFrame  # one row per step; test_nll_bound where evaluated
    checkpoint: Optional[Path]
    step: int

    @property
    def final_nll_bound(self) -> float:
        evaluated = self.history["test_nll_bound"].dropna()
        return float(evaluated.iloc[-1]) if len(evaluated) else math.nan


def _say_what_changed(checkpoint, before: dict, settings: TrainConfig, start: int) -> None:
    """Settings that differ from the checkpoint's apply from the resumed step: warn which (the seed, the data,
    the recipe), at the caller of train()."""
    for key, now in (("seed", settings.seed), ("dataset", settings.dataset)):
        if before.get(key) is not None and now is not None and before[key] != now:
            warnings.warn(
                f"resuming {checkpoint} with {key} {now!r} (it was trained with {before[key]!r}); "
                f"applied from step {start}"
                + (": the data order changes from here" if key == "seed" else ": the model now trains on other data"),
                stacklevel=4,
            )
    saved, recipe = before.get("recipe"), settings.recipe.to_dict()
    if saved is not None and saved != recipe:
        changed = {k: (v, recipe[k]) for k, v in saved.items() if recipe.get(k) != v}
        warnings.warn(
            f"resuming {checkpoint} with another recipe; applied from step {start}: "
            + ", ".join(f"{k} {a!r} -> {b!r}" for k, (a, b) in changed.items()),
            stacklevel=4,
        )


def _leg_factor(recipe: Recipe, into_leg: int, seconds_left: float, rewarm: int, cooldown: float) -> float:
    """What a leg does to the recipe's rate: a warm-up of a fresh Adam over its first ``rewarm`` steps, and a
    linear fall to recipe.final over the last ``cooldown`` seconds of the time budget."""
    factor = min(1.0, (into_leg + 1) / rewarm) if rewarm else 1.0
    if cooldown:
        factor *= recipe.final + (1 - recipe.final) * min(max(seconds_left / cooldown, 0.0), 1.0)
    return factor


def train(
    model_or_config: DRAW | DrawConfig,
    train_images,
    test_images=None,
    settings: Optional[TrainConfig] = None,
    *,
    device="auto",
    checkpoint=None,
    resume: bool = True,
    progress: bool = True,
    callbacks: Iterable[Callable[[dict], None]] = (),
    train_args: Optional[dict] = None,
    **changes,
) -> TrainResult:
    """Train DRAW with Adam as ``settings`` (a :class:`TrainConfig`) says, changed by ``changes``: any
    TrainConfig field (steps, minutes, recipe, seed, binarize, eval_every, fast, bf16, ...) or recipe
    field (lr, batch_size, clip, ...), e.g. ``train(config, images, steps=2000, recipe="anneal")``.

    checkpoint: a path; written every ``checkpoint_every`` steps, at the end, and on Ctrl-C.
      With ``resume`` and an existing file, training continues from it exactly (settings that differ
      from the checkpoint's are applied from the resumed step, with a warning).
    Test NLL bounds (statically binarised when binarize is set) every ``eval_every`` steps or
    ``eval_every_minutes``, and at the end when test images are given.
    fast: train through :func:`drawviz.fast.make_fast` (same numbers, same parameters and
      checkpoints; fused GEMMs and a hand-written backward pass).
    bf16: the fast path with its GEMMs in bfloat16 (implies fast; fp32 parameters and states; faster
      only where the hardware multiplies bfloat16 natively: measure with benchmarks/bench.py; loss
      within ~0.1%).
    train_args: provenance to record (dataset, data_root, limit, test_limit), as the notebooks give it.
    """
    if checkpoint is None or not _distributed.current().main:
        return _train(
            model_or_config,
            train_images,
            test_images,
            settings,
            device=device,
            checkpoint=checkpoint,
            resume=resume,
            progress=progress,
            callbacks=callbacks,
            train_args=train_args,
            **changes,
        )
    checkpoint = check_writable(checkpoint)  # before the lock beside it is made
    try:
        lock = _files.exclusive(checkpoint, "training")
        lock.__enter__()
    except _files.InUse as err:  # two runs on one file would resume and overwrite each other's steps
        raise CheckpointError(str(err)) from None
    try:
        return _train(
            model_or_config,
            train_images,
            test_images,
            settings,
            device=device,
            checkpoint=checkpoint,
            resume=resume,
            progress=progress,
            callbacks=callbacks,
            train_args=train_args,
            **changes,
        )
    finally:
        lock.__exit__(None, None, None)


def _train(
    model_or_config,
    train_images,
    test_images,
    settings,
    *,
    device,
    checkpoint,
    resume,
    progress,
    callbacks,
    train_args,
    **changes,
) -> TrainResult:
    # ---- 1. the settings, the processes, the device and the model
    provenance = {k: v for k, v in (train_args or {}).items() if k in ("dataset", "data_root", "limit", "test_limit")}
    settings = (settings or TrainConfig()).replace(**provenance, **changes)
    recipe, steps, minutes, seed, binarize = (settings.recipe, settings.steps, settings.minutes, settings.seed, settings.binarize)
    batch_size, clip = recipe.batch_size, recipe.clip
    fast, bf16 = settings.fast, settings.bf16
    checkpoint_every, eval_every = settings.checkpoint_every, settings.eval_every
    eval_every_minutes, eval_batch_size = settings.eval_every_minutes, settings.eval_batch_size
    ranks = _distributed.current()  # under torchrun: this process's share of every global batch
    shard = ranks.shard(batch_size) if ranks.world > 1 else None
    dev = pick_device(device)
    if isinstance(model_or_config, DRAW):
        model = model_or_config
    else:  # initialise from the seed too, so train(config, seed=s) is reproducible end to end
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(seed)
            model = DRAW(model_or_config)
    model.to(dev).train()
    if ranks.world > 1:  # a rank started with another --seed or --T would train its own model: refuse at once
        agreed = json.dumps({"config": model.config.to_dict(), "settings": settings.to_dict()}, sort_keys=True, default=str)
        if not ranks.same(agreed):
            raise ValueError(
                f"the {ranks.world} training processes were started with different settings or configs "
                f"(e.g. --seed, --T, --lr); start every rank with the same command"
            )
    # ---- 2. the images
    train_x = _as_images(train_images)
    check_images(train_x, model.config)
    test_x = _as_images(test_images) if test_images is not None else None
    if test_x is not None:
        check_images(test_x, model.config)
    if train_x.shape[0] < batch_size:
        raise ValueError(f"batch_size {batch_size} is larger than the training set ({train_x.shape[0]} images)")
    if binarize == "static":
        train_x = _data.binarize(train_x, seed=seed)
    train_x = train_x.to(dev)

    # ---- 3. what runs the pass (the fast path, several processes) and the optimiser
    net = model
    if fast or bf16:
        from .fast import make_fast

        net = make_fast(model, bf16=bf16)  # shares model's parameters: optimiser and checkpoints see no difference
    if ranks.world > 1:  # gradients averaged over the ranks in backward: every rank applies the same step
        from torch.nn.parallel import DistributedDataParallel

        net = DistributedDataParallel(net, device_ids=[dev.index] if dev.type == "cuda" else None)
    optimizer = torch.optim.Adam(
        model.parameters(), lr=recipe.rate(0, 0.0), betas=(recipe.beta1, recipe.beta2), eps=recipe.adam_eps
    )
    generator = torch.Generator(dev).manual_seed(seed)
    history: list[dict] = []
    start, legs, fresh_adam = 0, [], True
    if checkpoint is not None:  # only rank 0 writes
        checkpoint = check_writable(checkpoint) if ranks.main else Path(checkpoint)
    # what a checkpoint says of its training: the settings (once; load_checkpoint also shows them as the flat
    # keys older checkpoints have) and the run's facts
    args = {
        "settings": settings.to_dict(),
        "hardware": describe_hardware(dev),
        "processes": ranks.world,
        "train_images": int(train_x.shape[0]),
        "train_source": _data.portable(getattr(train_images, "source", None)),
        **{k: v for k, v in (train_args or {}).items() if k not in provenance},
    }
    # ---- 4. resuming: weights, optimiser, RNG, history and legs from the checkpoint
    if checkpoint is not None and resume and checkpoint.exists():
        state = load_checkpoint(checkpoint, map_location=dev)
        _load_weights(model, state, checkpoint)
        if state["optimizer"] is not None:
            fresh_adam = False
            optimizer.load_state_dict(state["optimizer"])
            for group in optimizer.param_groups:  # the recipe in hand sets the betas, not the saved one
                group["betas"], group["eps"] = (recipe.beta1, recipe.beta2), recipe.adam_eps
        if state["rng"] is not None and state["rng_device"] == str(generator.device):
            generator.set_state(state["rng"].cpu())
        start, history, legs = state["step"], list(state["history"]), legs_of(state)
        before = state.get("train_args", {})
        _say_what_changed(checkpoint, before, settings, start)
        if settings.dataset is None and before.get("dataset") is not None:  # a resume that does not name its
            settings = settings.replace(dataset=before["dataset"])  # data keeps the checkpoint's
            args["settings"] = settings.to_dict()
        if args.get("train_source") is None and before.get("train_source") is not None:
            args["train_source"] = before["train_source"]

    # ---- 5. this leg: its clock, its epochs, its record, its schedule, saving and evaluating
    budget = minutes * 60 if minutes is not None else math.inf
    per_epoch = train_x.shape[0] // batch_size
    seconds = history[-1]["seconds"] if history else 0.0  # the clock counts training only
    # epochs add up over legs of any batch size: this leg's steps count in its own batches
    offset = (history[-1]["epoch"] - start / per_epoch) if history and start else 0.0
    offset = 0.0 if abs(offset) < 1e-9 else offset
    start_epoch = start / per_epoch + offset
    hardware = args["hardware"]
    leg = {
        "start_step": start,
        "end_step": start,
        "start_epoch": start_epoch,
        "end_epoch": start_epoch,
        "start_seconds": seconds,
        "end_seconds": seconds,
        "recipe": recipe.to_dict(),
        "batch_size": batch_size,
        "device": hardware["device"],
        "machine": hardware["name"],
        "threads": hardware.get("threads"),
        "processes": ranks.world,
        "fresh_optimizer": fresh_adam,
        "cooldown_minutes": settings.cooldown_minutes,
        "started": time.strftime("%Y-%m-%d %H:%M:%S"),
    }
    rewarm = settings.rewarm if fresh_adam and start > 0 else 0
    cooldown = settings.cooldown_minutes * 60 if settings.cooldown_minutes else 0.0

    def save(step):
        if history and history[-1]["step"] == step > start:  # this leg added steps: record it
            leg.update(end_step=step, end_epoch=history[-1]["epoch"], end_seconds=history[-1]["seconds"])
            args["legs"] = legs + [leg]
        else:
            args["legs"] = legs
        if checkpoint is not None and ranks.main:
            save_checkpoint(
                checkpoint, model=model, optimizer=optimizer, step=step, generator=generator, history=history, train_args=args
            )

    def test_bound():
        # evaluate restores train mode itself
        return evaluate(model, test_x, batch_size=eval_batch_size, seed=seed, binarize=binarize is not None)["nll_bound"]

    order_epoch, order = None, None
    bar = None
    if progress and ranks.main:
        from tqdm.auto import tqdm

        if minutes is None:
            bar = tqdm(total=steps, initial=start, desc="train DRAW", unit="step", dynamic_ncols=True)
        else:
            bar = tqdm(
                total=round(budget),
                desc=f"train DRAW ({minutes:g} min)",
                unit="s",
                dynamic_ncols=True,
                bar_format="{l_bar}{bar}| {n:.0f}/{total:.0f} s [{elapsed}<{remaining}{postfix}]",
            )
    if bar is not None and minutes is not None:
        bar.update(min(seconds, budget))
    next_eval = (
        (math.floor(seconds / (eval_every_minutes * 60)) + 1) * eval_every_minutes * 60 if eval_every_minutes else math.inf
    )
    # ---- 6. the steps, until the step or time budget is spent or a signal asks to stop
    step = start
    stop = _Stopping(ranks.world)
    restore = _on_stop_signals(stop.ask)
    try:
        while (steps is None or step < steps) and seconds < budget:
            if stop.now:  # Ctrl-C or SIGTERM: the step in hand is finished; the RNG is at `step` exactly
                raise _Stop()
            stop.in_step = True
            # the batch and the rate
            epoch, pos = divmod(step, per_epoch)
            if epoch != order_epoch:
                order_epoch, order = epoch, _data.batches(train_x, batch_size, seed=seed, epoch=epoch)
            tick = time.perf_counter()
            rate = recipe.rate(step, seconds / budget if minutes is not None else step / max(steps, 1))
            rate *= _leg_factor(recipe, step - start, budget - seconds, rewarm, cooldown)
            for group in optimizer.param_groups:
                group["lr"] = rate
            # forward (eq. 3-12), backward, one clipped Adam step
            x = train_x[order[pos].to(dev)]
            if binarize == "dynamic":
                x = _data.binarize(x, generator=generator)
            eps = model.sample_eps(batch_size, generator)
            if shard is not None:  # the whole batch's randomness is drawn on every rank: each keeps its rows
                x, eps = x[shard], eps[:, shard]
            out = net(x, eps, check=False)
            # one device sync for the three figures the history keeps (means over the ranks)
            loss, nll, kl = ranks.mean(torch.stack([out.loss, out.nll.mean(), out.kl.sum(0).mean()]).detach()).tolist()
            if not math.isfinite(loss):
                raise TrainingDiverged(
                    f"loss became {loss} at step {step + 1}; stopped without saving this state. "
                    + _after_divergence(checkpoint, rate, clip)
                )
            optimizer.zero_grad(set_to_none=True)
            out.loss.backward()
            grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), clip).item()
            if not math.isfinite(grad_norm):
                raise TrainingDiverged(
                    f"gradient norm became {grad_norm} at step {step + 1}; stopped before "
                    "applying it. " + _after_divergence(checkpoint, rate, clip)
                )
            optimizer.step()
            step += 1
            took = time.perf_counter() - tick
            seconds += took
            if ranks.world > 1:  # the slowest rank's clock, so all stop at the same step
                seconds, stop.agreed = ranks.agree(seconds, stop.asked)
            # the record of the step: its row, a test bound when due, a checkpoint when due, the callbacks
            row = {
                "step": step,
                "epoch": step / per_epoch + offset,
                "loss": loss,
                "nll": nll,
                "kl": kl,
                "grad_norm": grad_norm,
                "lr": rate,
                "seconds": seconds,
                "images_per_s": batch_size / max(took, 1e-9),
                "test_nll_bound": math.nan,
            }
            last = step == steps or seconds >= budget
            if test_x is not None and ((eval_every and step % eval_every == 0) or seconds >= next_eval or last):
                if ranks.main:  # the others go on to the next step and wait for rank 0 there
                    row["test_nll_bound"] = test_bound()
                while next_eval <= seconds:
                    next_eval += eval_every_minutes * 60
            history.append(row)
            stop.in_step = False
            if checkpoint_every and step % checkpoint_every == 0 and not last:
                save(step)
            if bar is not None:
                bar.update(1 if minutes is None else min(took, max(budget - bar.n, 0)))
                bar.set_postfix(
                    loss=f"{loss:.2f}",
                    **({"test": f"{row['test_nll_bound']:.2f}"} if math.isfinite(row["test_nll_bound"]) else {}),
                )
            for callback in callbacks if ranks.main else ():
                callback(row)
        # ---- 7. the end: the last checkpoint, and the history as a DataFrame
        if stop.now or stop.asked:  # a signal during the last step
            raise _Stop()
        save(step)
    except _Stop:
        save(step)  # nothing lost on Ctrl-C: every completed step is on disk, and no partial one
        raise KeyboardInterrupt(f"stopped after step {step} (checkpoint {checkpoint or 'not configured'})") from None
    except KeyboardInterrupt:  # raised by other code (a callback, a second Ctrl-C): save only between steps
        if not stop.in_step:
            save(step)
        raise
    finally:
        restore()
        if bar is not None:
            bar.close()
    frame = pd.DataFrame(
        history, columns=["step", "epoch", "loss", "nll", "kl", "grad_norm", "lr", "seconds", "images_per_s", "test_nll_bound"]
    )
    return TrainResult(model.eval(), frame, checkpoint, step)
