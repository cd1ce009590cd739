"""Refiner: CAMs of one image -> PSA random-walk pseudo mask (Ahn & Kwak, CVPR 2018; MCTformer, Xu et al.,
CVPR 2022), as used for the MCTformer pseudo masks of Yang et al., "Cross-domain Semantic Decoupling for
Weakly-Supervised Semantic Segmentation" (BMVC 2023).

Steps (PSA's ``infer_aff.py``): the normalised image is zero-padded at the bottom / right to a multiple of 8 and
the trained :class:`~csd_mm.refine.models.AffinityNet` embeds it (``ceil(H / 8) x ceil(W / 8)`` positions, each on
its own 8x8 block of pixels); label scores ``[bg, cam_1 .. cam_K]`` (bg = ``(1 - max cam) ** alpha`` with PSA's
alpha 16, or a constant ``bg_threshold`` as MCTformer's fork of PSA) are computed at the image size, zero-padded
the same way and average-pooled by 8 onto the embedding grid;
:func:`~csd_mm.refine.functional.affinity.random_walk_refine` propagates them ``2 ** logt`` steps with
``T = D^-1 A^beta``; bilinear upsampling by 8 (``align_corners=False``), cropping back to the image, argmax (no
normalisation in between) -> mask values ``0`` / ``keys + 1``. The geometry is
:mod:`csd_mm.refine.functional.stride_grid`, shared with the IRN refiner.
"""
from typing import Optional, Union

import numpy as np
import torch
from mmengine.runner.checkpoint import load_state_dict
from mmseg.registry import MODELS
from mmseg.utils import stack_batch

from ...registry import REFINERS
from ...utils.checkpoint import check_checkpoint_matches
from ..functional.affinity import random_walk_refine
from ..functional.crf import cam_label_scores
from ..functional.stride_grid import grid_size, map_stride, pool_to_grid, upsample_from_grid

__all__ = ['AffinityRandomWalkRefiner']


