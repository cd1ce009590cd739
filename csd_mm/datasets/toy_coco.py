"""A deterministic synthetic dataset in MS COCO 2014's own format, for the COCO path's tests and demo.

The scenes are the toy VOC generator's (:func:`csd_mm.datasets.toy.render_toy_image`: riders on horses, cars,
boats, birds), its five classes given the COCO categories person (1), horse (19), car (3), boat (9) and bird
(16); the json lists all 80 COCO categories, so the conversion gives 80-class labels as on COCO and most classes
have no image at all (the case COR must handle). Written under ``root``::

    train2014/COCO_train2014_<12 digits>.jpg, val2014/COCO_val2014_<12 digits>.jpg   BGR JPEGs
    annotations/instances_train2014.json, annotations/instances_val2014.json

Each connected region of a class is one instance, stored as a polygon, an uncompressed RLE or (every third
instance) a compressed RLE string. The polygons are ``cv2.findContours``' outer contours, vertices at the
boundary pixels' indices: COCO's rasterisation (pixel centres, pycocotools' ``frPyObjects``)
differs from the region on boundary pixels, mostly its right / bottom ones (converted masks agree with the
rendered labels on 99.5% of the pixels on average, 97.4% at worst over 192 images), and the converted masks, as
on COCO, are the ground truth; in every tenth image one instance is a crowd region (``iscrowd=1``, which the
conversion marks 255); every 25th image shows no object and has no annotation (COCO has such images: they are
left out of the classification split). ``meta.json`` is written last; a complete root made with the same
parameters is reused. The compressed RLE strings are pycocotools' (``mask.encode``), so generating the toy needs
pycocotools, as converting it does (requirements/optional/coco.txt).
"""
import json
import os.path as osp
from typing import Dict, List, Tuple

import cv2
import numpy as np

from csd_mm.utils.fileio import atomic_write_bytes

from .coco import COCO_CATEGORY_IDS, COCO_CLASSES, coco_mask_api, rle_encode, segmentation_to_mask
from .toy import TOY_CLASSES, render_toy_image

__all__ = ['TOY_COCO_CATEGORY', 'make_toy_coco']

#: COCO category id of each toy class (horse, rider -> person, car, boat, bird).
TOY_COCO_CATEGORY: Dict[str, int] = dict(horse=19, rider=1, car=3, boat=9, bird=16)
_FORMAT_VERSION = 1
_SPLITS = (('train2014', 0), ('val2014', 1))


def _fill_contours(polygons: List[List[float]], size: int) -> np.ndarray:
    """The pixels that the contours (pixel-index vertices, as ``cv2.findContours`` gives them) enclose."""
    mask = np.zeros((size, size), np.uint8)
    cv2.fillPoly(mask, [np.asarray(p).reshape(-1, 2).astype(np.int32) for p in polygons], 1)
    return mask


def _compressed_rle(region: np.ndarray) -> dict:
    """COCO's compressed RLE (``counts`` a string) of a 0/1 mask, as pycocotools writes it."""
    encoded = coco_mask_api().encode(np.asfortranarray(region.astype(np.uint8)))
    return dict(size=[int(v) for v in encoded['size']], counts=encoded['counts'].decode('ascii'))


