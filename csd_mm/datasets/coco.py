"""MS COCO 2014 -> the project's WSSS inputs: the 80 classes, semantic masks and image labels.

COCO's instance annotations (``instances_{train,val}2014.json``) are turned into what the VOC path reads:
image-level labels over the 80 object classes (``float32[80]``, COCO's category ids 1..90 with gaps mapped to
0..79 in ascending id order, the standard order of MCTformer's / the WSSS community's ``cls_labels.npy``) and
single-channel class-index masks (0 background, 1..80 the classes, 255 crowd / ignore).

Masks are decoded by ``pycocotools``, COCO's own API (``pip install -r requirements/optional/coco.txt``): its
polygon rasterisation (``frPyObjects``: vertices on a 1/5-pixel grid, a pixel inside when its centre is) and its
RLE decoder define COCO's masks. What is here is the glue around it: the input checks it lacks (see
:func:`segmentation_to_mask`) and the painting of one image's instances into a class-index mask.

Every function is pure; nothing here is registered.
"""
from typing import Any, Dict, Iterable, List, Mapping, Sequence, Tuple

import numpy as np

__all__ = [
    'COCO_CLASSES', 'COCO_CATEGORY_IDS', 'COCO_METAINFO', 'COCO_INSTALL_HINT', 'coco_mask_api',
    'category_index_map', 'rle_encode', 'rle_string_to_counts', 'segmentation_to_mask', 'semantic_mask', 'image_label'
]

#: The 80 COCO object classes in the standard order (ascending category id).
COCO_CLASSES: Tuple[str, ...] = (
    'person', 'bicycle', 'car', 'motorcycle', 'airplane', 'bus', 'train', 'truck', 'boat', 'traffic light',
    'fire hydrant', 'stop sign', 'parking meter', 'bench', 'bird', 'cat', 'dog', 'horse', 'sheep', 'cow',
    'elephant', 'bear', 'zebra', 'giraffe', 'backpack', 'umbrella', 'handbag', 'tie', 'suitcase', 'frisbee',
    'skis', 'snowboard', 'sports ball', 'kite', 'baseball bat', 'baseball glove', 'skateboard', 'surfboard',
    'tennis racket', 'bottle', 'wine glass', 'cup', 'fork', 'knife', 'spoon', 'bowl', 'banana', 'apple',
    'sandwich', 'orange', 'broccoli', 'carrot', 'hot dog', 'pizza', 'donut', 'cake', 'chair', 'couch',
    'potted plant', 'bed', 'dining table', 'toilet', 'tv', 'laptop', 'mouse', 'remote', 'keyboard', 'cell phone',
    'microwave', 'oven', 'toaster', 'sink', 'refrigerator', 'book', 'clock', 'vase', 'scissors', 'teddy bear',
    'hair drier', 'toothbrush')
#: COCO's category id of each class of :data:`COCO_CLASSES` (1..90; 12, 26, 29, 30, 45, 66, 68, 69, 71, 83 unused).
COCO_CATEGORY_IDS: Tuple[int, ...] = (
    1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 13, 14, 15, 16, 17, 18, 19, 20, 21, 22, 23, 24, 25, 27, 28, 31, 32, 33, 34,
    35, 36, 37, 38, 39, 40, 41, 42, 43, 44, 46, 47, 48, 49, 50, 51, 52, 53, 54, 55, 56, 57, 58, 59, 60, 61, 62,
    63, 64, 65, 67, 70, 72, 73, 74, 75, 76, 77, 78, 79, 80, 81, 82, 84, 85, 86, 87, 88, 89, 90)
#: ``metainfo`` of the image-level datasets and of DeepLab on COCO: background first, then the 80 classes.
COCO_METAINFO: Dict[str, tuple] = dict(classes=('background', ) + COCO_CLASSES)

IGNORE_INDEX = 255


#: How to install what the COCO path needs (printed by the errors below and the converter tool).
COCO_INSTALL_HINT = 'pip install -r requirements/optional/coco.txt'


def coco_mask_api() -> Any:
    """``pycocotools.mask``, COCO's mask API, which decodes every COCO mask here.

    Raises:
        ImportError: pycocotools is not installed; the message names it and the install command.
    """
    try:
        from pycocotools import mask
    except ImportError as e:
        raise ImportError(f'the COCO path decodes masks with pycocotools, which is not installed: '
                          f'{COCO_INSTALL_HINT} (or pip install pycocotools)') from e
    return mask


