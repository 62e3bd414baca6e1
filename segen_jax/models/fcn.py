"""Fully convolutional segmenters: the course source's small FCN, and FCN-32s/16s/8s.

Both map images (N, H, W, C) to per-pixel class scores (N, H, W, K); softmax over the last axis
gives each pixel's class probabilities (never one sigmoid for K > 2 classes).

TinyFCN (the source text's network, made correct):
    x → [conv3x3 → ReLU]×2 =: skip (H, W, w) → maxpool 2 → [conv3x3 → ReLU]×2 (H/2, 2w)
      → transposed conv ×2 → ReLU (H, W, w) → concat(·, skip) (H, W, 2w) → conv3x3 → ReLU
      → conv1x1 → K
    "SAME" padding keeps the skip and the upsampled map the same size (H divisible by 2).

FCN (Long, Shelhamer & Darrell, CVPR 2015), on a small VGG-style backbone of width w:
    5 blocks [conv3x3 → ReLU]×2 → maxpool 2, widths w, 2w, 4w, 8w, 8w (pool3: stride 8,
    pool4: stride 16, pool5: stride 32) → "fc6" conv3x3 (8w → 16w) → ReLU → "fc7" conv1x1
    → ReLU → score conv1x1 → K                                              (stride 32)
    32s: bilinear ×32 of the score map
    16s: s16 = up×2(score) + score_pool4(pool4);        bilinear ×16 of s16
     8s: s8  = up×2(s16)   + score_pool3(pool3);        bilinear ×8  of s8
    up×2 are learned transposed convolutions (kernel 4, stride 2, padding 1) initialised to
    bilinear upsampling; score_pool* are 1x1 convolutions initialised to zero, so a fresh 16s or
    8s starts out as the coarser net and learns how much detail the skip adds; the last
    upsampling is fixed bilinear interpolation, as in the paper. H and W must be divisible by 32.

Long et al. start from a classifier trained on ImageNet; `from_classifier` does the same with
the course's digit classifier, whose two conv blocks have exactly the shapes of the first two
blocks of both networks (widths 16 and 32 at the defaults).
"""
import jax
import jax.numpy as jnp
from flax import nnx

from segen_jax.models.classifier import Classifier
from segen_jax.ops import (bilinear_kernel, bilinear_upsample, conv2d_im2col, conv_one_channel,
                           conv_strips, conv_transpose2d, max_pool2d)

VARIANTS = {"32s": 32, "16s": 16, "8s": 8}


