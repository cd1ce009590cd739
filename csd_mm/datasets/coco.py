"""MS COCO 2014 -> the project's WSSS inputs: the 80 classes, RLE / polygon decoding, semantic masks.

COCO's instance annotations (``instances_{train,val}2014.json``) are turned into what the VOC path reads:
image-level labels over the 80 object classes (``float32[80]``, COCO's category ids 1..90 with gaps mapped to
0..79 in ascending id order, the standard order of MCTformer's / the WSSS community's ``cls_labels.npy``) and
single-channel class-index masks (0 background, 1..80 the classes, 255 crowd / ignore).

Masks are decoded with ``pycocotools`` when it is installed (``pip install pycocotools``;
requirements/optional/coco.txt) and otherwise by the small numpy decoders below, which give the same masks
(tests/datasets/test_coco.py compares them with pycocotools pixel for pixel). An RLE holds run lengths
alternating 0s and 1s (starting with 0s) over the image in column-major (Fortran) order; its compressed string
form writes each count in 5-bit groups, 6 bits per character offset by 48, the sixth bit meaning "more groups
follow", the last group sign-extended, and every count from the fourth on stored as the difference to the count
two places before. Polygons are rasterised by COCO's own rule (pycocotools' ``frPyObjects``), not by
``cv2.fillPoly``, whose rounding of the vertices to pixel indices moves boundary pixels: see
:func:`polygon_boundary_points` and :func:`polygon_column_crossings`.

Every function is pure; nothing here is registered.
"""
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

import numpy as np

