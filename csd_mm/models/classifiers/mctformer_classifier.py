"""MCTformer-V2 classifier: DeiT with C class tokens + a conv CAM head on the patch tokens.

MCTformer-V2 (Xu et al., "Multi-class Token Transformer for Weakly Supervised Semantic Segmentation",
CVPR 2022) scores class c twice: by the mean over the embedding of class token c (no final norm, as the
official models.py), and by global average pooling of a 3x3 conv head applied to the patch tokens (the patch
CAM); both logits are trained with the multi-label soft-margin loss. Its CAM at inference is the class-to-patch attention of the
last 3 blocks times ReLU(patch CAM), refined by the patch-to-patch attention, with the horizontal flip.
CSD (Yang et al., "Cross-domain Semantic Decoupling for Weakly-Supervised Semantic Segmentation",
BMVC 2023) uses it as its transformer baseline; the patch CAM before pooling is the score map F that the
CSD consistency losses compare (:meth:`MCTformerV2Classifier.forward_maps`).
"""
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType
from torch import Tensor

from ..cam import minmax_normalize_cams
from ..mctformer_cam import mctformer_cams, patch_maps_to_pixels
from .base_cam_classifier import BaseCAMClassifier


_DEFAULT_TEST_CFG = dict(scales=(1.0, ), flip=True, num_cam_layers=3, patch_refine=True,
                         resize_mode='bicubic')


