"""Dense CRF refinement of CAMs (step 2 of the WSSS pipeline: CAM -> pseudo mask).

The CRF is the fully connected CRF of Kraehenbuehl & Koltun (NIPS 2011) as wrapped by ``pydensecrf``
(installed as ``pydensecrf2``): a Gaussian smoothness kernel plus an appearance (bilateral) kernel on the
RGB image. Its use on CAMs follows PSA (Ahn & Kwak, CVPR 2018) and MCTformer (Xu et al., CVPR 2022), whose
pseudo masks Yang et al., "Cross-domain Semantic Decoupling for Weakly-Supervised Semantic Segmentation"
(BMVC 2023) refine the same way:

* the label scores of an image are ``[bg, cam_1 .. cam_K]`` with a background score that is either PSA's
  ``bg = (1 - max_k cam_k) ** alpha`` (the default here, ``alpha = 16``, PSA's ``infer_aff.py`` default) or a
  constant ``t`` (a seed threshold as chosen by the seed sweep: IRN, Ahn et al., CVPR 2019; MCTformer's
  ``infer_aff.py --bg_thr``);
* the CRF takes these scores as a "softmax" (unary ``-log p``), 10 mean-field iterations, Gaussian kernel
  ``sxy = 3, compat = 3`` and bilateral kernel ``sxy = 80, srgb = 13, compat = 10``: PSA's ``crf_inference``,
  which MCTformer's fork of PSA keeps (IRN's ``crf_inference_label`` has the bilateral ``sxy = 50, srgb = 5``;
  pass those explicitly for IRN's CRF).

:func:`confident_regions` builds PSA's confident labels for training the affinity network: a CRF with a strong
background (low ``alpha``, PSA 4, MCTformer 1) gives the confident foreground, one with a weak background
(high ``alpha``, PSA 32, MCTformer 12) the confident background; everything else is 255 (unsure).

:func:`irn_confident_regions` builds IRN's confident labels for training its boundary network (IRN's
``step/cam_to_ir_label.py``): the CAMs are thresholded with a constant background score (``conf_fg = 0.30``
for the confident foreground, ``conf_bg = 0.05`` for the confident background), each hard label map is smoothed by
a label CRF (:func:`dense_crf_labels`: pydensecrf's ``unary_from_labels`` with ``gt_prob = 0.7``, 10 iterations,
Gaussian ``sxy = 3, compat = 3``, bilateral ``sxy = 50, srgb = 5, compat = 10``: IRN's ``crf_inference_label``), and
the two maps are combined by :func:`combine_irn_confident`.
"""
from typing import Optional

import numpy as np

__all__ = ['dense_crf', 'cam_label_scores', 'crf_refine_cam', 'confident_regions', 'dense_crf_labels',
           'combine_irn_confident', 'irn_confident_regions']


def _check_img(img: np.ndarray, where: str) -> np.ndarray:
    img = np.asarray(img)
    if img.ndim != 3 or img.shape[2] != 3:
        raise ValueError(f'{where}: img must be an (H, W, 3) RGB image, got shape {img.shape}')
    if img.dtype != np.uint8:
        raise ValueError(f'{where}: img must be uint8, got dtype {img.dtype}')
    return np.ascontiguousarray(img)


def _check_cam_keys(cam: np.ndarray, keys: np.ndarray, img_shape: tuple, where: str) -> tuple:
    cam = np.asarray(cam, dtype=np.float32)
    keys = np.asarray(keys).reshape(-1)
    if keys.size == 0:
        keys = keys.astype(np.int64)
    if cam.ndim != 3 or cam.shape[0] != keys.shape[0]:
        raise ValueError(f'{where}: cam must be (K, H, W) with K = len(keys) = {keys.shape[0]}, got shape '
                         f'{cam.shape}')
    if not np.issubdtype(keys.dtype, np.integer) or (keys.size and (keys.min() < 0 or keys.max() > 253)):
        raise ValueError(f'{where}: keys must be integers in [0, 253] (mask values keys + 1), got '
                         f'{keys.tolist()}')
    if cam.shape[1:] != tuple(img_shape[:2]):
        raise ValueError(f'{where}: cam size {cam.shape[1:]} differs from the image size {tuple(img_shape[:2])}')
    if not np.all(np.isfinite(cam)):
        raise ValueError(f'{where}: cam contains NaN or inf values')
    return cam, keys.astype(np.int64)


