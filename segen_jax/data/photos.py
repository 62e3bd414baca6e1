"""A real photograph for the filter demos, shipped by a dependency (no download).

`sample_photo()` reads matplotlib's sample image `grace_hopper.jpg` (a portrait of Rear Admiral
Grace M. Hopper, U.S. Navy photograph, public domain), which every matplotlib install carries.
"""
import matplotlib.cbook
import matplotlib.image
import numpy as np


def sample_photo(*, gray: bool = True) -> np.ndarray:
    """The photograph as float32 in [0, 1]: (600, 512) grey levels, or (600, 512, 3) RGB.

    Grey = 0.299 R + 0.587 G + 0.114 B (ITU-R BT.601 luma).
    """
    path = matplotlib.cbook.get_sample_data("grace_hopper.jpg", asfileobj=False)
    rgb = matplotlib.image.imread(path).astype(np.float32) / 255.0
    if not gray:
        return rgb
    return rgb @ np.array([0.299, 0.587, 0.114], np.float32)
