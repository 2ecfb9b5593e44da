"""Shapes and output ranges of the four networks."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from magan_gui.core.networks import Discriminator, Emulator, Generator, NetworkSizes, Siamese, _coords, count_parameters

SHAPES = [(28, 28), (32, 32), (30, 26)]


@pytest.fixture(autouse=True)
def _seed_no_grad():
    torch.manual_seed(0)
    with torch.no_grad():
        yield


def test_sizes_scale_with_image():
    assert NetworkSizes.for_image((28, 28)).upsamplings == 2
    assert NetworkSizes.for_image((32, 32)).upsamplings == 2
    assert NetworkSizes.for_image((64, 64)).upsamplings == 3
    small = NetworkSizes.for_image((28, 28), width=0.25)
    assert small.base_channels == 16 and small.disc_channels == 8 and small.hidden == 32


@pytest.mark.parametrize("shape", SHAPES)
def test_emulator_output_shape_and_tanh_range(shape):
    sizes = NetworkSizes.for_image(shape, width=0.5)
    net = Emulator(4, shape, sizes)
    params = torch.rand(5, 4) * 2 - 1
    out = net(params)
    assert out.shape == (5, 1, *shape)
    assert float(out.min()) >= -1.0 and float(out.max()) <= 1.0
    # extreme inputs still saturate inside the tanh range
    big = net(torch.full((2, 4), 1e4))
    assert float(big.abs().max()) <= 1.0


def test_emulator_depends_on_params():
    net = Emulator(4, (28, 28), NetworkSizes.for_image((28, 28), width=0.5))
    a, b = net(torch.zeros(1, 4)), net(torch.ones(1, 4))
    assert not torch.allclose(a, b)


@pytest.mark.parametrize("shape", SHAPES)
def test_emulator_with_noise_image(shape):
    net = Emulator(5, shape, NetworkSizes.for_image(shape, width=0.5), noise_image=True)
    params = torch.zeros(3, 5)
    noise = torch.rand(3, *shape)
    out = net(params, noise)
    assert out.shape == (3, 1, *shape)
    # the noise enters per pixel: other noise, other image; same noise, same image
    assert not torch.allclose(out, net(params, torch.rand(3, *shape)))
    assert torch.equal(out, net(params, noise.clone()))


def test_emulator_with_latent():
    net = Emulator(4, (28, 28), NetworkSizes.for_image((28, 28), width=0.5), latent_dim=8)
    out = net(torch.zeros(2, 4), latent=torch.randn(2, 8))
    assert out.shape == (2, 1, 28, 28)
    assert not torch.allclose(out, net(torch.zeros(2, 4), latent=torch.randn(2, 8)))


def test_generator_shape_and_range():
    g = Generator(n_params=5, latent_dim=10, hidden=32)
    out = g(torch.randn(64, 10))
    assert out.shape == (64, 5)
    assert float(out.abs().max()) < 1.0
    assert float(g(torch.randn(4, 10) * 1e4).abs().max()) <= 1.0


@pytest.mark.parametrize("shape", SHAPES + [(27, 27)])
def test_discriminator_one_logit_per_image(shape):
    sizes = NetworkSizes.for_image(shape, width=0.5)
    for features in (16, 0):
        d = Discriminator(shape, sizes, minibatch_features=features)
        out = d(torch.rand(7, 1, *shape) * 2 - 1)
        assert out.shape == (7,)
        assert torch.isfinite(out).all()


def test_discriminator_histogram_shows_a_faint_brightness_change():
    """A 5% brighter ring moves the intensity histogram's mass up a bin; the gradient reaches the pixels."""
    shape = (28, 28)
    d = Discriminator(shape, NetworkSizes.for_image(shape, width=0.5))
    image = torch.full((1, 1, *shape), -1.0)
    image[..., 10:12, 5:25] = 0.7
    brighter = image.clone()
    brighter[..., 10:12, 5:25] = 0.8
    h, hb = d.intensity_histogram(image), d.intensity_histogram(brighter)
    centres = d.bin_centres
    top = lambda h: float((h.exp() * centres).sum() / h.exp().sum())  # noqa: E731  mean bin of the histogram
    assert top(hb) > top(h)
    torch.testing.assert_close(h[0, 0], hb[0, 0])  # the dark background's bin is unchanged
    x = image.clone().requires_grad_(True)
    with torch.enable_grad():
        d.intensity_histogram(x).sum().backward()
    assert x.grad.abs().sum() > 0


def test_discriminator_minibatch_std_sees_the_batch():
    shape = (28, 28)
    d = Discriminator(shape, NetworkSizes.for_image(shape, width=0.5))
    x = torch.rand(4, 1, *shape)
    alone = d(x[:1])
    with_others = d(x)[:1]
    assert not torch.allclose(alone, with_others)


