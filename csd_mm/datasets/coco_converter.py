"""Converts COCO-format instance annotations (``instances_<split>.json``) into the project's WSSS inputs.

Written under ``out_root`` (beside COCO's ``<split>/`` image folders, which are read in place)::

    SegmentationClass/<split>/<img_id>.png   class-index masks (0 background, 1..80, 255 crowd / ignore)
    ImageSets/<split>.txt                    every image of the json (COCO 2014: 82,783 train / 40,504 val)
    ImageSets/<split>_cls.txt                the images with at least one label (the classification split;
                                             about 82,081 / 40,137 on COCO 2014)
    cls_labels.npz                           image id -> float32[80] over every converted split (pickle-free)

``img_id`` is the image's file stem (``COCO_train2014_000000000009``), as in MCTformer's ``coco/*_id.txt``.
Masks are decoded by pycocotools (:mod:`csd_mm.datasets.coco`; ``pip install -r requirements/optional/coco.txt``):
without it, converting is refused up front with that command. Masks already on disk are kept (a rerun or a
crashed run continues); every file is written atomically.
"""
import json
import os.path as osp
from typing import Any, Dict, List, Mapping, Optional, Tuple

import numpy as np
from mmengine.utils import track_parallel_progress, track_progress

from csd_mm.utils.fileio import atomic_write_bytes, write_png

from .coco import category_index_map, coco_mask_api, image_label, semantic_mask
from .labels import LabelFileError, load_cls_labels, save_cls_labels

__all__ = ['load_coco_instances', 'convert_coco_split', 'convert_coco']

MASK_DIR = 'SegmentationClass'
SPLIT_DIR = 'ImageSets'
LABEL_FILE = 'cls_labels.npz'


def load_coco_instances(ann_file: str) -> Tuple[List[dict], Dict[int, List[dict]], Dict[int, int]]:
    """Reads a COCO instances json and checks what the conversion relies on.

    Args:
        ann_file (str): Path of ``instances_<split>.json``.

    Returns:
        tuple: ``images`` (the json's image entries, in file order), ``anns_by_image`` (image id -> its
        annotations) and ``cat_index`` (category id -> 0-based class, ascending ids).

    Raises:
        LabelFileError: The file is missing or not JSON, lacks ``images`` / ``annotations`` / ``categories``, an
            image lacks ``id`` / ``file_name`` / ``height`` / ``width``, two images share a file stem, or an
            annotation names an unknown image or category.
    """
    if not osp.isfile(ann_file):
        raise LabelFileError(f'COCO annotation file not found: {ann_file}')
    try:
        with open(ann_file, encoding='utf-8') as f:
            data = json.load(f)
    except (OSError, ValueError) as e:
        raise LabelFileError(f'{ann_file} is not valid JSON: {e}') from e
    missing = [k for k in ('images', 'annotations', 'categories') if not isinstance(data, dict) or k not in data]
    if missing:
        raise LabelFileError(f'{ann_file} is not a COCO instances file: no {", ".join(missing)}')
    try:
        cat_index = category_index_map(data['categories'], ann_file)
    except ValueError as e:
        raise LabelFileError(str(e)) from e
    images, stems, ids = [], set(), set()
    for img in data['images']:
        if not all(k in img for k in ('id', 'file_name', 'height', 'width')):
            raise LabelFileError(f'{ann_file}: image entry {img!r} lacks id / file_name / height / width')
        stem = osp.splitext(osp.basename(img['file_name']))[0]
        if stem in stems:
            raise LabelFileError(f'{ann_file}: two images have the file stem {stem!r}')
        stems.add(stem)
        ids.add(img['id'])
        images.append(img)
    anns_by_image: Dict[int, List[dict]] = {img['id']: [] for img in images}
    for ann in data['annotations']:
        if ann.get('image_id') not in ids:
            raise LabelFileError(f'{ann_file}: annotation {ann.get("id")} names unknown image {ann.get("image_id")}')
        if ann.get('category_id') not in cat_index:
            raise LabelFileError(f'{ann_file}: annotation {ann.get("id")} names unknown category '
                                 f'{ann.get("category_id")}')
        if 'segmentation' not in ann:
            raise LabelFileError(f'{ann_file}: annotation {ann.get("id")} has no segmentation')
        anns_by_image[ann['image_id']].append(ann)
    return images, anns_by_image, cat_index


def _write_mask(task: Tuple[str, List[dict], int, int, Dict[int, int], str]) -> None:
    path, anns, height, width, cat_index, ann_file = task
    try:
        mask = semantic_mask(anns, height, width, cat_index)
    except ValueError as e:
        raise LabelFileError(f'{ann_file}: {osp.basename(path)}: {e}') from e
    write_png(path, mask)


