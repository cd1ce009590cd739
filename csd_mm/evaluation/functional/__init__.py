from .cooccurrence_confusion import (cooccurrence_confusion_of_dir, dump_cooccurrence_confusion,
                                     format_cooccurrence_confusion, top_cooccurring_pairs)
from .seed_eval import dump_sweep_json, evaluate_cam_folder, format_sweep, sweep_to_dict
from .seed_sweep import (confusion_to_iou, default_thresholds, seed_from_cam, summarize_sweep,
                         sweep_confusion)

__all__ = ['confusion_to_iou', 'default_thresholds', 'seed_from_cam', 'summarize_sweep', 'sweep_confusion',
           'dump_sweep_json', 'evaluate_cam_folder', 'format_sweep', 'sweep_to_dict', 'cooccurrence_confusion_of_dir',
           'dump_cooccurrence_confusion', 'format_cooccurrence_confusion', 'top_cooccurring_pairs']
