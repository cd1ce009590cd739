"""SeedMetric: seed mIoU of CAMs over a sweep of background scores.

Yang et al., "Cross-domain Semantic Decoupling for Weakly-Supervised Semantic Segmentation" (BMVC 2023) report
the seed quality of CAMs as the best mIoU over a constant background score ``t`` in 0.00 .. 0.59 (the seed
protocol of IRN, Ahn et al., CVPR 2019, and MCTformer, Xu et al., CVPR 2022). This metric is a thin wrapper
around :func:`csd_mm.evaluation.functional.sweep_confusion`, which counts every threshold in one pass.
"""
from typing import Any, Dict, List, Optional, Sequence

import numpy as np
from mmengine.dist import get_dist_info
from mmengine.evaluator import BaseMetric
from mmengine.logging import MMLogger, print_log
from mmseg.registry import METRICS

from ..functional.seed_eval import dump_sweep_json, format_sweep
from ..functional.seed_sweep import default_thresholds, summarize_sweep, sweep_confusion

__all__ = ['SeedMetric']


def _get(sample: Any, name: str) -> Any:
    """A field of a data sample given as a dict (what mmengine's Evaluator passes) or a data element."""
    if isinstance(sample, dict):
        return sample.get(name)
    return getattr(sample, name, None)


def _to_numpy(x: Any) -> np.ndarray:
    if hasattr(x, 'detach'):  # torch tensor (float for bf16/half tensors, which numpy may not take)
        x = x.detach().cpu()
        if x.is_floating_point():
            x = x.float()
        return x.numpy()
    return np.asarray(x)


