"""Does it draw what it was asked? Drawings read by the independent judge (drawviz.judge), one tidy row each.

- a class: the judge's class of the drawing is the one asked for;
- a caption (drawviz.captions): the canvas is cut where the caption puts its digits apart (a pair: into the two
  halves across the relation, left | right or top / bottom; one digit: it is looked for in its corner's quadrant),
  each part is framed as MNIST frames a digit (a 28×28 window centred on its ink's centre of mass, the rest of the
  canvas blanked) and judged. A pair is **right** when each half holds at least ``SHARE`` of the drawing's ink and is
  judged the digit the caption puts there; one digit when at least half its ink lies in the named quadrant and it is
  judged the digit named.

The same measure on the data set's own images says how far it can be trusted (tests/test_asked.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from . import captions as _captions
from . import sampling
from .judge import judged

__all__ = ["SHARE", "FIRST_WORD", "SECOND_WORD", "judge_for", "by_label", "by_caption", "frame", "draw_classes",
           "draw_captions", "accuracy", "of_labels", "of_captions", "caption_kinds", "of_seen_and_held_out", "following",
           "weight_by_word", "WORD_KINDS", "PAIR_TEMPLATE", "held_on_each_word"]  # fmt: skip

FIRST_WORD, SECOND_WORD = 2, 10  # where a pair's caption names its digits: "the digit A is ... the digit B ."
SHARE = 0.1  # the least share of a drawing's ink a half must hold to count as holding a digit
_SIDE = 28  # the judge's frame, an MNIST digit's


def judge_for(dataset: str, device="cpu"):
    """The shipped judge of ``dataset``'s classes (its declaration's ``judge``, drawviz.data.Dataset): a classifier
    trained on that set's own training images, used for nothing but reading drawings of them."""
    from . import data, resources
    from .checkpoints import model_from_checkpoint

    declared = data.declared(dataset)
    if declared.judge is None:
        have = sorted({k for k, d in data.REGISTRY.items() if d.judge and not d.sample_of})
        raise ValueError(
            f"no judge reads drawings of {declared.name}: judges are declared for {', '.join(have)}. Train a classifier "
            f"of its classes (drawviz.judge: python -m drawviz train --dataset {declared.name} --preset <a judge preset> "
            "--binarize none ...), put it in models/ and name it in the dataset's declaration (drawviz.data.Dataset.judge)"
        )
    return model_from_checkpoint(resources.models() / declared.judge, device=device)


