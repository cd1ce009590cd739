from .cam_io import cam_path, is_complete, load_cam, missing_ids, save_cam
from .fileio import (atomic_write, atomic_write_bytes, current_umask, new_file_mode, read_png,
                     remove_stale_temp_files, write_png)
from .process import LOCK_FILE, WorkDirLockedError, die_with_parent, lock_work_dir

__all__ = ['cam_path', 'is_complete', 'load_cam', 'missing_ids', 'save_cam', 'atomic_write', 'atomic_write_bytes',
           'read_png', 'write_png', 'current_umask', 'new_file_mode', 'remove_stale_temp_files',
           'LOCK_FILE', 'WorkDirLockedError', 'die_with_parent', 'lock_work_dir']
