from .cam_io import (cam_path, check_cam_folder, is_complete, load_cam, load_cam_keys, missing_ids,
                     save_cam)
from .checkpoint import check_checkpoint_matches, is_complete_checkpoint, latest_complete_checkpoint
from .cli import add_runner_args, export_local_rank, load_runner_config
from .fileio import (StaleOutputError, atomic_write, atomic_write_bytes, current_umask, new_file_mode,
                     raise_if_unreadable_image, read_image, read_png, remove_stale_temp_files, write_png)
from .paths import check_image_id, resolve_inside
from .process import LOCK_FILE, WorkDirLockedError, die_with_parent, lock_work_dir
from .progress import ConsoleProgress, LogProgressParser, StageTimer
from .rank_errors import DeferredRankError

__all__ = ['cam_path', 'check_cam_folder', 'is_complete', 'load_cam', 'load_cam_keys', 'missing_ids', 'save_cam',
           'check_checkpoint_matches', 'is_complete_checkpoint', 'latest_complete_checkpoint',
           'add_runner_args', 'export_local_rank', 'load_runner_config',
           'StaleOutputError', 'atomic_write', 'atomic_write_bytes', 'current_umask', 'new_file_mode',
           'raise_if_unreadable_image', 'read_image', 'read_png', 'remove_stale_temp_files', 'write_png',
           'check_image_id', 'resolve_inside', 'LOCK_FILE', 'WorkDirLockedError', 'die_with_parent',
           'lock_work_dir', 'ConsoleProgress', 'LogProgressParser', 'StageTimer', 'DeferredRankError']