def category_index_map(categories: Sequence[Mapping[str, Any]], source: str = 'annotation file') -> Dict[int, int]:
    """Maps the json's category ids to 0-based class indices in ascending id order (COCO's standard order).

    Args:
        categories (Sequence[Mapping]): The json's ``categories`` list (``id``, ``name``).
        source (str): The json's path, for error messages.

    Returns:
        dict[int, int]: category id -> class index.

    Raises:
        ValueError: The list is empty, an entry lacks an integer ``id``, or ids repeat.
    """
    if not categories:
        raise ValueError(f'{source}: no categories')
    ids = []
    for cat in categories:
        if not isinstance(cat, Mapping) or not isinstance(cat.get('id'), int):
            raise ValueError(f'{source}: category {cat!r} has no integer id')
        ids.append(int(cat['id']))
    if len(set(ids)) != len(ids):
        raise ValueError(f'{source}: repeated category ids {sorted(i for i in set(ids) if ids.count(i) > 1)}')
    return {cat_id: index for index, cat_id in enumerate(sorted(ids))}


def rle_encode(mask: np.ndarray) -> Dict[str, Any]:
    """Uncompressed RLE (``{'size': [h, w], 'counts': [...]}``) of a 0/1 mask, column-major, 0s first.

    pycocotools writes only the compressed form; the toy dataset and the tests also write this one, which COCO's
    json allows (e.g. for crowd regions).
    """
    mask = np.asarray(mask)
    flat = (mask.T.reshape(-1) > 0).astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0] + counts  # the first run is always of 0s
    return dict(size=[int(mask.shape[0]), int(mask.shape[1])], counts=[int(c) for c in counts])


def rle_string_to_counts(encoded: Any) -> List[int]:
    """The run lengths of COCO's compressed RLE string, to check them before pycocotools decodes it.

    pycocotools exposes no such reader, and its ``decode`` leaves the pixels past a short string's last run
    uninitialised (random values, not 0s), so the lengths are read here (the inverse of pycocotools'
    ``rleToString``): each count is written in 5-bit groups, least significant first, one character (value + 48)
    per group; bit 0x20 of a character says another group follows, bit 0x10 of the last group is the sign; from
    the fourth count on, the stored value is the difference to the count two places before.

    Args:
        encoded (str | bytes): The ``counts`` string of a compressed RLE.

    Returns:
        list[int]: The run lengths, alternating 0s and 1s, starting with 0s.

    Raises:
        ValueError: A character is outside the encoding's range, or a count ends mid-way or is negative.
    """
    counts: List[int] = []
    pos = 0
    data = encoded.encode('ascii') if isinstance(encoded, str) else bytes(encoded)  # UnicodeError: ValueError
    while pos < len(data):
        value, shift, more = 0, 0, True
        while more:
            if pos >= len(data):
                raise ValueError('compressed RLE ends in the middle of a count')
            c = data[pos] - 48
            if not 0 <= c < 64:
                raise ValueError(f'compressed RLE holds an invalid character {chr(data[pos])!r}')
            value |= (c & 0x1f) << shift
            more = bool(c & 0x20)
            pos += 1
            shift += 5
            if not more and (c & 0x10):
                value |= -1 << shift  # sign-extend the last group
        if len(counts) > 2:
            value += counts[-2]
        counts.append(value)
    if any(v < 0 for v in counts):
        raise ValueError('compressed RLE decodes to a negative run length')
    return counts


