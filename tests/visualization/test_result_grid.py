"""The grid helpers: which images a grid shows, the class names and palette it draws with."""
import json

import numpy as np
import pytest

import csd_mm  # noqa: F401
from csd_mm.visualization import class_meta, multi_label_ids


def test_first_multi_label_ids_in_split_order():
    labels = {'a': np.array([1, 0, 0]), 'b': np.array([1, 1, 0]), 'c': np.array([0, 0, 0]),
              'd': np.array([1, 1, 1]), 'e': np.array([0, 1, 1])}
    assert multi_label_ids(['a', 'b', 'c', 'd', 'e'], labels, 2) == ['b', 'd']
    assert multi_label_ids(['e', 'd', 'a'], labels, 5) == ['e', 'd']
    with pytest.raises(KeyError, match='image x has no image-level label'):
        multi_label_ids(['x'], labels, 1)


def test_class_meta_from_meta_json_else_voc(tmp_path):
    names, palette = class_meta()
    assert names[0] == 'background' and len(names) == 21 and palette.shape == (21, 3)
    (tmp_path / 'meta.json').write_text(json.dumps(dict(classes=['background', 'horse'],
                                                        palette=[[0, 0, 0], [150, 90, 50]])))
    names, palette = class_meta(str(tmp_path))
    assert names == ['background', 'horse'] and palette.tolist() == [[0, 0, 0], [150, 90, 50]]
    assert class_meta(str(tmp_path), ['bg', 'h'])[0] == ['bg', 'h']
    with pytest.raises(ValueError, match='meta.json: 3 classes but a palette of 2 colours'):
        class_meta(str(tmp_path), ['bg', 'h', 'r'])
