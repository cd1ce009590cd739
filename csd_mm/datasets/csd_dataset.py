"""The CSD training dataset: target-domain images paired with COR-drawn source images."""
import copy
import os.path as osp
from typing import Dict, List, Optional, Sequence, Union

import numpy as np
import torch
from mmengine.dataset import Compose
from mmengine.dist import get_dist_info
from mmseg.registry import DATASETS
from torch.utils.data import Dataset

from .cooccurrence import CORSampler, cooccurrence_counts, cooccurrence_probs
from .domain import split_domains
from .source_bank import load_source_bank

__all__ = ['CSDDataset']


@DATASETS.register_module()
class CSDDataset(Dataset):
    """Wraps an image-level dataset for Cross-domain Semantic Decoupling (Yang et al., BMVC 2023).

    Each item is one target-domain (multi-label) image ``x_m`` paired with a source-domain (single-label)
    image ``x_s`` and its prior masks from the source bank. The source class is drawn by co-occurrence
    oriented resampling (COR, Eq. 1 of the paper; :class:`~csd_mm.datasets.cooccurrence.CORSampler`), then
    one source image of that class uniformly; ``sampling='uniform'`` draws the source image uniformly from S
    (the paper's copy-paste-without-resampling ablation).

    The two images go through their own pipelines (independent geometric augmentation; the source pipeline
    loads the bank's mask PNG as ``gt_seg_map`` so every geometric transform keeps it aligned), then the
    results are merged (``src_img``, ``src_fg_mask``, ``src_bg_mask``, ``src_label``) and ``paste_pipeline``
    builds the pasted views and packs them (:class:`~csd_mm.datasets.transforms.CopyPaste`,
    :class:`~csd_mm.datasets.transforms.PackCSDInputs`).

    Reproducibility: the draw for dataset index ``i`` on its ``k``-th visit uses the generator seeded with
    ``(seed, i, k)`` (``(seed, i, k, rank)`` when training on several ranks). The visit counts live in a
    shared-memory tensor created by :meth:`full_init` in the main process, so every dataloader worker (forked
    or spawned, persistent or re-created each epoch) sees and advances the same counts: index ``i`` gets a
    new draw on every epoch whichever worker loads it, and a fresh run repeats the same sequence. Each rank
    counts the visits of its own share of the indices; the rank in the seed keeps two ranks that visit the
    same index for the first time from drawing the same source.

    Args:
        dataset (dict | Dataset): The training dataset (e.g. ``ImageLevelDataset`` over train_aug, no
            pipeline needed); its labels give the co-occurrence statistics and its images both domains.
        source_bank (str): Folder of the source bank (``index.json``; see :mod:`csd_mm.datasets.source_bank`).
        pipeline (list[dict]): Target pipeline (loading + augmentation, no packing).
        source_pipeline (list[dict]): Source pipeline (loading image and bank mask + augmentation).
        paste_pipeline (list[dict]): Applied to the merged results (copy-paste, packing).
        sampling (str): ``'cor'`` (default) or ``'uniform'``.
        include_self (bool): COR diagonal = single-label counts (default) or 0.
        seed (int): Seed of the draws. Defaults to 0.
        iterate_over (str): ``'target'`` (default, the paper: T images only) or ``'all'`` (every image with a
            label; single-label images are then paired too).
    """

    def __init__(self,
                 dataset: Union[dict, Dataset],
                 source_bank: str,
                 pipeline: Sequence[dict],
                 source_pipeline: Sequence[dict],
                 paste_pipeline: Sequence[dict],
                 sampling: str = 'cor',
                 include_self: bool = True,
                 seed: int = 0,
                 iterate_over: str = 'target',
                 lazy_init: bool = False) -> None:
        self.dataset = DATASETS.build(dataset) if isinstance(dataset, dict) else dataset
        self.source_bank = source_bank
        self.pipeline = Compose(pipeline)
        self.source_pipeline = Compose(source_pipeline)
        self.paste_pipeline = Compose(paste_pipeline)
        if iterate_over not in ('target', 'all'):
            raise ValueError(f"iterate_over must be 'target' or 'all', got {iterate_over!r}")
        self.sampling = sampling
        self.include_self = include_self
        self.seed = seed
        self.iterate_over = iterate_over
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
        entries = [e for e in bank['entries'] if e['img_id'] in index_of]
        if not entries:
            raise ValueError(f'{self.source_bank}: no source bank entry belongs to the training dataset')
        self._bank_entries = entries
        self._bank_dataset_index = np.array([index_of[e['img_id']] for e in entries], np.int64)
        source_classes = np.array([e['class'] for e in entries], np.int64)
        probs = cooccurrence_probs(cooccurrence_counts(labels, include_self=self.include_self))
        classes = self.dataset.metainfo.get('classes', None)
        fg_names = list(classes[1:]) if classes is not None and len(classes) == labels.shape[1] + 1 else None
        self._sampler = CORSampler(source_classes, probs, rng=None, sampling=self.sampling,
                                   class_names=fg_names)
        _, target_idx = split_domains(labels)
        self._items = target_idx if self.iterate_over == 'target' else np.flatnonzero(labels.sum(1) > 0)
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

    def __getitem__(self, idx: int) -> Dict:
        self.full_init()
        target = self.pipeline(copy.deepcopy(self.dataset.get_data_info(int(self._items[idx]))))
        source = self.source_pipeline(self._source_info(self.draw_source(idx)))
        if target is None or source is None:
            raise RuntimeError(f'a pipeline returned None for item {idx}; CSD pipelines must not filter')
        prior = source['gt_seg_map']
        target.update(
            src_img=source['img'],
            src_fg_mask=(prior == 1).astype(np.uint8),
            src_bg_mask=(prior == 0).astype(np.uint8),
            src_label=np.asarray(source['gt_label'], np.float32),
            src_img_id=source['img_id'])
        return self.paste_pipeline(target)

    def get_labels(self) -> np.ndarray:
        """(len, C) labels of the iterated (target) images."""
        self.full_init()
        return np.stack([np.asarray(self.dataset.get_data_info(int(i))['gt_label'], np.float32)
                         for i in self._items])
