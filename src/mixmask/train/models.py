"""The model zoo of ``mixmask train``: small CNNs (1-D/2-D), PreAct-ResNet-18, a small U-Net, timm."""

from __future__ import annotations

import torch
from torch import Tensor, nn

from mixmask.errors import MixMaskError

__all__ = ["MODEL_NAMES", "SmallCNN", "PreActResNet18", "UNet", "build_model"]

#: Names accepted by :func:`build_model` (plus ``timm:NAME``).
MODEL_NAMES: tuple[str, ...] = ("cnn", "preact_resnet18", "unet")


def _layers(dims: int) -> tuple[type[nn.Module], type[nn.Module], type[nn.Module]]:
    if dims == 1:
        return nn.Conv1d, nn.BatchNorm1d, nn.MaxPool1d
    if dims == 2:
        return nn.Conv2d, nn.BatchNorm2d, nn.MaxPool2d
    if dims == 3:
        return nn.Conv3d, nn.BatchNorm3d, nn.MaxPool3d
    raise MixMaskError(f"expected 1, 2 or 3 spatial dims, but got {dims}")


class SmallCNN(nn.Module):
    """Four conv-BN-ReLU layers (pooling after the first three), global average pooling, a linear head.

    Args:
        in_channels: C.
        num_classes: K.
        dims: spatial rank (1 for signals ``(B, C, L)``, 2 for images ``(B, C, H, W)``, 3 for volumes).
        width: channels of the first layer (then 2x, 4x, 4x).
    """

    def __init__(self, in_channels: int, num_classes: int, dims: int = 2, width: int = 32) -> None:
        super().__init__()
        conv, norm, pool = _layers(dims)
        layers, channels = [], in_channels
        for i, out in enumerate((width, 2 * width, 4 * width, 4 * width)):
            layers += [conv(channels, out, 3, padding=1, bias=False), norm(out), nn.ReLU(inplace=True)]
            if i < 3:
                layers.append(pool(2))
            channels = out
        self.features = nn.Sequential(*layers)
        self.head = nn.Linear(channels, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, *S)`` → logits ``(B, K)``; sides of at least 8 (three 2x poolings)."""
        return self.head(self.features(x).flatten(2).mean(2))


class _PreActBlock(nn.Module):
    def __init__(self, in_planes: int, planes: int, stride: int) -> None:
        super().__init__()
        self.bn1 = nn.BatchNorm2d(in_planes)
        self.conv1 = nn.Conv2d(in_planes, planes, 3, stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(planes)
        self.conv2 = nn.Conv2d(planes, planes, 3, 1, 1, bias=False)
        self.shortcut = (nn.Conv2d(in_planes, planes, 1, stride, bias=False)
                         if stride != 1 or in_planes != planes else None)

    def forward(self, x: Tensor) -> Tensor:
        out = torch.relu(self.bn1(x))
        skip = self.shortcut(out) if self.shortcut is not None else x
        out = self.conv1(out)
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + skip


class PreActResNet18(nn.Module):
    """PreAct-ResNet-18 for 32x32 inputs (He et al., 2016), the CIFAR model of the FMix paper.

    Args:
        in_channels: C.
        num_classes: K.
        width: channels of the first stage (64 in the paper).
    """

    def __init__(self, in_channels: int, num_classes: int, width: int = 64) -> None:
        super().__init__()
        self.stem = nn.Conv2d(in_channels, width, 3, 1, 1, bias=False)
        blocks, planes = [], width
        for stage in range(4):
            out = width * 2 ** stage
            for block in range(2):
                blocks.append(_PreActBlock(planes, out, 2 if stage > 0 and block == 0 else 1))
                planes = out
        self.blocks = nn.Sequential(*blocks)
        self.bn = nn.BatchNorm2d(planes)
        self.head = nn.Linear(planes, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, H, W)`` → logits ``(B, K)``."""
        out = torch.relu(self.bn(self.blocks(self.stem(x))))
        return self.head(out.flatten(2).mean(2))


