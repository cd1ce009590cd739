"""A deterministic synthetic PASCAL-VOC-format dataset with a real class co-occurrence confound.

It is the demo data of CSD (Yang et al., "Cross-domain Semantic Decoupling for Weakly-Supervised Semantic
Segmentation", BMVC 2023): small enough for a CPU, and built so that the problem CSD addresses exists.
The class ``rider`` is drawn on top of (touching and overlapping) a ``horse`` in most of its images and
rarely alone; ``horse`` appears with a rider in most of its images. A classifier trained on image-level
labels can then score ``rider`` from horse pixels, so the CAM of ``rider`` spreads onto its partner. The few
single-label rider images (the source domain S) are what CSD's copy-paste of single-label objects into
multi-label images (docs/method.md section 10) uses to decouple the two. The other classes mostly appear alone.

Each class has its own shape, colour and texture, with per-object colour jitter, pixel noise, random size
and position, on a smooth random background with low-contrast clutter blobs, so a small CNN can learn the
classes from image labels but not from a single pixel's colour.

Layout written under ``root`` (VOC 2012 + SBD "aug" conventions)::

    JPEGImages/<id>.jpg              BGR JPEG, ``size x size``
    SegmentationClass/<id>.png       single-channel uint8 masks (0 bg, 1..C, 255 ignore border): train + val
    SegmentationClassAug/<id>.png    the same masks for train_aug + val
    Annotations/<id>.xml             VOC XML (one <object> per drawn object, visible bounding box)
    ImageSets/Segmentation/{train_aug,train,val}.txt
    cls_labels.npy                   image id -> float32[C] (train_aug + val), the community's format
    meta.json                        classes (background first), palette, generation parameters, summary

``meta.json`` is written last: a root whose ``meta.json`` matches the requested parameters is complete and
a rerun skips it. Every file is written atomically.
"""
import json
import os
import os.path as osp
import xml.etree.ElementTree as ET
from typing import Callable, Dict, List, Optional, Tuple

import cv2
import numpy as np

from csd_mm.utils.fileio import atomic_write_bytes

from .cooccurrence import cooccurrence_counts
from .domain import domain_split
from .labels import save_cls_labels

__all__ = ['TOY_CLASSES', 'TOY_PALETTE', 'make_toy_voc', 'render_toy_image', 'sample_scene']

#: Foreground classes of the toy dataset, in label-vector order (mask value = index + 1).
TOY_CLASSES: Tuple[str, ...] = ('horse', 'rider', 'car', 'boat', 'bird')
#: RGB palette, background first (for visualisation only; masks are single-channel).
TOY_PALETTE: Tuple[Tuple[int, int, int], ...] = ((0, 0, 0), (150, 90, 50), (60, 80, 170), (190, 60, 60),
                                                 (210, 190, 70), (70, 170, 70))

_FORMAT_VERSION = 1
_HORSE, _RIDER, _CAR, _BOAT, _BIRD = range(5)

# Base BGR colour of each class; per-object jitter is added.
_BASE_COLOURS = np.array([
    (50, 90, 150),  # horse: brown
    (170, 80, 60),  # rider: blue
    (60, 60, 190),  # car: red
    (70, 190, 210),  # boat: yellow
    (70, 170, 70),  # bird: green
], dtype=np.float32)

# Scene types: (cumulative probability, classes). Multi-label scenes: horse+rider 32 %, other pairs 10 %.
_SCENES: Tuple[Tuple[float, Tuple[int, ...]], ...] = (
    (0.32, (_HORSE, _RIDER)),
    (0.37, (_RIDER, )),
    (0.50, (_HORSE, )),
    (0.60, ()),  # a pair of two distinct classes among car / boat / bird
    (1.00, (-1, )),  # one of car / boat / bird alone
)


def sample_scene(rng: np.random.Generator) -> List[int]:
    """Draws the classes of one image in drawing order (a rider is always drawn after its horse)."""
    u = rng.random()
    for cum, classes in _SCENES:
        if u < cum:
            if classes == ():
                return [int(c) for c in rng.choice([_CAR, _BOAT, _BIRD], size=2, replace=False)]
            if classes == (-1, ):
                return [int(rng.choice([_CAR, _BOAT, _BIRD]))]
            return list(classes)
    return [_CAR]


