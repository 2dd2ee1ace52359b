"""Comparisons: what the intervention effects need of their images is said, not failed on (issue 21)."""

import pytest
import torch

from drawviz.comparisons import intervention_effects


def test_the_z_swap_needs_two_images(small_draw, three_binary_images):
    with pytest.raises(ValueError, match="at least 2 images"):
        intervention_effects(small_draw, three_binary_images[:1], 2)


def test_a_one_shot_vae_gets_the_interventions_it_has_and_not_the_ones_it_lacks():
    from drawviz.comparisons import intervention_effects
    from drawviz.convvae import ConvVAE, ConvVAEConfig

    torch.manual_seed(0)
    model = ConvVAE(ConvVAEConfig(height=28, width=28, channels=1, z_size=4, filters=8, layers=2, likelihood="bernoulli"))
    x = (torch.rand(4, 1, 28, 28) > 0.5).float()
    table, _ = intervention_effects(model, x, 1)
    names = " ".join(table.intervention)
    assert "z swapped" in names and "nothing written" not in names and "read window" not in names
