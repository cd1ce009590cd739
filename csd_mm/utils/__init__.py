from .cam_io import cam_path, is_complete, load_cam, missing_ids, save_cam
from .fileio import atomic_write, atomic_write_bytes, read_png, write_png
from .progress import ConsoleProgress, LogProgressParser, StageTimer

__all__ = ['cam_path', 'is_complete', 'load_cam', 'missing_ids', 'save_cam', 'atomic_write', 'atomic_write_bytes',
           'read_png', 'write_png', 'ConsoleProgress', 'LogProgressParser', 'StageTimer']
