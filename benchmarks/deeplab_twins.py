"""PyTorch twins of segen_jax's DeepLabV3 and DeepLabV3Plus (models/deeplab.py), for
benchmarks.train_step: the same layers in the same order, so parameters copy one to one.

Atrous 3x3 convolutions pad by their rate (XLA's "SAME" for a dilated 3x3 kernel); bilinear
upsampling is F.interpolate(..., mode="bilinear", align_corners=False), the half-pixel rule of
segen_jax.ops.bilinear_upsample; image pooling is the mean over H, W, broadcast back.
"""
from segen_jax.models.deeplab import PAPER_RATES, backbone_plan, scaled_rates


def torch_deeplab(torch, *, plus, output_stride=8, width=16, features=64, k=11, image_size=64,
                  low_level_features=16, decoder_features=32):
    nn, functional = torch.nn, torch.nn.functional
    widths = [1, width, 2 * width, 4 * width, 8 * width, 8 * width]
    plan = backbone_plan(output_stride)
    rates = scaled_rates(PAPER_RATES, image_size // output_stride)

    def conv(cin, cout, size, rate=1):
        return nn.Conv2d(cin, cout, size, padding=rate * (size // 2), dilation=rate)

    def up(x, factor):
        return x if factor == 1 else functional.interpolate(x, scale_factor=factor,
                                                            mode="bilinear", align_corners=False)

    class DeepLab(nn.Module):
        def __init__(self):
            super().__init__()
            self.blocks = nn.ModuleList([nn.ModuleList([conv(widths[i], widths[i + 1], 3, r),
                                                        conv(widths[i + 1], widths[i + 1], 3, r)])
                                         for i, (r, _) in enumerate(plan)])
            self.branch1x1 = conv(8 * width, features, 1)
            self.atrous = nn.ModuleList([conv(8 * width, features, 3, r) for r in rates])
            self.pool_conv = conv(8 * width, features, 1)
            self.project = conv((2 + len(rates)) * features, features, 1)
            if plus:
                self.reduce = conv(2 * width, low_level_features, 1)
                self.decoder = nn.ModuleList([conv(features + low_level_features,
                                                   decoder_features, 3),
                                              conv(decoder_features, decoder_features, 3)])
            self.classify = conv(decoder_features if plus else features, k, 1)

        def forward(self, x):
            low = None
            for i, (block, (_, pool)) in enumerate(zip(self.blocks, plan)):
                for layer in block:
                    x = torch.relu(layer(x))
                if pool:
                    x = functional.max_pool2d(x, 2)
                if i == 1:
                    low = x
            pooled = torch.relu(self.pool_conv(x.mean((2, 3), keepdim=True)))
            outs = ([torch.relu(self.branch1x1(x))] + [torch.relu(c(x)) for c in self.atrous]
                    + [pooled.expand(-1, -1, x.shape[2], x.shape[3])])
            x = torch.relu(self.project(torch.cat(outs, 1)))
            if not plus:
                return up(self.classify(x), output_stride)
            x = torch.cat([up(x, output_stride // 4), torch.relu(self.reduce(low))], 1)
            for layer in self.decoder:
                x = torch.relu(layer(x))
            return up(self.classify(x), 4)

    return DeepLab()


def jax_layers(model):
    """The JAX model's convolutions in the twin's parameter order."""
    aspp = model.aspp
    layers = [c for block in model.backbone.blocks for c in block]
    layers += [aspp.branch1x1, *aspp.atrous, aspp.pool_conv, aspp.project]
    if hasattr(model, "decoder"):
        layers += [model.reduce, *model.decoder]
    return layers + [model.classify]


def copy_jax_to_torch(torch, model, net):
    """HWIO kernels → OIHW, biases as they are (benchmarks.fcn_vs_torch.copy_layers)."""
    from benchmarks.fcn_vs_torch import copy_layers
    copy_layers(torch, jax_layers(model), net)