__all__ = [
    'COCO_CLASSES', 'COCO_CATEGORY_IDS', 'COCO_METAINFO', 'category_index_map', 'rle_string_to_counts',
    'rle_run_lengths', 'rle_decode', 'rle_encode', 'counts_to_rle_string', 'POLYGON_SUBPIXELS',
    'polygon_boundary_points', 'polygon_column_crossings', 'polygons_to_mask', 'segmentation_to_mask',
    'semantic_mask', 'image_label', 'pycocotools_mask'
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


def pycocotools_mask() -> Optional[Any]:
    """``pycocotools.mask`` when pycocotools is importable, else None (the fallback decoders are used)."""
    try:
        from pycocotools import mask
    except ImportError:
        return None
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


def rle_string_to_counts(encoded: str) -> List[int]:
    """Decodes COCO's compressed RLE string into run lengths (the inverse of pycocotools' ``rleToString``).

    Each count is written in 5-bit groups, least significant first, one character (value + 48) per group; bit
    0x20 of a character says another group follows, and bit 0x10 of the last group is the sign. From the fourth
    count on (index 3), the stored value is the difference to the count two places before.

    Args:
        encoded (str): The ``counts`` string of a compressed RLE.

    Returns:
        list[int]: The run lengths, alternating 0s and 1s, starting with 0s.

    Raises:
        ValueError: A character is outside the encoding's range, or a count ends mid-way or is negative.
    """
    counts: List[int] = []
    pos = 0
    data = encoded.encode('ascii') if isinstance(encoded, str) else bytes(encoded)
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


def rle_run_lengths(rle: Mapping[str, Any]) -> Tuple[int, int, np.ndarray]:
    """Size and run lengths of an RLE (``{'size': [h, w], 'counts': list | str}``), checked to cover the mask.

    Args:
        rle (Mapping): Uncompressed (list of run lengths) or compressed (string) RLE.

    Returns:
        tuple: ``height``, ``width`` and the ``int64`` run lengths.

    Raises:
        ValueError: The size is missing or the run lengths do not sum to ``h * w``.
    """
    try:
        height, width = (int(v) for v in rle['size'])
        counts = rle['counts']
    except (KeyError, TypeError, ValueError) as e:
        raise ValueError(f'RLE needs size [h, w] and counts, got keys {list(rle)}') from e
    if isinstance(counts, (str, bytes)):
        counts = rle_string_to_counts(counts)
    counts = np.asarray(counts, dtype=np.int64)
    if (counts < 0).any():
        raise ValueError(f'RLE holds a negative run length ({int(counts.min())})')
    if counts.sum() != height * width:
        raise ValueError(f'RLE run lengths sum to {int(counts.sum())}, the {height}x{width} mask has '
                         f'{height * width} pixels')
    return height, width, counts


def rle_decode(rle: Mapping[str, Any]) -> np.ndarray:
    """Decodes an RLE (``{'size': [h, w], 'counts': list | str}``) into a ``uint8 (h, w)`` 0/1 mask.

    Args:
        rle (Mapping): Uncompressed (list of run lengths) or compressed (string) RLE.

    Returns:
        np.ndarray: ``uint8 (h, w)``.

    Raises:
        ValueError: The size is missing or the run lengths do not cover ``h * w`` pixels.
    """
    height, width, counts = rle_run_lengths(rle)
    values = (np.arange(len(counts)) % 2).astype(np.uint8)  # 0s first, then alternating
    flat = np.repeat(values, counts)
    return flat.reshape((width, height)).T.copy()  # column-major


def rle_encode(mask: np.ndarray) -> Dict[str, Any]:
    """Uncompressed RLE (``{'size': [h, w], 'counts': [...]}``) of a 0/1 mask, column-major, 0s first."""
    mask = np.asarray(mask)
    flat = (mask.T.reshape(-1) > 0).astype(np.int8)
    change = np.flatnonzero(np.diff(flat)) + 1
    bounds = np.concatenate([[0], change, [flat.size]])
    counts = np.diff(bounds).tolist()
    if flat.size and flat[0] == 1:
        counts = [0] + counts  # the first run is always of 0s
    return dict(size=[int(mask.shape[0]), int(mask.shape[1])], counts=[int(c) for c in counts])


def counts_to_rle_string(counts: Sequence[int]) -> str:
    """COCO's compressed string of run lengths (the inverse of :func:`rle_string_to_counts`)."""
    chars = []
    for i, count in enumerate(counts):
        value = int(count) - (int(counts[i - 2]) if i > 2 else 0)
        more = True
        while more:
            group = value & 0x1f
            value >>= 5
            more = value != -1 if group & 0x10 else value != 0
            if more:
                group |= 0x20
            chars.append(chr(group + 48))
    return ''.join(chars)


#: Sub-pixels per pixel of COCO's polygon rasteriser: vertices are rounded to a 1/5-pixel grid.
POLYGON_SUBPIXELS = 5


def polygon_boundary_points(polygon: Sequence[float]) -> Tuple[np.ndarray, np.ndarray]:
    """The closed polygon's boundary as a dense chain of sub-pixel grid points (COCO's rasterisation, step 1).

    The vertices are scaled by :data:`POLYGON_SUBPIXELS` and rounded half up (``trunc(5 * v + 0.5)``, as
    pycocotools' C code casts). Each edge, the last one back to the first vertex included, is sampled at every
    integer step of its major axis (the axis it moves along more), both ends included, and the minor coordinate
    is rounded half up from the edge's lower end along the major axis, whichever way the edge runs, so an edge
    and its reverse give the same points.

    Args:
        polygon (Sequence[float]): ``[x1, y1, x2, y2, ...]`` in COCO's image coordinates (pixel ``(i, j)`` covers
            ``[i, i + 1] x [j, j + 1]``).

    Returns:
        tuple[np.ndarray, np.ndarray]: ``int64`` sub-pixel x and y of the points, in boundary order.

    Raises:
        ValueError: The number of coordinates is odd.
    """
    coords = np.asarray(polygon, dtype=np.float64).reshape(-1)
    if coords.size % 2:
        raise ValueError(f'polygon has an odd number of coordinates ({coords.size})')
    grid = np.trunc(POLYGON_SUBPIXELS * coords.reshape(-1, 2) + 0.5).astype(np.int64)
    start, end = grid, np.roll(grid, -1, axis=0)
    delta = np.abs(end - start)
    x_major = delta[:, 0] >= delta[:, 1]
    major_axis = np.where(x_major, 0, 1)
    minor_axis = 1 - major_axis
    rows = np.arange(len(grid))
    # the lower end along the major axis anchors the rounding; "flipped" edges run from their upper end
    flipped = start[rows, major_axis] > end[rows, major_axis]
    low = np.where(flipped[:, None], end, start)
    high = np.where(flipped[:, None], start, end)
    length = delta.max(axis=1)
    slope = np.divide((high[rows, minor_axis] - low[rows, minor_axis]).astype(np.float64), length,
                      out=np.zeros(len(grid)), where=length > 0)
    steps = length + 1
    edge = np.repeat(rows, steps)
    step = np.arange(int(steps.sum())) - np.repeat(np.cumsum(steps) - steps, steps)
    t = np.where(flipped[edge], length[edge] - step, step)
    major = low[edge, major_axis[edge]] + t
    minor = np.trunc(low[edge, minor_axis[edge]] + slope[edge] * t + 0.5).astype(np.int64)
    xs = np.where(x_major[edge], major, minor)
    ys = np.where(x_major[edge], minor, major)
    return xs, ys


def polygon_column_crossings(xs: np.ndarray, ys: np.ndarray, height: int,
                             width: int) -> Tuple[np.ndarray, np.ndarray]:
    """Where the boundary crosses the pixel columns' centre lines (COCO's rasterisation, step 2).

    Between two consecutive boundary points whose sub-pixel x differ (by one), the boundary crosses the vertical
    line half-way between them; it is a pixel column's centre line ``x = col + 0.5`` when
    ``(min(x) + 0.5) / 5 - 0.5`` is a whole number ``col`` in ``[0, width - 1]``. The crossing toggles the inside
    from pixel row ``ceil(clip((min(y) + 0.5) / 5 - 0.5, 0, height))`` of that column down.

    Args:
        xs (np.ndarray): Sub-pixel x of the boundary points (:func:`polygon_boundary_points`).
        ys (np.ndarray): Their sub-pixel y.
        height (int): Image height.
        width (int): Image width.

    Returns:
        tuple[np.ndarray, np.ndarray]: ``int64`` column and first row of each crossing (row ``height`` toggles
        nothing inside the image).
    """
    moved = np.flatnonzero(xs[1:] != xs[:-1]) + 1
    column = (np.minimum(xs[moved], xs[moved - 1]) + 0.5) / POLYGON_SUBPIXELS - 0.5
    keep = (np.floor(column) == column) & (column >= 0) & (column <= width - 1)
    row = (np.minimum(ys[moved], ys[moved - 1]) + 0.5) / POLYGON_SUBPIXELS - 0.5
    row = np.ceil(np.clip(row, 0, height))
    return column[keep].astype(np.int64), row[keep].astype(np.int64)


def polygons_to_mask(polygons: Sequence[Sequence[float]], height: int, width: int) -> np.ndarray:
    """Fills COCO polygons (``[[x1, y1, x2, y2, ...], ...]``) into a ``uint8`` 0/1 mask, as pycocotools does.

    A closed boundary crosses each column's centre line an even number of times (:func:`polygon_column_crossings`);
    sorted by row, consecutive crossings bound the column's inside runs, so a pixel is inside when its centre is.
    The polygons of one object are united. A polygon of fewer than 3 points covers nothing (pycocotools would
    read a list whose first polygon has 2 points as bounding boxes; :func:`segmentation_to_mask` drops such
    polygons on both paths).

    Args:
        polygons (Sequence[Sequence[float]]): The polygons of one object.
        height (int): Image height.
        width (int): Image width.

    Returns:
        np.ndarray: ``uint8 (height, width)``.
    """
    starts, ends = [], []
    for polygon in polygons:
        if len(polygon) < 6:
            continue
        cols, rows = polygon_column_crossings(*polygon_boundary_points(polygon), height, width)
        order = np.lexsort((rows, cols))
        starts.append(np.stack([rows[order][0::2], cols[order][0::2]]))
        ends.append(np.stack([rows[order][1::2], cols[order][1::2]]))
    mask = np.zeros((height, width), np.uint8)
    if not any(part.shape[1] for part in starts):
        return mask
    starts, ends = np.concatenate(starts, axis=1), np.concatenate(ends, axis=1)
    # +1 where a run starts, -1 where it ends (row `height`: past the image); covered where the running sum is
    # positive. Only the crossings' bounding box is summed (a small object in a large image costs little).
    top, left = starts[0].min(), starts[1].min()
    bottom, right = ends[0].max(), starts[1].max() + 1
    run_edges = np.zeros((bottom - top + 1, right - left), np.int32)
    np.add.at(run_edges, (starts[0] - top, starts[1] - left), 1)
    np.add.at(run_edges, (ends[0] - top, ends[1] - left), -1)
    mask[top:bottom, left:right] = np.cumsum(run_edges, axis=0)[:bottom - top] > 0
    return mask


def segmentation_to_mask(segmentation: Any, height: int, width: int, use_pycocotools: bool = True) -> np.ndarray:
    """Decodes one annotation's ``segmentation`` (polygons, uncompressed or compressed RLE) into a 0/1 mask.

    Both decoders give the same mask. The input is checked before either runs: pycocotools' decoder trusts the
    run lengths (more than ``h * w`` would write past its buffer), and it reads a polygon list whose first polygon
    has 2 points as bounding boxes, so polygons of fewer than 3 points are dropped on both paths (they cover
    nothing).

    Args:
        segmentation: The annotation's ``segmentation`` field.
        height (int): Image height.
        width (int): Image width.
        use_pycocotools (bool): Use pycocotools when it is importable. Defaults to True.

    Returns:
        np.ndarray: ``uint8 (height, width)``.

    Raises:
        ValueError: The segmentation is neither a polygon list nor an RLE, a polygon has an odd number of
            coordinates, or the RLE's size is not the image's or its run lengths do not cover it.
    """
    coco_mask = pycocotools_mask() if use_pycocotools else None
    if isinstance(segmentation, list):
        if not all(isinstance(p, (list, tuple)) for p in segmentation):
            raise ValueError('a polygon segmentation must be a list of [x1, y1, x2, y2, ...] lists')
        polygons = [p for p in segmentation if len(p) >= 6]
        odd = [len(p) for p in polygons if len(p) % 2]
        if odd:
            raise ValueError(f'polygon has an odd number of coordinates ({odd[0]})')
        if coco_mask is None:
            return polygons_to_mask(polygons, height, width)
        if not polygons:
            return np.zeros((height, width), np.uint8)
        rles = coco_mask.frPyObjects([[float(v) for v in p] for p in polygons], height, width)
        return coco_mask.decode(coco_mask.merge(rles)).astype(np.uint8)
    if isinstance(segmentation, Mapping) and 'counts' in segmentation:
        size = [int(v) for v in segmentation.get('size', ())]
        if size != [height, width]:
            raise ValueError(f'RLE size {size} is not the image size [{height}, {width}]')
        if coco_mask is None:
            return rle_decode(segmentation)
        _, _, run_lengths = rle_run_lengths(segmentation)
        counts = segmentation['counts']
        if isinstance(counts, (str, bytes)):
            rle = dict(size=size, counts=counts.encode('ascii') if isinstance(counts, str) else counts)
        else:
            rle = coco_mask.frPyObjects(dict(size=size, counts=run_lengths.tolist()), height, width)
        return coco_mask.decode(rle).astype(np.uint8)
    raise ValueError(f'segmentation is neither a polygon list nor an RLE dict: {type(segmentation).__name__}')


def semantic_mask(annotations: Iterable[Mapping[str, Any]], height: int, width: int,
                  cat_index: Mapping[int, int], use_pycocotools: bool = True) -> np.ndarray:
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
        use_pycocotools (bool): Decode with pycocotools when it is importable.

    Returns:
        np.ndarray: ``uint8 (height, width)``.

    Raises:
        ValueError: An annotation names an unknown category or has a malformed segmentation.
    """
    mask = np.zeros((height, width), np.uint8)
    instances, crowds = [], []
    for ann in annotations:
        if ann['category_id'] not in cat_index:
            raise ValueError(f'annotation {ann.get("id")} has unknown category_id {ann["category_id"]}')
        binary = segmentation_to_mask(ann['segmentation'], height, width, use_pycocotools).astype(bool)
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