class UNet(nn.Module):
    """A small U-Net (Ronneberger et al., 2015) for ``(B, C, *S)`` with sides divisible by ``2 ** (depth - 1)``.

    Each level is two conv-BN-ReLU layers; the encoder halves the sides and doubles the channels
    ``depth - 1`` times, the decoder comes back up with transposed convolutions and skip connections.

    Args:
        in_channels: C.
        num_classes: K (per-pixel logits).
        dims: spatial rank.
        width: channels of the first level (doubled at each level).
        depth: number of levels (the deepest sees the input at ``1 / 2 ** (depth - 1)``).
    """

    def __init__(self, in_channels: int, num_classes: int, dims: int = 2, width: int = 8, depth: int = 5) -> None:
        super().__init__()
        if depth < 2:
            raise MixMaskError(f"UNet depth must be >= 2, but got {depth}")
        conv, norm, pool = _layers(dims)
        up = {1: nn.ConvTranspose1d, 2: nn.ConvTranspose2d, 3: nn.ConvTranspose3d}[dims]

        def block(cin: int, cout: int) -> nn.Sequential:
            return nn.Sequential(conv(cin, cout, 3, padding=1, bias=False), norm(cout), nn.ReLU(inplace=True),
                                 conv(cout, cout, 3, padding=1, bias=False), norm(cout), nn.ReLU(inplace=True))

        chans = [width * 2 ** i for i in range(depth)]
        self.factor = 2 ** (depth - 1)
        self.pool = pool(2)
        self.encoders = nn.ModuleList(block(cin, cout) for cin, cout in zip([in_channels] + chans[:-2], chans[:-1]))
        self.mid = block(chans[-2], chans[-1])
        self.ups = nn.ModuleList(up(chans[i], chans[i - 1], 2, stride=2) for i in range(depth - 1, 0, -1))
        self.decoders = nn.ModuleList(block(2 * chans[i - 1], chans[i - 1]) for i in range(depth - 1, 0, -1))
        self.head = conv(width, num_classes, 1)

    def forward(self, x: Tensor) -> Tensor:
        """``(B, C, *S)`` → logits ``(B, K, *S)``."""
        if any(s % self.factor for s in x.shape[2:]):
            raise MixMaskError(f"UNet of depth {len(self.encoders) + 1} expects spatial sides divisible by "
                               f"{self.factor}, but got {tuple(x.shape[2:])}")
        skips = []
        for encoder in self.encoders:
            x = encoder(x)
            skips.append(x)
            x = self.pool(x)
        x = self.mid(x)
        for up, decoder in zip(self.ups, self.decoders):
            x = decoder(torch.cat([up(x), skips.pop()], 1))
        return self.head(x)


def _model_args(text: str, name: str, allowed: tuple[str, ...] = ("width",)) -> dict[str, int]:
    """``key=N,...`` after a model name (``unet:width=16,depth=4``) as keyword arguments."""
    args: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        key, _, value = part.partition("=")
        if key.strip() not in allowed or not value.strip().isdigit() or int(value) < 1:
            spelled = ",".join(f"{k}=N" for k in allowed)
            raise MixMaskError(f"expected {name} or {name}:{spelled} (N >= 1), but got {name}:{text}")
        args[key.strip()] = int(value)
    return args


def build_model(name: str, input_shape: tuple[int, ...], num_classes: int, task: str = "classification") -> nn.Module:
    """Build a model by name for inputs ``(C, *S)``.

    Args:
        name: ``cnn``, ``preact_resnet18``, ``unet`` (each optionally ``:width=N``, the channels of
            the first stage; ``unet`` also ``:depth=N``, its levels) or ``timm:NAME`` (random init;
            nothing downloaded).
        input_shape: ``(C, *S)`` of one sample.
        num_classes: K.
        task: ``"classification"`` (logits ``(B, K)``) or ``"segmentation"`` (``(B, K, *S)``).

    Returns:
        The module (its weights drawn from the global RNG: seed it, e.g. inside ``fork_rng``).

    Raises:
        MixMaskError: unknown name (the valid ones are listed), a model that does not fit the data's
            rank or task, or timm missing.
    """
    channels, dims = input_shape[0], len(input_shape) - 1
    valid = ", ".join(MODEL_NAMES + ("timm:NAME",))
    if not name.startswith("timm:"):
        name, _, arg_text = name.partition(":")
        width = _model_args(arg_text, name, ("width", "depth") if name == "unet" else ("width",))
    if name == "unet":
        if task != "segmentation":
            raise MixMaskError(f"model 'unet' is for segmentation data, but got {task} data; try 'cnn'")
        return UNet(channels, num_classes, dims, **width)
    if task == "segmentation" and name in MODEL_NAMES + ("timm",):
        raise MixMaskError(f"segmentation data needs a per-pixel model ('unet'), but got {name!r}")
    if name == "cnn":
        return SmallCNN(channels, num_classes, dims, **width)
    if name == "preact_resnet18":
        if dims != 2:
            raise MixMaskError(f"preact_resnet18 takes images (C, H, W), but got inputs of shape {input_shape}")
        return PreActResNet18(channels, num_classes, **width)
    if name.startswith("timm:"):
        try:
            import timm
        except ImportError as err:
            raise MixMaskError(f"model {name!r} needs timm (pip install timm), but it is not installed") from err
        arch = name[len("timm:"):]
        if arch not in timm.list_models():
            close = timm.list_models(f"*{arch}*")[:10]
            raise MixMaskError(f"unknown timm model {arch!r}; close names: {close or 'none'}")
        if dims != 2:
            raise MixMaskError(f"timm models take images (C, H, W), but got inputs of shape {input_shape}")
        return timm.create_model(arch, pretrained=False, num_classes=num_classes, in_chans=channels)
    raise MixMaskError(f"unknown model {name!r}; valid: {valid}")