def dense_crf(img: np.ndarray,
              probs: np.ndarray,
              n_iters: int = 10,
              pos_xy_std: float = 3,
              pos_w: float = 3,
              bi_xy_std: float = 80,
              bi_rgb_std: float = 13,
              bi_w: float = 10) -> np.ndarray:
    """Fully connected CRF on label probabilities (PSA's ``crf_inference``, Ahn & Kwak, CVPR 2018; MCTformer's
    fork of PSA keeps it). The defaults are PSA's kernels.

    Args:
        img (np.ndarray): ``uint8 (H, W, 3)`` image (RGB; the kernel is isotropic in colour, so BGR gives the
            same result).
        probs (np.ndarray): ``(L, H, W)`` label scores in [0, 1] (need not sum to 1; the unary is
            ``-log(max(p, 1e-5))``, pydensecrf's ``unary_from_softmax``).
        n_iters (int): Mean-field iterations. Defaults to 10 (PSA, MCTformer, IRN).
        pos_xy_std (float): Spatial std of the smoothness kernel. Defaults to 3 (PSA, MCTformer, IRN).
        pos_w (float): Weight (Potts compatibility) of the smoothness kernel. Defaults to 3 (PSA, MCTformer, IRN).
        bi_xy_std (float): Spatial std of the appearance kernel. Defaults to 80 (PSA, MCTformer; IRN uses 50).
        bi_rgb_std (float): Colour std of the appearance kernel. Defaults to 13 (PSA, MCTformer; IRN uses 5).
        bi_w (float): Weight of the appearance kernel. Defaults to 10 (PSA, MCTformer, IRN).

    Returns:
        np.ndarray: ``float32 (L, H, W)`` marginals after inference (they sum to 1 over L).
    """
    import pydensecrf.densecrf as dcrf
    from pydensecrf.utils import unary_from_softmax

    img = _check_img(img, 'dense_crf')
    probs = np.asarray(probs, dtype=np.float32)
    if probs.ndim != 3 or probs.shape[1:] != img.shape[:2] or probs.shape[0] < 1:
        raise ValueError(f'dense_crf: probs must be (L, H, W) with (H, W) = {img.shape[:2]}, got shape '
                         f'{probs.shape}')
    if not np.all(np.isfinite(probs)):
        raise ValueError('dense_crf: probs contains NaN or inf values')
    n_labels, h, w = probs.shape
    crf = dcrf.DenseCRF2D(w, h, n_labels)
    crf.setUnaryEnergy(np.ascontiguousarray(unary_from_softmax(probs)))
    crf.addPairwiseGaussian(sxy=pos_xy_std, compat=pos_w)
    crf.addPairwiseBilateral(sxy=bi_xy_std, srgb=bi_rgb_std, rgbim=img, compat=bi_w)
    q = crf.inference(int(n_iters))
    return np.asarray(q, dtype=np.float32).reshape(n_labels, h, w)


def cam_label_scores(cam: np.ndarray, bg_threshold: Optional[float] = None, alpha: float = 16.0) -> np.ndarray:
    """Stacks a background score in front of the CAMs: ``[bg, cam_1 .. cam_K]``.

    Args:
        cam (np.ndarray): ``(K, H, W)`` CAMs in [0, 1]; K may be 0.
        bg_threshold (float, optional): Constant background score ``t`` (IRN's seed threshold). When None
            (default), PSA's ``bg = (1 - max_k cam_k) ** alpha`` is used.
        alpha (float): PSA's background power. Defaults to 16 (PSA ``infer_aff.py``).

    Returns:
        np.ndarray: ``float32 (K + 1, H, W)``.
    """
    cam = np.asarray(cam, dtype=np.float32)
    if cam.ndim != 3:
        raise ValueError(f'cam_label_scores: cam must be (K, H, W), got shape {cam.shape}')
    if bg_threshold is not None:
        bg = np.full((1, ) + cam.shape[1:], float(bg_threshold), dtype=np.float32)
    elif cam.shape[0] == 0:
        bg = np.ones((1, ) + cam.shape[1:], dtype=np.float32)
    else:
        if alpha <= 0:
            raise ValueError(f'cam_label_scores: alpha must be > 0, got {alpha}')
        bg = np.power(np.clip(1.0 - cam.max(axis=0, keepdims=True), 0.0, 1.0), alpha).astype(np.float32)
    return np.concatenate([bg, cam], axis=0)


