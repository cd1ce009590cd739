"""Writes the segmentation network's predictions as mask PNGs (e.g. the PASCAL VOC test-server format).

The last step of the WSSS pipeline (Yang et al., "Cross-domain Semantic Decoupling for Weakly-Supervised
Semantic Segmentation", BMVC 2023; IRN, Ahn et al., CVPR 2019): DeepLab, trained on the pseudo masks, predicts
VOC val / test, whose test-set predictions go to the evaluation server as
``results/VOC2012/Segmentation/comp6_test_cls/<img_id>.png`` (comp6: trained with outside data, i.e. ImageNet
and the SBD images). ``tools/test.py`` writes them with this hook in the config's ``custom_hooks``.

Why not mmseg's ``IoUMetric(format_only=True, output_dir=...)``: for VOC (no ``reduce_zero_label``, ids equal to
the image file stems, 21 classes) it writes the same files -- same names, same pixel values (the PNG bytes differ:
PIL's encoder instead of OpenCV's) -- when ``output_dir`` is the ``results/VOC2012/Segmentation/comp6_<split>_cls``
folder itself (tests/engine/hooks/test_segmentation_export_hook.py checks this). What this hook does that
IoUMetric cannot:

* its ``out_dir`` is taken under the runner's ``work_dir`` (set by the tools from the config name or
  ``--work-dir``, unknown to a config), so the DeepLab configs write ``<work_dir>/voc_results/...`` by default;
  IoUMetric takes ``output_dir`` relative to the current directory and creates it once, when it is built;
* it writes every PNG atomically (temporary file, then ``os.replace``), so an interrupted run leaves no truncated
  PNG to be archived; IoUMetric writes with ``Image.save`` in place;
* it refuses maps it cannot store exactly (not 2-D, not integer, ids outside 0..255), naming the image;
  IoUMetric casts with ``astype(np.uint8)``, so an id of 256 would silently become 0, and it squeezes the map
  (``squeeze()``), so an image one pixel high is written as a column;
* it names files by the ``img_id`` of the metainfo (falling back to the ``img_path`` stem); IoUMetric always
  uses the ``img_path`` stem;
* it writes the ids the model predicts; IoUMetric adds 1 under ``reduce_zero_label`` (ADE20K's convention);
* it acts in the test loop only, while IoUMetric writes wherever it evaluates (the dataset bases share one
  evaluator between ``val_evaluator`` and ``test_evaluator``, so an ``output_dir`` there would also write at
  every validation during training).
"""
import os.path as osp
from typing import Optional, Sequence, Union

import numpy as np
import torch
from mmengine.hooks import Hook
from mmengine.runner import Runner
from mmseg.registry import HOOKS

from csd_mm.utils.fileio import write_png
from csd_mm.utils.rank_errors import DeferredRankError

__all__ = ['SegPredictionExportHook', 'voc_results_subdir', 'prediction_to_mask', 'prediction_path']


def voc_results_subdir(split: str = 'test') -> str:
    """Where the VOC devkit / evaluation server expects competition 6 segmentation results of ``split``:
    ``results/VOC2012/Segmentation/comp6_<split>_cls``."""
    if not split or not str(split).isidentifier():
        raise ValueError(f'voc split must be a plain name such as "test" or "val", got {split!r}')
    return osp.join('results', 'VOC2012', 'Segmentation', f'comp6_{split}_cls')


def prediction_to_mask(pred: Union[torch.Tensor, np.ndarray], name: str = 'prediction') -> np.ndarray:
    """Converts a label map (``(H, W)`` or ``(1, H, W)``, integer class ids) to a ``uint8`` mask.

    Args:
        pred (Tensor | ndarray): The class-index map, e.g. ``SegDataSample.pred_sem_seg.data``.
        name (str): Names the sample in error messages.

    Returns:
        np.ndarray: ``uint8`` array ``(H, W)``.

    Raises:
        ValueError: If the map is not 2-D (after dropping one leading channel), not integer-valued, or holds
            values outside 0..255.
    """
    if isinstance(pred, torch.Tensor):
        pred = pred.detach().cpu().numpy()
    pred = np.asarray(pred)
    if pred.ndim == 3 and pred.shape[0] == 1:
        pred = pred[0]
    if pred.ndim != 2:
        raise ValueError(f'{name}: expected a (H, W) or (1, H, W) label map, got shape {pred.shape}')
    if pred.dtype.kind not in 'biu':
        raise ValueError(f'{name}: expected integer class ids, got dtype {pred.dtype}')
    if pred.size and (pred.min() < 0 or pred.max() > 255):
        raise ValueError(f'{name}: class ids must lie in 0..255 for a uint8 PNG, got {pred.min()}..{pred.max()}')
    return pred.astype(np.uint8)