def frame(canvas: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """The 28×28 window of ``canvas`` (H, W) centred on the centre of mass of its ink inside ``mask`` (H, W bool),
    everything outside the mask blanked (clamped to the canvas; blank when there is no ink)."""
    ink = np.where(mask, canvas, 0.0)
    height, width = canvas.shape
    total = ink.sum()
    if total <= 0:
        return np.zeros((_SIDE, _SIDE), dtype=np.float32)
    rows, cols = np.indices(canvas.shape)
    cy, cx = (rows * ink).sum() / total, (cols * ink).sum() / total
    top = int(np.clip(round(cy - _SIDE / 2), 0, height - _SIDE))
    left = int(np.clip(round(cx - _SIDE / 2), 0, width - _SIDE))
    return ink[top : top + _SIDE, left : left + _SIDE].astype(np.float32)


def _verdict(judge, frames: list[np.ndarray]) -> np.ndarray:
    seen, _ = judged(judge, torch.from_numpy(np.stack(frames))[:, None])
    return seen.numpy()


def by_label(judge, images: np.ndarray, asked) -> pd.DataFrame:
    """One row per drawing (N, 1, 28, 28): ``asked``, ``judged`` (the judge's class) and ``right``."""
    seen, confidence = judged(judge, torch.as_tensor(np.asarray(images, dtype=np.float32)))
    asked = np.asarray(asked)
    return pd.DataFrame(
        {"image": np.arange(len(asked)), "asked": asked, "judged": seen.numpy(), "confidence": confidence.numpy(),
         "right": seen.numpy() == asked}
    )  # fmt: skip


def _halves(where: str, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Masks of where a pair's first and second digit belong: the halves across the relation."""
    rows, cols = np.indices((size, size))
    near = {"left": cols < size // 2, "right": cols >= size // 2, "top": rows < size // 2, "bottom": rows >= size // 2}
    opposite = {"left": "right", "right": "left", "top": "bottom", "bottom": "top"}
    return near[where], near[opposite[where]]


def _quadrant(corner: str, size: int) -> np.ndarray:
    rows, cols = np.indices((size, size))
    vertical, horizontal = corner.split()
    return (rows < size // 2 if vertical == "top" else rows >= size // 2) & (
        cols < size // 2 if horizontal == "left" else cols >= size // 2
    )


def by_caption(judge, images: np.ndarray, ids, held_out=None) -> pd.DataFrame:
    """One row per drawing (N, 1, 60, 60) and its caption's token ids (N, words): the ``caption``, ``first``,
    ``where``, ``second`` it asks for, what the judge sees where the caption puts each digit (``judged_first``,
    ``judged_second``), the share of ink there (``ink_first``, ``ink_second``: for one digit the share in its
    quadrant), whether the drawing is ``right`` (module docstring) and, given, ``held_out``."""
    images = np.asarray(images, dtype=np.float32)[:, 0]
    ids = np.asarray(ids)
    size = images.shape[-1]
    rows, frames = [], []
    for i, (canvas, caption) in enumerate(zip(images, ids)):
        first, where, second = _captions.parse(caption)
        masks = _halves(where, size) if second is not None else (_quadrant(where, size),)
        total = max(float(canvas.sum()), 1e-8)
        shares = [float(canvas[m].sum()) / total for m in masks]
        frames += [frame(canvas, m) for m in masks]
        rows.append(
            {"image": i, "caption": _captions.text(caption), "first": first, "where": where, "second": second,
             "ink_first": shares[0], "ink_second": shares[1] if second is not None else np.nan}
        )  # fmt: skip
    seen = iter(_verdict(judge, frames)) if frames else iter(())
    for row in rows:
        row["judged_first"] = int(next(seen))
        pair = row["second"] is not None
        row["judged_second"] = int(next(seen)) if pair else None
        if pair:
            row["right"] = bool(
                row["judged_first"] == row["first"] and row["judged_second"] == row["second"]
                and min(row["ink_first"], row["ink_second"]) >= SHARE
            )  # fmt: skip
        else:
            row["right"] = bool(row["judged_first"] == row["first"] and row["ink_first"] >= 0.5)
    table = pd.DataFrame(rows)
    table["second"] = table["second"].astype("Int64")
    table["judged_second"] = table["judged_second"].astype("Int64")
    table["pair"] = table["second"].notna()
    if held_out is not None:
        table["held_out"] = np.asarray(held_out, dtype=bool)
    return table


def draw_classes(model, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """n finished drawings σ(c_T) of every class a label-conditional model knows: (images (classes·n, C, H, W) in
    [0, 1], the class asked for each (classes·n,)), class by class."""
    asked = torch.arange(model.config.classes).repeat_interleave(n)
    return sampling.finished(model, len(asked), labels=asked, seed=seed), asked.numpy()


def draw_captions(model, ids, seed: int = 0, batch_size: int = 500) -> np.ndarray:
    """One finished drawing σ(c_T) per caption (token ids (N, words)) from a captioned model: (N, C, H, W)."""
    ids = torch.as_tensor(np.asarray(ids))
    return sampling.finished(model, len(ids), labels=ids, seed=seed, batch_size=batch_size)


def accuracy(table: pd.DataFrame, by=None) -> pd.DataFrame:
    """The share judged right (``right``) and the count, overall or per group (e.g. by="asked", or
    ["pair", "held_out"])."""
    if by is None:
        return pd.DataFrame({"drawings": [len(table)], "right": [table["right"].mean()]})
    return table.groupby(by)["right"].agg(drawings="size", right="mean").reset_index()


def of_labels(model, judge, test, per_class: int, *, seeds=(0,), binarize: bool = False, progress: bool = False) -> dict:
    """A label-conditional model's figures: its prior samples of each class (``per_class`` per draw, one draw per seed)
    as the judge reads them, and its bound on ``test`` told each image's right class against a wrong one (the next).

    Returns {"per_class": accuracy by class asked, "right": the share overall, "drawings", "judge_on_test": the
    judge's own accuracy on ``test`` (the ceiling of "right"), "wrong_label_bound"}."""
    from .evaluation import evaluate

    judged = pd.concat([by_label(judge, *draw_classes(model, per_class, seed=seed)) for seed in seeds])
    wrong = (test.labels + 1) % model.config.classes
    return {
        "per_class": accuracy(judged, "asked"),
        "right": float(judged["right"].mean()),
        "drawings": len(judged),
        # the ceiling: how often the judge reads the test set's own images as their class
        "judge_on_test": float(by_label(judge, test.images.numpy(), test.labels.numpy())["right"].mean()),
        "wrong_label_bound": evaluate(model, test, labels=wrong, seed=seeds[0], binarize=binarize, progress=progress)[
            "nll_bound"
        ],
    }


def of_captions(model, judge, some, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """A caption model's drawings of the captions of the scenes ``some`` (drawn with ``seed``): each as the judge reads
    it (by_caption), whether it followed the words (following) and where its alignment sat (weight_by_word).
    Returns (judged, follows, words)."""
    from . import order, probes

    drawn = probes.run(model, n=len(some), seed=seed, labels=some.captions)
    judged = by_caption(judge, drawn.canvas[-1], some.captions.numpy(), held_out=some.held_out.numpy())
    follows = following(drawn.canvas, order.initial_canvas(model), drawn["alignment"], some.captions)
    return judged, follows, weight_by_word(drawn["alignment"], some.captions)


def caption_kinds(test) -> dict:
    """The scenes of a captioned ``test`` set by kind of caption: {"seen": combinations seen in training, "held out":
    the held-out ones}; a kind with no scene is left out."""
    parts = {
        name: test.where(mask, f"the {name} combinations")
        for name, mask in (("seen", ~test.held_out), ("held out", test.held_out))
    }
    return {name: part for name, part in parts.items() if len(part)}


def of_seen_and_held_out(model, judge, test, n: int, seed: int = 0) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """of_captions on ``n`` class-balanced captions of each kind in ``test``: seen in training and held out, drawn
    apart so that each share rests on ``n`` drawings (held-out captions are few in the test set, and a balanced draw of
    the whole set would hold only a handful). Returns (judged, follows, words), the seen rows first; each has
    ``held_out``."""
    tables = [], [], []
    for name, part in caption_kinds(test).items():
        for table, got in zip(tables, of_captions(model, judge, part.balanced(n, seed=seed), seed=seed)):
            table.append(got.assign(held_out=name == "held out"))
    return tuple(pd.concat(table, ignore_index=True) for table in tables)


# the kinds of word weight_by_word counts, as a sentence names them
WORD_KINDS = {"digit": "the digits' names", "place": "the places", "the rest": "the rest"}

# a pair's caption, position by position: the words every pair shares, and what stands for the ones that vary
PAIR_TEMPLATE = ("the", "digit", "A", "is", "on/at", "the", "place", "of", "the", "digit", "B", ".")


def held_on_each_word(model, judge, some, seed: int = 0) -> pd.DataFrame:
    """Which words carry each digit? For the pair captions among the scenes ``some``: the drawing made with the
    alignment held wholly on one position of the caption at every step (interventions.attend_word), for each position,
    read by the judge: how often each digit comes out as named (``first_right``, ``second_right``) and the whole
    caption right (``right``). Position -1 is the model left free. One row per position, with ``word`` from
    PAIR_TEMPLATE ("A" and "B" the two digits' names)."""
    from . import interventions

    pairs = np.array([_captions.parse(c)[2] is not None for c in some.captions.numpy()])
    if not pairs.any():
        raise ValueError("held_on_each_word reads pair captions: these scenes hold none")
    ids = some.captions[torch.from_numpy(pairs)]
    rows = []
    for position in range(-1, ids.shape[1]):
        hooks = [interventions.attend_word(position)] if position >= 0 else None
        drawn = interventions.run_with_hooks(model, n=len(ids), seed=seed, labels=ids, hooks=hooks)
        judged = by_caption(judge, drawn.canvas[-1], ids.numpy())
        rows.append(
            {
                "position": position,
                "word": PAIR_TEMPLATE[position] if position >= 0 else "(free)",
                "first_right": float((judged["judged_first"] == judged["first"]).mean()),
                "second_right": float((judged["judged_second"] == judged["second"]).mean()),
                "right": float(judged["right"].mean()),
                "drawings": len(judged),
            }
        )
    return pd.DataFrame(rows)


def weight_by_word(alignment: np.ndarray, ids) -> pd.DataFrame:
    """Where the alignment sits: the share of all its weight (every step of every drawing) on each word of the
    vocabulary, beside the share an even spread over each caption's words would give it (``even``), and the word's
    kind: a digit's name, a place (left, right, top, bottom) or the rest of the template ("the digit ... is on the
    ... of the image ."). One row per word, the most weighted first.

    alignment: α_t (T, N, words); ids: (N, words)."""
    ids = np.asarray(ids)
    per_position = np.asarray(alignment, dtype=np.float64).sum(0)  # (N, words): over the steps
    size = len(_captions.VOCABULARY)
    weight = np.bincount(ids.ravel(), weights=per_position.ravel(), minlength=size)
    even = np.bincount(ids.ravel(), minlength=size).astype(np.float64)
    kind = ["digit" if w.isdigit() else "place" if w in _captions.RELATIONS else "the rest" for w in _captions.VOCABULARY]
    table = pd.DataFrame({"word": _captions.VOCABULARY, "kind": kind, "share": weight / weight.sum(), "even": even / even.sum()})
    return table.sort_values("share", ascending=False, kind="stable").reset_index(drop=True)


def following(canvas: np.ndarray, before: np.ndarray, alignment: np.ndarray, ids) -> pd.DataFrame:
    """Does it follow the words? For each drawing of a pair's caption: the share of the drawing of each digit (the
    visible change |σ(c_t) − σ(c_(t−1))| inside the half the caption gives it, drawviz.order.shares) done while the
    alignment is on that digit's word (``first_on_own``, ``second_on_own``), and, to compare, while it is on the other
    digit's word (``first_on_other``, ``second_on_other``). One row per pair; single-digit captions are left out.

    canvas: σ(c_t) (T, N, C, H, W); before: σ(c_0) (C, H, W); alignment: α_t (T, N, words); ids: (N, words)."""
    from . import order

    ids = np.asarray(ids)
    size = canvas.shape[-1]
    followed = np.asarray(alignment).argmax(-1)  # (T, N): the word each step follows
    rows = []
    for i, caption in enumerate(ids):
        first, where, second = _captions.parse(caption)
        if second is None:
            continue
        near, far = _halves(where, size)
        owner = np.where(near, 1, np.where(far, 2, 0))[None]
        got, _ = order.shares(canvas[:, i : i + 1], before, owner)  # (T, 1, 2)
        got = got[:, 0]
        row = {"image": i, "caption": _captions.text(caption)}
        for k, (digit, own, other) in enumerate((("first", FIRST_WORD, SECOND_WORD), ("second", SECOND_WORD, FIRST_WORD))):
            total = got[:, k].sum()
            row[f"{digit}_on_own"] = float(got[followed[:, i] == own, k].sum() / total) if total > 0 else np.nan
            row[f"{digit}_on_other"] = float(got[followed[:, i] == other, k].sum() / total) if total > 0 else np.nan
        rows.append(row)
    columns = ["image", "caption", "first_on_own", "first_on_other", "second_on_own", "second_on_other"]
    return pd.DataFrame(rows, columns=columns)