def crf_refine_cam(img: np.ndarray,
                   cam: np.ndarray,
                   keys: np.ndarray,
                   bg_threshold: Optional[float] = None,
                   alpha: float = 16.0,
                   **crf_kwargs) -> np.ndarray:
    """CRF-refined mask of one image from its CAMs (PSA / MCTformer's CRF pseudo masks).

    Args:
        img (np.ndarray): ``uint8 (H, W, 3)`` RGB image.
        cam (np.ndarray): ``(K, H, W)`` CAMs in [0, 1] at the image size.
        keys (np.ndarray): ``[K]`` 0-based foreground classes of the maps (mask values ``keys + 1``).
        bg_threshold (float, optional): Constant background score; None (default) uses
            ``(1 - max cam) ** alpha``.
        alpha (float): Background power when ``bg_threshold`` is None. Defaults to 16.
        **crf_kwargs: Passed to :func:`dense_crf`.

    Returns:
        np.ndarray: ``uint8 (H, W)`` mask with values 0 (background) or ``keys + 1``.
    """
    img = _check_img(img, 'crf_refine_cam')
    cam, keys = _check_cam_keys(cam, keys, img.shape, 'crf_refine_cam')
    if cam.shape[0] == 0:
        return np.zeros(img.shape[:2], dtype=np.uint8)
    q = dense_crf(img, cam_label_scores(cam, bg_threshold, alpha), **crf_kwargs)
    values = np.concatenate([[0], keys + 1]).astype(np.uint8)
    return values[np.argmax(q, axis=0)]


def confident_regions(img: np.ndarray,
                      cam: np.ndarray,
                      keys: np.ndarray,
                      low_alpha: float = 4.0,
                      high_alpha: float = 32.0,
                      **crf_kwargs) -> np.ndarray:
    """PSA's confident label map for training the affinity network (Ahn & Kwak, CVPR 2018, Sec. 3.2).

    Two CRFs with the background ``(1 - max cam) ** alpha``: a low ``alpha`` makes the background strong, so
    what it still calls foreground is confident foreground (its class); a high ``alpha`` makes the background
    weak, so what it still calls background is confident background. The rest (background for the first CRF,
    foreground for the second) is unsure (255), as in PSA's ``train_aff.py`` label loading.

    Args:
        img (np.ndarray): ``uint8 (H, W, 3)`` RGB image.
        cam (np.ndarray): ``(K, H, W)`` CAMs in [0, 1].
        keys (np.ndarray): ``[K]`` 0-based foreground classes.
        low_alpha (float): Strong-background power. Defaults to 4 (PSA; MCTformer uses 1).
        high_alpha (float): Weak-background power. Defaults to 32 (PSA; MCTformer uses 12).
        **crf_kwargs: Passed to :func:`dense_crf`.

    Returns:
        np.ndarray: ``uint8 (H, W)`` labels: 0 confident background, ``keys + 1`` confident foreground, 255
        unsure.
    """
    if not low_alpha < high_alpha:
        raise ValueError(f'confident_regions: low_alpha ({low_alpha}) must be smaller than high_alpha '
                         f'({high_alpha})')
    fg_conf = crf_refine_cam(img, cam, keys, alpha=low_alpha, **crf_kwargs)
    bg_conf = crf_refine_cam(img, cam, keys, alpha=high_alpha, **crf_kwargs)
    label = fg_conf.copy()
    label[fg_conf == 0] = 255
    label[bg_conf == 0] = 0
    return label


