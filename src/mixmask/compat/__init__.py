"""Drop-in faces for code written against timm's and torchvision's mixing transforms.

Import a face explicitly; ``import mixmask`` imports neither timm nor torchvision::

    from mixmask.compat.timm import Mixup, FastCollateMixup      # timm's arguments and call
    from mixmask.compat.torchvision import MixUp, CutMix         # torchvision v2's arguments and call

Each face takes the peer's arguments with the peer's meanings and is built on a mixmask policy, so
the labels are the area the mask actually kept and the caller's batch is never written. What differs
from the peer is listed in each class's docstring and in ``docs/migrating.md``.
"""

__all__: list[str] = []
