"""csd_mm.utils.fileio: atomic writes and mask reading."""
import mmcv
import numpy as np
import pytest
from PIL import Image

from csd_mm.utils.fileio import atomic_write_bytes, read_png, write_png


def test_read_png_palette_and_gray(tmp_path):
    idx = np.array([[0, 1, 255], [15, 20, 0]], np.uint8)
    img = Image.fromarray(idx, mode='P')
    img.putpalette([v for i in range(256) for v in (i, 255 - i, (7 * i) % 256)])
    img.save(tmp_path / 'p.png')
    np.testing.assert_array_equal(read_png(str(tmp_path / 'p.png')), idx)  # indices, not colours
    mmcv.imwrite(idx, str(tmp_path / 'g.png'))
    np.testing.assert_array_equal(read_png(str(tmp_path / 'g.png')), idx)
    mmcv.imwrite(np.zeros((2, 2, 3), np.uint8), str(tmp_path / 'rgb.png'))
    with pytest.raises(ValueError, match='rgb.png must be a single-channel'):
        read_png(str(tmp_path / 'rgb.png'))
    (tmp_path / 'bad.png').write_bytes(b'garbage')
    with pytest.raises(ValueError, match='bad.png cannot be read'):
        read_png(str(tmp_path / 'bad.png'))
    with pytest.raises(FileNotFoundError, match='none.png'):
        read_png(str(tmp_path / 'none.png'))


def test_write_png_round_trip_and_atomic(tmp_path):
    mask = np.array([[0, 1], [255, 3]], np.uint8)
    write_png(str(tmp_path / 'm.png'), mask)
    np.testing.assert_array_equal(read_png(str(tmp_path / 'm.png')), mask)
    with pytest.raises(ValueError, match='uint8'):
        write_png(str(tmp_path / 'f.png'), mask.astype(np.float32))
    assert sorted(p.name for p in tmp_path.iterdir()) == ['m.png']  # no temporary file left


def test_atomic_write_bytes_keeps_old_file_on_failure(tmp_path):
    target = tmp_path / 'a.bin'
    atomic_write_bytes(str(target), b'old')

    with pytest.raises(TypeError):
        atomic_write_bytes(str(target), 123)  # write() fails midway
    assert target.read_bytes() == b'old'
    assert [p.name for p in tmp_path.iterdir()] == ['a.bin']
