"""Tests for csd_mm/datasets/coco.py: COCO's class order; our use of pycocotools (polygon, uncompressed and
compressed RLE decoding on hand-made masks, the input checks it lacks, the error without it); semantic masks
(overlaps, crowd regions) and image labels."""
import sys

import numpy as np
import pytest

from csd_mm.datasets.coco import (COCO_CATEGORY_IDS, COCO_CLASSES, category_index_map, image_label, rle_encode,
                                  rle_string_to_counts, segmentation_to_mask, semantic_mask)


def test_the_80_classes_and_their_category_ids():
    assert len(COCO_CLASSES) == len(COCO_CATEGORY_IDS) == 80
    assert sorted(set(range(1, 91)) - set(COCO_CATEGORY_IDS)) == [12, 26, 29, 30, 45, 66, 68, 69, 71, 83]
    assert (COCO_CLASSES[0], COCO_CLASSES[17], COCO_CLASSES[79]) == ('person', 'horse', 'toothbrush')
    cats = [dict(id=i, name=n) for i, n in zip(COCO_CATEGORY_IDS, COCO_CLASSES)][::-1]  # order in the json
    mapping = category_index_map(cats)
    assert mapping[1] == 0 and mapping[13] == 11 and mapping[90] == 79 and len(mapping) == 80


def test_category_index_map_rejects_bad_lists():
    with pytest.raises(ValueError, match='f.json: no categories'):
        category_index_map([], 'f.json')
    with pytest.raises(ValueError, match='repeated category ids'):
        category_index_map([dict(id=1), dict(id=1)])


# [[0, 1, 1],
#  [0, 1, 0]] column-major: 0 0 | 1 1 | 1 0 -> runs 2 zeros, 3 ones, 1 zero
HAND_MASK = np.array([[0, 1, 1], [0, 1, 0]], np.uint8)


def test_uncompressed_rle_is_column_major_and_starts_with_zeros():
    assert rle_encode(HAND_MASK) == dict(size=[2, 3], counts=[2, 3, 1])
    np.testing.assert_array_equal(segmentation_to_mask(dict(size=[2, 3], counts=[2, 3, 1]), 2, 3), HAND_MASK)
    # a mask starting with a 1 begins with an empty run of 0s
    assert rle_encode(np.array([[1, 0]], np.uint8))['counts'] == [0, 1, 1]
    np.testing.assert_array_equal(segmentation_to_mask(dict(size=[1, 2], counts=[0, 1, 1]), 1, 2), [[1, 0]])


def test_compressed_rle_strings_hand_computed():
    # COCO's string form: one 5-bit group per small count, chr(value + 48); from the fourth count on, the
    # difference to the count two places before, the last group sign-extended
    np.testing.assert_array_equal(segmentation_to_mask(dict(size=[2, 3], counts='231'), 2, 3), HAND_MASK)
    # '531N': 5, 3, 1, then 'N' = 30 = -2 (5 bits, sign bit set) + 3 -> 1: runs 5 zeros, 3 ones, 1 zero, 1 one
    expected = np.array([0] * 5 + [1] * 3 + [0] + [1], np.uint8).reshape(5, 2).T  # column-major 2x5
    np.testing.assert_array_equal(segmentation_to_mask(dict(size=[2, 5], counts='531N'), 2, 5), expected)
    # 'T3': 100 = 3 * 32 + 4, group 4 with the continuation bit (4 + 32 + 48 = 'T') then 3: 100 zeros
    assert segmentation_to_mask(dict(size=[10, 10], counts=b'T3'), 10, 10).sum() == 0


# COCO's rule: pixel (col, row) covers [col, col + 1] x [row, row + 1] and is inside when its centre is; a centre
# exactly on an edge is outside on the polygon's left / top edge and inside on its right / bottom edge (the
# rounding half up of the 1/5-pixel grid). cv2.fillPoly on rounded vertices would differ on every case below but
# the last two (it fills the pixels whose index, not centre, the polygon covers, edges included).
def _grid(height, width, rows=slice(None), cols=slice(None)):
    mask = np.zeros((height, width), np.uint8)
    mask[rows, cols] = 1
    return mask


