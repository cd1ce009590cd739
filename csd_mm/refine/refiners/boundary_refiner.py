"""Refiner: CAMs of one image -> IRN random-walk pseudo mask on a class-boundary map (Ahn, Cho & Kwak,
"Weakly Supervised Learning of Instance Segmentation with Inter-pixel Relations", CVPR 2019), the refinement of
the IRN pipeline that the ResNet baseline of Yang et al., "Cross-domain Semantic Decoupling for Weakly-Supervised
Semantic Segmentation" (BMVC 2023) follows.

Steps (IRN's ``make_sem_seg_labels.py``): the trained :class:`~csd_mm.refine.models.BoundaryNet` gives the boundary
map of the image (IRN averages the logits of the image and of its horizontal flip; the normalised image is
zero-padded bottom / right to ``size_divisor`` and the map cropped back to ``ceil(size / stride)``); the CAMs (no
background channel) are average-pooled to the map's size;
:func:`~csd_mm.refine.functional.boundary_affinity.boundary_random_walk` multiplies them by ``1 - B`` and propagates
them ``2 ** exp_times`` steps with ``T = D^-1 A^beta``; bilinear upsampling to the image size; division by the
maximum over all classes and positions; a constant background score ``bg_threshold`` (IRN's ``sem_seg_bg_thres``) in
front; argmax (ties to background) -> mask values ``0`` / ``keys + 1``.
"""
from typing import Optional, Union

import mmcv
import numpy as np
import torch
from mmengine.runner.checkpoint import load_state_dict
from mmseg.registry import MODELS
from mmseg.utils import stack_batch

from ...registry import REFINERS
from ...utils.checkpoint import check_checkpoint_matches
from ..functional.boundary_affinity import boundary_random_walk
from ..functional.stride_grid import grid_size, map_stride, pool_to_grid, upsample_from_grid

__all__ = ['IRNBoundaryRefiner']


