"""Pure class-activation-map (CAM) functions shared by the CAM classifiers.

These follow the CAM inference of IRN (Ahn et al., "Weakly Supervised Learning of Instance Segmentation with
Inter-pixel Relations", CVPR 2019), which CSD (Yang et al., "Cross-domain Semantic Decoupling for
Weakly-Supervised Semantic Segmentation", BMVC 2023) keeps for its ResNet-50 baseline: the image is rescaled by
each scale of (1.0, 0.5, 1.5, 2.0), each rescaled image and its horizontal flip give a score map, the maps are
passed through ReLU, brought back to the image size (IRN's make_cam.py: upsampled to the stride-aligned size,
then cropped; see ``output_stride``) and summed; only the image's own classes are kept and each map is divided
by its maximum.

Every function here is free of framework state and works on any device.
"""
from typing import Callable, Optional, Sequence, Tuple

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ['normalize_cams', 'minmax_normalize_cams', 'strided_up_size', 'aggregate_multiscale', 'present_classes']


def _check_cams(name: str, cams: Tensor, eps: float) -> None:
    if not isinstance(cams, Tensor) or cams.dim() != 3:
        raise ValueError(f'{name} expects a tensor of shape (K, H, W), got '
                         f'{tuple(cams.shape) if isinstance(cams, Tensor) else type(cams).__name__}')
    if eps <= 0:
        raise ValueError(f'{name} needs eps > 0, got {eps}')


def normalize_cams(cams: Tensor, eps: float = 1e-5) -> Tensor:
    """Max-normalises each CAM to [0, 1] as IRN does.

    ``out[k] = relu(cams[k]) / (max(relu(cams[k])) + eps)``. A map that is zero everywhere stays zero (no NaN).

    Args:
        cams (Tensor): CAMs of shape ``(K, H, W)``; ``K`` may be 0.
        eps (float): Added to each map's maximum. Defaults to 1e-5 (IRN).

    Returns:
        Tensor: The normalised maps, same shape and dtype as ``cams``.
    """
    _check_cams('normalize_cams', cams, eps)
    cams = F.relu(cams)
    if cams.numel() == 0:
        return cams
    peak = cams.flatten(1).amax(dim=1).view(-1, 1, 1)
    return cams / (peak + eps)


def minmax_normalize_cams(cams: Tensor, eps: float = 1e-8) -> Tensor:
    """Min-max normalises each CAM to [0, 1] as MCTformer does (``engine.py``, ``generate_attention_maps_ms``).

    ``out[k] = (cams[k] - min(cams[k])) / (max(cams[k]) - min(cams[k]) + eps)``. MCTformer's patch-to-patch
    refinement averages every patch with positive attention weights, so its maps have a floor above 0; max
    normalisation (:func:`normalize_cams`) would keep that floor, and a background threshold on such maps
    would find no background. A constant map becomes zero everywhere.

    Args:
        cams (Tensor): CAMs of shape ``(K, H, W)``; ``K`` may be 0.
        eps (float): Added to each map's range. Defaults to 1e-8 (MCTformer).

    Returns:
        Tensor: The normalised maps, same shape and dtype as ``cams``.
    """
    _check_cams('minmax_normalize_cams', cams, eps)
    if cams.numel() == 0:
        return cams
    flat = cams.flatten(1)
    low = flat.amin(dim=1).view(-1, 1, 1)
    high = flat.amax(dim=1).view(-1, 1, 1)
    return (cams - low) / (high - low + eps)