POLYGON_CASES = [
    # (name, polygons, height, width, expected)
    ('square with integer corners', [[1, 1, 3, 1, 3, 3, 1, 3]], 5, 5, _grid(5, 5, slice(1, 3), slice(1, 3))),
    ('the whole top row', [[0, 0, 2, 0, 2, 1, 0, 1]], 2, 3, _grid(2, 3, 0, slice(0, 2))),
    ('centres on the edges', [[0.5, 0.5, 2.5, 0.5, 2.5, 2.5, 0.5, 2.5]], 4, 4, _grid(4, 4, slice(1, 3),
                                                                                       slice(1, 3))),
    ('1-pixel-wide strip', [[2, 0, 3, 0, 3, 4, 2, 4]], 4, 5, _grid(4, 5, cols=2)),
    ('0.4-pixel-wide strip over a centre', [[2.3, 0, 2.7, 0, 2.7, 4, 2.3, 4]], 4, 5, _grid(4, 5, cols=2)),
    ('strip between two centres', [[2.6, 0, 2.9, 0, 2.9, 4, 2.6, 4]], 4, 5, _grid(4, 5, 0, 0) * 0),
    ('two parts of one object', [[0, 0, 1, 0, 1, 1, 0, 1], [2, 2, 4, 2, 4, 4, 2, 4]], 4, 4,
     _grid(4, 4, 0, 0) | _grid(4, 4, slice(2, 4), slice(2, 4))),
    ('beyond the image', [[-3, -3, 9, -3, 9, 9, -3, 9]], 3, 4, np.ones((3, 4), np.uint8)),
    ('outside the image', [[5, 1, 7, 1, 7, 2]], 3, 4, np.zeros((3, 4), np.uint8)),
]


@pytest.mark.parametrize('name,polygons,height,width,expected', POLYGON_CASES, ids=[c[0] for c in POLYGON_CASES])
def test_polygon_rasterisation_hand_made(name, polygons, height, width, expected):
    np.testing.assert_array_equal(segmentation_to_mask(polygons, height, width), expected)


def test_polygons_of_fewer_than_3_points_cover_nothing():
    square = [1, 1, 3, 1, 3, 3, 1, 3]
    # pycocotools alone would read [[1, 1, 3, 3], ...] (4 numbers first) as bounding boxes
    mask = segmentation_to_mask([[1, 1, 3, 3], square], 5, 5)
    np.testing.assert_array_equal(mask, _grid(5, 5, slice(1, 3), slice(1, 3)))
    assert segmentation_to_mask([[1, 1, 2, 2]], 5, 5).sum() == 0
    assert segmentation_to_mask([], 5, 5).sum() == 0
    with pytest.raises(ValueError, match=r'odd number of coordinates \(7\)'):
        segmentation_to_mask([square[:7]], 5, 5)


def test_compressed_rle_run_lengths_hand_computed():
    # one 5-bit group per small count, chr(value + 48); the first three counts are stored as they are
    assert rle_string_to_counts('231') == [2, 3, 1]
    # the fourth count is stored as the difference to the second: 1 - 3 = -2, one sign-extended group
    # (-2 & 31 = 30 -> chr(78) 'N')
    assert rle_string_to_counts('531N') == [5, 3, 1, 1]
    assert rle_string_to_counts(b'2311') == [2, 3, 1, 4]  # 1 + 3
    # 100 = 3 * 32 + 4: group 4 with the continuation bit (4 + 32 + 48 = 'T'), then 3 ('3')
    assert rle_string_to_counts('T3') == [100]
    with pytest.raises(ValueError, match='ends in the middle'):
        rle_string_to_counts('T')
    with pytest.raises(ValueError, match='negative run length'):
        rle_string_to_counts('N')  # -2


def test_compressed_rle_run_lengths_agree_with_pycocotools():
    mask_api = pytest.importorskip('pycocotools.mask')
    rng = np.random.default_rng(0)
    for _ in range(20):
        mask = (rng.random((rng.integers(1, 40), rng.integers(1, 40))) < rng.random()).astype(np.uint8)
        encoded = mask_api.encode(np.asfortranarray(mask))['counts']
        assert rle_string_to_counts(encoded) == rle_encode(mask)['counts']


