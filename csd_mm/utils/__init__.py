from .cam_io import atomic_write, cam_path, is_complete, load_cam, missing_ids, save_cam

__all__ = ['atomic_write', 'cam_path', 'is_complete', 'load_cam', 'missing_ids', 'save_cam']