def _texture(cls_id: int, yy: np.ndarray, xx: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    phase = rng.uniform(0, 2 * np.pi)
    if cls_id == _HORSE:  # horizontal stripes
        t = np.sin(2 * np.pi * yy / 5.0 + phase)
    elif cls_id == _RIDER:  # checkerboard
        t = (((xx + int(phase * 2)) // 3 + yy // 3) % 2) * 2.0 - 1.0
    elif cls_id == _CAR:  # vertical stripes
        t = np.sin(2 * np.pi * xx / 4.0 + phase)
    elif cls_id == _BOAT:  # diagonal stripes
        t = np.sin(2 * np.pi * (xx + yy) / 6.0 + phase)
    else:  # dots
        t = np.cos(2 * np.pi * xx / 4.0 + phase) * np.cos(2 * np.pi * yy / 4.0)
    return t.astype(np.float32)


def _shape_mask(cls_id: int, size: int, rng: np.random.Generator,
                anchor: Optional[Tuple[int, int, int, int]] = None) -> Tuple[np.ndarray, Tuple]:
    """Draws the silhouette of one object; returns (uint8 mask, (cx, cy, half_w, half_h))."""
    m = np.zeros((size, size), np.uint8)
    s = float(size)
    if cls_id == _HORSE:
        a, b = s * rng.uniform(0.15, 0.26), s * rng.uniform(0.08, 0.12)
        cx = rng.uniform(a + 0.12 * s, s - a - 0.12 * s)
        cy = rng.uniform(0.3 * s + b, 0.85 * s - 1.3 * b)
        cv2.ellipse(m, (int(cx), int(cy)), (int(a), int(b)), 0, 0, 360, 1, -1)
        leg_w, leg_h = max(1, int(0.16 * b + 1)), int(1.4 * b)
        for fx in (-0.7, -0.45, 0.45, 0.7):
            x0 = int(cx + fx * a)
            cv2.rectangle(m, (x0, int(cy)), (x0 + leg_w, min(size - 1, int(cy + b + leg_h))), 1, -1)
        side = 1 if rng.random() < 0.5 else -1
        hx, hy = int(cx + side * a * 1.05), int(cy - b * 1.1)
        cv2.line(m, (int(cx + side * a * 0.7), int(cy)), (hx, hy), 1, max(2, int(0.5 * b)))
        cv2.ellipse(m, (hx, hy), (max(2, int(0.45 * b)), max(2, int(0.3 * b))), 0, 0, 360, 1, -1)
        return m, (cx, cy, a, b)
    if cls_id == _RIDER:
        w, h = s * rng.uniform(0.045, 0.07), s * rng.uniform(0.12, 0.17)
        if anchor is not None:  # sit on the horse's back, overlapping the body
            hcx, hcy, ha, hb = anchor
            cx = hcx + rng.uniform(-0.35, 0.35) * ha
            bottom = hcy - hb * rng.uniform(0.2, 0.6)
        else:
            cx = rng.uniform(0.15 * s, 0.85 * s)
            bottom = rng.uniform(0.45 * s, 0.9 * s)
        top = bottom - h
        cv2.rectangle(m, (int(cx - w), int(top)), (int(cx + w), int(bottom)), 1, -1)
        cv2.circle(m, (int(cx), int(top - 0.8 * w)), max(2, int(1.1 * w)), 1, -1)
        return m, (cx, (top + bottom) / 2, w, h / 2)
    if cls_id == _CAR:
        w = s * rng.uniform(0.17, 0.26)
        h = w * rng.uniform(0.35, 0.45)
        cx, cy = rng.uniform(w + 2, s - w - 2), rng.uniform(0.35 * s, 0.85 * s - h)
        cv2.rectangle(m, (int(cx - w), int(cy - h / 2)), (int(cx + w), int(cy + h / 2)), 1, -1)
        cv2.rectangle(m, (int(cx - 0.5 * w), int(cy - 1.2 * h)), (int(cx + 0.4 * w), int(cy)), 1, -1)
        r = max(2, int(0.45 * h))
        for fx in (-0.6, 0.6):
            cv2.circle(m, (int(cx + fx * w), int(cy + h / 2)), r, 1, -1)
        return m, (cx, cy, w, h)
    if cls_id == _BOAT:
        w = s * rng.uniform(0.15, 0.25)
        h = w * rng.uniform(0.3, 0.45)
        cx, cy = rng.uniform(w + 2, s - w - 2), rng.uniform(0.5 * s, 0.88 * s)
        hull = np.array([[cx - w, cy - h / 2], [cx + w, cy - h / 2], [cx + 0.6 * w, cy + h / 2],
                         [cx - 0.6 * w, cy + h / 2]], np.int32)
        cv2.fillPoly(m, [hull], 1)
        sail = np.array([[cx, cy - h / 2 - 1.6 * w], [cx, cy - h / 2], [cx + 0.7 * w, cy - h / 2]], np.int32)
        cv2.fillPoly(m, [sail], 1)
        return m, (cx, cy, w, h)
    # bird
    a = s * rng.uniform(0.07, 0.11)
    b = a * rng.uniform(0.45, 0.6)
    cx, cy = rng.uniform(2 * a + 2, s - 2 * a - 2), rng.uniform(0.12 * s + a, 0.7 * s)
    cv2.ellipse(m, (int(cx), int(cy)), (int(a), max(1, int(b))), 0, 0, 360, 1, -1)
    for side in (-1, 1):
        wing = np.array([[cx - 0.4 * a, cy], [cx + 0.4 * a, cy], [cx + side * 1.8 * a, cy - 1.6 * a]],
                        np.int32)
        cv2.fillPoly(m, [wing], 1)
    return m, (cx, cy, a, b)


def _background(size: int, rng: np.random.Generator) -> np.ndarray:
    grid = rng.uniform(40, 200, (3, 3, 3)).astype(np.float32)
    img = cv2.resize(grid, (size, size), interpolation=cv2.INTER_CUBIC)
    yy, xx = np.mgrid[0:size, 0:size]
    for _ in range(int(rng.integers(3, 7))):  # low-contrast clutter blobs
        blob = np.zeros((size, size), np.uint8)
        cx, cy = (int(v) for v in rng.integers(0, size, 2))
        ax = (int(rng.integers(2, max(3, size // 6))), int(rng.integers(2, max(3, size // 6))))
        cv2.ellipse(blob, (cx, cy), ax, float(rng.uniform(0, 180)), 0, 360, 1, -1)
        img[blob > 0] += rng.normal(0, 35, 3).astype(np.float32)
    img += (6 * np.sin(2 * np.pi * (xx * rng.uniform(0.05, 0.2) + yy * rng.uniform(0.05, 0.2))))[..., None]
    return img


def render_toy_image(rng: np.random.Generator, size: int = 64, min_visible: int = 12,
                     ignore_border: bool = True) -> Tuple[np.ndarray, np.ndarray, List[Dict]]:
    """Renders one toy image.

    Args:
        rng (np.random.Generator): The image's own generator (the image is a function of it).
        size (int): Image side in pixels.
        min_visible (int): Minimum number of visible pixels per object; objects that end up more hidden
            are redrawn elsewhere (a few tries) and otherwise dropped, so labels match the masks.
        ignore_border (bool): Mark background pixels touching an object as 255, as VOC's borders.

    Returns:
        tuple: ``img`` (uint8 ``[size, size, 3]`` BGR), ``mask`` (uint8 ``[size, size]``) and the objects
        (``dict(cls, bbox=(xmin, ymin, xmax, ymax))``, 1-based inclusive VOC boxes).
    """
    classes = sample_scene(rng)
    img = _background(size, rng)
    label = np.zeros((size, size), np.uint8)
    yy, xx = np.mgrid[0:size, 0:size]
    horse_geom = None
    drawn: List[int] = []
    for cls_id in classes:
        for _ in range(8):
            anchor = horse_geom if (cls_id == _RIDER and horse_geom is not None) else None
            shape, geom = _shape_mask(cls_id, size, rng, anchor)
            shape = shape > 0
            # objects other than a rider on its horse should not hide earlier objects
            hides_too_much = any(
                np.count_nonzero((label == c + 1) & ~shape) < min_visible for c in drawn)
            if np.count_nonzero(shape) >= min_visible and (anchor is not None or not hides_too_much):
                break
        else:
            continue
        colour = _BASE_COLOURS[cls_id] + rng.normal(0, 18, 3).astype(np.float32)
        appearance = colour[None, None, :] + 22 * _texture(cls_id, yy, xx, rng)[..., None]
        img[shape] = appearance[shape]
        label[shape] = cls_id + 1
        drawn.append(cls_id)
        if cls_id == _HORSE:
            horse_geom = geom
    img += rng.normal(0, 10, img.shape).astype(np.float32)
    img = cv2.GaussianBlur(img, (3, 3), 0.6)
    img = np.clip(np.rint(img), 0, 255).astype(np.uint8)

    objects = []
    for cls_id in sorted(set(drawn)):
        ys, xs = np.nonzero(label == cls_id + 1)
        if ys.size < min_visible:
            label[label == cls_id + 1] = 0  # too hidden: not part of the image's label
            continue
        objects.append(dict(cls=cls_id, bbox=(int(xs.min()) + 1, int(ys.min()) + 1, int(xs.max()) + 1,
                                              int(ys.max()) + 1)))
    mask = label.copy()
    if ignore_border:
        fg = label > 0
        near = np.zeros_like(fg)
        near[1:, :] |= fg[:-1, :]
        near[:-1, :] |= fg[1:, :]
        near[:, 1:] |= fg[:, :-1]
        near[:, :-1] |= fg[:, 1:]
        mask[near & ~fg] = 255
    return img, mask, objects


def _voc_xml(img_id: str, size: int, objects: List[Dict], classes: Tuple[str, ...]) -> bytes:
    root = ET.Element('annotation')
    ET.SubElement(root, 'folder').text = 'TOYVOC'
    ET.SubElement(root, 'filename').text = img_id + '.jpg'
    sz = ET.SubElement(root, 'size')
    for tag, val in (('width', size), ('height', size), ('depth', 3)):
        ET.SubElement(sz, tag).text = str(val)
    ET.SubElement(root, 'segmented').text = '1'
    for obj in objects:
        o = ET.SubElement(root, 'object')
        ET.SubElement(o, 'name').text = classes[obj['cls']]
        ET.SubElement(o, 'pose').text = 'Unspecified'
        ET.SubElement(o, 'truncated').text = '0'
        ET.SubElement(o, 'difficult').text = '0'
        box = ET.SubElement(o, 'bndbox')
        for tag, val in zip(('xmin', 'ymin', 'xmax', 'ymax'), obj['bbox']):
            ET.SubElement(box, tag).text = str(val)
    ET.indent(root)
    return ET.tostring(root, encoding='utf-8', xml_declaration=False) + b'\n'


def _encode(ext: str, arr: np.ndarray, params: Optional[list] = None) -> bytes:
    ok, buf = cv2.imencode(ext, arr, params or [])
    if not ok:
        raise RuntimeError(f'cv2.imencode({ext!r}) failed')
    return buf.tobytes()


def _summarise(labels: np.ndarray, classes: Tuple[str, ...]) -> Dict:
    split = domain_split(labels)
    n = len(labels)
    return dict(
        num_images=n,
        num_source=split.num_source,
        num_target=split.num_target,
        multi_label_fraction=round(split.num_target / max(n, 1), 4),
        class_counts={c: int(v) for c, v in zip(classes, (labels > 0).sum(0))},
        single_label_counts={c: int(v) for c, v in zip(classes, split.single_label_counts)},
        cooccurrence=cooccurrence_counts(labels, include_self=False).tolist())


def make_toy_voc(root: str,
                 num_train: int = 200,
                 num_val: int = 60,
                 size: int = 64,
                 seed: int = 0,
                 num_train_subset: Optional[int] = None,
                 ignore_border: bool = True,
                 progress: Optional[Callable[[int, int], None]] = None) -> Dict:
    """Generates (or reuses) the toy VOC-format dataset under ``root``.

    Images are a function of ``(seed, split, index, size)`` only, so the same arguments always give the same
    files, and the first ``k`` images of a larger run equal those of a smaller one.

    Args:
        root (str): Output folder.
        num_train (int): Number of ``train_aug`` images. Defaults to 200.
        num_val (int): Number of ``val`` images. Defaults to 60.
        size (int): Image side in pixels. Defaults to 64.
        seed (int): Generation seed. Defaults to 0.
        num_train_subset (int, optional): Size of the ``train`` split (the first images of ``train_aug``,
            used for seed evaluation as VOC's train). Defaults to half of ``num_train``.
        ignore_border (bool): Write 255 on background pixels touching an object. Defaults to True.
        progress (Callable[[int, int], None], optional): Called with ``(done, total)``.

    Returns:
        dict: Summary: ``root``, ``classes`` (background first), split sizes, ``skipped`` (True when an
        existing complete root was reused) and label statistics of ``train_aug`` and ``val``.

    Raises:
        ValueError: ``root`` holds a toy dataset generated with other parameters, or bad arguments.
    """
    if num_train < 2 or num_val < 1 or size < 32:
        raise ValueError(f'need num_train >= 2, num_val >= 1 and size >= 32; got {num_train}, {num_val}, '
                         f'{size}')
    num_subset = num_train // 2 if num_train_subset is None else int(num_train_subset)
    if not 1 <= num_subset <= num_train:
        raise ValueError(f'num_train_subset must lie in 1..{num_train}, got {num_subset}')
    root = osp.abspath(str(root))
    params = dict(format_version=_FORMAT_VERSION, num_train=int(num_train), num_val=int(num_val),
                  size=int(size), seed=int(seed), num_train_subset=num_subset,
                  ignore_border=bool(ignore_border))
    meta_path = osp.join(root, 'meta.json')
    train_aug_ids = [f'toytr_{i:05d}' for i in range(num_train)]
    val_ids = [f'toyva_{i:05d}' for i in range(num_val)]
    train_ids = train_aug_ids[:num_subset]

    if osp.isfile(meta_path):
        try:
            with open(meta_path, encoding='utf-8') as f:
                meta = json.load(f)
        except (OSError, ValueError) as e:
            raise ValueError(f'{meta_path} exists but is not valid JSON ({e}); remove it to '
                             'regenerate') from e
        if meta.get('params') != params:
            raise ValueError(f'{root} holds a toy dataset made with {meta.get("params")}, not {params}; '
                             'use another root or remove it')
        expected = [osp.join(root, 'JPEGImages', i + '.jpg') for i in train_aug_ids + val_ids]
        expected += [osp.join(root, 'SegmentationClassAug', i + '.png') for i in train_aug_ids + val_ids]
        expected += [osp.join(root, 'ImageSets', 'Segmentation', n + '.txt')
                     for n in ('train_aug', 'train', 'val')]
        expected += [osp.join(root, 'cls_labels.npy')]
        if all(osp.isfile(p) for p in expected):
            summary = dict(meta['summary'], root=root, skipped=True)
            return summary

    classes = TOY_CLASSES
    labels: Dict[str, np.ndarray] = {}
    all_ids = [(i, 0, n) for n, i in enumerate(train_aug_ids)] + [(i, 1, n) for n, i in enumerate(val_ids)]
    subset = set(train_ids) | set(val_ids)
    for done, (img_id, split_code, index) in enumerate(all_ids):
        rng = np.random.default_rng([int(seed), split_code, index, int(size)])
        img, mask, objects = render_toy_image(rng, size=size, ignore_border=ignore_border)
        vec = np.zeros(len(classes), np.float32)
        vec[[o['cls'] for o in objects]] = 1.0
        labels[img_id] = vec
        atomic_write_bytes(osp.join(root, 'JPEGImages', img_id + '.jpg'),
                      _encode('.jpg', img, [cv2.IMWRITE_JPEG_QUALITY, 95]))
        png = _encode('.png', mask)
        atomic_write_bytes(osp.join(root, 'SegmentationClassAug', img_id + '.png'), png)
        if img_id in subset:
            atomic_write_bytes(osp.join(root, 'SegmentationClass', img_id + '.png'), png)
        atomic_write_bytes(osp.join(root, 'Annotations', img_id + '.xml'),
                      _voc_xml(img_id, size, objects, classes))
        if progress is not None:
            progress(done + 1, len(all_ids))

    for name, ids in (('train_aug', train_aug_ids), ('train', train_ids), ('val', val_ids)):
        atomic_write_bytes(osp.join(root, 'ImageSets', 'Segmentation', name + '.txt'),
                      ('\n'.join(ids) + '\n').encode())
    save_cls_labels(osp.join(root, 'cls_labels.npy'), labels)

    summary = dict(
        root=root,
        classes=['background'] + list(classes),
        num_train_aug=num_train,
        num_train=num_subset,
        num_val=num_val,
        size=size,
        seed=seed,
        skipped=False,
        train_aug=_summarise(np.stack([labels[i] for i in train_aug_ids]), classes),
        val=_summarise(np.stack([labels[i] for i in val_ids]), classes))
    # the root is left out so that two roots made with the same arguments are byte-identical
    meta = dict(classes=['background'] + list(classes), palette=[list(p) for p in TOY_PALETTE],
                params=params, summary={k: v for k, v in summary.items() if k not in ('root', 'skipped')})
    atomic_write_bytes(meta_path, (json.dumps(meta, indent=2) + '\n').encode())
    return summary