@REFINERS.register_module()
class AffinityRandomWalkRefiner:
    """PSA random-walk refiner; config ``dict(type=AffinityRandomWalkRefiner, model=..., checkpoint=...)``.

    Args:
        model (dict | nn.Module): :class:`~csd_mm.refine.models.AffinityNet` config (or a built model).
        checkpoint (str, optional): Trained weights (mmengine checkpoint, loaded ``weights_only`` via
            :mod:`csd_mm.compat`). None keeps the model as given (tests).
        beta (float): Affinity power. Defaults to 8 (PSA).
        logt (int): log2 of the number of random-walk steps. Defaults to 8 (PSA; MCTformer's fork uses 6).
        alpha (float): Background power ``(1 - max cam) ** alpha`` when ``bg_threshold`` is None. Defaults to
            16 (PSA ``infer_aff.py``).
        bg_threshold (float, optional): Constant background score instead of the power: MCTformer's
            ``infer_aff.py --bg_thr`` (0.39, its best seed threshold), IRN-style. Since the walk averages, a
            constant background stays that constant, except in the partial cells at the bottom / right edge,
            which average in the zero padding (as MCTformer's). Defaults to None.
        radius (int, optional): Pair radius; defaults to the model's ``radius`` (5).
        size_divisor (int): The normalised image is zero-padded bottom / right to a multiple of this before the
            model (PSA: 8, its network's stride), so every embedding position covers one block of pixels; a
            multiple of the model's stride. Defaults to 8.
        device (str): Device to run the model on. Defaults to 'cpu'.
    """

    def __init__(self,
                 model: Union[dict, torch.nn.Module],
                 checkpoint: Optional[str] = None,
                 beta: float = 8.0,
                 logt: int = 8,
                 alpha: float = 16.0,
                 bg_threshold: Optional[float] = None,
                 radius: Optional[int] = None,
                 size_divisor: int = 8,
                 device: str = 'cpu') -> None:
        self.model = MODELS.build(model) if isinstance(model, dict) else model
        if checkpoint is not None:
            # mmengine's load is non-strict: refuse other models; the checked state dict is loaded (one read)
            load_state_dict(self.model, check_checkpoint_matches(self.model, checkpoint), strict=True)
        self.model.to(device).eval()
        self.device = device
        self.beta = float(beta)
        self.logt = int(logt)
        self.alpha = float(alpha)
        self.bg_threshold = bg_threshold
        self.radius = int(radius if radius is not None else getattr(self.model, 'radius', 5))
        self.size_divisor = int(size_divisor)
        if self.size_divisor < 1:
            raise ValueError(f'AffinityRandomWalkRefiner: size_divisor must be >= 1, got {size_divisor}')

    @torch.no_grad()
    def scores(self, img: np.ndarray, cam: np.ndarray) -> torch.Tensor:
        """Random-walk label scores ``(K + 1, H, W)`` (background first) of one RGB uint8 image."""
        img = np.asarray(img)
        if img.ndim != 3 or img.shape[2] != 3 or img.dtype != np.uint8:
            raise ValueError(f'AffinityRandomWalkRefiner: img must be an (H, W, 3) uint8 RGB image, got {img.shape} '
                             f'{img.dtype}')
        cam = np.asarray(cam, dtype=np.float32)
        if cam.ndim != 3 or cam.shape[1:] != img.shape[:2]:
            raise ValueError(f'AffinityRandomWalkRefiner: cam must be (K, H, W) at the image size {img.shape[:2]}, '
                             f'got {cam.shape}')
        h, w = img.shape[:2]
        # the data preprocessor expects what the loading pipeline gives: BGR uint8 (3, H, W)
        bgr = torch.from_numpy(np.ascontiguousarray(img[..., ::-1].transpose(2, 0, 1)))
        inputs = self.model.data_preprocessor(dict(inputs=[bgr], data_samples=None), False)['inputs']
        # mmseg's padding (SegDataPreProcessor's): the normalised image, bottom / right, 0s (as PSA)
        inputs, _ = stack_batch(list(inputs.to(self.device)), size_divisor=self.size_divisor)
        emb = self.model.extract_embedding(inputs)[0]
        cell = map_stride(inputs.shape[-2:], emb.shape[-2:], 'AffinityRandomWalkRefiner')
        gh, gw = grid_size((h, w), cell)
        emb = emb[:, :gh, :gw]  # the positions that cover the image (all of them when size_divisor is the stride)
        # the background score is computed on the image, then padded with zeros like the CAMs (PSA)
        labels = torch.from_numpy(cam_label_scores(cam, self.bg_threshold, self.alpha)).to(self.device)
        walked = random_walk_refine(emb, pool_to_grid(labels, cell), beta=self.beta, logt=self.logt,
                                    radius=self.radius)
        return upsample_from_grid(walked, cell, (h, w)).cpu()

    def __call__(self, img: np.ndarray, cam: np.ndarray, keys: np.ndarray) -> np.ndarray:
        """Returns the ``uint8 (H, W)`` mask (0 or ``keys + 1``) of one image."""
        keys = np.asarray(keys).reshape(-1).astype(np.int64)
        cam = np.asarray(cam, dtype=np.float32)
        if cam.ndim != 3 or cam.shape[0] != keys.shape[0]:
            raise ValueError(f'AffinityRandomWalkRefiner: cam (K, H, W) and keys [K] disagree: {cam.shape} vs '
                             f'{keys.shape}')
        if keys.size == 0:
            return np.zeros(np.asarray(img).shape[:2], dtype=np.uint8)
        values = np.concatenate([[0], keys + 1]).astype(np.uint8)
        return values[self.scores(img, cam).argmax(dim=0).numpy()]

    def __repr__(self) -> str:
        return (f'{type(self).__name__}(beta={self.beta}, logt={self.logt}, alpha={self.alpha}, '
                f'bg_threshold={self.bg_threshold}, radius={self.radius}, size_divisor={self.size_divisor})')