class ConvTranspose(nnx.Module):
    """Learned upsampling x (N, H, W, C_in) -> (N, H', W', C_out) with ops.conv_transpose2d,
    H' = (H − 1)·stride − 2·padding + kernel_size. The kernel is stored as the conv2d whose
    adjoint this is: (k, k, C_out, C_in). init="bilinear" (C_in == C_out, stride = factor) starts
    as bilinear upsampling; "lecun" draws lecun_normal weights."""

    def __init__(self, in_features, out_features, kernel_size, *, stride, padding=0,
                 init="lecun", rngs: nnx.Rngs):
        k = kernel_size
        if init == "bilinear":
            if (in_features != out_features or k != 2 * stride - stride % 2
                    or padding != stride // 2):
                raise ValueError(f"ConvTranspose: init='bilinear' needs in_features == "
                                 f"out_features, kernel_size = 2·stride − stride mod 2 and "
                                 f"padding = stride // 2, got {in_features} → {out_features}, "
                                 f"kernel {k}, stride {stride}, padding {padding}")
            kernel = bilinear_kernel(stride, in_features)
        elif init == "lecun":
            kernel = nnx.initializers.lecun_normal()(rngs.params(), (k, k, out_features,
                                                                     in_features))
        else:
            raise ValueError(f"ConvTranspose: init must be 'bilinear' or 'lecun', got {init!r}")
        self.kernel = nnx.Param(kernel)
        self.bias = nnx.Param(jnp.zeros((out_features,)))
        self.stride, self.padding = stride, padding

    def __call__(self, x):
        return conv_transpose2d(x, self.kernel[...], self.bias[...], stride=self.stride,
                                padding=self.padding)


def _conv(cin, cout, k, rngs, **kw):
    """A "SAME" k×k convolution. On the CPU, a layer of one input channel (the first, on grey
    images) sums kh·kw scaled shifted copies of the image (ops.conv_one_channel: XLA's own
    convolution took 1.4-4.1x as long there); the others take their weight gradient in row strips at
    small batches (ops.conv_strips: XLA's own is 2-9x slower below 8 images). Below 8 images
    on the CPU the models are then differentiable in reverse mode only (jax.grad, jax.vjp,
    jax.jacrev, to any order); jax.jvp and jax.jacfwd raise."""
    conv = conv_one_channel if cin == 1 else conv_strips
    return nnx.Conv(cin, cout, (k, k), padding="SAME", rngs=rngs,
                    conv_general_dilated=conv.conv_general_dilated, **kw)


def _check_images(name, images, channels, stride):
    if images.ndim != 4 or images.shape[3] != channels:
        raise ValueError(f"{name}: images must have shape (N, H, W, {channels}), got "
                         f"{tuple(images.shape)}")
    h, w = images.shape[1:3]
    if h % stride or w % stride:
        fit = (-(-h // stride) * stride, -(-w // stride) * stride)
        raise ValueError(f"{name}: H and W must be divisible by the output stride {stride}, got "
                         f"{h}x{w} (images {tuple(images.shape)}); pad them to {fit[0]}x{fit[1]} "
                         f"and crop the prediction back")


class TinyFCN(nnx.Module):
    """The course source's small FCN (module docstring): images (N, H, W, in_channels), H and W
    even -> logits (N, H, W, num_classes)."""

    def __init__(self, num_classes, *, in_channels=1, width=16, rngs: nnx.Rngs):
        w = width
        self.in_channels = in_channels
        self.enc1 = nnx.List([_conv(in_channels, w, 3, rngs), _conv(w, w, 3, rngs)])
        self.enc2 = nnx.List([_conv(w, 2 * w, 3, rngs), _conv(2 * w, 2 * w, 3, rngs)])
        self.up = ConvTranspose(2 * w, w, 4, stride=2, padding=1, rngs=rngs)
        self.fuse = _conv(2 * w, w, 3, rngs)
        self.classify = _conv(w, num_classes, 1, rngs)

    def __call__(self, images):
        _check_images("TinyFCN", images, self.in_channels, 2)
        x = images
        for conv in self.enc1:
            x = jax.nn.relu(conv(x))
        skip = x
        x = max_pool2d(x, 2)
        for conv in self.enc2:
            x = jax.nn.relu(conv(x))
        x = jnp.concatenate([jax.nn.relu(self.up(x)), skip], axis=-1)
        return self.classify(jax.nn.relu(self.fuse(x)))


class FCN(nnx.Module):
    """FCN-32s/16s/8s (module docstring): images (N, H, W, in_channels), H and W divisible by
    32 -> logits (N, H, W, num_classes)."""

    def __init__(self, num_classes, variant="8s", *, in_channels=1, width=16, rngs: nnx.Rngs):
        if variant not in VARIANTS:
            raise ValueError(f"FCN: variant must be one of {list(VARIANTS)}, got {variant!r}")
        w, k = width, num_classes
        self.variant, self.in_channels = variant, in_channels
        widths = [in_channels, w, 2 * w, 4 * w, 8 * w, 8 * w]
        self.blocks = nnx.List([nnx.List([_conv(widths[i], widths[i + 1], 3, rngs),
                                          _conv(widths[i + 1], widths[i + 1], 3, rngs)])
                                for i in range(5)])
        self.fc6 = _conv(8 * w, 16 * w, 3, rngs)
        self.fc7 = _conv(16 * w, 16 * w, 1, rngs)
        self.score = _conv(16 * w, k, 1, rngs)
        zeros = dict(kernel_init=nnx.initializers.zeros)
        if variant in ("16s", "8s"):
            self.up16 = ConvTranspose(k, k, 4, stride=2, padding=1, init="bilinear", rngs=rngs)
            self.score_pool4 = _conv(8 * w, k, 1, rngs, **zeros)
        if variant == "8s":
            self.up8 = ConvTranspose(k, k, 4, stride=2, padding=1, init="bilinear", rngs=rngs)
            self.score_pool3 = _conv(4 * w, k, 1, rngs, **zeros)

    @property
    def output_stride(self):
        """The stride of the last score map before the fixed bilinear upsampling."""
        return VARIANTS[self.variant]

    def __call__(self, images):
        _check_images(f"FCN-{self.variant}", images, self.in_channels, 32)
        x, pools = images, []
        for block in self.blocks:
            for conv in block:
                x = jax.nn.relu(conv(x))
            x = max_pool2d(x, 2)
            pools.append(x)                      # strides 2, 4, 8, 16, 32
        x = jax.nn.relu(self.fc7(jax.nn.relu(self._fc6(x))))
        score = self.score(x)
        if self.variant in ("16s", "8s"):
            score = self.up16(score) + self.score_pool4(pools[3])
        if self.variant == "8s":
            score = self.up8(score) + self.score_pool3(pools[2])
        return bilinear_upsample(score, self.output_stride)

    def _fc6(self, x):
        """fc6 (3x3 conv, padding 1, 8w → 16w) on the stride-32 map x (N, H/32, W/32, 8w).
        On a CPU, for a map of at most 2x2 (64x64 images), as one im2col matrix product
        (ops.conv2d_im2col), the same function with the same parameters: XLA:CPU's
        convolution is slowest on such tiny maps, and the FCN-8s train step at batch 4 ran
        1.10x faster this way (benchmarks/fcn_fc6.py). XLA's convolution everywhere else: the
        same swap for block 5 (4x4 map) and block 4 (8x8) made that step slower. A fc6 that
        was replaced by another module (e.g. conv + dropout, experiments/fcn_digit_scenes.py)
        is simply called."""
        tiny = x.shape[1] * x.shape[2] <= 4
        if isinstance(self.fc6, nnx.Conv) and jax.default_backend() == "cpu" and tiny:
            return conv2d_im2col(x, self.fc6.kernel[...], self.fc6.bias[...], padding=1)
        return self.fc6(x)


def _first_convs(model):
    """The four convolutions of the first two blocks of a TinyFCN, an FCN or a DeepLab model
    (anything with FCN's five `blocks`)."""
    if isinstance(model, TinyFCN):
        return [*model.enc1, *model.enc2]
    if isinstance(model, nnx.Module) and len(getattr(model, "blocks", ())) == 5:
        return [*model.blocks[0], *model.blocks[1]]
    raise TypeError(f"from_classifier: model must be a TinyFCN, an FCN or a DeepLab model, got "
                    f"{type(model).__name__}")


def from_classifier(model, classifier):
    """Copy a trained `Classifier`'s convolutions into the first two blocks of `model` (a
    TinyFCN, an FCN or a DeepLabV3/V3Plus), in place, and return `model`:
        conv1a, conv1b → kernels (3, 3, C, w), (3, 3, w, w)      (TinyFCN enc1, blocks[0])
        conv2a, conv2b → kernels (3, 3, w, 2w), (3, 3, 2w, 2w)   (TinyFCN enc2, blocks[1])
    with C = in_channels and w = width, the same in both (the defaults: 1 and 16).

    The transfer step of Long et al.: the segmenter starts with features that already tell
    digits apart, and training only has to learn the rest. The arrays are copied, so training
    the segmenter (whose step donates its buffers) leaves the classifier intact. The
    classifier must pool with "max", as both segmenters do. ValueError if a shape or the
    pooling differs, TypeError for other kinds of model.
    """
    if not isinstance(classifier, Classifier):
        raise TypeError(f"from_classifier: classifier must be a Classifier, got "
                        f"{type(classifier).__name__}")
    if classifier.pool != "max":
        raise ValueError(f"from_classifier: classifier.pool must be 'max' (the segmenters "
                         f"max-pool between the blocks), got {classifier.pool!r}")
    names = ["conv1a", "conv1b", "conv2a", "conv2b"]
    targets = _first_convs(model)
    for name, dst in zip(names, targets):
        src = getattr(classifier, name)
        for part in ("kernel", "bias"):
            got, want = getattr(src, part).shape, getattr(dst, part).shape
            if got != want:
                raise ValueError(f"from_classifier: the classifier's {name}.{part} has shape "
                                 f"{got}, the {type(model).__name__}'s layer {want}; build both "
                                 "with the same in_channels and width")
    for name, dst in zip(names, targets):
        src = getattr(classifier, name)
        dst.kernel[...] = jnp.array(src.kernel[...], copy=True)
        dst.bias[...] = jnp.array(src.bias[...], copy=True)
    return model