@pytest.mark.parametrize("shape", SHAPES)
def test_siamese_one_logit_per_pair_and_symmetric(shape):
    s = Siamese(shape, NetworkSizes.for_image(shape, width=0.5))
    a, b = torch.rand(6, 1, *shape) * 2 - 1, torch.rand(6, 1, *shape) * 2 - 1
    ab, ba = s(a, b), s(b, a)
    assert ab.shape == (6,)
    torch.testing.assert_close(ab, ba)


def test_siamese_identical_pairs_score_higher_at_init():
    shape = (28, 28)
    s = Siamese(shape, NetworkSizes.for_image(shape, width=0.5))
    assert float(s.scale) < 0
    a, b = torch.rand(8, 1, *shape) * 2 - 1, torch.rand(8, 1, *shape) * 2 - 1
    same, different = s(a, a.clone()), s(a, b)
    torch.testing.assert_close(same, torch.full((8,), float(s.bias)))
    assert bool((same > different).all())


def test_count_parameters_counts_trainable_only():
    g = Generator(2, 3, hidden=4)
    # 3*4+4 + 4*4+4 + 4*2+2
    assert count_parameters(g) == 46
    g.net[0].weight.requires_grad_(False)
    assert count_parameters(g) == 46 - 12


def _emulator_by_upsampling(e: Emulator, params, noise, latent):
    """The emulator's images the plain way: upsample, append coordinates, 3x3 and 1x1 convolutions."""
    n, (h, w) = params.shape[0], e.image_shape
    field = None
    if e.latent_field:
        latent, field = latent[:, :e.latent_vector], latent[:, e.latent_vector:].view(n, 1, h, w)
    x = params if latent is None or not e.latent_vector else torch.cat([params, latent], 1)
    x = e.fc(x).view(n, e.base_channels, *e.coarse)
    for stage in e.stages:
        x = F.interpolate(x, scale_factor=2.0, mode="nearest")
        x = stage(torch.cat([x, _coords(n, x.shape[2], x.shape[3], x.device, x.dtype)], 1))
    top, left = (x.shape[2] - h) // 2, (x.shape[3] - w) // 2
    parts = [x[:, :, top:top + h, left:left + w], _coords(n, h, w, x.device, x.dtype)]
    if e.noise_image:
        parts.append(noise.view(n, 1, h, w) * 2 - 1)
    if field is not None:
        parts.append(field)
    return e.head(torch.cat(parts, 1))


@pytest.mark.parametrize("shape, options", [((28, 28), {}), ((28, 28), {"noise_image": True}),
                                            ((20, 48), {"latent_dim": 8, "latent_field": True}), ((27, 33), {})])
def test_emulator_computes_the_upsampling_network_exactly(shape, options):
    """The transposed-convolution and matrix-product forms are the same function of the same weights
    (emulator files written before them load and give the same images)."""
    torch.manual_seed(0)
    e = Emulator(4, shape, NetworkSizes.for_image(shape, width=0.5), **options).double()
    params = torch.rand(3, 4, dtype=torch.float64) * 2 - 1
    noise = torch.rand(3, *shape, dtype=torch.float64) if e.noise_image else None
    latent = torch.randn(3, e.latent_dim, dtype=torch.float64) if e.latent_dim else None
    torch.testing.assert_close(e.logits(params, noise, latent), _emulator_by_upsampling(e, params, noise, latent))
    with torch.enable_grad():
        grads = torch.autograd.grad(e.logits(params, noise, latent).square().sum(), list(e.parameters()))
        reference = torch.autograd.grad(_emulator_by_upsampling(e, params, noise, latent).square().sum(),
                                        list(e.parameters()))
    for g, r in zip(grads, reference):
        torch.testing.assert_close(g, r)


def test_discriminator_scores_groups_as_separate_batches():
    shape = (28, 28)
    d = Discriminator(shape, NetworkSizes.for_image(shape, width=0.5))
    a, b = torch.rand(5, 1, *shape) * 2 - 1, torch.rand(5, 1, *shape) * 2 - 1
    torch.testing.assert_close(d(torch.cat([a, b]), groups=2), torch.cat([d(a), d(b)]))
    assert not torch.allclose(d(torch.cat([a, b])), torch.cat([d(a), d(b)]))


def test_discriminator_passes_a_nan_image_on_as_nan():
    """A diverged emulator's NaN pixels reach D's output as NaN (the run's finiteness check stops it there)."""
    shape = (28, 28)
    d = Discriminator(shape, NetworkSizes.for_image(shape, width=0.5))
    images = torch.rand(4, 1, *shape) * 2 - 1
    images[1, 0, 3, 3] = float("nan")
    assert torch.isnan(d.intensity_histogram(images)[1]).any()
    assert torch.isnan(d(images)).any()
