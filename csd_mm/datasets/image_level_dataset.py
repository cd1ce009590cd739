"""Image-level-labelled VOC-format dataset for weakly-supervised semantic segmentation.

Used by the CAM baselines (IRN, Ahn et al. CVPR 2019; MCTformer, Xu et al. CVPR 2022) and by CSD (Yang et al.,
"Cross-domain Semantic Decoupling for Weakly-Supervised Semantic Segmentation", BMVC 2023), which splits the
training images into a single-label source domain and a multi-label target domain (``domain``).
"""
import copy
import os.path as osp
from typing import Dict, List, Optional, Sequence

import numpy as np
from mmengine.utils import is_abs
from mmseg.datasets import BaseSegDataset
from mmseg.datasets.voc import PascalVOCDataset
from mmseg.registry import DATASETS

from csd_mm.utils.fileio import raise_if_unreadable_image
from .domain import split_domains
from .labels import (labels_for_split, labels_from_masks, labels_from_xml, load_cls_labels,
                     read_split)

__all__ = ['ImageLevelDataset']


@DATASETS.register_module()
class ImageLevelDataset(BaseSegDataset):
    """VOC-format dataset whose samples carry a multi-hot image-level label ``gt_label``.

    It subclasses mmseg's :class:`~mmseg.datasets.BaseSegDataset` (rather than mmengine's ``BaseDataset``)
    so that the same dataset serves training on image labels and evaluation against masks: mmseg's
    ``LoadAnnotations`` and the seed / IoU metrics read the ``seg_map_path``, ``reduce_zero_label``,
    ``seg_fields`` and ``label_map`` keys and the class / palette metainfo it provides. Two things differ
    from the parent: ``label_map`` is always None (label vectors are over this dataset's own classes, which
    need not be a subset of VOC's), and ``seg_map_path`` may be None (no masks).

    Each ``data_info`` holds ``img_path``, ``img_id`` (file stem), ``gt_label`` (``np.float32[C]``),
    ``seg_map_path`` (or None), ``reduce_zero_label=False``, ``seg_fields=[]`` and ``label_map=None``.

    Args:
        ann_file (str): Split file, one image id per line (relative to ``data_root``).
        data_root (str, optional): Dataset root.
        data_prefix (dict): ``img_path`` (default ``'JPEGImages'``) and ``seg_map_path`` (None, or the mask
            folder, e.g. ``'SegmentationClassAug'``).
        label_source (str): ``'npy'`` (``label_file``: the community's ``cls_labels.npy`` or its pickle-free
            ``.npz`` form), ``'xml'`` (VOC ``Annotations`` XML in ``xml_dir``) or ``'mask'`` (classes present in
            the masks of ``data_prefix['seg_map_path']``).
        label_file (str): The ``.npy`` / ``.npz`` label file for ``label_source='npy'`` (relative to
            ``data_root``; :func:`~csd_mm.datasets.labels.load_cls_labels` reads both). Defaults to
            ``'cls_labels.npy'`` (the VOC / COCO configs set ``'cls_labels.npz'``).
        xml_dir (str): Annotation folder for ``label_source='xml'``. Defaults to ``'Annotations'``.
        domain (str): ``'all'``, ``'source'`` (single-label images only) or ``'target'`` (two or more
            classes). Defaults to ``'all'``.
        metainfo (dict, optional): ``classes`` with ``'background'`` first, then the C foreground classes;
            defaults to VOC's 21 classes and palette.
        img_suffix (str): Image suffix. Defaults to ``'.jpg'``.
        seg_map_suffix (str): Mask suffix. Defaults to ``'.png'``.
        check_files (bool): Check at load time that every image (and mask) file exists. Defaults to True.
        **kwargs: Other arguments of :class:`~mmseg.datasets.BaseSegDataset` / mmengine's ``BaseDataset``
            (``pipeline``, ``test_mode``, ``indices``, ``serialize_data``, ``lazy_init``, ...).
    """
    METAINFO = copy.deepcopy(PascalVOCDataset.METAINFO)

    def __init__(self,
                 ann_file: str = '',
                 data_root: Optional[str] = None,
                 data_prefix: Optional[dict] = None,
                 label_source: str = 'npy',
                 label_file: str = 'cls_labels.npy',
                 xml_dir: str = 'Annotations',
                 domain: str = 'all',
                 metainfo: Optional[dict] = None,
                 img_suffix: str = '.jpg',
                 seg_map_suffix: str = '.png',
                 check_files: bool = True,
                 **kwargs) -> None:
        if label_source not in ('npy', 'xml', 'mask'):
            raise ValueError(f"label_source must be 'npy', 'xml' or 'mask', got {label_source!r}")
        if domain not in ('all', 'source', 'target'):
            raise ValueError(f"domain must be 'all', 'source' or 'target', got {domain!r}")
        if kwargs.get('reduce_zero_label', False):
            raise ValueError('ImageLevelDataset keeps background as mask value 0: reduce_zero_label must be '
                             'False')
        data_prefix = dict(img_path='JPEGImages', seg_map_path=None) if data_prefix is None else \
            dict(data_prefix)
        self._seg_map_prefix: Optional[str] = data_prefix.pop('seg_map_path', None)
        if label_source == 'mask' and self._seg_map_prefix is None:
            raise ValueError("label_source='mask' needs data_prefix['seg_map_path'] (the mask folder)")
        self.label_source = label_source
        self.label_file = label_file
        self.xml_dir = xml_dir
        self.domain = domain
        self.check_files = check_files
        metainfo = copy.deepcopy(metainfo) if metainfo is not None else None
        if metainfo is not None and 'classes' in metainfo and 'palette' not in metainfo and \
                list(metainfo['classes']) != list(self.METAINFO['classes']):
            # classes of another dataset: let mmseg generate a palette instead of slicing VOC's
            metainfo['palette'] = []
        super().__init__(
            ann_file=ann_file,
            data_root=data_root,
            data_prefix=data_prefix,
            metainfo=metainfo,
            img_suffix=img_suffix,
            seg_map_suffix=seg_map_suffix,
            **kwargs)

    @classmethod
    def get_label_map(cls, new_classes: Optional[Sequence] = None) -> None:
        """No label remapping: label vectors and masks use this dataset's own class order."""
        return None

    def _join_prefix(self) -> None:
        super()._join_prefix()
        if self.data_root:
            if self._seg_map_prefix is not None and not is_abs(self._seg_map_prefix):
                self._seg_map_prefix = osp.join(self.data_root, self._seg_map_prefix)
            if self.label_file and not is_abs(self.label_file):
                self.label_file = osp.join(self.data_root, self.label_file)
            if self.xml_dir and not is_abs(self.xml_dir):
                self.xml_dir = osp.join(self.data_root, self.xml_dir)
        self.data_prefix['seg_map_path'] = self._seg_map_prefix

    @property
    def foreground_classes(self) -> List[str]:
        """The C foreground class names (``metainfo['classes']`` without the leading background)."""
        classes = list(self._metainfo.get('classes') or [])
        if not classes or classes[0] != 'background':
            raise ValueError(f"metainfo['classes'] must start with 'background', got {classes[:3]}...")
        return classes[1:]

    def _load_labels(self, ids: List[str]) -> Dict[str, np.ndarray]:
        classes = self.foreground_classes
        if self.label_source == 'npy':
            return load_cls_labels(self.label_file)
        if self.label_source == 'xml':
            return labels_from_xml(self.xml_dir, ids, classes)
        return labels_from_masks(self._seg_map_prefix, ids, len(classes), ignore_index=self.ignore_index,
                                 suffix=self.seg_map_suffix)

    def load_data_list(self) -> List[dict]:
        """Reads the split, its labels and (optionally) checks the files; keeps the requested domain.

        Returns:
            list[dict]: One ``data_info`` per image, in split order.

        Raises:
            LabelFileError: The split file is missing or empty, a split id has no label, or a label vector
                does not have one entry per foreground class.
            FileNotFoundError: An image or mask file is missing (``check_files=True``).
        """
        ids = read_split(self.ann_file)
        classes = self.foreground_classes
        label_name = {'npy': self.label_file, 'xml': self.xml_dir, 'mask': self._seg_map_prefix}
        labels = labels_for_split(self._load_labels(ids), ids, len(classes),
                                  label_file=str(label_name[self.label_source]))
        if self.domain != 'all':
            source_idx, target_idx = split_domains(labels)
            keep = source_idx if self.domain == 'source' else target_idx
        else:
            keep = np.arange(len(ids))
        img_dir = self.data_prefix.get('img_path', '') or ''
        data_list = []
        for i in keep.tolist():
            img_id = ids[i]
            img_path = osp.join(img_dir, img_id + self.img_suffix)
            seg_map_path = None if self._seg_map_prefix is None else \
                osp.join(self._seg_map_prefix, img_id + self.seg_map_suffix)
            data_list.append(
                dict(
                    img_path=img_path,
                    img_id=img_id,
                    gt_label=labels[i].copy(),
                    seg_map_path=seg_map_path,
                    reduce_zero_label=False,
                    seg_fields=[],
                    label_map=None))
        if self.check_files:
            self._check_files(data_list)
        return data_list

    def _check_files(self, data_list: List[dict]) -> None:
        for key, what in (('img_path', 'image'), ('seg_map_path', 'mask')):
            missing = [d[key] for d in data_list if d[key] is not None and not osp.isfile(d[key])]
            if missing:
                shown = ', '.join(missing[:3]) + (f' ... ({len(missing)} in all)' if len(missing) > 3 else '')
                raise FileNotFoundError(f'{what} file(s) listed in {self.ann_file} not found: {shown}')

    def prepare_data(self, idx: int):
        """Runs the pipeline on sample ``idx``; a failure on an unreadable image names the image file.

        (mmcv's ``LoadImageFromFile`` stops on an empty file with a bare ``cv2.error``; other failures are raised
        unchanged.)
        """
        try:
            return super().prepare_data(idx)
        except Exception as e:
            raise_if_unreadable_image(self.get_data_info(idx)['img_path'], e)
            raise

    def get_labels(self) -> np.ndarray:
        """The ``float32 [N, C]`` label matrix of the dataset, in index order (for COR)."""
        num_classes = len(self.foreground_classes)
        if len(self) == 0:
            return np.zeros((0, num_classes), np.float32)
        return np.stack([self.get_data_info(i)['gt_label'] for i in range(len(self))]).astype(np.float32)

