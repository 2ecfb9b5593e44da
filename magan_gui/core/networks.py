"""The four networks of the model-assisted GAN, sized from the simulator's image shape.

All images inside the engine are (N, 1, H, W) in [-1, 1]; parameters are (N, P) in [-1, 1].
The discriminator and the Siamese network return logits: the paper's final sigmoid is applied
inside the loss (``binary_cross_entropy_with_logits``), which is the same model, computed stably.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F


@dataclass(frozen=True)
class NetworkSizes:
    """Widths of the networks; ``for_image`` scales them with the image size."""

    base_channels: int = 64       # emulator channels at its coarsest resolution
    upsamplings: int = 2          # emulator doublings from the coarse grid to the image
    disc_channels: int = 32       # first discriminator / Siamese conv width
    downsamplings: int = 2        # discriminator / Siamese stride-2 convolutions
    hidden: int = 128             # MLP width (generator, emulator input)

    @staticmethod
    def for_image(shape: tuple[int, int], width: float = 1.0) -> NetworkSizes:
        """Sizes for (H, W) images: one more resolution level per doubling above 32 px."""
        levels = max(2, math.ceil(math.log2(max(shape) / 8.0)))
        return NetworkSizes(base_channels=max(16, int(64 * width)), upsamplings=levels,
                            disc_channels=max(8, int(32 * width)), downsamplings=levels,
                            hidden=max(32, int(128 * width)))


_CONSTANTS: dict[tuple, torch.Tensor] = {}


def _constant(key: tuple, make: Callable[[], torch.Tensor]) -> torch.Tensor:
    """The tensor ``make()`` builds, made once per key: rebuilding the networks' fixed tensors in
    every forward pass cost several small operations each, and a GPU training step is bound by
    their count.  Traced afresh under ``torch.compile``, which folds constants itself."""
    if torch.compiler.is_compiling():
        return make()
    if key not in _CONSTANTS:
        with torch.inference_mode(False):  # usable later in passes that record gradients
            _CONSTANTS[key] = make()
    return _CONSTANTS[key]


def _coords(n: int, h: int, w: int, device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """Two channels holding each pixel's x and y in [-1, 1], so convolutions know where they are."""
    def grid() -> torch.Tensor:
        ys = torch.linspace(-1.0, 1.0, h, device=device, dtype=dtype).view(1, 1, h, 1).expand(1, 1, h, w)
        xs = torch.linspace(-1.0, 1.0, w, device=device, dtype=dtype).view(1, 1, 1, w).expand(1, 1, h, w)
        return torch.cat([xs, ys], dim=1)
    return _constant(("coordinates", h, w, torch.device(device), dtype), grid).expand(n, 2, h, w)


def _four_taps(device: torch.device, dtype: torch.dtype) -> torch.Tensor:
    """(4, 3): how a 3-tap kernel (k0, k1, k2) becomes the 4-tap kernel of a stride-2 transposed
    convolution, (k2, k1 + k2, k0 + k1, k0)."""
    return _constant(("four taps", device, dtype), lambda: torch.tensor(
        [[0, 0, 1], [0, 1, 1], [1, 1, 0], [1, 0, 0]], device=device, dtype=dtype))


def upsampled_conv(x: torch.Tensor, conv: nn.Conv2d) -> torch.Tensor:
    """``conv`` (3x3, padding 1) of ``x`` upsampled 2x (nearest) with the pixel-coordinate channels
    appended, computed without the upsampled copy.

    A nearest upsampling repeats each pixel 2x2, so every output pixel's 3x3 window covers only 2x2
    distinct input pixels, with summed taps: the same function is a stride-2 transposed convolution
    of ``x`` with a 4x4 kernel made from the 3x3 one.  Same weights, same images (to rounding), 4/9
    of the multiply-adds.  The coordinate channels, the same for every image, are convolved once.
    """
    n, c, h, w = x.shape
    taps = _four_taps(x.device, x.dtype)
    # (c, out, 4, 4), the transposed convolution's layout, in one product rather than a dozen small operations
    kernel = torch.einsum("ik,ockl,jl->coij", taps, conv.weight[:, :c], taps)
    images = F.conv_transpose2d(x, kernel, stride=2, padding=1)
    coords = _coords(1, 2 * h, 2 * w, x.device, x.dtype)
    return images + F.conv2d(coords, conv.weight[:, c:], conv.bias, padding=1)


class Generator(nn.Module):
    """MLP from latent noise z to normalised parameters, tanh output (the paper's G)."""

    def __init__(self, n_params: int, latent_dim: int, hidden: int = 128):
        super().__init__()
        self.latent_dim = latent_dim
        self.net = nn.Sequential(
            nn.Linear(latent_dim, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden), nn.LeakyReLU(0.2),
            nn.Linear(hidden, n_params), nn.Tanh(),
        )

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.net(z)


