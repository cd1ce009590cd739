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
"""
from typing import Optional

import numpy as np

__all__ = ['dense_crf', 'cam_label_scores', 'crf_refine_cam', 'confident_regions']


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
