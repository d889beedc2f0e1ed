"""Parse a mixing SPEC (``none``, ``mixup:alpha=0.4``, ``choice(cutmix,gridmask)``) into a transform.

Grammar::

    SPEC    := "none" | METHOD [":" ARGS] | "choice(" SPEC {"," SPEC} ")" [":" ARGS]
    METHOD  := mixup | cutmix | fmix | gridmask | resizemix | saliencymix | smoothmix | gridmix | cutout | classmix
    ARGS    := NAME "=" VALUE {"," NAME "=" VALUE}

Arguments are the keyword arguments of the Python class (``mixup:alpha=0.4`` is
``MixUp(alpha=0.4)``); values are Python literals (``0.4``, ``True``, ``(8, 16)``, ``[0.7, 0.3]``).
In a comma-separated list, an item containing ``=`` belongs to the method before it, so
``choice(mixup:alpha=0.2,p=0.5,cutmix)`` and ``none,mixup:alpha=0.4,cutmix`` both read as expected.
"""

from __future__ import annotations

import ast
import inspect
from typing import Any

from mixmask.errors import MixMaskError

__all__ = ["METHOD_NAMES", "parse_mix", "split_specs", "spec_slug"]

#: The names a SPEC may start with.
METHOD_NAMES: tuple[str, ...] = ("none", "mixup", "cutmix", "fmix", "gridmask", "resizemix", "saliencymix",
                                 "smoothmix", "gridmix", "cutout", "classmix", "choice")


def _classes() -> dict[str, type]:
    from mixmask.transforms import (ClassMix, CutMix, Cutout, FMix, GridMask, GridMix, MixUp, ResizeMix, SaliencyMix,
                                    SmoothMix)

    return {"mixup": MixUp, "cutmix": CutMix, "fmix": FMix, "gridmask": GridMask, "resizemix": ResizeMix,
            "saliencymix": SaliencyMix, "smoothmix": SmoothMix, "gridmix": GridMix, "cutout": Cutout,
            "classmix": ClassMix}


def _split_top(text: str) -> list[str]:
    """Split ``text`` at commas outside brackets."""
    parts, depth, start = [], 0, 0
    for i, char in enumerate(text):
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
            if depth < 0:
                raise MixMaskError(f"unbalanced ')' at position {i} of mix spec {text!r}")
        elif char == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    if depth != 0:
        raise MixMaskError(f"unbalanced '(' in mix spec {text!r}")
    parts.append(text[start:])
    return [p.strip() for p in parts]


def split_specs(text: str) -> list[str]:
    """Split a comma-separated list of SPECs; an item with ``=`` continues the SPEC before it.

    Args:
        text: e.g. ``"none,mixup:alpha=0.4,p=0.5,choice(cutmix,gridmask)"``.

    Returns:
        The SPECs, e.g. ``["none", "mixup:alpha=0.4,p=0.5", "choice(cutmix,gridmask)"]``.
    """
    specs: list[str] = []
    for item in _split_top(text.strip()):
        if not item:
            raise MixMaskError(f"expected mix specs separated by single commas, but got an empty item in {text!r}")
        if "=" in item.split("(", 1)[0] and ":" not in item.split("(", 1)[0]:
            if not specs:
                raise MixMaskError(f"argument {item!r} comes before any method in mix spec {text!r}")
            specs[-1] += "," + item
        else:
            specs.append(item)
    return specs


def _value(name: str, text: str, spec: str) -> Any:
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        if text.isidentifier():
            return text
        raise MixMaskError(f"expected a Python literal for {name!r} in mix spec {spec!r}, but got {text!r}") from None


