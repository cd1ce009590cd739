"""What every CAM classifier shares: the forward modes, the labels, and the CSD step.

Cross-domain Semantic Decoupling (Yang et al., BMVC 2023, Sec. 3.3): the classification loss applies to every
training image, as in the baseline; for each paired (multi-label) image x_m, the score map of the clean source
image x_s is the target distribution of the foreground-pasted view x_sm^fg (Eq. 3) and of the
background-pasted view x_sm^bg (Eq. 4-5).
"""
from contextlib import nullcontext
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmseg.structures import SegDataSample
from mmseg.utils import OptConfigType
from torch import Tensor

from ..cam import aggregate_multiscale, normalize_cams, present_classes
from ..data_preprocessors import MultiViewDataPreprocessor
from ..source_pass import deterministic_pass, record_batch_norm_stats

__all__ = ['BaseCAMClassifier', 'NUM_CSD_VIEWS', 'IMAGENET_MEAN', 'IMAGENET_STD']

#: ImageNet statistics in RGB order on the 0-255 scale (torchvision / IRN / DeiT normalisation).
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

#: Order of the views in a packed CSD sample (see PackCSDInputs).
CSD_VIEWS = ('target', 'source', 'pasted_fg', 'pasted_bg')
NUM_CSD_VIEWS = len(CSD_VIEWS)
#: How the source view's target distribution M_s is computed (see BaseCAMClassifier).
SOURCE_PASS_MODES = ('deterministic', 'train_mode')


def _stack_field(data_samples: Sequence, name: str, device) -> Tensor:
    try:
        return torch.stack([torch.as_tensor(s.get(name)) for s in data_samples]).to(device)
    except (TypeError, RuntimeError) as e:
        raise ValueError(f'every CSD data sample needs a {name!r} tensor of one shape ({e})') from e


def _current_iter():
    hub = MessageHub.get_current_instance()
    return hub.get_info('iter') if hub is not None else None