class Emulator(nn.Module):
    """CNN from parameters (and the simulator's noise field, if shared) to an image, tanh output.

    Parameters
    ----------
    n_params : int
        Number of simulator parameters.
    image_shape : (int, int)
        Output (H, W).
    noise_image : bool
        Take the simulator's own random draws (N, H, W) as an extra input channel at full
        resolution: common random numbers make a stochastic simulator a deterministic map.
    latent_dim : int
        Size of a random latent vector appended to the parameters, for stochastic simulators
        that cannot share their noise.
    latent_field : bool
        Also take a standard-normal field (H, W) of the emulator's own, at full resolution: a
        black-box simulator's pixel-level randomness (counting noise, white noise) then needs no
        long latent vector.  The field travels as the last H*W entries of the latent, so
        ``latent_dim`` (the whole random input's length) grows by H*W.
    """

    def __init__(self, n_params: int, image_shape: tuple[int, int], sizes: NetworkSizes,
                 noise_image: bool = False, latent_dim: int = 0, latent_field: bool = False):
        super().__init__()
        self.n_params, self.image_shape = n_params, tuple(image_shape)
        h, w = image_shape
        self.noise_image, self.latent_field = noise_image, latent_field
        self.latent_vector = latent_dim
        self.latent_dim = latent_dim + (h * w if latent_field else 0)
        scale = 2 ** sizes.upsamplings
        self.coarse = (math.ceil(h / scale), math.ceil(w / scale))
        c = sizes.base_channels
        self.fc = nn.Sequential(
            nn.Linear(n_params + latent_dim, sizes.hidden), nn.LeakyReLU(0.2),
            nn.Linear(sizes.hidden, c * self.coarse[0] * self.coarse[1]), nn.LeakyReLU(0.2),
        )
        if latent_field and latent_dim:
            # The field carries pixel noise; the vector (randomness shared by the whole image) starts
            # with no effect and grows only where the data ask for it.  From random weights it
            # made the shower's total light vary several times too much.
            with torch.no_grad():
                self.fc[0].weight[:, n_params:].zero_()
        self.stages = nn.ModuleList()
        channels = c
        for _ in range(sizes.upsamplings):
            out = max(16, channels // 2)
            self.stages.append(nn.Sequential(nn.Conv2d(channels + 2, out, 3, padding=1), nn.LeakyReLU(0.2)))
            channels = out
        extra = int(noise_image) + int(latent_field)
        # 1x1 convolutions: full-resolution work stays cheap, and noise mixes in per pixel
        self.head = nn.Sequential(nn.Conv2d(channels + 2 + extra, channels, 1), nn.LeakyReLU(0.2),
                                  nn.Conv2d(channels, 1, 1))
        self.base_channels = c

    def forward(self, params: torch.Tensor, noise: torch.Tensor | None = None,
                latent: torch.Tensor | None = None) -> torch.Tensor:
        """Images (N, 1, H, W) in [-1, 1]."""
        return torch.tanh(self.logits(params, noise, latent))

    def logits(self, params: torch.Tensor, noise: torch.Tensor | None = None,
               latent: torch.Tensor | None = None) -> torch.Tensor:
        """The images before the final tanh (training keeps these in tanh's responsive range)."""
        n = params.shape[0]
        h, w = self.image_shape
        field = None
        if self.latent_field:
            latent, field = latent[:, :self.latent_vector], latent[:, self.latent_vector:].view(n, 1, h, w)
        x = params if latent is None or not self.latent_vector else torch.cat([params, latent], dim=1)
        x = self.fc(x).view(n, self.base_channels, *self.coarse)
        for stage in self.stages:
            conv, activation = stage
            x = activation(upsampled_conv(x, conv))
        top, left = (x.shape[2] - h) // 2, (x.shape[3] - w) // 2
        x = x[:, :, top:top + h, left:left + w]
        extras = []
        if self.noise_image:
            extras.append(noise.view(n, 1, h, w) * 2.0 - 1.0)
        if field is not None:
            extras.append(field)
        return self._head(x, extras)

    def _head(self, x: torch.Tensor, extras: list[torch.Tensor]) -> torch.Tensor:
        """``self.head`` (two 1x1 convolutions) of ``x`` with the coordinate and ``extras`` channels
        appended, as matrix products over pixels: faster than 1x1 convolutions on the CPU, and the
        coordinates' share, the same for every image, is computed once."""
        first, activation, second = self.head
        c = x.shape[1]
        w1 = first.weight.flatten(1)  # (out, c + 2 + extras)
        coords = _coords(1, x.shape[2], x.shape[3], x.device, x.dtype).permute(0, 2, 3, 1)
        y = F.linear(x.permute(0, 2, 3, 1), w1[:, :c]) + F.linear(coords, w1[:, c:c + 2], first.bias)
        for k, extra in enumerate(extras):  # one channel each: a per-pixel value times a weight column
            y = y + extra.permute(0, 2, 3, 1) * w1[:, c + 2 + k]
        out = F.linear(activation(y), second.weight.flatten(1), second.bias)  # (n, h, w, 1)
        return out.permute(0, 3, 1, 2)


def _encoder(image_shape: tuple[int, int], sizes: NetworkSizes) -> tuple[nn.Sequential, int]:
    layers: list[nn.Module] = []
    channels, c = 1, sizes.disc_channels
    h, w = image_shape
    for _ in range(sizes.downsamplings):
        layers += [nn.Conv2d(channels, c, 4, stride=2, padding=1), nn.LeakyReLU(0.2)]
        channels, c = c, c * 2
        h, w = h // 2, w // 2  # kernel 4, stride 2, padding 1 halves, rounding down
    layers.append(nn.Flatten())
    return nn.Sequential(*layers), channels * h * w


class Discriminator(nn.Module):
    """CNN telling true images from simulated (or emulated) ones; returns a logit (the paper's D).

    Besides its convolutional features, D sees each image's pixel-intensity histogram (soft bins,
    log fractions): a brightness or noise level spread over many pixels changes every pixel a
    little, which the histogram shows plainly and a small CNN sees only faintly.

    Minibatch statistics: the per-feature standard deviation over the batch, compressed to a few
    numbers, is shown beside each image's features.  D then sees the spread of a batch, not only
    single images, which keeps the generator from under- or over-dispersing its parameters.
    """

    def __init__(self, image_shape: tuple[int, int], sizes: NetworkSizes, minibatch_features: int = 16,
                 intensity_bins: int = 16):
        super().__init__()
        self.features, n_features = _encoder(image_shape, sizes)
        self.register_buffer("bin_centres", torch.linspace(-1.0, 1.0, intensity_bins), persistent=False)
        self.bin_width = 2.0 / max(1, intensity_bins - 1)  # the centres' spacing
        n_features += intensity_bins
        self.spread = (nn.Sequential(nn.Linear(n_features, minibatch_features), nn.LeakyReLU(0.2))
                       if minibatch_features else None)
        self.out = nn.Sequential(nn.Linear(n_features + minibatch_features, 128), nn.LeakyReLU(0.2),
                                 nn.Linear(128, 1))

    def intensity_histogram(self, images: torch.Tensor) -> torch.Tensor:
        """(N, bins) log fraction of each image's pixels near each bin centre (differentiable).

        Triangular (linear-interpolation) bins: a pixel splits its weight between its two nearest
        centres, in proportion to its closeness.  Scattering the two shares costs two passes over
        the pixels; Gaussian bins, weighed against every centre, cost a twentieth of a CPU
        calibration step."""
        bins = len(self.bin_centres)
        if not bins:
            return images.new_zeros(images.shape[0], 0)
        x = images.flatten(1)
        if bins == 1:
            return torch.log(torch.ones_like(x[:, :1]) + 1e-3)
        position = ((x.clamp(-1.0, 1.0) + 1.0) / self.bin_width).clamp(max=bins - 1 - 1e-4)
        # a NaN pixel (a diverging network) must reach the loss as NaN, where the run's check finds
        # it, not fail here as an index: only the bin index is made finite
        lower = torch.nan_to_num(position.detach(), nan=0.0).floor()
        upper_share = position - lower
        counts = x.new_zeros(x.shape[0], bins)
        counts = counts.scatter_add(1, lower.long(), 1.0 - upper_share).scatter_add(1, lower.long() + 1, upper_share)
        return torch.log(counts / x.shape[1] + 1e-3)

    def forward(self, images: torch.Tensor, groups: int = 1) -> torch.Tensor:
        """One logit per image.  ``groups`` > 1: the batch is that many equal batches (e.g. true and
        fake images) scored in one pass, each with its own minibatch statistics."""
        f = torch.cat([self.features(images), self.intensity_histogram(images)], dim=1)
        if self.spread is not None:
            per_group = f.view(groups, -1, f.shape[1])
            # the batch's per-feature spread; the small floor keeps the gradient finite for a constant feature
            spread = (per_group.var(dim=1, unbiased=False, keepdim=True) + 1e-8).sqrt()
            spread = self.spread(spread).expand(-1, per_group.shape[1], -1).reshape(f.shape[0], -1)
            f = torch.cat([f, spread], dim=1)
        return self.out(f).squeeze(1)


class Siamese(nn.Module):
    """Two weight-sharing CNN encoders (128-d), the L2 norm of their difference, then a logit of 'same'."""

    def __init__(self, image_shape: tuple[int, int], sizes: NetworkSizes, embedding: int = 128):
        super().__init__()
        features, n_features = _encoder(image_shape, sizes)
        self.encoder = nn.Sequential(features, nn.Linear(n_features, embedding))
        self.scale = nn.Parameter(torch.tensor(-1.0))
        self.bias = nn.Parameter(torch.tensor(2.0))

    def forward(self, a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        distance = torch.linalg.vector_norm(self.encoder(a) - self.encoder(b), dim=1)
        return self.scale * distance + self.bias


def count_parameters(module: nn.Module) -> int:
    """Number of trainable weights."""
    return sum(p.numel() for p in module.parameters() if p.requires_grad)
