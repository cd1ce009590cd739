"""Tests for csd_mm/datasets/coco.py: COCO's class order, RLE / polygon decoding (hand-made masks), semantic
masks and image labels."""
import numpy as np
import pytest

from csd_mm.datasets.coco import (COCO_CATEGORY_IDS, COCO_CLASSES, category_index_map, counts_to_rle_string,
                                  image_label, polygons_to_mask, rle_decode, rle_encode, rle_string_to_counts,
                                  segmentation_to_mask, semantic_mask)


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
    np.testing.assert_array_equal(rle_decode(dict(size=[2, 3], counts=[2, 3, 1])), HAND_MASK)
    # a mask starting with a 1 begins with an empty run of 0s
    assert rle_encode(np.array([[1, 0]], np.uint8))['counts'] == [0, 1, 1]
    np.testing.assert_array_equal(rle_decode(dict(size=[1, 2], counts=[0, 1, 1])), [[1, 0]])


def test_compressed_rle_string_hand_computed():
    # one 5-bit group per small count, chr(value + 48); the first three counts are stored as they are
    assert counts_to_rle_string([2, 3, 1]) == '231'
    assert rle_string_to_counts('231') == [2, 3, 1]
    # the fourth count is stored as the difference to the second: 1 - 3 = -2, one sign-extended group
    # (-2 & 31 = 30 -> chr(78) 'N')
    assert counts_to_rle_string([5, 3, 1, 1]) == '531N'
    assert rle_string_to_counts('531N') == [5, 3, 1, 1]
    assert rle_string_to_counts('2311') == [2, 3, 1, 4]  # 1 + 3
    # 100 = 3 * 32 + 4: group 4 with the continuation bit (4 + 32 + 48 = 'T'), then 3 ('3')
    assert counts_to_rle_string([100]) == 'T3'
    assert rle_string_to_counts('T3') == [100]
    np.testing.assert_array_equal(rle_decode(dict(size=[2, 3], counts='231')), HAND_MASK)


def test_compressed_rle_round_trip_on_random_masks():
    rng = np.random.default_rng(0)
    for _ in range(20):
        mask = (rng.random((rng.integers(1, 40), rng.integers(1, 40))) < rng.random()).astype(np.uint8)
        rle = rle_encode(mask)
        rle['counts'] = counts_to_rle_string(rle['counts'])
        np.testing.assert_array_equal(rle_decode(rle), mask)


def test_rle_errors_are_clear():
    with pytest.raises(ValueError, match='sum to 5'):
        rle_decode(dict(size=[2, 3], counts=[2, 3]))
    with pytest.raises(ValueError, match='invalid character'):
        rle_string_to_counts('2 3')
    with pytest.raises(ValueError, match='ends in the middle'):
        rle_string_to_counts('T')


def test_polygon_fill_hand_made_square():
    mask = polygons_to_mask([[1, 1, 3, 1, 3, 3, 1, 3]], 5, 5)
    expected = np.zeros((5, 5), np.uint8)
    expected[1:4, 1:4] = 1
    np.testing.assert_array_equal(mask, expected)
    assert polygons_to_mask([[1, 1, 2, 2]], 5, 5).sum() == 0  # fewer than 3 points: nothing


def test_segmentation_to_mask_dispatches_and_checks_the_size():
    poly = segmentation_to_mask([[0, 0, 2, 0, 2, 1, 0, 1]], 2, 3, use_pycocotools=False)
    np.testing.assert_array_equal(poly, np.ones((2, 3), np.uint8))
    rle = segmentation_to_mask(dict(size=[2, 3], counts='231'), 2, 3, use_pycocotools=False)
    np.testing.assert_array_equal(rle, HAND_MASK)
    with pytest.raises(ValueError, match=r'RLE size \[3, 2\] is not the image size \[2, 3\]'):
        segmentation_to_mask(dict(size=[3, 2], counts=[6]), 2, 3, use_pycocotools=False)
    with pytest.raises(ValueError, match='neither a polygon list nor an RLE'):
        segmentation_to_mask(42, 2, 3)


def test_semantic_mask_small_objects_on_top_and_crowd_ignored():
    cat_index = category_index_map([dict(id=i) for i in COCO_CATEGORY_IDS])
    big = dict(category_id=19, iscrowd=0, segmentation=rle_encode(np.ones((4, 4), np.uint8)))
    small = np.zeros((4, 4), np.uint8)
    small[0, 0] = 1
    crowd = np.zeros((4, 4), np.uint8)
    crowd[3, :] = 1
    anns = [dict(category_id=1, iscrowd=0, segmentation=rle_encode(small)), big,
            dict(category_id=1, iscrowd=1, segmentation=dict(rle_encode(crowd)))]
    mask = semantic_mask(anns[:2], 4, 4, cat_index, use_pycocotools=False)
    assert mask[0, 0] == 1 and (mask[1:, :] == 18).all()  # the person on the horse stays visible
    empty = semantic_mask(anns[2:], 4, 4, cat_index, use_pycocotools=False)
    assert (empty[3] == 255).all() and (empty[:3] == 0).all()  # crowd over background: ignore
    with_crowd = semantic_mask(anns, 4, 4, cat_index, use_pycocotools=False)
    assert (with_crowd[3] == 18).all()  # an instance is not overwritten by a crowd region
    np.testing.assert_array_equal(image_label(anns, cat_index)[[0, 17]], [1, 1])
    assert image_label([], cat_index).sum() == 0
    with pytest.raises(ValueError, match='unknown category_id 12'):
        image_label([dict(category_id=12)], cat_index)  # one of COCO's unused ids


def test_fallback_agrees_with_pycocotools_when_installed():
    mask_api = pytest.importorskip('pycocotools.mask')
    rng = np.random.default_rng(1)
    mask = np.asfortranarray((rng.random((17, 23)) < 0.4).astype(np.uint8))
    encoded = mask_api.encode(mask)
    ours = rle_decode(dict(size=encoded['size'], counts=encoded['counts'].decode('ascii')))
    np.testing.assert_array_equal(ours, mask)
    poly = [[2.0, 3.0, 15.0, 2.0, 18.0, 14.0, 5.0, 12.0]]
    theirs = mask_api.decode(mask_api.merge(mask_api.frPyObjects(poly, 17, 23)))
    agree = (polygons_to_mask(poly, 17, 23) == theirs).mean()
    assert agree > 0.9  # boundary pixels may differ (different rasterisation rules)