def strided_up_size(size: Tuple[int, int], stride: int) -> Tuple[int, int]:
    """The smallest multiple of ``stride`` that covers each side of ``size`` (IRN's ``get_strided_up_size``).

    ``((H - 1) // stride + 1) * stride`` by ``((W - 1) // stride + 1) * stride``; e.g. ``(33, 32)`` with stride 16
    gives ``(48, 32)``. IRN upsamples each scale's CAM to this size, so that every score-map cell covers exactly
    ``stride`` pixels, and crops the sum to ``H x W``.

    Args:
        size (tuple[int, int]): ``(H, W)``, both >= 1.
        stride (int): Output stride of the network (>= 1).

    Returns:
        tuple[int, int]: The stride-aligned ``(H', W')`` with ``H <= H' < H + stride`` (same for W).
    """
    if isinstance(stride, bool) or not isinstance(stride, int) or stride < 1:
        raise ValueError(f'strided_up_size: output_stride must be a positive integer, got {stride!r}')
    h, w = (int(v) for v in size)
    if h < 1 or w < 1:
        raise ValueError(f'strided_up_size needs a non-empty size, got {tuple(size)}')
    return ((h - 1) // stride + 1) * stride, ((w - 1) // stride + 1) * stride


def _resize_image(img: Tensor, scale: float, mode: str) -> Tensor:
    """Rescales ``img`` (N, 3, H, W) to ``round(H * scale) x round(W * scale)`` (at least 1 x 1).

    Python's ``round`` rounds halves to even, as IRN's ``np.round`` in ``pil_rescale``; scale 1 returns ``img``
    unchanged, as IRN. IRN resizes the ``uint8`` image with PIL before normalising; torch's antialiased bicubic
    on the normalised float image agrees with PIL to about one grey level (no uint8 rounding or clipping here).
    """
    h, w = img.shape[-2:]
    size = (max(1, int(round(h * scale))), max(1, int(round(w * scale))))
    if size == (h, w):
        return img
    kwargs = {}
    if mode in ('bilinear', 'bicubic'):
        # antialias=True matches PIL's resize, which IRN uses to rescale its test images
        kwargs = dict(align_corners=False, antialias=True)
    return F.interpolate(img, size=size, mode=mode, **kwargs)


def aggregate_multiscale(score_fn: Callable[[Tensor], Tensor],
                         img: Tensor,
                         scales: Sequence[float] = (1.0, 0.5, 1.5, 2.0),
                         flip: bool = True,
                         out_size: Optional[Tuple[int, int]] = None,
                         resize_mode: str = 'bicubic',
                         output_stride: Optional[int] = None,
                         classes: Optional[Tensor] = None) -> Tensor:
    """Multi-scale (and flip) CAM aggregation of IRN.

    For each scale ``s`` the image is rescaled to ``round(H * s) x round(W * s)``; the rescaled image and, when
    ``flip`` is set, its horizontal flip go through ``score_fn`` in one batch of 2; the score maps pass through
    ReLU, the flipped one is flipped back, both are bilinearly upsampled (``align_corners=False``) to
    ``out_size`` and everything is summed over scales and flips.

    With ``output_stride`` set, the maps are instead upsampled to the stride-aligned size
    :func:`strided_up_size` of ``out_size`` and the sum is cropped (top-left) to ``out_size``, as IRN's
    ``step/make_cam.py`` does for its ``high_res`` CAMs with stride 16. Each cell of the scale-1 score map then
    covers exactly ``stride`` pixels, whereas a direct resize stretches the map over ``out_size``; the two place
    the cells differently, by up to almost one stride towards the bottom / right edges.

    Args:
        score_fn (Callable): Maps an image batch ``(B, 3, h, w)`` to score maps ``(B, C, h', w')`` (e.g. the
            classifier's score map F before pooling).
        img (Tensor): One image ``(1, 3, H, W)`` (already normalised as the network expects).
        scales (Sequence[float]): Rescaling factors. Defaults to IRN's (1.0, 0.5, 1.5, 2.0).
        flip (bool): Also use each rescaled image's horizontal flip. Defaults to True.
        out_size (tuple[int, int], optional): ``(H_out, W_out)`` of the result. Defaults to ``(H, W)``.
        resize_mode (str): ``F.interpolate`` mode that rescales the image (antialiased for 'bilinear' and
            'bicubic'). Defaults to 'bicubic' (IRN rescales with PIL bicubic).
        output_stride (int, optional): Network output stride for IRN's upsample-then-crop (16 for IRN's
            ResNet-50). Defaults to None: resize straight to ``out_size``.
        classes (Tensor, optional): Indices of the score-map channels to keep (e.g. an image's classes, from
            :func:`present_classes`); they are picked before the upsampling, which works channel by channel, so
            the result equals upsampling all C maps and picking afterwards, at K / C of the cost. Defaults to
            None (all channels).

    Returns:
        Tensor: The summed, non-negative maps, shape ``(C, H_out, W_out)`` (``(K, H_out, W_out)`` with
        ``classes``).
    """
    if not isinstance(img, Tensor) or img.dim() != 4 or img.shape[0] != 1:
        raise ValueError('aggregate_multiscale expects one image of shape (1, 3, H, W), got '
                         f'{tuple(img.shape) if isinstance(img, Tensor) else type(img).__name__}')
    scales = tuple(float(s) for s in scales)
    if len(scales) == 0 or any(s <= 0 for s in scales):
        raise ValueError('aggregate_multiscale needs a non-empty list of positive scales, '
                         f'got {scales}')
    if out_size is None:
        out_size = tuple(img.shape[-2:])
    out_size = (int(out_size[0]), int(out_size[1]))
    if min(out_size) < 1:
        raise ValueError(f'aggregate_multiscale got an empty out_size {out_size}')
    up_size = out_size if output_stride is None else strided_up_size(out_size, output_stride)
    if classes is not None and classes.numel() == 0:  # an image without classes: nothing to compute
        return img.new_zeros((0, ) + out_size)

    total = None
    for scale in scales:
        x = _resize_image(img, scale, resize_mode)
        if flip:
            x = torch.cat([x, x.flip(-1)], dim=0)
        maps = score_fn(x)
        if not isinstance(maps, Tensor) or maps.dim() != 4 or maps.shape[0] != x.shape[0]:
            raise ValueError(f'aggregate_multiscale: score_fn must return a tensor (B, C, h, w) with B = {x.shape[0]}, '
                             f'got {tuple(maps.shape) if isinstance(maps, Tensor) else type(maps).__name__}')
        if classes is not None:
            maps = maps[:, classes.to(maps.device)]
        maps = F.relu(maps)
        # bilinear resizing is linear and commutes with the flip, so the flip pair is summed first
        maps = maps[:1] + maps[1:].flip(-1) if flip else maps
        maps = F.interpolate(maps, size=up_size, mode='bilinear', align_corners=False)[0]
        total = maps if total is None else total + maps
    return total[:, :out_size[0], :out_size[1]]


def present_classes(label: Tensor, num_classes: int) -> Tensor:
    """The 0-based ids of the classes present in a multi-hot image-level label.

    Args:
        label (Tensor): Multi-hot label ``[num_classes]``; a class is present where ``label > 0``.
        num_classes (int): The number of classes (maps) the label must describe.

    Returns:
        Tensor: Long ``[K]``, ascending, on ``label``'s device.
    """
    label = torch.as_tensor(label)
    if label.dim() != 1 or label.shape[0] != num_classes:
        raise ValueError(f'present_classes needs a label of shape [{num_classes}] (one entry '
                         f'per CAM), got {tuple(label.shape)}')
    return torch.nonzero(label > 0, as_tuple=False).flatten().long()
