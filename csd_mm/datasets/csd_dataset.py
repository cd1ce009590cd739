"""The CSD training dataset: the baseline's images, multi-label ones paired with COR-drawn source images."""
import copy
import os.path as osp
from typing import Dict, List, Optional, Sequence, Tuple, Union

import numpy as np
import torch
from mmengine.dataset import Compose
from mmengine.dist import get_dist_info
from mmseg.datasets.transforms import LoadAnnotations
from mmseg.registry import DATASETS
from torch.utils.data import Dataset

from csd_mm.utils.fileio import raise_if_unreadable_image
from .cooccurrence import CORSampler, cooccurrence_counts, cooccurrence_probs
from .domain import split_domains
from .source_bank import check_source_bank_labels, load_source_bank
from .transforms import CopyPaste, DecodePriorMask, PackCSDInputs

__all__ = ['CSDDataset', 'derive_view_pipelines', 'ITERATE_OVER', 'PAIR']

#: Which images are items (and so in L_cls): every labelled image (the paper) or the multi-label ones only.
ITERATE_OVER = ('all', 'multi_label')
#: Which items get a source image, pasted views and the consistency terms: multi-label ones (the paper) or all.
PAIR = ('multi_label', 'all')


def derive_view_pipelines(baseline_pipeline: Optional[Compose]) -> Tuple[List, List]:
    """The target and source pipelines of CSD from a baseline's training pipeline.

    CSD (Yang et al., BMVC 2023) is a plug-in: both views get the baseline's augmentation. The baseline's
    pipeline must be ``[LoadImageFromFile, <augmentation...>, PackCAMInputs]``; the target pipeline is
    ``[load] + augmentation`` and the source pipeline ``[load, LoadAnnotations()] + augmentation +
    [DecodePriorMask()]``: the source's bank mask is loaded as ``gt_seg_map`` (then split into fg / bg masks), so every geometric transform of the augmentation must move
    ``gt_seg_map`` with the image (mmcv / mmseg transforms and csd_mm's do; photometric ones leave it alone).

    Args:
        baseline_pipeline (Compose): The wrapped dataset's built pipeline.

    Returns:
        tuple[list, list]: The target and source transforms (shared instances; they hold no per-sample state).
    """
    transforms = list(getattr(baseline_pipeline, 'transforms', None) or [])
    names = [type(t).__name__ for t in transforms]
    if len(names) < 2 or names[0] != 'LoadImageFromFile' or names[-1] != 'PackCAMInputs':
        raise ValueError('CSDDataset: without explicit pipeline / source_pipeline the wrapped dataset needs the '
                         'baseline training pipeline [LoadImageFromFile, <augmentation...>, PackCAMInputs], got '
                         f'{names}')
    load, augmentation = transforms[0], transforms[1:-1]
    return [load] + augmentation, [load, LoadAnnotations()] + augmentation + [DecodePriorMask()]


