"""Comparisons: what the intervention effects need of their images is said, not failed on (issue 21)."""

import pytest

from drawviz.comparisons import intervention_effects


def test_the_z_swap_needs_two_images(small_draw, three_binary_images):
    with pytest.raises(ValueError, match="at least 2 images"):
        intervention_effects(small_draw, three_binary_images[:1], 2)