def dense_crf_labels(img: np.ndarray,
                     labels: np.ndarray,
                     n_labels: int,
                     gt_prob: float = 0.7,
                     n_iters: int = 10,
                     pos_xy_std: float = 3,
                     pos_w: float = 3,
                     bi_xy_std: float = 50,
                     bi_rgb_std: float = 5,
                     bi_w: float = 10) -> np.ndarray:
    """Fully connected CRF on a hard label map (IRN's ``crf_inference_label``, Ahn et al., CVPR 2019).

    The unary is pydensecrf's ``unary_from_labels(labels, n_labels, gt_prob, zero_unsure=False)``: each pixel
    believes its label with probability ``gt_prob`` and each other label with ``(1 - gt_prob) / (n_labels - 1)``
    (every label value, 0 included, is a real label).

    Args:
        img (np.ndarray): ``uint8 (H, W, 3)`` image.
        labels (np.ndarray): ``(H, W)`` integer labels in ``[0, n_labels)``.
        n_labels (int): Number of labels (at least 2).
        gt_prob (float): Confidence of the given label, in (0, 1). Defaults to 0.7 (IRN).
        n_iters (int): Mean-field iterations. Defaults to 10 (IRN).
        pos_xy_std (float): Spatial std of the smoothness kernel. Defaults to 3 (IRN).
        pos_w (float): Weight of the smoothness kernel. Defaults to 3 (IRN).
        bi_xy_std (float): Spatial std of the appearance kernel. Defaults to 50 (IRN).
        bi_rgb_std (float): Colour std of the appearance kernel. Defaults to 5 (IRN's label CRF; PSA's
            ``crf_inference`` uses 13, see :func:`dense_crf`).
        bi_w (float): Weight of the appearance kernel. Defaults to 10 (IRN).

    Returns:
        np.ndarray: ``int64 (H, W)`` argmax of the marginals after inference (ties to the lower label).
    """
    import pydensecrf.densecrf as dcrf
    from pydensecrf.utils import unary_from_labels

    img = _check_img(img, 'dense_crf_labels')
    labels = np.asarray(labels)
    n_labels = int(n_labels)
    if n_labels < 2:
        raise ValueError(f'dense_crf_labels: n_labels must be >= 2, got {n_labels}')
    if not 0 < gt_prob < 1:
        raise ValueError(f'dense_crf_labels: gt_prob must be in (0, 1), got {gt_prob}')
    if labels.shape != img.shape[:2] or not np.issubdtype(labels.dtype, np.integer):
        raise ValueError(f'dense_crf_labels: labels must be an integer (H, W) map with (H, W) = {img.shape[:2]}, '
                         f'got {labels.dtype} {labels.shape}')
    if labels.size and (labels.min() < 0 or labels.max() >= n_labels):
        raise ValueError(f'dense_crf_labels: labels must lie in [0, {n_labels}), got [{labels.min()}, '
                         f'{labels.max()}]')
    h, w = labels.shape
    crf = dcrf.DenseCRF2D(w, h, n_labels)
    unary = unary_from_labels(labels.astype(np.int64), n_labels, gt_prob=gt_prob, zero_unsure=False)
    crf.setUnaryEnergy(np.ascontiguousarray(unary))
    crf.addPairwiseGaussian(sxy=pos_xy_std, compat=pos_w)
    crf.addPairwiseBilateral(sxy=bi_xy_std, srgb=bi_rgb_std, rgbim=img, compat=bi_w)
    q = crf.inference(int(n_iters))
    return np.argmax(np.asarray(q).reshape(n_labels, h, w), axis=0)