@DATASETS.register_module()
class CSDDataset(Dataset):
    """Wraps an image-level dataset for Cross-domain Semantic Decoupling (Yang et al., BMVC 2023).

    The paper adds CSD to a baseline as a plug-in that keeps the baseline's data and schedule, and defines the
    pairing for multi-label inputs ("given the input multi-label image x_m we selectively sample a
    single-label image x_s"). So, by default, every labelled training image is an item (and is in L_cls), and
    only the multi-label ones (target domain T, ``|y| >= 2``) are *paired*: each gets a source-domain
    (single-label) image ``x_s`` with its prior masks from the source bank, drawn by co-occurrence oriented
    resampling (COR, Eq. 1; :class:`~csd_mm.datasets.cooccurrence.CORSampler`, then one source image of the
    drawn class uniformly; ``sampling='uniform'`` draws it uniformly from S, the paper's
    copy-paste-without-resampling ablation). A single-label item is packed as one view, exactly as the
    baseline packs it, and costs one forward pass like in the baseline.

    Two other readings are switches (docs/method.md, section 6):

    * ``iterate_over='multi_label'``: only multi-label images are items (so only they are in L_cls; an epoch
      is about 41% of the baseline's on VOC);
    * ``pair='all'``: every item is paired, single-label ones too.

    A paired item's target and source go through their own pipelines (independent augmentation; the source
    pipeline loads the bank's mask PNG as ``gt_seg_map`` so every geometric transform keeps it aligned, and
    :class:`~csd_mm.datasets.transforms.DecodePriorMask` splits it into ``fg_mask`` / ``bg_mask``). By default
    both are derived from the wrapped dataset's own pipeline, the baseline's
    ``[LoadImageFromFile, <augmentation...>, PackCAMInputs]`` (:func:`derive_view_pipelines`), so CSD trains
    with exactly the baseline's augmentation. The dataset then only merges the two result dicts (``src_img``,
    ``src_fg_mask``, ``src_bg_mask``, ``src_label``, ``src_img_id``) and ``paste_pipeline`` builds the pasted views and packs them (:class:`~csd_mm.datasets.transforms.CopyPaste`,
    :class:`~csd_mm.datasets.transforms.PackCSDInputs`). An unpaired item carries ``csd_paired=False`` through
    the same ``paste_pipeline``: ``CopyPaste`` leaves it alone and ``PackCSDInputs`` packs its one view.

    Reproducibility: the draw for dataset index ``i`` on its ``k``-th visit uses the generator seeded with
    ``(seed, i, k)`` (``(seed, i, k, rank)`` when training on several ranks). The visit counts live in a
    shared-memory tensor created by :meth:`full_init` in the main process, so every dataloader worker (forked
    or spawned, persistent or re-created each epoch) sees and advances the same counts: index ``i`` gets a
    new draw on every epoch whichever worker loads it, and a fresh run repeats the same sequence. Each rank
    counts the visits of its own share of the indices; the rank in the seed keeps two ranks that visit the
    same index for the first time from drawing the same source.

    Args:
        dataset (dict | Dataset): The baseline's training dataset (e.g. ``ImageLevelDataset`` over train_aug
            with the baseline's training pipeline); its labels give the co-occurrence statistics and its images
            both domains.
        source_bank (str): Folder of the source bank (``index.json``; see :mod:`csd_mm.datasets.source_bank`).
        pipeline (list[dict], optional): Target pipeline (loading + augmentation, no packing), for unpaired
            items too. Defaults to the wrapped dataset's pipeline without its packing transform.
        source_pipeline (list[dict], optional): Source pipeline (loading image and bank mask, augmentation,
            ``DecodePriorMask``). Defaults to the wrapped dataset's pipeline with ``LoadAnnotations`` after its
            loading, ``DecodePriorMask`` instead of its packing transform.
        paste_pipeline (list[dict], optional): Applied to the merged results. Defaults to an aligned hard
            ``CopyPaste`` then ``PackCSDInputs``.
        sampling (str): ``'cor'`` (default) or ``'uniform'``.
        include_self (bool): COR diagonal = single-label counts (default) or 0.
        seed (int): Seed of the draws. Defaults to 0.
        iterate_over (str): ``'all'`` (default, the paper: every labelled image) or ``'multi_label'``.
        pair (str): ``'multi_label'`` (default, the paper) or ``'all'`` (single-label items paired too).
        lazy_init (bool): Defer reading the labels and the bank to the first use. Defaults to False.
    """

    def __init__(self,
                 dataset: Union[dict, Dataset],
                 source_bank: str,
                 pipeline: Optional[Sequence[dict]] = None,
                 source_pipeline: Optional[Sequence[dict]] = None,
                 paste_pipeline: Optional[Sequence[dict]] = None,
                 sampling: str = 'cor',
                 include_self: bool = True,
                 seed: int = 0,
                 iterate_over: str = 'all',
                 pair: str = 'multi_label',
                 lazy_init: bool = False) -> None:
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        self.source_bank = source_bank
        if pipeline is None or source_pipeline is None:
            derived = derive_view_pipelines(getattr(self.dataset, 'pipeline', None))
            pipeline = derived[0] if pipeline is None else pipeline
            source_pipeline = derived[1] if source_pipeline is None else source_pipeline
        self.pipeline = Compose(pipeline)
        self.source_pipeline = Compose(source_pipeline)
        self.paste_pipeline = Compose(paste_pipeline if paste_pipeline is not None else
                                      [CopyPaste(soft_edge_sigma=0.0), PackCSDInputs()])
        if iterate_over == 'target':
            raise ValueError("CSDDataset: iterate_over='target' is now called iterate_over='multi_label' (only "
                             "multi-label images iterated); the default 'all' with pair='multi_label' is the "
                             'paper\'s reading (docs/method.md, section 6)')
        if iterate_over not in ITERATE_OVER:
            raise ValueError(f'CSDDataset: iterate_over must be one of {ITERATE_OVER}, got {iterate_over!r}')
        if pair not in PAIR:
            raise ValueError(f'CSDDataset: pair must be one of {PAIR}, got {pair!r}')
        self.sampling = sampling
        self.include_self = include_self
        self.seed = seed
        self.iterate_over = iterate_over
        self.pair = pair
        self._fully_initialized = False
        if not lazy_init:
            self.full_init()

    @property
    def metainfo(self) -> dict:
        return copy.deepcopy(self.dataset.metainfo)

    def full_init(self) -> None:
        """Reads the labels and the source bank and builds the COR sampler (once)."""
        if self._fully_initialized:
            return
        if hasattr(self.dataset, 'full_init'):
            self.dataset.full_init()
        labels = np.stack([np.asarray(self.dataset.get_data_info(i)['gt_label'], np.float32)
                           for i in range(len(self.dataset))]) if len(self.dataset) else np.zeros((0, 0))
        ids = [self.dataset.get_data_info(i)['img_id'] for i in range(len(self.dataset))]
        index_of = {img_id: i for i, img_id in enumerate(ids)}
        bank = load_source_bank(self.source_bank)
        entries = check_source_bank_labels(self.source_bank, bank, ids, labels,
                                           f'the labels of {type(self.dataset).__name__} '
                                           f'({getattr(self.dataset, "label_file", None) or "its label source"})')
        if not entries:
            raise ValueError(f'source bank {self.source_bank} has no entry: no single-label image to paste')
        self._bank_entries = entries
        self._bank_dataset_index = np.array([index_of[e['img_id']] for e in entries], np.int64)
        source_classes = np.array([e['class'] for e in entries], np.int64)
        probs = cooccurrence_probs(cooccurrence_counts(labels, include_self=self.include_self))
        classes = self.dataset.metainfo.get('classes', None)
        fg_names = list(classes[1:]) if classes is not None and len(classes) == labels.shape[1] + 1 else None
        self._sampler = CORSampler(source_classes, probs, rng=None, sampling=self.sampling,
                                   class_names=fg_names)
        _, target_idx = split_domains(labels)
        self._items = target_idx if self.iterate_over == 'multi_label' else np.flatnonzero(labels.sum(1) > 0)
        self._paired = (labels[self._items].sum(1) >= 2) | (self.pair == 'all')
        # shared memory: dataloader workers get a handle to the same storage (see the class docstring)
        self._visits = torch.zeros(len(self._items), dtype=torch.int64).share_memory_()
        rank, world_size = get_dist_info()
        self._rank_key = [] if world_size == 1 else [rank]
        self._fully_initialized = True

    def __len__(self) -> int:
        self.full_init()
        return len(self._items)

    def draw_source(self, idx: int) -> int:
        """Draws the source bank position paired with item ``idx`` on its next visit (deterministic)."""
        self.full_init()
        visit = int(self._visits[idx])
        self._visits[idx] = visit + 1
        self._sampler.rng = np.random.default_rng([self.seed, idx, visit] + self._rank_key)
        label = np.asarray(self.dataset.get_data_info(int(self._items[idx]))['gt_label'])
        _, bank_pos = self._sampler.sample(label)
        return bank_pos

    def _source_info(self, bank_pos: int) -> Dict:
        entry = self._bank_entries[bank_pos]
        info = copy.deepcopy(self.dataset.get_data_info(int(self._bank_dataset_index[bank_pos])))
        info.update(seg_map_path=osp.join(self.source_bank, entry['mask']), reduce_zero_label=False,
                    seg_fields=[], label_map=None)
        return info

    def is_paired(self, idx: int) -> bool:
        """Whether item ``idx`` gets a source image (multi-label, or every item with ``pair='all'``)."""
        self.full_init()
        return bool(self._paired[idx])

    @staticmethod
    def _run(pipeline: Compose, info: Dict) -> Dict:
        """``pipeline(info)``; a failure on an unreadable image names the image file (see ``ImageLevelDataset``)."""
        try:
            return pipeline(info)
        except Exception as e:
            raise_if_unreadable_image(info['img_path'], e)
            raise

    def __getitem__(self, idx: int) -> Dict:
        self.full_init()
        target = self._run(self.pipeline, copy.deepcopy(self.dataset.get_data_info(int(self._items[idx]))))
        if target is None:
            raise RuntimeError(f'a pipeline returned None for item {idx}; CSD pipelines must not filter')
        if not self._paired[idx]:
            target['csd_paired'] = False
            return self.paste_pipeline(target)
        source = self._run(self.source_pipeline, self._source_info(self.draw_source(idx)))
        if source is None:
            raise RuntimeError(f'a pipeline returned None for item {idx}; CSD pipelines must not filter')
        missing = [k for k in ('fg_mask', 'bg_mask') if k not in source]
        if missing:
            raise KeyError(f'CSDDataset: the source pipeline must end with DecodePriorMask (no {missing} in the '
                           f'results of {source.get("img_path", "<unknown image>")})')
        # merge the source's results into the target's under src_ names; no decoding here
        target.update({f'src_{k}': source[k] for k in ('img', 'fg_mask', 'bg_mask', 'img_id')},
                      csd_paired=True, src_label=np.asarray(source['gt_label'], np.float32))
        return self.paste_pipeline(target)

    def get_labels(self) -> np.ndarray:
        """(len, C) labels of the items."""
        self.full_init()
        return np.stack([np.asarray(self.dataset.get_data_info(int(i))['gt_label'], np.float32)
                         for i in self._items])
