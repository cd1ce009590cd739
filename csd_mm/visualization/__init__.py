from .cam_overlay import blend, cam_heatmap, draw_cam_row, draw_result_row, stack_rows
from .result_grid import class_meta, draw_result_grid, multi_label_ids, voc_colormap

__all__ = ['blend', 'cam_heatmap', 'draw_cam_row', 'draw_result_row', 'stack_rows', 'class_meta',
           'draw_result_grid', 'multi_label_ids', 'voc_colormap']
