"""Data sets and loaders: the users' own folders, the embedded shapes data set, joint transforms.

Pillow, torchvision and the other optional dependencies are imported when first used.
"""

from mixmask.data.folders import ClassFolder, ImageMaskFolder
from mixmask.data.joint import JointTransform, joint_transforms
from mixmask.data.shapes import IGNORE_INDEX, SHAPE_CLASSES, ShapesDataset, write_shapes

__all__ = ["ImageMaskFolder", "ClassFolder", "ShapesDataset", "write_shapes", "joint_transforms", "JointTransform",
           "IGNORE_INDEX", "SHAPE_CLASSES"]
