"""Tests for csd_mm/datasets/coco.py: COCO's class order, RLE / polygon decoding (hand-made masks), semantic
masks and image labels; csd_mm's own decoders against pycocotools, COCO's reference decoder (in the test
environment: requirements/tests.txt), on hand-made and random cases."""
import numpy as np
import pytest

from csd_mm.datasets.coco import (COCO_CATEGORY_IDS, COCO_CLASSES, category_index_map, counts_to_rle_string,
                                  image_label, polygon_boundary_points, polygon_column_crossings, polygons_to_mask,
                                  rle_decode, rle_encode, rle_string_to_counts, segmentation_to_mask, semantic_mask)


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


def test_polygon_boundary_points_hand_computed():
    # triangle (0, 0), (1, 0), (0, 0.4): x 5 on the sub-pixel grid -> (0, 0), (5, 0), (0, 2)
    xs, ys = polygon_boundary_points([0, 0, 1, 0, 0, 0.4])
    # edge 1 runs along x; edge 2 runs along x backwards (5 -> 0), its y rounded half up from its lower-x end
    # (0, 2) with slope -0.4: trunc(2 - 0.4 t + 0.5) for t = 5..0 -> 0 0 1 1 2 2; edge 3 runs along y (2 -> 0)
    assert xs.tolist() == [0, 1, 2, 3, 4, 5] + [5, 4, 3, 2, 1, 0] + [0, 0, 0]
    assert ys.tolist() == [0, 0, 0, 0, 0, 0] + [0, 0, 1, 1, 2, 2] + [2, 1, 0]
    # vertices are rounded half up to the 1/5-pixel grid: 0.29 * 5 = 1.45 -> 1, 0.3 * 5 = 1.5 -> 2
    assert polygon_boundary_points([0.29, 0, 0.3, 0, 0.3, 0])[0].tolist()[:2] == [1, 2]
    with pytest.raises(ValueError, match='odd number of coordinates'):
        polygon_boundary_points([0, 0, 1, 0, 1])


def test_polygon_column_crossings_hand_computed():
    # the triangle above crosses column 0's centre line (sub-pixel x between 2 and 3) twice, both times above
    # row 0's centre: the toggles cancel, pixel (0, 0) (centre (0.5, 0.5)) is outside, as the hypotenuse says
    cols, rows = polygon_column_crossings(*polygon_boundary_points([0, 0, 1, 0, 0, 0.4]), 1, 1)
    assert cols.tolist() == [0, 0] and rows.tolist() == [0, 0]
    assert polygons_to_mask([[0, 0, 1, 0, 0, 0.4]], 1, 1).tolist() == [[0]]
    # square (1, 1)-(3, 3): top edge crosses columns 1 and 2 at y 1 -> (5.5 / 5 - 0.5 = 0.6) row 1, the bottom
    # edge at y 3 -> row ceil(2.6) = 3; beyond the image's last row, a crossing is clipped to row `height`
    cols, rows = polygon_column_crossings(*polygon_boundary_points([1, 1, 3, 1, 3, 3, 1, 3]), 5, 5)
    assert sorted(zip(cols.tolist(), rows.tolist())) == [(1, 1), (1, 3), (2, 1), (2, 3)]
    cols, rows = polygon_column_crossings(*polygon_boundary_points([1, -1, 3, -1, 3, 9, 1, 9]), 5, 5)
    assert sorted(zip(cols.tolist(), rows.tolist())) == [(1, 0), (1, 5), (2, 0), (2, 5)]


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
    np.testing.assert_array_equal(polygons_to_mask(polygons, height, width), expected)
    np.testing.assert_array_equal(segmentation_to_mask(polygons, height, width, use_pycocotools=False), expected)


@pytest.mark.parametrize('name,polygons,height,width,expected', POLYGON_CASES, ids=[c[0] for c in POLYGON_CASES])
def test_polygon_hand_made_cases_are_pycocotools_rule(name, polygons, height, width, expected):
    mask_api = pytest.importorskip('pycocotools.mask')
    reference = mask_api.decode(mask_api.merge(mask_api.frPyObjects(polygons, height, width)))
    np.testing.assert_array_equal(reference, expected)
    np.testing.assert_array_equal(segmentation_to_mask(polygons, height, width, use_pycocotools=True), expected)


def test_polygons_of_fewer_than_3_points_cover_nothing_on_both_paths():
    square = [1, 1, 3, 1, 3, 3, 1, 3]
    assert polygons_to_mask([[1, 1, 2, 2]], 5, 5).sum() == 0
    for use_pycocotools in (False, True):
        # pycocotools alone would read [[1, 1, 3, 3], ...] (4 numbers first) as bounding boxes
        mask = segmentation_to_mask([[1, 1, 3, 3], square], 5, 5, use_pycocotools=use_pycocotools)
        np.testing.assert_array_equal(mask, _grid(5, 5, slice(1, 3), slice(1, 3)))
        assert segmentation_to_mask([], 5, 5, use_pycocotools=use_pycocotools).sum() == 0
        with pytest.raises(ValueError, match=r'odd number of coordinates \(7\)'):
            segmentation_to_mask([square[:7]], 5, 5, use_pycocotools=use_pycocotools)