class BaseCAMClassifier(BaseModel):
    """Base of the CAM classifiers (IRN-style ResNet, MCTformer-V2).

    Subclasses build ``self.head`` (a :class:`~csd_mm.models.heads.CAMHead`) and ``self.test_cfg`` (with
    ``scales``, ``flip``, ``resize_mode``) and implement ``forward_maps(inputs) -> (list of logits, score map)``,
    ``classification_losses(logits_list, labels) -> dict`` and ``cam_score_fn(inputs) -> (N, C, h, w)`` class
    maps for CAM inference. This class dispatches the modes ``'loss'`` / ``'predict'`` /
    ``'tensor'``, stacks the ``gt_label`` of the data samples, and runs the CSD step when the batch holds
    paired samples (``pair_inputs`` from :class:`~csd_mm.models.data_preprocessors.MultiViewDataPreprocessor`).

    The CSD step: one batched pass (in training mode, with gradients) over the first view of every sample
    (the classification loss applies to all of them, as in the baseline) and the two pasted views of the paired
    ones; then the source views x_s in a pass of their own under ``torch.no_grad`` (the paper's
    stop-gradient: M_s is only the target distribution). With ``source_pass='deterministic'`` (default) that
    pass is deterministic and normalised like the views it is compared with: every module in eval mode (no
    dropout / drop-path) and every training batch norm normalising with the first pass's batch statistics,
    updating no running statistics (:mod:`csd_mm.models.source_pass`). ``source_pass='train_mode'`` runs it in
    the model's current mode instead (its own batch statistics, which it also adds to the running statistics;
    drop-path active): the behaviour of csd_mm 0.1, kept to measure the difference (docs/results.md).

    Args:
        data_preprocessor (dict | nn.Module, optional): Defaults to a
            :class:`~csd_mm.models.data_preprocessors.MultiViewDataPreprocessor` with ImageNet statistics.
        cls_on_pasted (bool): CSD only: also apply the classification loss to the fg-pasted view with label
            y_m OR y_s. Defaults to False.
        source_pass (str): ``'deterministic'`` (default) or ``'train_mode'``, see above.
        init_cfg (dict, optional): Initialisation config.
    """

    def __init__(self,
                 data_preprocessor: Optional[Union[dict, torch.nn.Module]] = None,
                 cls_on_pasted: bool = False,
                 source_pass: str = 'deterministic',
                 init_cfg: OptConfigType = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type=MultiViewDataPreprocessor, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                                     bgr_to_rgb=True)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        if source_pass not in SOURCE_PASS_MODES:
            raise ValueError(f'{type(self).__name__}: source_pass must be one of {SOURCE_PASS_MODES}, got '
                             f'{source_pass!r}')
        self.cls_on_pasted = cls_on_pasted
        self.source_pass = source_pass

    @property
    def num_classes(self) -> int:
        """int: Number of foreground classes C (the head's)."""
        return self.head.num_classes

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[Sequence[SegDataSample]] = None,
                mode: str = 'tensor',
                pair_inputs: Optional[Tensor] = None) -> Union[Dict[str, Tensor], List[SegDataSample], Tensor]:
        """Runs the model in ``'loss'``, ``'predict'`` or ``'tensor'`` (the score map) mode.

        ``pair_inputs`` (loss mode only) holds the source and pasted views of the paired samples
        (:class:`~csd_mm.models.data_preprocessors.MultiViewDataPreprocessor`).
        """
        if mode == 'loss':
            return self.loss(inputs, data_samples, pair_inputs)
        if pair_inputs is not None:
            raise ValueError(f'{type(self).__name__}: pair_inputs (CSD views) are only used in loss mode, got '
                             f'mode {mode!r}')
        if mode == 'predict':
            return self.predict(inputs, data_samples)
        if mode == 'tensor':
            return self.forward_maps(inputs)[1]
        raise ValueError(f'{type(self).__name__}: invalid mode {mode!r}; expected "loss", "predict" or "tensor"')

    def _stack_labels(self, data_samples: Optional[Sequence[SegDataSample]], n: int) -> Tensor:
        """The ``gt_label`` of each data sample stacked into ``(n, C)``, with errors that say what is wrong."""
        name = type(self).__name__
        if data_samples is None or len(data_samples) != n:
            raise ValueError(f'{name}: loss mode needs one data sample per image ({n}), got '
                             f'{None if data_samples is None else len(data_samples)}')
        labels = []
        for i, sample in enumerate(data_samples):
            label = sample.get('gt_label')
            if label is None:
                raise ValueError(f'{name}: data sample {i} has no gt_label (float tensor [C])')
            label = torch.as_tensor(label)
            if label.shape != (self.num_classes, ):
                raise ValueError(f'{name}: data sample {i} has gt_label of shape {tuple(label.shape)}, '
                                 f'expected [{self.num_classes}]')
            labels.append(label)
        return torch.stack(labels).float()

    def loss(self, inputs: Tensor, data_samples: Sequence[SegDataSample],
             pair_inputs: Optional[Tensor] = None) -> Dict[str, Tensor]:
        """Classification loss(es) of every image, plus the CSD losses of the paired ones.

        Args:
            inputs (Tensor): ``(N, 3, H, W)``: every sample's image (x_m for a paired one). A ``(N, 4, 3, H, W)``
                tensor of N pairs (target, source, fg-pasted, bg-pasted) is accepted too.
            data_samples (Sequence): One per image, with ``gt_label``; the paired ones (those holding
                ``src_fg_mask``), in batch order, also carry ``src_label``, ``src_fg_mask`` and
                ``src_bg_mask`` (``(H, W)``).
            pair_inputs (Tensor, optional): ``(P, 3, 3, H, W)``: source, fg-pasted and bg-pasted views of the
                ``P`` paired samples. None (or P = 0): the baseline's loss.

        Returns:
            dict[str, Tensor]: the classification loss(es); with pairs also ``loss_fg`` and ``loss_bg`` (and,
            with ``cls_on_pasted``, the classification loss on x_sm^fg with label y_m OR y_s).
        """
        if inputs.dim() == 5:
            if pair_inputs is not None:
                raise ValueError(f'{type(self).__name__}: got both multi-view inputs and pair_inputs')
            if inputs.shape[1] != NUM_CSD_VIEWS:
                raise ValueError(f'CSD inputs need {NUM_CSD_VIEWS} views {CSD_VIEWS}, got {inputs.shape[1]}')
            inputs, pair_inputs = inputs[:, 0], inputs[:, 1:]
        n = inputs.shape[0]
        labels = self._stack_labels(data_samples, n).to(inputs.device)
        if pair_inputs is None or pair_inputs.shape[0] == 0:
            losses = self.classification_losses(self.forward_maps(inputs)[0], labels)
            if self.head.consistency_loss is not None:
                # a CSD batch that drew no multi-label image: the consistency terms contribute 0 (logged as such,
                # so every iteration logs the same keys)
                zero = inputs.new_zeros(())
                losses.update(loss_fg=zero, loss_bg=zero.clone())
            return losses
        return self.csd_loss(inputs, labels, data_samples, pair_inputs)

    def csd_loss(self, inputs: Tensor, labels: Tensor, data_samples: Sequence,
                 pair_inputs: Tensor) -> Dict[str, Tensor]:
        """Losses of a batch holding ``P`` paired samples (see :meth:`loss` for the arguments)."""
        n, p = inputs.shape[0], pair_inputs.shape[0]
        if pair_inputs.dim() != 5 or pair_inputs.shape[1] != NUM_CSD_VIEWS - 1:
            raise ValueError(f'{type(self).__name__}: pair_inputs must be (P, {NUM_CSD_VIEWS - 1}, 3, H, W) '
                             f'(views {CSD_VIEWS[1:]}), got {tuple(pair_inputs.shape)}')
        paired = [i for i, s in enumerate(data_samples) if 'src_fg_mask' in s]
        if len(paired) != p:
            raise ValueError(f'{type(self).__name__}: {p} paired views but {len(paired)} data samples with '
                             'src_fg_mask')
        # One pass with gradients: [every image; x_sm^fg of the pairs; x_sm^bg of the pairs].
        views = torch.cat([inputs, pair_inputs[:, 1], pair_inputs[:, 2]])
        # the main pass's batch statistics, for the deterministic source pass only (train_mode uses its own)
        recording = record_batch_norm_stats(self) if self.source_pass == 'deterministic' else nullcontext({})
        with recording as batch_stats:
            logits_list, score_map = self.forward_maps(views)
        losses = self.classification_losses([logits[:n] for logits in logits_list], labels)
        paired_samples = [data_samples[i] for i in paired]
        if self.cls_on_pasted:
            src_labels = _stack_field(paired_samples, 'src_label', inputs.device).float()
            pasted = self.classification_losses([logits[n:n + p] for logits in logits_list],
                                                torch.maximum(labels[paired], src_labels))
            losses.update({k + '_pasted': val for k, val in pasted.items()})
        with torch.no_grad():
            if self.source_pass == 'deterministic':
                with deterministic_pass(self, batch_stats):
                    src = self.forward_maps(pair_inputs[:, 0])[1]
            else:
                src = self.forward_maps(pair_inputs[:, 0])[1]
        fg, bg = score_map[n:n + p], score_map[n + p:]
        fg_mask = _stack_field(paired_samples, 'src_fg_mask', inputs.device)
        bg_mask = _stack_field(paired_samples, 'src_bg_mask', inputs.device)
        losses.update(self.head.consistency(src, fg, bg, fg_mask, bg_mask, cur_iter=_current_iter()))
        return losses

    @staticmethod
    def normalize(cams: Tensor) -> Tensor:
        """Scales an image's aggregated CAMs ``(K, H, W)`` to [0, 1]: IRN's max normalisation
        (:func:`~csd_mm.models.cam.normalize_cams`); a subclass follows its own baseline."""
        return normalize_cams(cams)

    @torch.no_grad()
    def predict(self, inputs: Tensor,
                data_samples: Optional[Sequence[SegDataSample]] = None) -> List[SegDataSample]:
        """Multi-scale + flip CAMs of each image at its original size.

        Each sample is cropped to its ``metainfo['img_shape']`` (removing the padding the data preprocessor adds
        when it stacks images of different sizes), :meth:`cam_score_fn` is aggregated over ``test_cfg['scales']``
        and flips (:func:`~csd_mm.models.cam.aggregate_multiscale`) at ``ori_shape`` (undoing any resize of the
        test pipeline), a flip recorded in the metainfo is undone, the image's own classes are kept and each map
        is normalised (:meth:`normalize`). Sets ``cam`` (K, H, W) and ``cam_keys`` (K) on every data sample.
        """
        if inputs.dim() != 4:
            raise ValueError(f'{type(self).__name__}: predict expects inputs (N, 3, H, W), got {tuple(inputs.shape)}')
        n, _, height, width = inputs.shape
        if data_samples is None:
            data_samples = [SegDataSample(metainfo=dict(img_shape=(height, width), ori_shape=(height, width)))
                            for _ in range(n)]
        if len(data_samples) != n:
            raise ValueError(f'{type(self).__name__}: predict got {n} images but {len(data_samples)} data samples')
        cfg = self.test_cfg
        for i, sample in enumerate(data_samples):
            meta = sample.metainfo
            h, w = (int(v) for v in meta.get('img_shape', (height, width))[:2])
            if h > height or w > width:
                raise ValueError(f'{type(self).__name__}: data sample {i} has img_shape {(h, w)} larger than the input '
                                 f'{(height, width)}')
            ori_h, ori_w = (int(v) for v in meta.get('ori_shape', (h, w))[:2])
            label = sample.get('gt_label')
            if label is None:
                label = torch.ones(self.num_classes)
            # the image's classes are picked before the upsampling (K of C maps at full size)
            keys = present_classes(torch.as_tensor(label), self.num_classes).to(inputs.device)
            cams = aggregate_multiscale(self.cam_score_fn, inputs[i:i + 1, :, :h, :w], scales=cfg['scales'],
                                        flip=cfg['flip'], out_size=(ori_h, ori_w), resize_mode=cfg['resize_mode'],
                                        output_stride=cfg.get('output_stride'), classes=keys)
            if meta.get('flip', False):
                direction = meta.get('flip_direction', 'horizontal')
                dims = dict(horizontal=(-1, ), vertical=(-2, ), diagonal=(-2, -1)).get(direction)
                if dims is None:
                    raise ValueError(f'{type(self).__name__}: data sample {i} has unknown flip_direction {direction!r}')
                cams = cams.flip(dims)
            sample.cam = self.normalize(cams)
            sample.cam_keys = keys
        return list(data_samples)
