"""IRN-style CAM classifier: backbone -> (neck) -> CAM head, with multi-scale + flip CAM inference.

The stage-0 baseline of CSD (Yang et al., "Cross-domain Semantic Decoupling for Weakly-Supervised Semantic
Segmentation", BMVC 2023) is the ResNet-50 CAM network of IRN (Ahn et al., CVPR 2019): ResNet-50 with output
stride 16 (last stage stride 1), a 1x1 classifier without bias, global average pooling, multi-label
soft-margin loss; CAMs from scales (1.0, 0.5, 1.5, 2.0), each with its horizontal flip, ReLU, summed and
max-normalised, only for the image's own classes. The same network, fed the copy-paste views, is the CSD
student; :meth:`CAMClassifier.forward_maps` is the hook its consistency losses use.
"""
from typing import Dict, List, Optional, Tuple, Union

import torch
from mmseg.registry import MODELS
from mmseg.utils import ConfigType, OptConfigType
from torch import Tensor

from .base_cam_classifier import BaseCAMClassifier


_DEFAULT_TEST_CFG = dict(scales=(1.0, 0.5, 1.5, 2.0), flip=True, resize_mode='bicubic', output_stride=None)


@MODELS.register_module()
class CAMClassifier(BaseCAMClassifier):
    """Multi-label image classifier whose head yields a class score map (CAM network).

    Modes of :meth:`forward`:

    * ``'loss'``: ``dict(loss_cls=...)``, the head's multi-label soft-margin loss against the ``gt_label``
      (float ``[C]``) of each data sample. CSD samples (inputs ``(N, 4, 3, H, W)``, see
      :meth:`~csd_mm.models.classifiers.BaseCAMClassifier.csd_loss`) add ``loss_fg`` and ``loss_bg``.
    * ``'predict'``: for each data sample, ``cam`` (float ``(K, H, W)`` at the original image size
      ``metainfo['ori_shape']``, per-class max-normalised to [0, 1]) and ``cam_keys`` (long ``[K]``, the
      0-based classes of its ``gt_label``, ascending). Multi-scale + flip aggregation as IRN, controlled by
      ``test_cfg``. Each sample is cropped to its ``metainfo['img_shape']`` first, which removes the
      bottom/right padding that the data preprocessor adds when it stacks images of different sizes, and its
      CAM is resized to ``ori_shape``, which undoes any resize of the test pipeline (a flip recorded in
      ``metainfo['flip']`` / ``'flip_direction'`` is undone too). So any batch size works; each sample is
      aggregated on its own, and IRN's test batch size 1 is the natural choice (larger batches only
      save data loading). Without ``gt_label`` a sample keeps all C classes. The test pipeline itself
      must not pad (mmcv's ``Pad`` overwrites ``img_shape``, so that padding could not be removed).
    * ``'tensor'``: the score map ``(N, C, h, w)``.

    Args:
        backbone (dict): Backbone config, e.g. ``dict(type=mmpretrain.models.ResNet, depth=50,
            strides=(1, 2, 2, 1), out_indices=(3,), norm_eval=True)`` (output stride 16). Built with mmseg's
            ``MODELS``; use the class itself as ``type`` (the string ``'ResNet'`` would resolve to mmseg's
            ResNet, which takes other arguments).
        head (dict): Head config, e.g. ``dict(type=CAMHead, in_channels=2048, num_classes=20)``. Kept as
            attribute ``head`` so that ``paramwise_cfg=dict(custom_keys={'head': dict(lr_mult=10.)})`` gives
            it IRN's 10x learning rate.
        neck (dict, optional): Neck config between backbone and head. Defaults to None.
        data_preprocessor (dict | nn.Module, optional): Defaults to
            :class:`~csd_mm.models.data_preprocessors.MultiViewDataPreprocessor` (mmengine's
            ``ImgDataPreprocessor`` that also takes CSD's multi-view samples) with
            ImageNet mean / std and ``bgr_to_rgb=True`` (images are loaded as BGR ``uint8``).
        cls_on_pasted (bool): CSD only: also apply the classification loss to the fg-pasted view with label
            y_m OR y_s. Defaults to False (docs/method.md section 3).
        source_pass (str): CSD only: how the source view's target distribution is computed,
            ``'deterministic'`` (default) or ``'train_mode'`` (:class:`BaseCAMClassifier`).
        test_cfg (dict, optional): ``scales`` (default (1.0, 0.5, 1.5, 2.0)), ``flip`` (default True),
            ``resize_mode`` (how test images are rescaled, default 'bicubic' with antialiasing, as IRN's PIL
            bicubic), ``output_stride`` (default None: each scale's map is resized straight to the image size;
            an int, e.g. IRN's 16, upsamples each map to the stride-aligned size ``ceil(H / s) * s`` x
            ``ceil(W / s) * s`` and crops the sum to ``H x W``, as IRN's ``step/make_cam.py``; see
            :func:`~csd_mm.models.cam.aggregate_multiscale`).
        init_cfg (dict, optional): Initialisation config. Defaults to None.
    """

    def __init__(self,
                 backbone: ConfigType,
                 head: ConfigType,
                 neck: OptConfigType = None,
                 data_preprocessor: Optional[Union[dict, torch.nn.Module]] = None,
                 cls_on_pasted: bool = False,
                 source_pass: str = 'deterministic',
                 test_cfg: OptConfigType = None,
                 init_cfg: OptConfigType = None) -> None:
        super().__init__(data_preprocessor=data_preprocessor, cls_on_pasted=cls_on_pasted,
                         source_pass=source_pass, init_cfg=init_cfg)
        self.backbone = MODELS.build(backbone)
        self.neck = MODELS.build(neck) if neck is not None else None
        self.head = MODELS.build(head)
        test_cfg = dict(test_cfg or {})
        unknown = set(test_cfg) - set(_DEFAULT_TEST_CFG)
        if unknown:
            raise ValueError(f'CAMClassifier: unknown test_cfg keys {sorted(unknown)}; allowed: '
                             f'{sorted(_DEFAULT_TEST_CFG)}')
        self.test_cfg = {**_DEFAULT_TEST_CFG, **test_cfg}
        stride = self.test_cfg['output_stride']
        if stride is not None and (isinstance(stride, bool) or not isinstance(stride, int) or stride < 1):
            raise ValueError('CAMClassifier: test_cfg output_stride must be None or a positive int (the backbone\'s '
                             f'output stride, 16 for IRN\'s ResNet-50), got {stride!r}')

    def extract_feat(self, inputs: Tensor) -> Tensor:
        """Backbone (and neck) features of the last output level, ``(N, Cin, h, w)``."""
        x = self.backbone(inputs)
        if self.neck is not None:
            x = self.neck(x)
        if isinstance(x, (tuple, list)):
            x = x[-1]
        return x

    def forward_maps(self, inputs: Tensor) -> Tuple[List[Tensor], Tensor]:
        """Logits and score map of a batch: the hook the CSD consistency losses use.

        Args:
            inputs (Tensor): Normalised images ``(N, 3, H, W)``.

        Returns:
            tuple[list[Tensor], Tensor]: The logits tensors the classification loss applies to (here one,
            ``(N, C)``, the GAP of the score map) and the score map F ``(N, C, h, w)`` before pooling.
        """
        score_map = self.head(self.extract_feat(inputs))
        return [self.head.pool(score_map)], score_map

    def classification_losses(self, logits_list: List[Tensor], gt_labels: Tensor) -> Dict[str, Tensor]:
        """``dict(loss_cls=...)``: the head's loss summed over the logits of :meth:`forward_maps`."""
        return dict(loss_cls=sum(self.head.loss(logits, gt_labels) for logits in logits_list))

    def cam_score_fn(self, inputs: Tensor) -> Tensor:
        """The class maps that CAM inference aggregates over scales and flips: the score map."""
        return self.forward_maps(inputs)[1]