def prediction_path(out_dir: str, img_id: str, voc_format: bool = True, voc_split: str = 'test') -> str:
    """The PNG path of one image: ``<out_dir>/results/VOC2012/Segmentation/comp6_<voc_split>_cls/<img_id>.png``
    in the VOC format, else ``<out_dir>/<img_id>.png``."""
    folder = osp.join(out_dir, voc_results_subdir(voc_split)) if voc_format else out_dir
    return osp.join(folder, img_id + '.png')


@HOOKS.register_module()
class SegPredictionExportHook(Hook):
    """Writes ``pred_sem_seg`` of every test sample as a single-channel ``uint8`` PNG of class ids.

    The predictions are those of mmseg's segmentors (``SegDataSample.pred_sem_seg``, already at the original
    image size), written in ``after_test_iter`` atomically (temporary file, then ``os.replace``), named by the
    image id (``img_id`` of the metainfo, else the stem of ``img_path``). Values are the model's class indices
    (VOC: 0 background, 1..20); with a ``reduce_zero_label`` dataset they are the reduced ids, as the model
    predicts them.

    The deeplab configs list it in ``custom_hooks``; ``tools/test.py`` then writes the PNGs (pass
    ``--no-save-cams``: a segmentor has no CAMs). In a distributed test, a rank whose write fails (or whose
    prediction cannot be stored) writes nothing more but finishes its test loop, so that the other ranks do not
    wait for it in the metric's gathering of the results; at the end of the test epoch it raises its error and
    the other ranks a ``RuntimeError`` naming it (:class:`~csd_mm.utils.rank_errors.DeferredRankError`; a
    single process raises at once). Its settings are overridable from the command line::

        python tools/test.py configs/deeplab/deeplabv3plus_r101_d8_4xb4_20k_voc12aug_512.py CKPT --no-save-cams \\
            --cfg-options custom_hooks.0.out_dir=/abs/voc_preds custom_hooks.0.voc_split=val

    Args:
        out_dir (str): Output folder; relative paths are taken under the runner's ``work_dir``.
            Defaults to 'predictions'.
        voc_format (bool): Write under ``results/VOC2012/Segmentation/comp6_test_cls/`` (the layout the VOC
            evaluation server expects, to be archived as is); False writes ``<out_dir>/<img_id>.png``.
            Defaults to True.
        voc_split (str): The split in the VOC folder name, ``comp6_<voc_split>_cls``. Defaults to 'test'.
    """

    priority = 'LOW'

    def __init__(self, out_dir: str = 'predictions', voc_format: bool = True, voc_split: str = 'test') -> None:
        if not isinstance(out_dir, str) or not out_dir:
            raise ValueError(f'SegPredictionExportHook: out_dir must be a non-empty path, got {out_dir!r}')
        voc_results_subdir(voc_split)  # validates the split name
        self.out_dir = out_dir
        self.voc_format = voc_format
        self.voc_split = voc_split
        self._errors: Optional[DeferredRankError] = None

    def resolve_out_dir(self, runner: Runner) -> str:
        """The output folder (``out_dir`` under ``runner.work_dir`` unless absolute)."""
        return self.out_dir if osp.isabs(self.out_dir) else osp.join(runner.work_dir, self.out_dir)

    @staticmethod
    def _img_id(sample) -> str:
        meta = sample.metainfo
        if meta.get('img_id') is not None:
            return str(meta['img_id'])
        if meta.get('img_path'):
            return osp.splitext(osp.basename(meta['img_path']))[0]
        raise KeyError('SegPredictionExportHook: a test sample has neither img_id nor img_path in its metainfo')

    def write(self, out_dir: str, outputs: Sequence) -> None:
        """Writes the ``pred_sem_seg`` of each sample of ``outputs`` under ``out_dir``."""
        for sample in outputs:
            img_id = self._img_id(sample)
            if 'pred_sem_seg' not in sample:
                raise KeyError(f'SegPredictionExportHook: the output of {img_id!r} has no pred_sem_seg; the model '
                               'must be an mmseg segmentor in predict mode')
            mask = prediction_to_mask(sample.pred_sem_seg.data, name=img_id)
            write_png(prediction_path(out_dir, img_id, self.voc_format, self.voc_split), mask)

    def before_test(self, runner: Runner) -> None:
        self._errors = DeferredRankError(f'writing the prediction PNGs to {self.resolve_out_dir(runner)}')

    def after_test_iter(self, runner: Runner, batch_idx: int, data_batch: Optional[dict] = None,
                        outputs: Optional[Sequence] = None) -> None:
        if outputs:
            self._errors.call(self.write, self.resolve_out_dir(runner), outputs)

    def after_test_epoch(self, runner: Runner, metrics: Optional[dict] = None) -> None:
        # after the metric's gathering of the results, which every rank reached
        self._errors.raise_if_any_failed()
