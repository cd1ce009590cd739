from .seed_eval import (dump_sweep_json, evaluate_cam_folder, format_sweep,
                        sweep_to_dict)
from .seed_sweep import (confusion_to_iou, default_thresholds, seed_from_cam, summarize_sweep,
                         sweep_confusion)

__all__ = ['confusion_to_iou', 'default_thresholds', 'seed_from_cam', 'summarize_sweep', 'sweep_confusion',
           'dump_sweep_json', 'evaluate_cam_folder', 'format_sweep', 
           'sweep_to_dict']