def test_segmentation_to_mask_dispatches_and_checks_the_input():
    for use_pycocotools in (False, True):  # the checks come before either decoder
        rle = segmentation_to_mask(dict(size=[2, 3], counts='231'), 2, 3, use_pycocotools=use_pycocotools)
        np.testing.assert_array_equal(rle, HAND_MASK)
        rle = segmentation_to_mask(dict(size=[2, 3], counts=[2, 3, 1]), 2, 3, use_pycocotools=use_pycocotools)
        np.testing.assert_array_equal(rle, HAND_MASK)
        with pytest.raises(ValueError, match=r'RLE size \[3, 2\] is not the image size \[2, 3\]'):
            segmentation_to_mask(dict(size=[3, 2], counts=[6]), 2, 3, use_pycocotools=use_pycocotools)
        # more pixels than the mask: pycocotools' decoder alone would write past its buffer
        with pytest.raises(ValueError, match='sum to 9, the 2x3 mask has 6 pixels'):
            segmentation_to_mask(dict(size=[2, 3], counts=[2, 3, 4]), 2, 3, use_pycocotools=use_pycocotools)
        with pytest.raises(ValueError, match='sum to 9'):
            segmentation_to_mask(dict(size=[2, 3], counts='234'), 2, 3, use_pycocotools=use_pycocotools)
        with pytest.raises(ValueError, match='negative run length'):
            segmentation_to_mask(dict(size=[2, 3], counts=[8, -2]), 2, 3, use_pycocotools=use_pycocotools)
        with pytest.raises(ValueError, match='neither a polygon list nor an RLE'):
            segmentation_to_mask(42, 2, 3, use_pycocotools=use_pycocotools)
        with pytest.raises(ValueError, match=r'list of \[x1, y1, x2, y2, ...\] lists'):
            segmentation_to_mask([1, 2, 3, 4, 5, 6], 2, 3, use_pycocotools=use_pycocotools)


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


def test_semantic_mask_overlaps_and_crowd_identical_on_both_paths():
    cat_index = category_index_map([dict(id=i) for i in COCO_CATEGORY_IDS])
    horse = dict(category_id=19, iscrowd=0, segmentation=[[0, 0, 5, 0, 5, 4, 0, 4]])  # columns 0-4, rows 0-3
    person = dict(category_id=1, iscrowd=0, segmentation=[[1.5, 0.5, 3.5, 0.5, 3.5, 2.5, 1.5, 2.5]])  # overlaps
    crowd_mask = np.zeros((6, 5), np.uint8)
    crowd_mask[3:, 1:3] = 1  # overlaps the horse's last row
    crowd = dict(category_id=1, iscrowd=1,
                 segmentation=dict(size=[6, 5], counts=counts_to_rle_string(rle_encode(crowd_mask)['counts'])))
    expected = np.zeros((6, 5), np.uint8)
    expected[:4] = 18  # horse
    expected[1:3, 2:4] = 1  # the smaller person on top, centres on its right / bottom edges inside
    expected[4:, 1:3] = 255  # the crowd only where no instance is
    for use_pycocotools in (False, True):
        mask = semantic_mask([person, crowd, horse], 6, 5, cat_index, use_pycocotools=use_pycocotools)
        np.testing.assert_array_equal(mask, expected)


def _random_polygon(rng, height, width):
    """Random polygons of 3 to 8 points: real-valued, whole, half and tenth coordinates, partly off the image."""
    num = 2 * int(rng.integers(3, 9))
    side = max(height, width)
    kind = int(rng.integers(4))
    if kind == 0:
        return rng.uniform(-5, side + 5, num).tolist()
    if kind == 1:
        return rng.integers(-2, side + 2, num).astype(float).tolist()
    if kind == 2:
        return (rng.integers(0, 2 * side, num) / 2).tolist()
    return np.round(rng.uniform(0, side, num), 1).tolist()


def test_own_decoders_equal_pycocotools_on_random_cases():
    mask_api = pytest.importorskip('pycocotools.mask')
    rng = np.random.default_rng(1)
    for trial in range(300):
        height, width = (int(v) for v in rng.integers(1, 40, 2))
        polygons = [_random_polygon(rng, height, width) for _ in range(1 + trial % 3)]
        reference = mask_api.decode(mask_api.merge(mask_api.frPyObjects(polygons, height, width)))
        np.testing.assert_array_equal(polygons_to_mask(polygons, height, width), reference, err_msg=str(polygons))
        mask = (rng.random((height, width)) < rng.random()).astype(np.uint8)
        encoded = mask_api.encode(np.asfortranarray(mask))  # compressed RLE (bytes)
        np.testing.assert_array_equal(rle_decode(dict(size=encoded['size'], counts=encoded['counts'].decode())),
                                      mask)
        plain = rle_encode(mask)
        assert counts_to_rle_string(plain['counts']) == encoded['counts'].decode()  # the same compressed string
        reference = mask_api.decode(mask_api.frPyObjects(plain, height, width))
        np.testing.assert_array_equal(rle_decode(plain), reference)