def test_segmentation_to_mask_checks_the_input():
    with pytest.raises(ValueError, match=r'RLE size \[3, 2\] is not the image size \[2, 3\]'):
        segmentation_to_mask(dict(size=[3, 2], counts=[6]), 2, 3)
    # pycocotools rejects too many pixels without saying why and fills too few up with 0s: both are errors here
    with pytest.raises(ValueError, match='sum to 9, the 2x3 mask has 6 pixels'):
        segmentation_to_mask(dict(size=[2, 3], counts=[2, 3, 4]), 2, 3)
    with pytest.raises(ValueError, match='sum to 5, the 2x3 mask has 6 pixels'):
        segmentation_to_mask(dict(size=[2, 3], counts=[2, 3]), 2, 3)
    # compressed strings too: pycocotools would leave the pixels past a short one uninitialised
    with pytest.raises(ValueError, match='sum to 9, the 2x3 mask has 6 pixels'):
        segmentation_to_mask(dict(size=[2, 3], counts='234'), 2, 3)
    with pytest.raises(ValueError, match='sum to 5, the 2x3 mask has 6 pixels'):
        segmentation_to_mask(dict(size=[2, 3], counts='23'), 2, 3)
    with pytest.raises(ValueError, match=r"compressed RLE '2 3' does not decode to the 2x3 mask: .*invalid char"):
        segmentation_to_mask(dict(size=[2, 3], counts='2 3'), 2, 3)  # ' ' is outside the encoding
    with pytest.raises(ValueError, match='negative run length'):
        segmentation_to_mask(dict(size=[2, 3], counts=[8, -2]), 2, 3)
    with pytest.raises(ValueError, match='neither a polygon list nor an RLE'):
        segmentation_to_mask(42, 2, 3)
    with pytest.raises(ValueError, match=r'list of \[x1, y1, x2, y2, ...\] lists'):
        segmentation_to_mask([1, 2, 3, 4, 5, 6], 2, 3)


def test_missing_pycocotools_is_a_clear_error(monkeypatch):
    monkeypatch.setitem(sys.modules, 'pycocotools', None)  # what `import pycocotools` meets when not installed
    with pytest.raises(ImportError, match=r'pycocotools, which is not installed: pip install -r '
                                          r'requirements/optional/coco.txt'):
        segmentation_to_mask([[1, 1, 3, 1, 3, 3]], 5, 5)


def test_semantic_mask_small_objects_on_top_and_crowd_ignored():
    cat_index = category_index_map([dict(id=i) for i in COCO_CATEGORY_IDS])
    big = dict(category_id=19, iscrowd=0, segmentation=rle_encode(np.ones((4, 4), np.uint8)))
    small = np.zeros((4, 4), np.uint8)
    small[0, 0] = 1
    crowd = np.zeros((4, 4), np.uint8)
    crowd[3, :] = 1
    anns = [dict(category_id=1, iscrowd=0, segmentation=rle_encode(small)), big,
            dict(category_id=1, iscrowd=1, segmentation=dict(rle_encode(crowd)))]
    mask = semantic_mask(anns[:2], 4, 4, cat_index)
    assert mask[0, 0] == 1 and (mask[1:, :] == 18).all()  # the person on the horse stays visible
    empty = semantic_mask(anns[2:], 4, 4, cat_index)
    assert (empty[3] == 255).all() and (empty[:3] == 0).all()  # crowd over background: ignore
    with_crowd = semantic_mask(anns, 4, 4, cat_index)
    assert (with_crowd[3] == 18).all()  # an instance is not overwritten by a crowd region
    np.testing.assert_array_equal(image_label(anns, cat_index)[[0, 17]], [1, 1])
    assert image_label([], cat_index).sum() == 0
    with pytest.raises(ValueError, match='unknown category_id 12'):
        image_label([dict(category_id=12)], cat_index)  # one of COCO's unused ids


def test_semantic_mask_overlapping_polygons_and_a_compressed_crowd():
    cat_index = category_index_map([dict(id=i) for i in COCO_CATEGORY_IDS])
    horse = dict(category_id=19, iscrowd=0, segmentation=[[0, 0, 5, 0, 5, 4, 0, 4]])  # columns 0-4, rows 0-3
    person = dict(category_id=1, iscrowd=0, segmentation=[[1.5, 0.5, 3.5, 0.5, 3.5, 2.5, 1.5, 2.5]])  # overlaps
    # crowd rows 3-5 of columns 1-2 (overlaps the horse's last row), column-major: runs 9 0s, 3 1s, 3 0s, 3 1s,
    # 12 0s -> '9', '3', '3', then the differences to the count two places before: 3 - 3 = 0 -> '0', 12 - 3 = 9
    crowd = dict(category_id=1, iscrowd=1, segmentation=dict(size=[6, 5], counts='93309'))
    expected = np.zeros((6, 5), np.uint8)
    expected[:4] = 18  # horse
    expected[1:3, 2:4] = 1  # the smaller person on top, centres on its right / bottom edges inside
    expected[4:, 1:3] = 255  # the crowd only where no instance is
    np.testing.assert_array_equal(semantic_mask([person, crowd, horse], 6, 5, cat_index), expected)