def segmentation_to_mask(segmentation: Any, height: int, width: int) -> np.ndarray:
    """Decodes one annotation's ``segmentation`` (polygons, uncompressed or compressed RLE) with pycocotools.

    The input is checked first, where pycocotools does not: an uncompressed RLE must cover the image exactly
    (pycocotools fills a short one up with 0s and rejects a long one without saying why), and a polygon list
    whose first polygon has 2 points would be read as bounding boxes, so polygons of fewer than 3 points are
    dropped (they cover nothing). A compressed RLE string's run lengths are checked the same way
    (:func:`rle_string_to_counts`): pycocotools leaves the pixels past a short one uninitialised.

    Args:
        segmentation: The annotation's ``segmentation`` field.
        height (int): Image height.
        width (int): Image width.

    Returns:
        np.ndarray: ``uint8 (height, width)`` 0/1 mask.

    Raises:
        ValueError: The segmentation is neither a polygon list nor an RLE, a polygon has an odd number of
            coordinates, or the RLE's size is not the image's or its run lengths do not cover it.
        ImportError: pycocotools is not installed (:func:`coco_mask_api`).
    """
    coco_mask = coco_mask_api()
    if isinstance(segmentation, list):
        if not all(isinstance(p, (list, tuple)) for p in segmentation):
            raise ValueError('a polygon segmentation must be a list of [x1, y1, x2, y2, ...] lists')
        polygons = [[float(v) for v in p] for p in segmentation if len(p) >= 6]
        odd = [len(p) for p in polygons if len(p) % 2]
        if odd:
            raise ValueError(f'polygon has an odd number of coordinates ({odd[0]})')
        if not polygons:
            return np.zeros((height, width), np.uint8)
        rles = coco_mask.frPyObjects(polygons, height, width)
        return coco_mask.decode(coco_mask.merge(rles)).astype(np.uint8)
    if isinstance(segmentation, Mapping) and 'counts' in segmentation:
        size = [int(v) for v in segmentation.get('size', ())]
        if size != [height, width]:
            raise ValueError(f'RLE size {size} is not the image size [{height}, {width}]')
        counts = segmentation['counts']
        compressed = isinstance(counts, (str, bytes))
        try:
            run_lengths = np.asarray(rle_string_to_counts(counts) if compressed else counts,
                                     dtype=np.int64).reshape(-1)
        except ValueError as e:
            raise ValueError(f'compressed RLE {counts!r:.40} does not decode to the {height}x{width} mask: '
                             f'{e}') from e
        if (run_lengths < 0).any():
            raise ValueError(f'RLE holds a negative run length ({int(run_lengths.min())})')
        if run_lengths.sum() != height * width:
            raise ValueError(f'RLE run lengths sum to {int(run_lengths.sum())}, the {height}x{width} mask has '
                             f'{height * width} pixels')
        if compressed:
            rle = dict(size=size, counts=counts.encode('ascii') if isinstance(counts, str) else counts)
        else:
            rle = coco_mask.frPyObjects(dict(size=size, counts=run_lengths.tolist()), height, width)
        try:
            return coco_mask.decode(rle).astype(np.uint8)
        except ValueError as e:  # pycocotools: 'Invalid RLE mask representation'
            raise ValueError(f'compressed RLE {counts!r:.40} does not decode to the {height}x{width} mask '
                             f'(pycocotools: {e})') from e
    raise ValueError(f'segmentation is neither a polygon list nor an RLE dict: {type(segmentation).__name__}')


def semantic_mask(annotations: Iterable[Mapping[str, Any]], height: int, width: int,
                  cat_index: Mapping[int, int]) -> np.ndarray:
    """Class-index mask of one image: 0 background, ``class + 1`` on its objects, 255 on crowd regions.

    Non-crowd instances are painted largest first, so a small object lying on a larger one stays visible
    (COCO's masks of different objects can overlap). Crowd regions (``iscrowd=1``: a group of objects in one
    RLE, not delineated) become 255 where no instance was painted: ignored in training and evaluation rather
    than called background or one object. This is the project's reading (docs/method.md section 12); some
    COCO -> VOC converters give crowd regions their class instead.

    Args:
        annotations (Iterable[Mapping]): The image's annotations (``category_id``, ``segmentation``,
            ``iscrowd``, optionally ``area``).
        height (int): Image height.
        width (int): Image width.
        cat_index (Mapping[int, int]): category id -> 0-based class (:func:`category_index_map`).

    Returns:
        np.ndarray: ``uint8 (height, width)``.

    Raises:
        ValueError: An annotation names an unknown category or has a malformed segmentation.
        ImportError: pycocotools is not installed.
    """
    mask = np.zeros((height, width), np.uint8)
    instances, crowds = [], []
    for ann in annotations:
        if ann['category_id'] not in cat_index:
            raise ValueError(f'annotation {ann.get("id")} has unknown category_id {ann["category_id"]}')
        binary = segmentation_to_mask(ann['segmentation'], height, width).astype(bool)
        (crowds if ann.get('iscrowd', 0) else instances).append((binary, cat_index[ann['category_id']]))
    for binary, cls in sorted(instances, key=lambda item: -int(item[0].sum())):
        mask[binary] = cls + 1
    for binary, _ in crowds:
        mask[binary & (mask == 0)] = IGNORE_INDEX
    return mask


def image_label(annotations: Iterable[Mapping[str, Any]], cat_index: Mapping[int, int]) -> np.ndarray:
    """Multi-hot ``float32[C]`` image-level label: every annotated class, crowd regions included.

    A crowd region is a group of objects of its class, so the class is present in the image.
    """
    label = np.zeros(len(cat_index), np.float32)
    for ann in annotations:
        if ann['category_id'] not in cat_index:
            raise ValueError(f'annotation {ann.get("id")} has unknown category_id {ann["category_id"]}')
        label[cat_index[ann['category_id']]] = 1.0
    return label
