"""csd_mm.utils.fileio: atomic writes (file modes, stale temporary files) and mask reading."""
import os
import socket
import stat
import subprocess
import sys

import mmcv
import numpy as np
import pytest
from PIL import Image

from csd_mm.utils.cam_io import save_cam
from csd_mm.utils.fileio import (atomic_write, atomic_write_bytes, current_umask, new_file_mode,
                                raise_if_unreadable_image, read_image, read_png, remove_stale_temp_files, write_png)


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


@pytest.mark.parametrize('umask', [0o022, 0o002, 0o077])
def test_atomic_write_gives_the_mode_of_a_plain_open(tmp_path, umask):
    """Not mkstemp's 0600: the bits open() gives a new file under the umask (0644 for 022, 0664 for 002)."""
    old = os.umask(umask)
    try:
        assert current_umask() == umask
        atomic_write_bytes(str(tmp_path / 'a.bin'), b'x')
        save_cam(str(tmp_path / 'c.npz'), np.zeros((1, 2, 2), np.float32), np.array([0]))
        write_png(str(tmp_path / 'm.png'), np.zeros((2, 2), np.uint8))
        with open(tmp_path / 'plain', 'wb'):
            pass
    finally:
        os.umask(old)
    expected = {0o022: 0o644, 0o002: 0o664, 0o077: 0o600}[umask]
    assert new_file_mode(umask) == expected
    for name in ('a.bin', 'c.npz', 'm.png', 'plain'):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == expected, name


def test_stale_temp_files_of_dead_writers_are_removed_live_ones_kept(tmp_path):
    host = socket.gethostname()
    dead = subprocess.Popen([sys.executable, '-c', 'pass'])
    dead.wait()  # a pid that no longer runs
    stale = tmp_path / f'.a.png~{host}~{dead.pid}~k2j3.tmp'
    live = tmp_path / f'.b.png~{host}~{os.getpid()}~x9y8.tmp'
    other_host = tmp_path / f'.c.png~not-{host}~{dead.pid}~q1.tmp'
    foreign = tmp_path / 'notes.tmp'  # not an atomic_write temporary file
    for p in (stale, live, other_host, foreign):
        p.write_bytes(b'partial')
    assert remove_stale_temp_files(str(tmp_path)) == [str(stale)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in (live, other_host, foreign))
    assert remove_stale_temp_files(str(tmp_path / 'missing')) == []


def test_temp_file_name_records_host_and_pid(tmp_path):
    names = []
    atomic_write(str(tmp_path / 'x.bin'), lambda f: names.extend(os.listdir(tmp_path)) or f.write(b'1'))
    assert len(names) == 1 and names[0].startswith(f'.x.bin~{socket.gethostname()}~{os.getpid()}~')
    assert names[0].endswith('.tmp')
def _jpeg(path, data):
    path.write_bytes(data)
    return str(path)


def test_read_image_names_corrupt_files(tmp_path):
    good = str(tmp_path / 'good.jpg')
    mmcv.imwrite(np.full((8, 8, 3), 100, np.uint8), good)
    assert read_image(good).shape == (8, 8, 3)
    with open(good, 'rb') as f:
        data = f.read()
    for name, content in (('empty.jpg', b''), ('garbage.jpg', b'not an image' * 20),
                          ('truncated.jpg', data[:len(data) // 3])):
        with pytest.raises(ValueError, match=rf'image .*{name} cannot be decoded \(empty, truncated or not an image'):
            read_image(_jpeg(tmp_path / name, content))
    with pytest.raises(FileNotFoundError, match=r'image .*missing\.jpg does not exist'):
        read_image(str(tmp_path / 'missing.jpg'))


def test_raise_if_unreadable_image(tmp_path):
    good = str(tmp_path / 'good.png')
    mmcv.imwrite(np.zeros((4, 4, 3), np.uint8), good)
    raise_if_unreadable_image(good, RuntimeError('elsewhere'))  # the image is fine: the caller re-raises
    cause = RuntimeError('cv2.error !buf.empty()')
    with pytest.raises(ValueError, match=r'empty\.jpg cannot be decoded') as info:
        raise_if_unreadable_image(_jpeg(tmp_path / 'empty.jpg', b''), cause)
    assert info.value.__cause__ is cause
