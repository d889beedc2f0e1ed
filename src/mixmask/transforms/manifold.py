"""Manifold Mixup: mix the hidden features of a layer with the draw that mixes the labels."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor, nn

from mixmask.errors import MixMaskError
from mixmask.streams import rewinding
from mixmask.transforms.mix import MixPolicy, MixUp

__all__ = ["ManifoldMixup"]

#: The name in ``layers`` that stands for the model's input.
INPUT = "input"


class ManifoldMixup(nn.Module):
    """Manifold Mixup (Verma et al., ICML 2019, "Manifold Mixup: Better Representations by Interpolating
    Hidden States"): each training step draws one of ``layers`` and mixes that layer's output.

    In training mode, ``logits, targets = model(x, labels)`` draws a layer (uniformly, from the
    policy's stream), mixes the layer's output ``h`` — ``(B, C, *S)`` feature maps, or ``(B, D)``
    vectors seen as ``(B, D, 1)`` — with one draw of ``mix`` and mixes the labels with the same draw;
    gradients flow through both ``h[i]`` and ``h[j]``. In eval mode, or without labels, it is the
    wrapped model: ``logits = model(x)``.

    Args:
        model: the network.
        layers: names of submodules (``model.get_submodule`` paths) whose outputs may be mixed, and
            ``"input"`` for the input itself (the paper draws among the input and a few blocks).
        mix: the policy (default ``MixUp(alpha=2.0)``, the paper's CIFAR setting); any mixmask
            transform works, e.g. CutMix on feature maps.
        num_classes: K for sparse labels (default: the policy's).

    Raises:
        MixMaskError: an empty ``layers``, a name that is not a submodule of ``model``, or a layer whose
            output is not a ``(B, C, *S)`` or ``(B, D)`` tensor.

    Example:
        >>> net = ManifoldMixup(model, ["input", "layer1", "layer2"], MixUp(alpha=2.0, num_classes=10))
        >>> logits, targets = net(images, labels)          # training step
        >>> loss = torch.sum(-targets * logits.log_softmax(1), 1).mean()
    """

    def __init__(self, model: nn.Module, layers: Sequence[str], mix: MixPolicy | None = None, *,
                 num_classes: int | None = None) -> None:
        super().__init__()
        if not isinstance(model, nn.Module):
            raise MixMaskError(f"expected a torch.nn.Module, but got {type(model).__name__}")
        if isinstance(layers, str) or not isinstance(layers, Sequence) or not layers:
            raise MixMaskError(f"expected a non-empty list of layer names, but got {layers!r}")
        for name in layers:
            if name != INPUT:
                try:
                    model.get_submodule(name)
                except AttributeError:
                    raise MixMaskError(f"{name!r} is not a submodule of the model; valid: 'input', "
                                       f"{', '.join(repr(n) for n, _ in model.named_modules() if n)}") from None
        mix = MixUp(alpha=2.0) if mix is None else mix
        if not isinstance(mix, MixPolicy):
            raise MixMaskError(f"expected a mixmask transform as mix, but got {type(mix).__name__}")
        self.model = model
        self.layers = list(layers)
        self.mix = mix
        self.num_classes = num_classes

    def _draw_layer(self) -> str:
        stream = self.mix._stream
        with stream.lock, rewinding(stream(), stream.lock) as generator:
            return self.layers[int(torch.randint(len(self.layers), (), generator=generator))]

    def _mix(self, hidden: Tensor, labels: Tensor) -> tuple[Tensor, Tensor]:
        if not isinstance(hidden, Tensor) or hidden.ndim not in (2, 3, 4, 5):
            got = tuple(hidden.shape) if isinstance(hidden, Tensor) else type(hidden).__name__
            raise MixMaskError(f"Manifold Mixup mixes (B, C, *S) or (B, D) outputs, but a layer gave {got}")
        flat = hidden.ndim == 2
        out = self.mix._run(hidden.unsqueeze(-1) if flat else hidden, labels, None, num_classes=self.num_classes,
                            channels_last=False)
        return (out.inputs.squeeze(-1) if flat else out.inputs), out.targets

    def forward(self, inputs: Tensor, labels: Tensor | None = None) -> Any:
        """``(logits, targets)`` in training with labels, else ``logits``."""
        if not self.training or labels is None:
            return self.model(inputs)
        layer = self._draw_layer()
        if layer == INPUT:
            inputs, targets = self._mix(inputs, labels)
            return self.model(inputs), targets
        mixed: dict[str, Tensor] = {}

        def hook(_module: nn.Module, _args: Any, output: Tensor) -> Tensor:
            if "targets" in mixed:  # a module called twice in one forward is mixed once
                return output
            output, mixed["targets"] = self._mix(output, labels)
            return output

        handle = self.model.get_submodule(layer).register_forward_hook(hook)
        try:
            logits = self.model(inputs)
        finally:
            handle.remove()
        if "targets" not in mixed:
            raise MixMaskError(f"layer {layer!r} was not called in the model's forward pass")
        return logits, mixed["targets"]
