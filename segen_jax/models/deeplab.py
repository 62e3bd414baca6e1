"""DeepLab: atrous backbone, ASPP with image pooling, the v3+ decoder (Chen et al. 2017, 2018).

All map images (N, H, W, C) to per-pixel class scores (N, H, W, K).

Backbone: the FCN's five VGG-style blocks [conv3x3 → ReLU]×2, widths w, 2w, 4w, 8w, 8w, so the
first two blocks take the digit classifier's weights (`from_classifier`). FCN pools after
every block (stride 32). DeepLab trades stride for dilation: a block's pool is kept while the
stride stays <= output_stride; each dropped pool doubles the rate r of every later conv, so
a later layer's taps still span the input pixels they spanned after the pool, at twice
the resolution (`backbone_plan`; the field shrinks only by the dropped pools' own pixels):
    OS 32: pools after blocks 1-5 (FCN's backbone);  OS 16: no pool after block 5;
    OS 8: no pool after blocks 4 and 5, so block 5 runs at r = 2
    (counting blocks from 1; the stride-4 output of block 2 is v3+'s low-level feature).

ASPP (atrous spatial pyramid pooling) on the backbone's features F (h, w, 8w):
    branches  1x1 conv;  3x3 conv at rate r for r in rates;  image pooling (global average
              → 1x1 conv → broadcast back to h x w), each → ReLU, `features` channels
    concat → 1x1 conv → ReLU                                   (h, w, features)
The paper's rates (6, 12, 18) are for a 33x33 feature map (513-pixel crops at OS 16); a rate
as wide as the map only reaches padding with its outer taps (the 3x3 filter degenerates to
1x1). `scaled_rates` keeps the same fraction of the map: r' = max(1, round(r·size / 33)).

DeepLabV3:      logits = bilinear ×OS (1x1 conv (ASPP(F)))
DeepLabV3Plus:  A = bilinear ×(OS/4) ASPP(F);  L = ReLU(1x1 conv (block 2 output, stride 4))
                logits = bilinear ×4 (1x1 conv ([3x3 conv → ReLU]×2 (concat(A, L))))
No batch norm (as the course's FCN): the small nets train without it at batch 4, and the
split-batch step (train.nnx_step parts > 1) needs a model without batch statistics.

The fully connected CRF that refines the output lives in models/crf.py.
"""
import jax
import jax.numpy as jnp
from flax import nnx

from segen_jax.models.fcn import _check_images, _conv
from segen_jax.ops import bilinear_upsample, global_avg_pool, max_pool2d

OUTPUT_STRIDES = (8, 16, 32)
PAPER_RATES = (6, 12, 18)
PAPER_FEATURE_SIZE = 33


def _int_at_least(fn, name, value, low=1):
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{fn}: {name} must be an int >= {low}, got {value!r}")
    return value


def backbone_plan(output_stride):
    """[(rate, pool), ...] for the five blocks: the dilation of the block's convolutions and
    whether it ends with a 2x2 max pool (module docstring)."""
    if isinstance(output_stride, bool) or output_stride not in OUTPUT_STRIDES:
        raise ValueError(f"backbone_plan: output_stride must be one of {OUTPUT_STRIDES}, got "
                         f"{output_stride!r}")
    plan, stride, rate = [], 1, 1
    for _ in range(5):
        pool = stride * 2 <= output_stride
        plan.append((rate, pool))
        if pool:
            stride *= 2
        else:
            rate *= 2
    return plan


def scaled_rates(rates, feature_size, *, reference=PAPER_FEATURE_SIZE):
    """The ASPP rates for a feature map of `feature_size` pixels that cover the same fraction
    of it as `rates` do of a `reference`-pixel map: max(1, round(r·feature_size/reference)),
    repeats dropped. (6, 12, 18) -> (1, 3, 4) for 8x8 (64-pixel scenes at OS 8), (1, 2) for
    4x4 (OS 16)."""
    _int_at_least("scaled_rates", "feature_size", feature_size)
    _int_at_least("scaled_rates", "reference", reference)
    for r in rates:
        _int_at_least("scaled_rates", "rates", r)
    out = []
    for r in rates:
        scaled = max(1, round(r * feature_size / reference))
        if scaled not in out:
            out.append(scaled)
    return tuple(out)


