"""IRN's random crop-or-pad (Ahn et al., "Weakly Supervised Learning of Instance Segmentation with Inter-pixel
Relations", CVPR 2019), pure numpy.

IRN trains its CAM network on ``crop x crop`` containers (512 on VOC). Along each axis independently, an image
larger than the container is cropped at a uniformly random offset, and an image smaller than the container is
placed at a uniformly random offset inside it; the rest of the container keeps a fill value (0 after IRN's
normalisation, i.e. the mean colour; 255, "ignore", for label maps). CSD (Yang et al., "Cross-domain Semantic
Decoupling for Weakly-Supervised Semantic Segmentation", BMVC 2023) keeps this augmentation for its ResNet-50
baseline.

Both cases are one signed integer per axis, the *shift* ``t``: container position ``y`` holds image position
``y - t``. A larger image (``size > crop``) has ``t`` in ``[crop - size, 0]`` (the crop window starts at image
row ``-t``); a smaller one has ``t`` in ``[0, crop - size]`` (the image starts at container row ``t``); an equal
one has ``t = 0``. Drawing ``t`` uniformly from that range is exactly IRN's draw (``randrange(|crop - size| + 1)``
on each axis).
"""
from functools import lru_cache
from numbers import Integral, Real
from typing import Optional, Sequence, Tuple, Union

import numpy as np

__all__ = ['shift_range', 'crop_or_pad']


PadValue = Union[Real, Sequence[Real]]


def shift_range(size: int, crop: int) -> Tuple[int, int]:
    """Inclusive range ``(lo, hi)`` of the shift of an axis of length ``size`` in a container of length ``crop``.

    ``(crop - size, 0)`` when the image is larger (it is cropped), ``(0, crop - size)`` when it is smaller (it is
    padded), ``(0, 0)`` when both are equal. E.g. ``shift_range(5, 3) == (-2, 0)``, ``shift_range(3, 5) == (0, 2)``.

    Args:
        size (int): Image length along the axis (>= 1).
        crop (int): Container length along the axis (>= 1).

    Returns:
        tuple[int, int]: ``(min(0, crop - size), max(0, crop - size))``.
    """
    for name, value in (('size', size), ('crop', crop)):
        if not isinstance(value, Integral) or isinstance(value, bool) or value < 1:
            raise ValueError(f'shift_range needs a positive integer {name}, got {value!r}')
    diff = int(crop) - int(size)
    return min(0, diff), max(0, diff)


def _axis_slices(size: int, crop: int, shift: int) -> Tuple[slice, slice]:
    """(container slice, image slice) of one axis for a valid ``shift``."""
    lo, hi = shift_range(size, crop)
    if not isinstance(shift, Integral) or isinstance(shift, bool) or not lo <= shift <= hi:
        raise ValueError(f'crop_or_pad: a shift for an axis of length {size} in a container of length {crop} must be '
                         f'an integer in [{lo}, {hi}], got {shift!r}')
    shift = int(shift)
    length = min(size, crop)
    dst, src = max(shift, 0), max(-shift, 0)
    return slice(dst, dst + length), slice(src, src + length)


@lru_cache(maxsize=64)
def _checked_fill_value(pad_val: PadValue, dtype: str, channels: Optional[int], shape: tuple = ()) -> np.ndarray:
    """The fill value as an array of ``dtype``, checked against the dtype and the channel count.

    Cached (read-only result): a transform fills with the same value on every call, and the check was about a
    tenth of a toy training sample's preparation. ``shape`` only names the array in error messages.
    """
    values = np.asarray(pad_val, dtype=np.float64)
    if values.ndim > 1 or (values.ndim == 1 and values.shape[0] != channels):
        raise ValueError('crop_or_pad: pad_val must be one number or one number per channel '
                         f'({channels if channels is not None else "the array has no channel axis"}), '
                         f'got {pad_val!r} for an array of shape {shape}')
    if not np.all(np.isfinite(values)):
        raise ValueError(f'crop_or_pad: pad_val must be finite, got {pad_val!r}')
    dtype = np.dtype(dtype)
    if np.issubdtype(dtype, np.integer):
        info = np.iinfo(dtype)
        if np.any(values != np.round(values)) or np.any(values < info.min) or np.any(values > info.max):
            raise ValueError(f'crop_or_pad: pad_val {pad_val!r} is not representable in the {dtype} array '
                             f'(integers in [{info.min}, {info.max}]); round it first, e.g. the ImageNet mean in BGR '
                             f'order is (104, 116, 124)')
    fill = values.astype(dtype)
    fill.setflags(write=False)
    return fill


def _fill_value(pad_val: PadValue, arr: np.ndarray) -> np.ndarray:
    """The fill value as an array broadcastable to ``arr``'s pixels (see :func:`_checked_fill_value`)."""
    channels = arr.shape[2] if arr.ndim == 3 else None
    try:
        return _checked_fill_value(pad_val, arr.dtype.str, channels)
    except (TypeError, ValueError):  # unhashable (a list, an array): uncached; an error: again, naming the shape
        return _checked_fill_value.__wrapped__(pad_val, arr.dtype.str, channels, arr.shape)


def crop_or_pad(arr: np.ndarray, crop_size: Tuple[int, int], shift: Tuple[int, int],
                pad_val: PadValue) -> np.ndarray:
    """Crops and/or pads ``arr`` into a ``crop_size`` container at a given per-axis shift (IRN's random crop).

    ``out[y, x] = arr[y - shift[0], x - shift[1]]`` where that pixel exists, ``pad_val`` elsewhere. Use the same
    ``shift`` for an image and its label maps to keep them pixel-aligned.

    Example: a 2 x 4 image into a 3 x 3 container with ``shift=(1, -1)`` (rows padded, the image starting at
    container row 1; columns cropped, the window starting at image column 1)::

        arr = [[0, 1, 2, 3],          out = [[9, 9, 9],
               [4, 5, 6, 7]]                 [1, 2, 3],
                                             [5, 6, 7]]      (pad_val = 9)

    Args:
        arr (np.ndarray): ``[H, W]`` or ``[H, W, C]`` array (image or label map).
        crop_size (tuple[int, int]): ``(h, w)`` of the container.
        shift (tuple[int, int]): ``(t_y, t_x)``, each in :func:`shift_range` of its axis.
        pad_val (float | Sequence[float]): Fill value, one number or one per channel; for integer arrays it
            must be an integer that the dtype holds.

    Returns:
        np.ndarray: A new ``crop_size`` (+ channels) array of ``arr``'s dtype.
    """
    if not isinstance(arr, np.ndarray) or arr.ndim not in (2, 3):
        raise ValueError('crop_or_pad expects an [H, W] or [H, W, C] numpy array, got '
                         f'{arr.shape if isinstance(arr, np.ndarray) else type(arr).__name__}')
    if len(crop_size) != 2 or len(shift) != 2:
        raise ValueError(f'crop_or_pad: crop_size and shift must be (h, w) pairs, got {crop_size!r} and {shift!r}')
    (dst_y, src_y), (dst_x, src_x) = (_axis_slices(arr.shape[0], crop_size[0], shift[0]),
                                      _axis_slices(arr.shape[1], crop_size[1], shift[1]))
    out = np.empty((int(crop_size[0]), int(crop_size[1])) + arr.shape[2:], dtype=arr.dtype)
    out[...] = _fill_value(pad_val, arr)
    out[dst_y, dst_x] = arr[src_y, src_x]
    return out
