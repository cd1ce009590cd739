"""What every CAM classifier shares: the forward modes, the labels, and the CSD step over four views.

Cross-domain Semantic Decoupling (Yang et al., BMVC 2023, Sec. 3.3): the classification loss applies to the
target image x_m; the score map of the clean source image x_s is the target distribution of the
foreground-pasted view x_sm^fg (Eq. 3) and of the background-pasted view x_sm^bg (Eq. 4-5).
"""
from typing import Dict, List, Optional, Sequence, Union

import torch
from mmengine.logging import MessageHub
from mmengine.model import BaseModel
from mmseg.structures import SegDataSample
from mmseg.utils import OptConfigType
from torch import Tensor

from ..cam import aggregate_multiscale, normalize_cams, select_classes
from ..data_preprocessors import MultiViewDataPreprocessor

__all__ = ['BaseCAMClassifier', 'NUM_CSD_VIEWS', 'IMAGENET_MEAN', 'IMAGENET_STD']

#: ImageNet statistics in RGB order on the 0-255 scale (torchvision / IRN / DeiT normalisation).
IMAGENET_MEAN = (123.675, 116.28, 103.53)
IMAGENET_STD = (58.395, 57.12, 57.375)

#: Order of the views in a packed CSD sample (see PackCSDInputs).
CSD_VIEWS = ('target', 'source', 'pasted_fg', 'pasted_bg')
NUM_CSD_VIEWS = len(CSD_VIEWS)


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
    ``'tensor'``, stacks the ``gt_label`` of the data samples, and runs the CSD step when the inputs carry
    the four views of a pair (``(N, 4, 3, H, W)``, see :class:`~csd_mm.datasets.transforms.PackCSDInputs`).

    The source view x_s runs in its own forward pass under ``torch.no_grad`` (the paper's stop-gradient: its
    score map is only the target distribution); the target and the two pasted views share one batched pass.
    Keeping x_s out of that batch also keeps it out of the batch statistics of backbones whose batch norms train
    (the toy configs), so no gradient can reach x_s through them either.
    """

    def __init__(self,
                 data_preprocessor: Optional[Union[dict, torch.nn.Module]] = None,
                 cls_on_pasted: bool = False,
                 init_cfg: OptConfigType = None) -> None:
        if data_preprocessor is None:
            data_preprocessor = dict(type=MultiViewDataPreprocessor, mean=IMAGENET_MEAN, std=IMAGENET_STD,
                                     bgr_to_rgb=True)
        super().__init__(data_preprocessor=data_preprocessor, init_cfg=init_cfg)
        self.cls_on_pasted = cls_on_pasted

    @property
    def num_classes(self) -> int:
        """int: Number of foreground classes C (the head's)."""
        return self.head.num_classes

    def forward(self,
                inputs: Tensor,
                data_samples: Optional[Sequence[SegDataSample]] = None,
                mode: str = 'tensor') -> Union[Dict[str, Tensor], List[SegDataSample], Tensor]:
        """Runs the model in ``'loss'``, ``'predict'`` or ``'tensor'`` (the score map) mode."""
        if mode == 'loss':
            return self.loss(inputs, data_samples)
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

    def loss(self, inputs: Tensor, data_samples: Sequence[SegDataSample]) -> Dict[str, Tensor]:
        """Classification loss(es) of single images, or the CSD losses of four-view pairs."""
        if inputs.dim() == 5:
            return self.csd_loss(inputs, data_samples)
        gt_labels = self._stack_labels(data_samples, inputs.shape[0]).to(inputs.device)
        logits_list, _ = self.forward_maps(inputs)
        return self.classification_losses(logits_list, gt_labels)

    def csd_loss(self, inputs: Tensor, data_samples: Sequence) -> Dict[str, Tensor]:
        """Losses of a batch of CSD samples.

        Args:
            inputs (Tensor): ``(N, 4, 3, H, W)`` views in the order target, source, fg-pasted, bg-pasted.
            data_samples (Sequence): One per pair, with ``gt_label`` (target), ``src_label``, ``src_fg_mask``
                and ``src_bg_mask`` (``(H, W)``).

        Returns:
            dict[str, Tensor]: the classification loss(es) on x_m, ``loss_fg`` and ``loss_bg`` (and, with
            ``cls_on_pasted``, the classification loss on x_sm^fg with label y_m OR y_s).
        """
        n, v = inputs.shape[:2]
        if v != NUM_CSD_VIEWS:
            raise ValueError(f'CSD inputs need {NUM_CSD_VIEWS} views {CSD_VIEWS}, got {v}')
        with torch.no_grad():
            _, src = self.forward_maps(inputs[:, 1])
        # view-major batch [x_m; x_sm^fg; x_sm^bg]
        views = inputs[:, [0, 2, 3]].transpose(0, 1).reshape(3 * n, *inputs.shape[2:])
        logits_list, score_map = self.forward_maps(views)
        labels = self._stack_labels(data_samples, n).to(inputs.device)
        losses = self.classification_losses([logits[:n] for logits in logits_list], labels)
        if self.cls_on_pasted:
            src_labels = _stack_field(data_samples, 'src_label', inputs.device).float()
            pasted = self.classification_losses([logits[n:2 * n] for logits in logits_list],
                                                torch.maximum(labels, src_labels))
            losses.update({k + '_pasted': val for k, val in pasted.items()})
        fg, bg = score_map[n:2 * n], score_map[2 * n:]
        fg_mask = _stack_field(data_samples, 'src_fg_mask', inputs.device)
        bg_mask = _stack_field(data_samples, 'src_bg_mask', inputs.device)
        losses.update(self.head.consistency(src, fg, bg, fg_mask, bg_mask, cur_iter=_current_iter()))
        return losses

    @torch.no_grad()
    def predict(self, inputs: Tensor,
                data_samples: Optional[Sequence[SegDataSample]] = None) -> List[SegDataSample]:
        """Multi-scale + flip CAMs of each image at its original size.

        Each sample is cropped to its ``metainfo['img_shape']`` (removing the padding the data preprocessor adds
        when it stacks images of different sizes), :meth:`cam_score_fn` is aggregated over ``test_cfg['scales']``
        and flips (:func:`~csd_mm.models.cam.aggregate_multiscale`) at ``ori_shape`` (undoing any resize of the
        test pipeline), a flip recorded in the metainfo is undone, the image's own classes are kept and each map
        is max-normalised. Sets ``cam`` (K, H, W) and ``cam_keys`` (K) on every data sample.
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
            cam = aggregate_multiscale(self.cam_score_fn, inputs[i:i + 1, :, :h, :w], scales=cfg['scales'],
                                       flip=cfg['flip'], out_size=(ori_h, ori_w),
                                       resize_mode=cfg['resize_mode'])
            if meta.get('flip', False):
                direction = meta.get('flip_direction', 'horizontal')
                dims = dict(horizontal=(-1, ), vertical=(-2, ), diagonal=(-2, -1)).get(direction)
                if dims is None:
                    raise ValueError(f'{type(self).__name__}: data sample {i} has unknown flip_direction {direction!r}')
                cam = cam.flip(dims)
            label = sample.get('gt_label')
            if label is None:
                label = torch.ones(cam.shape[0])
            cams, keys = select_classes(cam, torch.as_tensor(label))
            sample.cam = normalize_cams(cams)
            sample.cam_keys = keys
        return list(data_samples)