class Backbone(nnx.Module):
    """The five blocks (module docstring): images (N, H, W, C) -> (features (N, H/OS, W/OS, 8w),
    low-level features (N, H/4, W/4, 2w))."""

    def __init__(self, *, in_channels, width, output_stride, rngs: nnx.Rngs):
        w = width
        widths = [in_channels, w, 2 * w, 4 * w, 8 * w, 8 * w]
        self.plan = backbone_plan(output_stride)
        self.blocks = nnx.List([
            nnx.List([_conv(widths[i], widths[i + 1], 3, rngs, kernel_dilation=rate),
                      _conv(widths[i + 1], widths[i + 1], 3, rngs, kernel_dilation=rate)])
            for i, (rate, _) in enumerate(self.plan)])

    def __call__(self, x):
        low_level = None
        for i, (block, (_, pool)) in enumerate(zip(self.blocks, self.plan)):
            for conv in block:
                x = jax.nn.relu(conv(x))
            if pool:
                x = max_pool2d(x, 2)
            if i == 1:
                low_level = x                     # stride 4 for every output stride
        return x, low_level


class ASPP(nnx.Module):
    """Atrous spatial pyramid pooling (module docstring): (N, h, w, in_features) ->
    (N, h, w, features). rates=() and image_pooling=False leave the 1x1 branch alone (the
    ablation's "no ASPP")."""

    def __init__(self, in_features, features, *, rates=PAPER_RATES, image_pooling=True,
                 rngs: nnx.Rngs):
        rates = tuple(rates)
        if any(isinstance(r, bool) or not isinstance(r, int) or r < 1 for r in rates):
            raise ValueError(f"ASPP: rates must be ints >= 1, got {rates!r}")
        _int_at_least("ASPP", "in_features", in_features)
        _int_at_least("ASPP", "features", features)
        self.rates, self.image_pooling = rates, image_pooling
        self.branch1x1 = _conv(in_features, features, 1, rngs)
        self.atrous = nnx.List([_conv(in_features, features, 3, rngs, kernel_dilation=r)
                                for r in rates])
        self.pool_conv = _conv(in_features, features, 1, rngs) if image_pooling else None
        branches = 1 + len(rates) + int(image_pooling)
        self.project = _conv(branches * features, features, 1, rngs)

    def __call__(self, x):
        outs = [jax.nn.relu(self.branch1x1(x))]
        outs += [jax.nn.relu(conv(x)) for conv in self.atrous]
        if self.pool_conv is not None:
            pooled = jax.nn.relu(self.pool_conv(global_avg_pool(x, keepdims=True)))
            outs.append(jnp.broadcast_to(pooled, x.shape[:3] + pooled.shape[3:]))
        return jax.nn.relu(self.project(jnp.concatenate(outs, axis=-1)))


def _upsample(x, factor):
    return x if factor == 1 else bilinear_upsample(x, factor)