def combine_irn_confident(fg_conf: np.ndarray, bg_conf: np.ndarray, ignore_index: int = 255) -> np.ndarray:
    """IRN's combination of its two label maps into a confident label (``step/cam_to_ir_label.py``).

    ``fg_conf`` (made with the high background score) is kept where it says foreground; where it says
    background the pixel is background only if ``bg_conf`` (made with the low background score) says so too,
    otherwise unsure. Unlike PSA's combination (:func:`confident_regions`), ``bg_conf`` never overrides a
    foreground of ``fg_conf``.

    Args:
        fg_conf (np.ndarray): ``(H, W)`` mask values (0 background, ``c + 1`` foreground) of the high threshold.
        bg_conf (np.ndarray): ``(H, W)`` mask values of the low threshold.
        ignore_index (int): Value of unsure pixels. Defaults to 255.

    Returns:
        np.ndarray: ``uint8 (H, W)``: ``fg_conf`` where it is foreground, 0 where both are 0, else
        ``ignore_index``.
    """
    fg_conf, bg_conf = np.asarray(fg_conf), np.asarray(bg_conf)
    if fg_conf.shape != bg_conf.shape:
        raise ValueError(f'combine_irn_confident: fg_conf {fg_conf.shape} and bg_conf {bg_conf.shape} differ in '
                         'shape')
    label = fg_conf.astype(np.uint8)
    # both maps background (IRN: bg_conf + fg_conf == 0 on non-negative labels)
    label[fg_conf == 0] = ignore_index
    label[(fg_conf == 0) & (bg_conf == 0)] = 0
    return label


def irn_confident_regions(img: np.ndarray,
                          cam: np.ndarray,
                          keys: np.ndarray,
                          conf_fg: float = 0.30,
                          conf_bg: float = 0.05,
                          gt_prob: float = 0.7,
                          **crf_kwargs) -> np.ndarray:
    """IRN's confident label map for training its boundary network (Ahn et al., CVPR 2019, Sec. 3.3).

    For each background score ``t`` in (``conf_fg``, ``conf_bg``): the argmax over ``[t, cam_1 .. cam_K]``
    (ties to background, as ``np.argmax`` over the padded maps), smoothed by :func:`dense_crf_labels` with
    ``K + 1`` labels, mapped to mask values ``[0, keys + 1]``; then :func:`combine_irn_confident`.

    Args:
        img (np.ndarray): ``uint8 (H, W, 3)`` RGB image.
        cam (np.ndarray): ``(K, H, W)`` CAMs (IRN: max-normalised per class, in [0, 1]).
        keys (np.ndarray): ``[K]`` 0-based foreground classes.
        conf_fg (float): Background score of the confident foreground. Defaults to 0.30 (IRN's
            ``conf_fg_thres``).
        conf_bg (float): Background score of the confident background. Defaults to 0.05 (IRN's
            ``conf_bg_thres``).
        gt_prob (float): Label confidence of the CRF unary. Defaults to 0.7 (IRN).
        **crf_kwargs: Kernels of :func:`dense_crf_labels` (``n_iters``, ``bi_xy_std``, ...).

    Returns:
        np.ndarray: ``uint8 (H, W)`` labels: 0 confident background, ``keys + 1`` confident foreground, 255
        unsure. No map (K = 0): all background.
    """
    img = _check_img(img, 'irn_confident_regions')
    cam, keys = _check_cam_keys(cam, keys, img.shape, 'irn_confident_regions')
    if not conf_bg < conf_fg:
        raise ValueError(f'irn_confident_regions: conf_bg ({conf_bg}) must be smaller than conf_fg ({conf_fg})')
    num_maps = cam.shape[0]
    if num_maps == 0:
        return np.zeros(img.shape[:2], dtype=np.uint8)
    values = np.concatenate([[0], keys + 1]).astype(np.uint8)
    confs = []
    for threshold in (conf_fg, conf_bg):
        # label indices 0 (background) .. K, compared in float32 as IRN's argmax over the padded maps (a CAM
        # value equal to float32(threshold) is a tie, and ties go to the background)
        hard = np.argmax(cam_label_scores(cam, bg_threshold=threshold), axis=0)
        confs.append(values[dense_crf_labels(img, hard, num_maps + 1, gt_prob, **crf_kwargs)])
    return combine_irn_confident(*confs)
