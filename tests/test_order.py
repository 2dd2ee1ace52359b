"""The drawing-order measure (paper section 4.3, "one digit and then the other"), on hand-made drawings whose
order is known."""

import numpy as np
import pandas as pd

from drawviz import order

A = dict(image=0, kind="digit", label=3, source=0, x=2, y=2, width=28, height=28)
B = dict(image=0, kind="digit", label=5, source=1, x=30, y=30, width=28, height=28)
OBJECTS = pd.DataFrame([A, B])


def _drawing(plan):
    """A canvas (T, 1, 1, 60, 60) that, at step t, inks a new tenth of digit plan[t]'s box ("A", "B" or "AB")."""
    canvas, now = [], np.zeros((1, 60, 60))
    filled = {"A": 0, "B": 0}
    for what in plan:
        now = now.copy()
        for d in what:
            box = A if d == "A" else B
            rows = slice(box["y"] + 3 * filled[d], box["y"] + 3 * filled[d] + 3)
            now[0, rows, box["x"] : box["x"] + 28] = 1.0
            filled[d] += 1
        canvas.append(now[None])
    return np.stack(canvas)


def test_one_digit_then_the_other_is_drawn_one_at_a_time_with_one_switch():
    steps, images = order.drawing_order(_drawing(["A"] * 5 + ["B"] * 5), np.zeros((1, 60, 60)), OBJECTS)
    row = images.iloc[0]
    assert row.one_at_a_time and row.switches == 1 and row.first == "A"
    assert row.half_A == 3 and row.half_B == 8
    a = steps[steps.digit == "A"].share.to_numpy()
    assert np.allclose(a, [0.2, 0.4, 0.6, 0.8, 1, 1, 1, 1, 1, 1])


def test_interleaved_strokes_are_not_one_at_a_time_and_switch_every_step():
    _, images = order.drawing_order(_drawing(["A", "B"] * 5), np.zeros((1, 60, 60)), OBJECTS)
    row = images.iloc[0]
    assert not row.one_at_a_time and row.switches == 9


def test_both_digits_at_every_step_is_not_one_at_a_time():
    _, images = order.drawing_order(_drawing(["AB"] * 5), np.zeros((1, 60, 60)), OBJECTS)
    assert not images.iloc[0].one_at_a_time and images.iloc[0].half_A == images.iloc[0].half_B == 3


def test_a_pixel_in_both_boxes_goes_to_the_nearer_centre():
    near = pd.DataFrame([A, dict(B, x=20, y=2)])  # B overlaps A's columns 20..29
    owner = order.owners(near, 1, 60, 60)[0]
    assert owner[10, 22] == 1 and owner[10, 27] == 2  # A's centre is column 15.5, B's 33.5
    assert owner[40, 40] == 0 and owner[10, 5] == 1 and owner[10, 45] == 2


def test_digits_of_a_drawn_image_are_its_two_largest_pieces_of_ink():
    canvas = np.zeros((1, 1, 60, 60))
    canvas[0, 0, 5:30, 5:9] = 0.9
    canvas[0, 0, 31:40, 5:9] = 0.9  # the same stroke after a 1-pixel gap: still digit one
    canvas[0, 0, 40:55, 40:50] = 0.9
    canvas[0, 0, 2, 50] = 0.9  # a speck: not a digit
    found = order.objects_from_canvas(canvas)
    boxes = sorted(zip(found.x, found.y, found.width, found.height))
    assert boxes == [(5, 5, 4, 35), (40, 40, 10, 15)]


def _blob_then_sharpen():
    """A faint wash over both digits (σ up to 0.4, below the ink level) for 4 steps, then A inked row by row, then B:
    at first every step changes both boxes visibly, but the ink arrives one digit at a time. (14, 1, 1, 60, 60)"""
    wash, steps = np.zeros((1, 1, 60, 60)), []  # (batch, C, H, W)
    for k in range(1, 5):
        wash = wash.copy()
        wash[0, 0, 2:30, 2:30] = wash[0, 0, 30:58, 30:58] = 0.1 * k
        steps.append(wash)
    for inked in _drawing(["A"] * 5 + ["B"] * 5)[:, 0]:  # (1, 60, 60) per step
        steps.append(np.maximum(wash, inked[None]))
    return np.stack(steps)


def test_by_ink_a_wash_then_one_digit_after_the_other_is_one_at_a_time():
    drawing = _blob_then_sharpen()
    assert drawing.shape == (14, 1, 1, 60, 60)
    _, by_change = order.drawing_order(drawing, np.zeros((1, 60, 60)), OBJECTS)
    steps, by_ink = order.drawing_order(drawing, np.zeros((1, 60, 60)), OBJECTS, by="ink")
    assert not by_change.iloc[0].one_at_a_time  # the wash gives both digits 40 % of their change at once
    row = by_ink.iloc[0]
    assert row.one_at_a_time and row.first == "A" and row.half_A == 7 and row.half_B == 12
    assert np.allclose(steps[steps.digit == "A"].share.to_numpy()[:5], [0, 0, 0, 0, 0.2])


def test_by_ink_erased_ink_arrives_when_it_is_drawn_for_good():
    canvas = np.zeros((3, 1, 1, 60, 60))
    canvas[0, 0, 0, 5, 5] = 0.9  # inked at step 1, erased at 2, inked again at 3
    canvas[2, 0, 0, 5, 5] = 0.9
    owner = np.ones((1, 60, 60), dtype=np.int8)
    got, share = order.ink_shares(canvas, owner)
    assert got[:, 0, 0].tolist() == [0, 0, 1] and np.isnan(share[:, 0, 1]).all()