@REFINERS.register_module()
class IRNBoundaryRefiner:
    """IRN boundary random-walk refiner; config ``dict(type=IRNBoundaryRefiner, model=..., checkpoint=...)``.

    Args:
        model (dict | nn.Module): :class:`~csd_mm.refine.models.BoundaryNet` config, or a built module
            with a ``data_preprocessor`` and a ``boundary_logits(inputs) -> (N, 1, h, w)`` method.
        checkpoint (str, optional): Trained weights (mmengine checkpoint, loaded ``weights_only`` via
            :mod:`csd_mm.compat`). None keeps the model as given (tests).
        beta (float): Affinity power. Defaults to 10 (IRN).
        exp_times (int): log2 of the number of random-walk steps. Defaults to 8 (IRN).
        bg_threshold (float): Constant background score against the max-normalised walked CAMs. Defaults to
            0.25 (IRN's ``sem_seg_bg_thres``).
        radius (int): Pair radius of the walk. Defaults to 5 (IRN's inference; its training uses 10).
        flip (bool): Average the boundary logits of the image and its horizontal flip (IRN). Defaults to True.
        weight_by_boundary (bool): Multiply the CAMs by ``1 - B`` before the walk (IRN). Defaults to True.
        img_scale (int): Integer factor by which the image is enlarged (bilinear) before the model, so the
            boundary map is finer than 1/4 of the original image; the model's stride must be a multiple of it.
            IRN: 1 (its images are ~500 pixels); the 64x64 toy uses more. Defaults to 1.
        size_divisor (int): The normalised image is zero-padded bottom / right to a multiple of this (IRN pads
            to its crop size, 512), so every backbone level aligns with the boundary map. Defaults to 16 (the
            coarsest stride of IRN's backbone).
        device (str): Device to run the model and the walk on. Defaults to 'cpu'.
    """

    def __init__(self,
                 model: Union[dict, torch.nn.Module],
                 checkpoint: Optional[str] = None,
                 beta: float = 10.0,
                 exp_times: int = 8,
                 bg_threshold: float = 0.25,
                 radius: int = 5,
                 flip: bool = True,
                 weight_by_boundary: bool = True,
                 img_scale: int = 1,
                 size_divisor: int = 16,
                 device: str = 'cpu') -> None:
        self.model = MODELS.build(model) if isinstance(model, dict) else model
        if not hasattr(self.model, 'boundary_logits') or not hasattr(self.model, 'data_preprocessor'):
            raise TypeError('IRNBoundaryRefiner: the model must have boundary_logits() and a data_preprocessor (a '
                            f'BoundaryNet), got {type(self.model).__name__}')
        if checkpoint is not None:
            # mmengine's load is non-strict: refuse other models; the checked state dict is loaded (one read)
            load_state_dict(self.model, check_checkpoint_matches(self.model, checkpoint), strict=True)
        self.model.to(device).eval()
        self.device = device
        self.beta = float(beta)
        self.exp_times = int(exp_times)
        self.bg_threshold = float(bg_threshold)
        self.radius = int(radius)
        self.flip = bool(flip)
        self.weight_by_boundary = bool(weight_by_boundary)
        self.img_scale = int(img_scale)
        self.size_divisor = int(size_divisor)
        if self.size_divisor < 1 or self.img_scale < 1:
            raise ValueError(f'IRNBoundaryRefiner: size_divisor and img_scale must be >= 1, got {size_divisor}, '
                             f'{img_scale}')

    @torch.no_grad()
    def boundary(self, img: np.ndarray) -> tuple:
        """Boundary map of one RGB uint8 image: ``(B (h, w) tensor in [0, 1], cell)``.

        ``cell`` is the size of a map position in image pixels (the model's stride / ``img_scale``);
        ``h = ceil(H / cell)`` and ``w = ceil(W / cell)``: the part of the map that covers the image.
        """
        img = np.asarray(img)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f'IRNBoundaryRefiner: img must be an (H, W, 3) uint8 RGB image, got {img.shape} '
                             f'{img.dtype}')
        if self.img_scale > 1:
            img = mmcv.imresize(img, (img.shape[1] * self.img_scale, img.shape[0] * self.img_scale),
                                interpolation='bilinear')
        h, w = img.shape[:2]
        # the data preprocessor expects what the loading pipeline gives: BGR uint8 (3, H, W)
        bgr = torch.from_numpy(np.ascontiguousarray(img[..., ::-1].transpose(2, 0, 1)))
        inputs = self.model.data_preprocessor(dict(inputs=[bgr], data_samples=None), False)['inputs']
        # mmseg's padding (SegDataPreProcessor's): the normalised image, bottom / right, 0s (as IRN)
        inputs, _ = stack_batch(list(inputs.to(self.device)), size_divisor=self.size_divisor)
        if self.flip:
            inputs = torch.cat([inputs, inputs.flip(-1)])
        logits = self.model.boundary_logits(inputs)
        if logits.dim() != 4 or logits.shape[1] != 1:
            raise ValueError(f'IRNBoundaryRefiner: boundary_logits must return (N, 1, h, w), got {tuple(logits.shape)}')
        logits = logits[:, 0].float()
        logit = (logits[0] + logits[1].flip(-1)) / 2 if self.flip else logits[0]
        stride = map_stride(inputs.shape[-2:], logit.shape, 'IRNBoundaryRefiner')
        if stride % self.img_scale:
            raise ValueError(f'IRNBoundaryRefiner: the model\'s stride {stride} is not a multiple of img_scale '
                             f'{self.img_scale}')
        gh, gw = grid_size((h, w), stride)
        return torch.sigmoid(logit[:gh, :gw]), stride // self.img_scale

    @torch.no_grad()
    def scores(self, img: np.ndarray, cam: np.ndarray) -> torch.Tensor:
        """Label scores ``(K + 1, H, W)`` of one image: ``bg_threshold`` first, then the normalised walk."""
        cam = np.asarray(cam, dtype=np.float32)
        img_shape = np.asarray(img).shape[:2]
        if cam.ndim != 3 or cam.shape[1:] != img_shape:
            raise ValueError(f'IRNBoundaryRefiner: cam must be (K, H, W) at the image size {img_shape}, got '
                             f'{cam.shape}')
        if not np.all(np.isfinite(cam)):
            raise ValueError('IRNBoundaryRefiner: cam contains NaN or inf values')
        bnd, cell = self.boundary(img)
        h, w = img_shape
        # average pooling over the map's cells (zeros beyond the image): one position per block of pixels (IRN
        # walks its stride-4 CAM instead; docs/method.md section 8)
        small = pool_to_grid(torch.from_numpy(cam).to(self.device), cell)
        walked = boundary_random_walk(bnd, small, beta=self.beta, exp_times=self.exp_times, radius=self.radius,
                                      weight_by_boundary=self.weight_by_boundary)
        up = upsample_from_grid(walked, cell, (h, w))  # cropped before the division by the maximum, as IRN
        peak = up.max() if up.numel() else up.new_tensor(0.0)
        if peak > 0:
            up = up / peak
        bg = torch.full((1, h, w), self.bg_threshold, dtype=up.dtype, device=up.device)
        return torch.cat([bg, up]).cpu()

    def __call__(self, img: np.ndarray, cam: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """Returns the ``uint8 (H, W)`` mask (0 or ``keys + 1``) of one image."""
        keys = np.asarray(keys).reshape(-1)
        cam = np.asarray(cam, dtype=np.float32)
        if cam.ndim != 3 or cam.shape[0] != keys.shape[0]:
            raise ValueError(f'IRNBoundaryRefiner: cam (K, H, W) and keys [K] disagree: {cam.shape} vs {keys.shape}')
        if keys.size and (not np.issubdtype(keys.dtype, np.integer) or keys.min() < 0 or keys.max() > 253):
            raise ValueError('IRNBoundaryRefiner: keys must be integers in [0, 253] (mask values keys + 1), got '
                             f'{keys.tolist()}')
        if keys.size == 0:
            return np.zeros(np.asarray(img).shape[:2], dtype=np.uint8)
        values = np.concatenate([[0], keys.astype(np.int64) + 1]).astype(np.uint8)
        return values[self.scores(img, cam).argmax(dim=0).numpy()]

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(beta={self.beta}, exp_times={self.exp_times}, '
                f'bg_threshold={self.bg_threshold}, radius={self.radius}, flip={self.flip}, '
                f'weight_by_boundary={self.weight_by_boundary}, img_scale={self.img_scale}, '
                f'size_divisor={self.size_divisor})')