@MODELS.register_module()
class MCTformerV2Classifier(BaseCAMClassifier):
    """MCTformer-V2 multi-label classifier with the same contract as :class:`CAMClassifier`.

    Modes of :meth:`forward`:

    * ``'loss'``: ``dict(loss_cls=..., loss_patch=...)``: the head's multi-label soft-margin loss on the
      class-token logits and on the pooled patch-CAM logits (MCTformer-V2 sums both with weight 1; the
      Runner sums every ``loss*`` key, the two are logged apart).
    * ``'predict'``: for each data sample ``cam`` (float ``(K, H, W)`` at ``metainfo['ori_shape']``,
      per-class min-max normalised to [0, 1]) and ``cam_keys`` (long ``[K]``, the 0-based classes of its
      ``gt_label``, ascending; all C without ``gt_label``). The MCTformer CAM (:func:`mctformer_cams`) of
      each test scale and its flip is brought to the pixels of the scaled input (cropping the patch-embed
      padding, :func:`patch_maps_to_pixels`), and the maps are summed at the original size with the shared
      :func:`~csd_mm.models.cam.aggregate_multiscale`. Each sample is cropped to its
      ``metainfo['img_shape']`` first (removing the preprocessor's batch padding) and a pipeline flip
      (``metainfo['flip']``) is undone, as in :class:`CAMClassifier`.
    * ``'tensor'``: the patch score map ``(N, C, h, w)``.

    Input sizes: any size works. Sides that are not multiples of the patch size are zero-padded at the
    bottom/right by the patch embedding (mmcv ``PatchEmbed`` 'corner' padding); the padded patches take
    part in training like any other patch, and CAMs are cropped back to the real pixels. Training crops
    of a multiple of the patch size (224 for DeiT-S/16) avoid the padding altogether.

    Each class map is min-max normalised to [0, 1] as MCTformer does (:meth:`normalize`): the
    patch-to-patch refinement leaves every map a floor above 0, which max normalisation would keep.

    Args:
        backbone (dict): :class:`~csd_mm.models.backbones.MCTformerViT` config; its ``num_classes`` must
            equal the head's.
        head (dict): :class:`~csd_mm.models.heads.CAMHead` config, for MCTformer-V2
            ``dict(type=CAMHead, in_channels=384, num_classes=20, kernel_size=3, bias=True)``.
        data_preprocessor (dict | nn.Module, optional): Defaults to
            :class:`~csd_mm.models.data_preprocessors.MultiViewDataPreprocessor` with ImageNet mean / std and
            ``bgr_to_rgb=True``.
        cls_on_pasted (bool): CSD only: also apply the classification losses to the fg-pasted view with label
            y_m OR y_s. Defaults to False.
        source_pass (str): CSD only: how the source view's target distribution is computed,
            ``'deterministic'`` (default) or ``'train_mode'`` (:class:`BaseCAMClassifier`).
        test_cfg (dict, optional): ``scales`` (default (1.0,)), ``flip`` (default True),
            ``num_cam_layers`` (last blocks of class-to-patch attention, default 3), ``patch_refine``
            (patch-to-patch refinement, default True), ``resize_mode`` (rescaling of the test image at the
            scales other than 1, default 'bicubic': MCTformer resizes with PIL bicubic).
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 backbone: ConfigType,
                 head: ConfigType,
                 data_preprocessor: Optional[Union[dict, torch.nn.Module]] = None,
                 cls_on_pasted: bool = False,
                 source_pass: str = 'deterministic',
                 test_cfg: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, cls_on_pasted=cls_on_pasted,
                         source_pass=source_pass, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.head = MODELS.build(head)
        for attr in ('num_classes', 'embed_dims', 'patch_size'):
            if not hasattr(self.backbone, attr):
                raise TypeError(f'MCTformerV2Classifier: the backbone must be an MCTformerViT (needs .{attr}), got '
                                f'{type(self.backbone).__name__}')
        if self.backbone.num_classes != self.head.num_classes:
            raise ValueError(f'MCTformerV2Classifier: backbone has {self.backbone.num_classes} class tokens but the '
                             f'head {self.head.num_classes} classes')
        if self.head.in_channels != self.backbone.embed_dims:
            raise ValueError(f'MCTformerV2Classifier: head in_channels {self.head.in_channels} != backbone embed_dims '
                             f'{self.backbone.embed_dims}')
        test_cfg = dict(test_cfg or {})
        unknown = set(test_cfg) - set(_DEFAULT_TEST_CFG)
        if unknown:
            raise ValueError(f'MCTformerV2Classifier: unknown test_cfg keys {sorted(unknown)}; allowed: '
                             f'{sorted(_DEFAULT_TEST_CFG)}')
        self.test_cfg = {**_DEFAULT_TEST_CFG, **test_cfg}
        if not 1 <= int(self.test_cfg['num_cam_layers']) <= self.backbone.num_layers:
            raise ValueError(f"MCTformerV2Classifier: test_cfg num_cam_layers {self.test_cfg['num_cam_layers']} not in "
                             f'[1, {self.backbone.num_layers}]')

    def forward_maps(self, inputs: Tensor) -> Tuple[List[Tensor], Tensor]:
        """Logits and score map of a batch: the hook the CSD consistency losses use.

        Args:
            inputs (Tensor): Normalised images ``(N, 3, H, W)``.

        Returns:
            tuple[list[Tensor], Tensor]: ``[class-token logits, patch logits]`` (each ``(N, C)``; the first
            is the mean over the embedding of each class token, the second the GAP of the patch CAM) and
            the score map F ``(N, C, h, w)``, the conv head's patch CAM before pooling.
        """
        cls_tokens, patch_tokens, _ = self.backbone(inputs, need_weights=False)
        score_map = self.head(patch_tokens)
        return [cls_tokens.mean(dim=-1), self.head.pool(score_map)], score_map

    def classification_losses(self, logits_list: List[Tensor], gt_labels: Tensor) -> Dict[str, Tensor]:
        """``dict(loss_cls=..., loss_patch=...)``: soft-margin losses of the class-token and patch logits."""
        cls_logits, patch_logits = logits_list
        return dict(loss_cls=self.head.loss(cls_logits, gt_labels), loss_patch=self.head.loss(patch_logits, gt_labels))

    @staticmethod
    def normalize(cams: Tensor) -> Tensor:
        """Min-max normalisation of each class map, as MCTformer (``engine.py``; eps 1e-8)."""
        return minmax_normalize_cams(cams)

    def cam_score_fn(self, inputs: Tensor) -> Tensor:
        """MCTformer CAMs of a batch at the pixels of ``inputs`` (no scaling, no flip).

        Args:
            inputs (Tensor): Normalised images ``(B, 3, H, W)``.

        Returns:
            Tensor: ``(B, C, H, W)``, non-negative, not normalised.
        """
        _, patch_tokens, attn_maps = self.backbone(inputs, need_weights=True)
        score_map = self.head(patch_tokens)
        cams = mctformer_cams(attn_maps, score_map, num_layers=int(self.test_cfg['num_cam_layers']),
                              patch_refine=bool(self.test_cfg['patch_refine']))
        return patch_maps_to_pixels(cams, self.backbone.patch_size, inputs.shape[-2:])