class DeepLabV3(nnx.Module):
    """DeepLab v3 (module docstring): images (N, H, W, in_channels), H and W divisible by 32
    -> logits (N, H, W, num_classes).

    image_size: the scenes the ASPP rates are scaled for (rates = scaled_rates(rates,
    image_size // output_stride)); the network itself runs on any size divisible by 32.
    aspp=False keeps only ASPP's 1x1 branch (and image pooling if asked), for the ablation.
    """

    def __init__(self, num_classes, *, output_stride=8, in_channels=1, width=16, features=64,
                 image_size=64, rates=PAPER_RATES, aspp=True, image_pooling=True,
                 rngs: nnx.Rngs):
        fn = type(self).__name__
        _int_at_least(fn, "num_classes", num_classes, 2)
        if isinstance(output_stride, bool) or output_stride not in OUTPUT_STRIDES:
            raise ValueError(f"{fn}: output_stride must be one of {OUTPUT_STRIDES}, got "
                             f"{output_stride!r}")
        for name, value in (("in_channels", in_channels), ("width", width),
                            ("features", features)):
            _int_at_least(fn, name, value)
        _int_at_least(fn, "image_size", image_size, output_stride)
        self.output_stride, self.in_channels = output_stride, in_channels
        self.backbone = Backbone(in_channels=in_channels, width=width,
                                 output_stride=output_stride, rngs=rngs)
        rates = scaled_rates(rates, image_size // output_stride) if aspp else ()
        self.aspp = ASPP(8 * width, features, rates=rates, image_pooling=image_pooling,
                         rngs=rngs)
        self._head(num_classes, width, features, rngs)

    @property
    def blocks(self):
        """The backbone's blocks (as FCN.blocks), for `from_classifier`."""
        return self.backbone.blocks

    def _head(self, num_classes, width, features, rngs):
        self.classify = _conv(features, num_classes, 1, rngs)

    def __call__(self, images):
        _check_images(type(self).__name__, images, self.in_channels, 32)
        x, _ = self.backbone(images)
        return _upsample(self.classify(self.aspp(x)), self.output_stride)


def from_fcn(model, fcn):
    """Copy a trained FCN's five blocks into a DeepLabV3/V3Plus's backbone, in place, and
    return `model`. Dilation is not a parameter, so the same kernels run at any output stride:
    DeepLab v1's conversion of a trained VGG (drop the last pools, dilate what follows), with
    the course's FCN-8s as the trained network. ValueError if a shape differs (build both with
    the same width and in_channels); TypeError for other kinds of model."""
    if not isinstance(model, DeepLabV3):
        raise TypeError(f"from_fcn: model must be a DeepLabV3 or DeepLabV3Plus, got "
                        f"{type(model).__name__}")
    if len(getattr(fcn, "blocks", ())) != 5:
        raise TypeError(f"from_fcn: fcn must be an FCN (five conv blocks), got "
                        f"{type(fcn).__name__}")
    pairs = [(src, dst) for src_block, dst_block in zip(fcn.blocks, model.backbone.blocks)
             for src, dst in zip(src_block, dst_block)]
    for i, (src, dst) in enumerate(pairs):
        if src.kernel.shape != dst.kernel.shape:
            raise ValueError(f"from_fcn: conv {i} of the FCN has kernel {src.kernel.shape}, the "
                             f"DeepLab backbone's {dst.kernel.shape}; build both with the same "
                             "width and in_channels")
    for src, dst in pairs:
        dst.kernel[...] = jnp.array(src.kernel[...], copy=True)
        dst.bias[...] = jnp.array(src.bias[...], copy=True)
    return model


class DeepLabV3Plus(DeepLabV3):
    """DeepLab v3+ (module docstring): DeepLabV3's encoder and a decoder that fuses the
    stride-4 features of block 2 (projected to low_level_features channels) before the last
    ×4 upsampling. Arguments as DeepLabV3, plus low_level_features and decoder_features."""

    def __init__(self, num_classes, *, low_level_features=16, decoder_features=32, **kwargs):
        _int_at_least("DeepLabV3Plus", "low_level_features", low_level_features)
        _int_at_least("DeepLabV3Plus", "decoder_features", decoder_features)
        self._decoder_sizes = (low_level_features, decoder_features)
        super().__init__(num_classes, **kwargs)

    def _head(self, num_classes, width, features, rngs):
        low, dec = self._decoder_sizes
        self.reduce = _conv(2 * width, low, 1, rngs)
        self.decoder = nnx.List([_conv(features + low, dec, 3, rngs), _conv(dec, dec, 3, rngs)])
        self.classify = _conv(dec, num_classes, 1, rngs)

    def __call__(self, images):
        _check_images(type(self).__name__, images, self.in_channels, 32)
        x, low_level = self.backbone(images)
        x = _upsample(self.aspp(x), self.output_stride // 4)
        x = jnp.concatenate([x, jax.nn.relu(self.reduce(low_level))], axis=-1)
        for conv in self.decoder:
            x = jax.nn.relu(conv(x))
        return _upsample(self.classify(x), 4)