@METRICS.register_module()
class SeedMetric(BaseMetric):
    """Seed mIoU of CAMs, swept over constant background scores.

    ``process`` reads from each output data sample ``cam`` (``(K, H, W)`` tensor or numpy array, at the
    original image size), ``cam_keys`` (``[K]`` 0-based foreground class ids) and ``gt_sem_seg.data``
    (``(1, H, W)``), and adds the image's ``[T, N, N]`` confusion counts (one matrix per threshold) to a running
    sum. ``compute_metrics`` picks the threshold of the best mIoU.

    Args:
        num_classes (int, optional): Number of classes including background; None takes
            ``len(dataset_meta['classes'])``.
        thresholds (Sequence[float], optional): Ascending background scores; None for 0.00 .. 0.59.
        ignore_index (int): Ground-truth value that is not counted. Defaults to 255.
        out_file (str, optional): If given, the whole sweep (best threshold, per-class IoU, curve) is written
            there as JSON (atomically). Nothing is written otherwise.
        collect_device (str): Device for collecting results across ranks ('cpu' or 'gpu'). Defaults to 'cpu'.
        prefix (str, optional): Prefix of the metric names; None uses ``'seed'``.
        collect_dir (str, optional): Folder for CPU collection across ranks. Defaults to None.
    """

    default_prefix: Optional[str] = 'seed'

    def __init__(self,
                 num_classes: Optional[int] = None,
                 thresholds: Optional[Sequence[float]] = None,
                 ignore_index: int = 255,
                 out_file: Optional[str] = None,
                 collect_device: str = 'cpu',
                 prefix: Optional[str] = None,
                 collect_dir: Optional[str] = None) -> None:
        super().__init__(collect_device=collect_device, prefix=prefix, collect_dir=collect_dir)
        self.num_classes = num_classes
        self.thresholds = default_thresholds() if thresholds is None else np.asarray(thresholds, np.float64)
        if self.thresholds.ndim != 1 or self.thresholds.size == 0 or np.any(np.diff(self.thresholds) < 0):
            raise ValueError(f'SeedMetric: thresholds must be a non-empty ascending 1-D sequence, '
                             f'got {self.thresholds.tolist()}')
        self.ignore_index = ignore_index
        self.out_file = out_file
        self._num_processed = 0
        self._last_conf: Optional[np.ndarray] = None

    def _resolve_num_classes(self) -> int:
        if self.num_classes is None:
            if not self.dataset_meta or 'classes' not in self.dataset_meta:
                raise ValueError('SeedMetric: num_classes is None and dataset_meta has no "classes"')
            self.num_classes = len(self.dataset_meta['classes'])
        return int(self.num_classes)

    def process(self, data_batch: Any, data_samples: Sequence[Any]) -> None:
        """Adds the sweep confusion of each sample to the running sum.

        Args:
            data_batch (Any): The batch from the dataloader (unused).
            data_samples (Sequence): Model outputs (dicts or ``SegDataSample``) with ``cam``, ``cam_keys`` and
                ``gt_sem_seg``.
        """
        num_classes = self._resolve_num_classes()
        for sample in data_samples:
            name = _get(sample, 'img_path') or _get(sample, 'img_id') or '<unnamed sample>'
            cam, keys, gt_seg = _get(sample, 'cam'), _get(sample, 'cam_keys'), _get(sample, 'gt_sem_seg')
            if cam is None or keys is None or gt_seg is None:
                raise KeyError(f'SeedMetric: sample {name} lacks "cam", "cam_keys" or "gt_sem_seg" (predict '
                               'mode must output CAMs and the pipeline must load the masks)')
            gt = _to_numpy(_get(gt_seg, 'data'))
            if gt.ndim == 3 and gt.shape[0] == 1:
                gt = gt[0]
            try:
                conf = sweep_confusion(_to_numpy(cam), _to_numpy(keys).astype(np.int64), gt, num_classes,
                                       self.thresholds, self.ignore_index)
            except ValueError as e:
                raise ValueError(f'SeedMetric: sample {name}: {e}') from e
            # One running sum per process instead of one entry per image: a [T, N, N] int64 entry is ~215 KB
            # for VOC (~2.3 GB for train_aug if kept per image), and mmengine's collect_results pickles and
            # gathers every entry of every rank. With a one-element list each rank contributes one entry and
            # compute_metrics adds them up.
            if self.results:
                self.results[0] += conf
            else:
                self.results.append(conf.copy())
            self._num_processed += 1
            self._last_conf = conf

    def evaluate(self, size: int) -> dict:
        """Drops the padded duplicate sample (if any) of this rank, then collects and computes as usual.

        mmengine's ``DefaultSampler`` (``round_up=True``) pads the dataset so every rank gets as many samples:
        rank ``r`` of ``w`` processes the global positions ``r, r + w, r + 2w, ...`` and positions ``>= size``
        are duplicates. ``collect_results`` drops them from per-sample results; a running sum cannot, so the
        padded sample, which can only be the last one of a rank, is subtracted here.
        """
        rank, world_size = get_dist_info()
        if self._num_processed and (self._num_processed - 1) * world_size + rank >= size:
            self.results[0] = self.results[0] - self._last_conf
        self._num_processed, self._last_conf = 0, None
        return super().evaluate(size)

    def compute_metrics(self, results: List[np.ndarray]) -> Dict[str, float]:
        """Sums the per-rank confusion tensors and picks the best threshold.

        Args:
            results (list): One ``[T, N, N]`` confusion tensor per rank.

        Returns:
            dict: ``mIoU`` (best mIoU in %) and ``best_threshold``.
        """
        logger: MMLogger = MMLogger.get_current_instance()
        if not results:
            raise ValueError('SeedMetric: no sample was processed')
        conf = np.sum([np.asarray(r) for r in results], axis=0)
        summary = summarize_sweep(conf, self.thresholds)
        names = None
        if self.dataset_meta and len(self.dataset_meta.get('classes', ())) == conf.shape[1]:
            names = list(self.dataset_meta['classes'])
        print_log('seed sweep results:\n' + format_sweep(summary, names), logger=logger)
        if self.out_file:
            dump_sweep_json(self.out_file, summary, names)
            print_log(f'seed sweep written to {self.out_file}', logger=logger)
        return {'mIoU': summary['best_miou'] * 100, 'best_threshold': summary['best_threshold']}
