"""tools/analysis/visualize.py refuses a CAM folder of another dataset before drawing anything."""
from pathlib import Path

import numpy as np
import pytest

import csd_mm  # noqa: F401
from csd_mm.utils.cam_io import cam_path, save_cam
from csd_mm.utils.fileio import write_png

REPO = Path(__file__).resolve().parents[2]


def test_cams_of_another_dataset_are_refused(tmp_path, run_tool_inprocess):
    img_dir, cam_dir, out = tmp_path / 'imgs', tmp_path / 'cams', tmp_path / 'out'
    write_png(str(img_dir / 'a.png'), np.zeros((8, 8, 3), np.uint8))
    save_cam(cam_path(str(cam_dir), 'a'), np.ones((1, 8, 8), np.float32), [7])  # class 7 of a 3-class dataset
    with pytest.raises(SystemExit, match=r'error: CAM file .*a\.npz has class ids \[7\] but the dataset has 3 '
                                         r'foreground classes'):
        run_tool_inprocess([REPO / 'tools/analysis/visualize.py', out, '--run', 'csd', cam_dir, '--ids', 'a',
                            '--img-dir', img_dir, '--img-suffix', '.png', '--classes', 'background', 'x', 'y', 'z'])
    with pytest.raises(SystemExit, match=r'error: 1 of 1 images have no CAM file in .*cams'):
        run_tool_inprocess([REPO / 'tools/analysis/visualize.py', out, '--run', 'csd', cam_dir, '--ids', 'b',
                            '--img-dir', img_dir, '--img-suffix', '.png'])
    assert not out.exists()