def convert_coco_split(ann_file: str, out_root: str, split: str, masks: bool = True, nproc: int = 1,
                       progress: bool = True) -> Dict[str, Any]:
    """Converts one split: its masks and split files; returns its labels and counts.

    Args:
        ann_file (str): ``instances_<split>.json``.
        out_root (str): Output root.
        split (str): Split name (``train2014``, ``val2014``): mask sub-folder and split-file name.
        masks (bool): Write the class-index masks. Defaults to True.
        nproc (int): Processes for the masks (mmengine's ``track_parallel_progress``). Defaults to 1.
        progress (bool): Show a progress bar. Defaults to True.

    Returns:
        dict: ``labels`` (img_id -> float32[C]), ``num_images``, ``num_labelled``, ``num_classes``,
        ``masks_written``.

    Raises:
        ImportError: ``masks`` and pycocotools is not installed (before anything is read or written).
    """
    if masks:
        coco_mask_api()  # refuse before the json is read, not in the first worker
    images, anns_by_image, cat_index = load_coco_instances(ann_file)
    labels, labelled, all_ids, tasks = {}, [], [], []
    for img in images:
        img_id = osp.splitext(osp.basename(img['file_name']))[0]
        anns = anns_by_image[img['id']]
        labels[img_id] = image_label(anns, cat_index)
        all_ids.append(img_id)
        if labels[img_id].any():
            labelled.append(img_id)
        path = osp.join(out_root, MASK_DIR, split, img_id + '.png')
        if masks and not osp.isfile(path):
            tasks.append((path, anns, int(img['height']), int(img['width']), cat_index, ann_file))
    if tasks:
        if nproc > 1:
            track_parallel_progress(_write_mask, tasks, nproc, keep_order=False)
        elif progress:
            track_progress(_write_mask, tasks)
        else:
            for task in tasks:
                _write_mask(task)
    for name, ids in ((split, all_ids), (split + '_cls', labelled)):
        atomic_write_bytes(osp.join(out_root, SPLIT_DIR, name + '.txt'), ('\n'.join(ids) + '\n').encode())
    return dict(labels=labels, num_images=len(all_ids), num_labelled=len(labelled), num_classes=len(cat_index),
                masks_written=len(tasks))


def convert_coco(ann_files: Mapping[str, str], out_root: str, masks: bool = True, nproc: int = 1,
                 progress: bool = True, log: Optional[Any] = print) -> Dict[str, Dict[str, int]]:
    """Converts every split of ``ann_files`` (split name -> json) and writes one ``cls_labels.npz``.

    The label file keeps the labels of images of other splits already in it, so the splits can be converted in
    separate runs (a converted split's images get their new labels).

    Returns:
        dict: split -> ``num_images``, ``num_labelled``, ``masks_written``.

    Raises:
        LabelFileError: A json is malformed (see :func:`load_coco_instances`) or the splits disagree on the
            number of classes.
        ImportError: ``masks`` and pycocotools is not installed.
    """
    labels: Dict[str, np.ndarray] = {}
    summary: Dict[str, Dict[str, int]] = {}
    num_classes = None
    for split, ann_file in ann_files.items():
        res = convert_coco_split(ann_file, out_root, split, masks=masks, nproc=nproc, progress=progress)
        if num_classes is not None and res['num_classes'] != num_classes:
            raise LabelFileError(f'{ann_file} has {res["num_classes"]} categories, the other splits {num_classes}')
        num_classes = res['num_classes']
        labels.update(res['labels'])
        summary[split] = {k: res[k] for k in ('num_images', 'num_labelled', 'masks_written')}
        if log is not None:
            log(f'{split}: {res["num_images"]:,} images, {res["num_labelled"]:,} with at least one label '
                f'({res["num_images"] - res["num_labelled"]:,} without: left out of {SPLIT_DIR}/{split}_cls.txt); '
                f'{res["num_classes"]} classes; {res["masks_written"]:,} masks written')
    label_file = osp.join(out_root, LABEL_FILE)
    if osp.isfile(label_file):  # splits converted by an earlier run (--ann-files one split at a time) keep theirs
        kept = {k: v for k, v in load_cls_labels(label_file).items() if k not in labels}
        if kept and num_classes is not None and len(next(iter(kept.values()))) != num_classes:
            raise LabelFileError(f'{label_file} holds labels of {len(next(iter(kept.values())))} classes, '
                                 f'{", ".join(ann_files.values())} {num_classes}: another dataset in {out_root}?')
        labels = {**kept, **labels}
    save_cls_labels(label_file, labels)
    return summary
