"""MNIST with captions (alignDRAW's construction, for issue 34): every digit stands where its caption says, the
held-out triples never reach training, and a word outside the vocabulary is refused naming it."""

import hashlib

import numpy as np
import pytest

from drawviz import captions, data


@pytest.fixture(scope="module")
def train_set(data_root, tmp_path_factory):
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("DRAWVIZ_CACHE", str(tmp_path_factory.mktemp("cache")))
        yield data.load("captioned-mnist", "train", data_root)


def _where(row, first, second):
    """Whether digit boxes (x, y) agree with a caption's relation or corner, by alignDRAW's placement ranges."""
    words = captions.text(row).split()
    if "image" in words:  # one digit in a corner: "the digit 9 is at the top left of the image ."
        corner = " ".join(words[6:8])
        x, y = first
        return (2 <= x <= 4 if "left" in corner else 28 <= x <= 30) and (2 <= y <= 4 if "top" in corner else 28 <= y <= 30)
    relation = words[6]
    (xa, ya), (xb, yb) = first, second
    if relation in ("left", "right"):
        a, b = ((0, 4), (28, 32)) if relation == "left" else ((28, 32), (0, 4))
        return a[0] <= xa <= a[1] and b[0] <= xb <= b[1] and 16 <= ya <= 18 and 16 <= yb <= 18
    a, b = ((0, 2), (30, 32)) if relation == "top" else ((30, 32), (0, 2))
    return a[0] <= ya <= a[1] and b[0] <= yb <= b[1] and 16 <= xa <= 18 and 16 <= xb <= 18


def test_every_digit_stands_where_its_caption_says_and_is_the_digit_it_names(train_set):
    objects = train_set.objects
    for i in range(0, len(train_set), 97):  # ~620 images, both kinds of caption
        mine = objects[objects.image == i]
        words = captions.text(train_set.captions[i]).split()
        assert len(words) == captions.LENGTH and int(words[2]) == mine.label.iloc[0] == int(train_set.labels[i])
        if len(mine) == 2:
            assert int(words[10]) == mine.label.iloc[1]
        boxes = list(zip(mine.x, mine.y))
        assert _where(train_set.captions[i], boxes[0], boxes[1] if len(boxes) > 1 else None), (
            captions.text(train_set.captions[i]),
            boxes,
        )
    shares = objects.groupby("image").size().value_counts(normalize=True)
    assert abs(shares[1] - 0.5) < 0.02 and abs(shares[2] - 0.5) < 0.02  # one or two digits, half and half


def test_held_out_triples_never_occur_in_training_and_do_in_the_test_split(train_set, data_root):
    pairs = train_set.objects.groupby("image").filter(lambda g: len(g) == 2)
    first, second = pairs.groupby("image").label.first(), pairs.groupby("image").label.last()
    relation = {i: captions.text(train_set.captions[i]).split()[6] for i in first.index}
    seen = {(int(first[i]), relation[i], int(second[i])) for i in first.index}
    assert not seen & captions.HELD_OUT and len(captions.HELD_OUT) == 40
    assert len(seen) == 400 - 40  # every other triple is trained on
    test = data.load("captioned-mnist-sample", "test")
    assert not train_set.held_out.any() and 0 < int(test.held_out.sum()) < len(test)


def test_a_caption_is_twelve_known_words_and_an_unknown_one_is_refused_naming_the_vocabulary():
    text = captions.caption(3, "left", 5)
    assert text == "the digit 3 is on the left of the digit 5 ." and captions.text(captions.tokens(text)) == text
    assert len(captions.VOCABULARY) == 22
    with pytest.raises(captions.UnknownWord, match="'seven' is not in the vocabulary of 22 words: the digit is on at"):
        captions.tokens("the digit seven is on the left of the digit 5 .")
    with pytest.raises(captions.UnknownWord, match="12 words"):
        captions.tokens("the digit 3 .")


def test_the_sample_is_the_same_images_on_every_call_and_a_subset_keeps_its_captions():
    a, b = data.load("captioned-mnist-sample", "train"), data.load("captioned-mnist-sample", "train")
    assert hashlib.sha256(a.images.numpy().tobytes()).hexdigest() == hashlib.sha256(b.images.numpy().tobytes()).hexdigest()
    assert (a.captions == b.captions).all()
    part = a.balanced(50)
    for i in range(50):
        assert int(captions.text(part.captions[i]).split()[2]) == int(part.labels[i])
    assert np.array_equal(part.held_out.numpy(), np.zeros(50, bool))
