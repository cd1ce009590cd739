from .cam_overlay import draw_cam_row

__all__ = ['draw_cam_row']