def _arguments(text: str, spec: str, cls: type) -> dict[str, Any]:
    hidden = ("self", "transforms", "kwargs", "seed", "generator", "num_classes")
    allowed = list(dict.fromkeys(p for klass in cls.__mro__[:-1] if "__init__" in vars(klass)
                                 for p in inspect.signature(klass.__init__).parameters if p not in hidden))
    args: dict[str, Any] = {}
    for item in _split_top(text) if text else []:
        name, sep, value = item.partition("=")
        name = name.strip()
        if not sep or not name:
            raise MixMaskError(f"expected NAME=VALUE arguments in mix spec {spec!r}, but got {item!r}")
        if name not in allowed:
            raise MixMaskError(f"unknown argument {name!r} for {cls.__name__} in mix spec {spec!r}; valid: "
                               f"{', '.join(sorted(allowed))}")
        args[name] = _value(name, value.strip(), spec)
    return args


def parse_mix(spec: str, *, num_classes: int | None = None, seed: int | None = None,
              ignore_index: int | None = None, target_format: str | None = None):
    """Build the transform a SPEC names, with the Python API's constructor arguments.

    Args:
        spec: e.g. ``"none"``, ``"mixup:alpha=0.4"``, ``"fmix:decay_power=3"``,
            ``"choice(cutmix,gridmask)"``, ``"choice(mixup,fmix):weights=[0.3,0.7]"``.
        num_classes: K passed to the transform.
        seed: seed of the transform's own generator.
        ignore_index: id of unlabelled pixels in dense targets (segmentation).
        target_format: ``"soft"`` or ``"pair"`` unless the SPEC names one itself.

    Returns:
        A :class:`~mixmask.transforms.MixPolicy`, or None for ``"none"``.

    Raises:
        MixMaskError: unknown method or argument (the message lists the valid ones), bad syntax,
            or arguments the class rejects.
    """
    from mixmask.transforms import MixPolicy, RandomChoice

    if not isinstance(spec, str) or not spec.strip():
        raise MixMaskError(f"expected a mix spec such as 'mixup:alpha=0.4', but got {spec!r}")
    text = spec.strip()
    classes = _classes()
    extra: dict[str, Any] = {} if seed is None else {"seed": seed}
    if ignore_index is not None:
        extra["ignore_index"] = ignore_index
    if target_format is not None and "target_format" not in text:
        extra["target_format"] = target_format
    if text.lower() == "none":
        return None
    try:
        if text.startswith("choice("):
            depth, end = 0, -1
            for i, char in enumerate(text):
                depth += {"(": 1, ")": -1}.get(char, 0)
                if depth == 0 and char == ")":
                    end = i
                    break
            if end < 0:
                raise MixMaskError(f"unbalanced '(' in mix spec {spec!r}")
            rest = text[end + 1:]
            if rest and not rest.startswith(":"):
                raise MixMaskError(f"expected ':' and arguments after 'choice(...)' in mix spec {spec!r}, "
                                   f"but got {rest!r}")
            members = [parse_mix(s) for s in split_specs(text[len("choice("):end])]
            if any(m is None or isinstance(m, RandomChoice) for m in members):
                raise MixMaskError(f"choice(...) takes single methods ({', '.join(classes)}), but got {spec!r}")
            args = _arguments(rest[1:], spec, RandomChoice)
            return RandomChoice(members, num_classes=num_classes, **args, **extra)
        name, _, rest = text.partition(":")
        name = name.strip().lower()
        if name not in classes:
            raise MixMaskError(f"unknown mix method {name!r} in spec {spec!r}; valid: {', '.join(METHOD_NAMES)}")
        cls = classes[name]
        transform = cls(num_classes=num_classes, **_arguments(rest.strip(), spec, cls), **extra)
    except TypeError as err:
        raise MixMaskError(f"bad arguments in mix spec {spec!r}: {err}") from err
    if not isinstance(transform, MixPolicy):
        raise MixMaskError(f"mix spec {spec!r} did not build a transform")
    return transform


def spec_slug(spec: str) -> str:
    """A file-name-safe spelling of a SPEC (for run folders): ``mixup:alpha=0.4`` → ``mixup-alpha=0.4``."""
    keep = "".join(c if c.isalnum() or c in "=.-_" else "-" for c in spec.strip())
    return "-".join(filter(None, keep.split("-"))) or "none"