def _instances(label: np.ndarray, counter: int) -> Tuple[List[dict], int]:
    """One instance per connected region of each class, encodings cycling polygon / RLE / compressed RLE."""
    anns = []
    for value in sorted(v for v in np.unique(label) if v > 0):
        cat = TOY_COCO_CATEGORY[TOY_CLASSES[int(value) - 1]]
        num, comp = cv2.connectedComponents((label == value).astype(np.uint8), connectivity=8)
        for k in range(1, num):
            region = (comp == k).astype(np.uint8)
            ys, xs = np.nonzero(region)
            kind = counter % 3
            polygons = []
            if kind == 0:  # every third instance is a polygon, the others RLE
                contours, _ = cv2.findContours(region, cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
                polygons = [c.reshape(-1).astype(float).tolist() for c in contours if len(c) >= 3]
            if polygons:
                segmentation = polygons
            else:
                segmentation = _compressed_rle(region) if kind == 2 else rle_encode(region)
            anns.append(dict(category_id=cat, segmentation=segmentation, area=float(region.sum()),
                             bbox=[float(xs.min()), float(ys.min()), float(xs.max() - xs.min() + 1),
                                   float(ys.max() - ys.min() + 1)], iscrowd=0))
            counter += 1
    return anns, counter


def make_toy_coco(root: str, num_train: int = 200, num_val: int = 60, size: int = 64, seed: int = 0) -> Dict:
    """Generates (or reuses) the COCO-format toy dataset under ``root``.

    Args:
        root (str): Output folder.
        num_train (int): Images of ``train2014``. Defaults to 200.
        num_val (int): Images of ``val2014``. Defaults to 60.
        size (int): Image side in pixels. Defaults to 64.
        seed (int): Generation seed. Defaults to 0.

    Returns:
        dict: ``root``, ``ann_files`` (split -> json path), ``num_images`` (split -> count), ``skipped``.
    """
    if num_train < 2 or num_val < 1 or size < 32:
        raise ValueError(f'need num_train >= 2, num_val >= 1 and size >= 32; got {num_train}, {num_val}, {size}')
    root = osp.abspath(str(root))
    params = dict(format_version=_FORMAT_VERSION, num_train=int(num_train), num_val=int(num_val), size=int(size),
                  seed=int(seed))
    ann_files = {split: osp.join(root, 'annotations', f'instances_{split}.json') for split, _ in _SPLITS}
    counts = dict(train2014=int(num_train), val2014=int(num_val))
    meta_path = osp.join(root, 'meta.json')
    if osp.isfile(meta_path):
        with open(meta_path, encoding='utf-8') as f:
            meta = json.load(f)
        if meta.get('params') != params:
            raise ValueError(f'{root} holds a toy COCO dataset made with {meta.get("params")}, not {params}; '
                             'use another root or remove it')
        if all(osp.isfile(p) for p in ann_files.values()):
            return dict(root=root, ann_files=ann_files, num_images=counts, skipped=True)
    categories = [dict(id=i, name=n, supercategory='') for i, n in zip(COCO_CATEGORY_IDS, COCO_CLASSES)]
    for split, code in _SPLITS:
        images, annotations, counter = [], [], 0
        for index in range(counts[split]):
            rng = np.random.default_rng([int(seed), code, index, int(size)])
            image_id = 100000 * (code + 1) + index
            file_name = f'COCO_{split}_{image_id:012d}.jpg'
            if index % 25 == 24:  # no object: a smooth background, no annotation
                img = np.clip(rng.normal(rng.uniform(60, 200, 3), 10, (size, size, 3)), 0, 255).astype(np.uint8)
                anns = []
            else:
                img, label, _ = render_toy_image(rng, size=size, ignore_border=False)
                anns, counter = _instances(label, counter)
                if index % 10 == 9 and anns:  # a crowd region, as COCO's (always a compressed RLE there)
                    crowd = anns[-1]
                    seg = crowd['segmentation']
                    if isinstance(seg, list):  # the region its outer contours enclose, pixel-exact
                        seg = _compressed_rle(_fill_contours(seg, size))
                    elif isinstance(seg['counts'], list):
                        seg = _compressed_rle(segmentation_to_mask(seg, size, size))
                    crowd.update(segmentation=seg, iscrowd=1)
            ok, buf = cv2.imencode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, 95])
            atomic_write_bytes(osp.join(root, split, file_name), buf.tobytes())
            images.append(dict(id=image_id, file_name=file_name, height=size, width=size))
            for ann in anns:
                annotations.append(dict(ann, id=len(annotations) + 1 + 1000000 * code, image_id=image_id))
        data = dict(info=dict(description=f'csd_mm toy COCO ({split})'), images=images, annotations=annotations,
                    categories=categories)
        atomic_write_bytes(ann_files[split], json.dumps(data).encode())
    atomic_write_bytes(meta_path, (json.dumps(dict(params=params), indent=2) + '\n').encode())
    return dict(root=root, ann_files=ann_files, num_images=counts, skipped=False)
