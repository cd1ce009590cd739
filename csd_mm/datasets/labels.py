"""Image-level label I/O for weakly-supervised semantic segmentation.

Image-level labels are multi-hot ``float32[C]`` vectors over the C foreground classes (background is not
part of the vector; foreground class ``c`` is mask value ``c + 1``). The WSSS community (IRN, Ahn et al.
CVPR 2019; MCTformer, Xu et al. CVPR 2022; CSD, Yang et al. BMVC 2023) ships them as ``cls_labels.npy``: a
dict ``image id -> float32[C]`` saved with ``np.save``. That file is a pickle, so it is read here with a
restricted unpickler that only rebuilds numpy arrays, dtypes and scalars: a label file can never run code.

Everything here is a pure function; no registry, no state.
"""
import builtins
import io
import os
import os.path as osp
import pickle
import xml.etree.ElementTree as ET
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence

import numpy as np
import numpy.lib.format as npformat

from csd_mm.utils.fileio import atomic_write_bytes, read_png

__all__ = [
    'VOC_CLASSES', 'load_cls_labels', 'save_cls_labels', 'labels_from_xml', 'labels_from_masks',
    'labels_for_split', 'read_split', 'LabelFileError'
]

#: The 20 PASCAL VOC foreground classes in the standard order of ``cls_labels.npy``.
VOC_CLASSES = ('aeroplane', 'bicycle', 'bird', 'boat', 'bottle', 'bus', 'car', 'cat', 'chair', 'cow',
               'diningtable', 'dog', 'horse', 'motorbike', 'person', 'pottedplant', 'sheep', 'sofa', 'train',
               'tvmonitor')


class LabelFileError(ValueError):
    """A label, split or annotation file is missing, corrupt or inconsistent (the message names it)."""


def _latin1_encode(obj: str, encoding: str = 'utf-8', errors: str = 'strict') -> bytes:
    # Protocol-2 pickles (numpy 1.x, Python 2 era files such as VOC's cls_labels.npy) store bytes as
    # ``_codecs.encode(str, 'latin1')``. Only that use is admitted.
    if not isinstance(obj, str) or encoding.lower().replace('-', '').replace('_', '') not in (
            'latin1', 'iso88591'):
        raise pickle.UnpicklingError(f'_codecs.encode with encoding {encoding!r} is not allowed')
    return obj.encode('latin1', errors)


def _safe_globals() -> Dict[tuple, Any]:
    reconstruct = np.ndarray((0, ), np.float32).__reduce__()[0]  # numpy(._core|.core).multiarray._reconstruct
    scalar = np.float32(0).__reduce__()[0]  # numpy(._core|.core).multiarray.scalar
    allowed = {}
    for mod in ('numpy.core.multiarray', 'numpy._core.multiarray'):
        allowed[(mod, '_reconstruct')] = reconstruct
        allowed[(mod, 'scalar')] = scalar
    allowed[('numpy', 'ndarray')] = np.ndarray
    allowed[('numpy', 'dtype')] = np.dtype
    allowed[('_codecs', 'encode')] = _latin1_encode
    for name in ('dict', 'list', 'tuple', 'set', 'frozenset', 'int', 'float', 'complex', 'str', 'bytes',
                 'bool'):
        allowed[('builtins', name)] = getattr(builtins, name)
        allowed[('__builtin__', name)] = allowed[('builtins', name)]
    return allowed


class _RestrictedUnpickler(pickle.Unpickler):
    """Unpickler that resolves only numpy array / dtype / scalar reconstruction and plain builtins."""

    _ALLOWED = None

    def find_class(self, module: str, name: str) -> Any:
        if _RestrictedUnpickler._ALLOWED is None:
            _RestrictedUnpickler._ALLOWED = _safe_globals()
        try:
            return _RestrictedUnpickler._ALLOWED[(module, name)]
        except KeyError:
            raise pickle.UnpicklingError(
                f'global {module}.{name} is not allowed in a label file') from None


def _restricted_load_npy_object(path: str) -> Any:
    with open(path, 'rb') as f:
        version = npformat.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = npformat.read_array_header_1_0(f)
        elif version == (2, 0):
            shape, _, dtype = npformat.read_array_header_2_0(f)
        else:
            raise ValueError(f'unsupported .npy format version {version}')
        if dtype != np.dtype(object) or shape != ():
            raise ValueError(f'expected a pickled dict (0-d object array), got dtype {dtype} shape {shape}')
        arr = _RestrictedUnpickler(f, encoding='latin1').load()
    if isinstance(arr, np.ndarray) and arr.dtype == object and arr.shape == ():
        return arr.item()
    return arr


def _as_label_vector(value: Any, key: Any, path: str) -> np.ndarray:
    vec = np.asarray(value)
    if vec.ndim != 1 or vec.dtype == object or not (np.issubdtype(vec.dtype, np.number)
                                                    or vec.dtype == np.bool_):
        raise LabelFileError(f'{path}: label of {key!r} is not a 1-D numeric vector '
                             f'(dtype {vec.dtype}, shape {vec.shape})')
    return vec.astype(np.float32)


def load_cls_labels(path: str) -> Dict[str, np.ndarray]:
    """Loads a ``cls_labels.npy`` / ``.npz`` file (image id -> multi-hot ``float32[C]``) without running code.

    A ``.npz`` file (this repository's compact form, ``voc12/cls_labels.npz``: arrays ``ids`` (str) and
    ``labels`` (``uint8 [N, C]``), loaded with ``allow_pickle=False``) is read directly. Otherwise the file is
    the one shipped with IRN / MCTformer (a dict saved with ``np.save``; IRN's integer keys are turned into
    VOC ids, ``2007000032`` -> ``2007_000032``). The ``.npy`` header is
    read with :mod:`numpy.lib.format` and the payload with an unpickler that admits only numpy array,
    dtype and scalar reconstruction and plain builtins; anything else is rejected.

    Args:
        path (str): Path of the ``.npy`` or ``.npz`` file.

    Returns:
        dict[str, np.ndarray]: Image id -> ``float32[C]`` label vector.

    Raises:
        LabelFileError: The file is missing, is not a pickled dict of 1-D numeric vectors, holds
            disallowed pickled objects, or its vectors have different lengths.
    """
    path = str(path)
    if not osp.isfile(path):
        raise LabelFileError(f'label file not found: {path}')
    if path.endswith('.npz'):
        return _load_npz_labels(path)
    try:
        obj = _restricted_load_npy_object(path)
    except (ValueError, pickle.UnpicklingError, EOFError, TypeError, AttributeError, IndexError,
            KeyError, UnicodeDecodeError, OSError) as e:
        raise LabelFileError(f'{path} is not a valid cls_labels .npy file (a dict saved with np.save): '
                             f'{type(e).__name__}: {e}') from e
    if not isinstance(obj, dict):
        raise LabelFileError(f'{path}: expected a dict image id -> label vector, got {type(obj).__name__}')
    labels: Dict[str, np.ndarray] = {}
    length: Optional[int] = None
    for key, value in obj.items():
        vec = _as_label_vector(value, key, path)
        if length is None:
            length = len(vec)
        elif len(vec) != length:
            raise LabelFileError(f'{path}: label of {key!r} has {len(vec)} entries, others have {length}')
        labels[_image_id(key)] = vec
    return labels


def _image_id(key: Any) -> str:
    """A label file's key as an image id. IRN's ``cls_labels.npy`` keys VOC ids as integers
    (``2007_000032`` -> ``2007000032``: its split files are read with ``np.loadtxt(dtype=np.int32)``); they are
    turned back as IRN's ``decode_int_filename`` does (``'2007' + '_' + '000032'``). Text keys (PSA's,
    MCTformer's, this repository's) are kept."""
    if isinstance(key, (int, np.integer)) and not isinstance(key, (bool, np.bool_)):
        digits = str(int(key))
        if len(digits) != 10:
            raise LabelFileError(f'label key {key} is an integer but not an IRN-style VOC id (10 digits, '
                                 '2007000032 for 2007_000032); store the image ids as text')
        return f'{digits[:4]}_{digits[4:]}'
    return str(key)


def _load_npz_labels(path: str) -> Dict[str, np.ndarray]:
    """The ``.npz`` form: ``ids`` ``[N]`` and ``labels`` ``[N, C]`` (no pickle)."""
    try:
        with np.load(path, allow_pickle=False) as data:
            ids, vectors = data['ids'], data['labels']
    except (ValueError, KeyError, OSError, EOFError) as e:
        raise LabelFileError(f'{path} is not a valid cls_labels .npz file (arrays ids [N] and labels [N, C]): '
                             f'{type(e).__name__}: {e}') from e
    if ids.ndim != 1 or vectors.ndim != 2 or len(ids) != len(vectors):
        raise LabelFileError(f'{path}: expected ids [N] and labels [N, C], got shapes {ids.shape} and '
                             f'{vectors.shape}')
    return {str(k): _as_label_vector(v, str(k), path) for k, v in zip(ids.tolist(), vectors)}


def save_cls_labels(path: str, labels: Mapping[str, Any]) -> None:
    """Saves image-level labels as the community's ``cls_labels.npy`` (``np.save`` of a dict), atomically.

    A path ending in ``.npz`` gets the compact, pickle-free form instead (``ids`` and ``uint8`` ``labels``).

    Args:
        path (str): Destination path (written exactly as given; ``.npy`` is not appended).
        labels (Mapping[str, array-like]): Image id -> multi-hot vector; stored as ``float32[C]``.

    Raises:
        ValueError: The vectors are not 1-D or have different lengths.
    """
    out: Dict[str, np.ndarray] = {}
    length = None
    for key, value in labels.items():
        vec = _as_label_vector(value, key, str(path))
        if length is None:
            length = len(vec)
        elif len(vec) != length:
            raise ValueError(f'cannot save {path}: label of {key!r} has {len(vec)} entries, '
                             f'others have {length}')
        out[str(key)] = vec
    buf = io.BytesIO()
    if str(path).endswith('.npz'):  # compact, pickle-free form
        np.savez_compressed(buf, ids=np.array(list(out), dtype=str),
                            labels=np.stack(list(out.values())).astype(np.uint8) if out else np.zeros((0, 0), np.uint8))
    else:
        np.save(buf, np.array(out, dtype=object), allow_pickle=True)
    atomic_write_bytes(str(path), buf.getvalue())


def read_split(path: str) -> List[str]:
    """Reads a split file: one image per line (blank lines are skipped).

    A line is an image id (``2007_000032``) or, in the older list format of the WSSS repositories, image and
    mask paths (``/JPEGImages/2007_000032.jpg /SegmentationClassAug/2007_000032.png``): the first token's file
    stem is the id.

    Args:
        path (str): Path of the split file (e.g. ``ImageSets/Segmentation/train_aug.txt``).

    Returns:
        list[str]: The ids in file order.

    Raises:
        LabelFileError: The file is missing or lists no image.
    """
    path = str(path)
    if not osp.isfile(path):
        raise LabelFileError(f'split file not found: {path}')
    with open(path, encoding='utf-8') as f:
        ids = [osp.splitext(osp.basename(line.split()[0]))[0] for line in f if line.strip()]
    if not ids:
        raise LabelFileError(f'split file {path} is empty')
    return ids


def labels_from_xml(ann_dir: str, ids: Iterable[str], classes: Sequence[str]) -> Dict[str, np.ndarray]:
    """Builds image-level labels from PASCAL VOC ``Annotations/<id>.xml`` files.

    Every ``<object><name>`` counts, ``difficult`` ones included, as in the community's ``cls_labels.npy``.

    Args:
        ann_dir (str): Folder of the XML files.
        ids (Iterable[str]): Image ids.
        classes (Sequence[str]): The C foreground class names (no background), in label-vector order.

    Returns:
        dict[str, np.ndarray]: Image id -> ``float32[C]``.

    Raises:
        LabelFileError: An XML file is missing, malformed, or names a class not in ``classes``.
    """
    index = {name: i for i, name in enumerate(classes)}
    labels = {}
    for img_id in ids:
        path = osp.join(ann_dir, img_id + '.xml')
        if not osp.isfile(path):
            raise LabelFileError(f'annotation file not found: {path}')
        try:
            root = ET.parse(path).getroot()
        except ET.ParseError as e:
            raise LabelFileError(f'{path} is not valid XML: {e}') from e
        vec = np.zeros(len(classes), dtype=np.float32)
        for obj in root.iter('object'):
            name_el = obj.find('name')
            name = name_el.text.strip() if name_el is not None and name_el.text else ''
            if name not in index:
                raise LabelFileError(f'{path}: object class {name!r} is not one of {list(classes)}')
            vec[index[name]] = 1.0
        labels[img_id] = vec
    return labels


def _read_mask(path: str) -> np.ndarray:
    try:
        return read_png(path)
    except (OSError, ValueError) as e:
        raise LabelFileError(str(e)) from e


def labels_from_masks(mask_dir: str,
                      ids: Iterable[str],
                      num_classes: int,
                      ignore_index: int = 255,
                      suffix: str = '.png') -> Dict[str, np.ndarray]:
    """Builds image-level labels from segmentation masks: class ``c`` is present iff value ``c + 1`` is.

    Args:
        mask_dir (str): Folder of the single-channel index PNGs (e.g. ``SegmentationClassAug``).
        ids (Iterable[str]): Image ids.
        num_classes (int): C, the number of foreground classes.
        ignore_index (int): Mask value to ignore. Defaults to 255.
        suffix (str): Mask file suffix. Defaults to ``'.png'``.

    Returns:
        dict[str, np.ndarray]: Image id -> ``float32[C]``.

    Raises:
        LabelFileError: A mask is missing, unreadable, or holds values outside ``0..C`` and ``ignore_index``.
    """
    labels = {}
    for img_id in ids:
        path = osp.join(mask_dir, img_id + suffix)
        if not osp.isfile(path):
            raise LabelFileError(f'mask file not found: {path}')
        values = np.unique(_read_mask(path))
        values = values[values != ignore_index]
        bad = values[(values < 0) | (values > num_classes)]
        if bad.size:
            raise LabelFileError(f'mask {path} holds values {bad.tolist()} outside 0..{num_classes} '
                                 f'and ignore index {ignore_index}')
        vec = np.zeros(num_classes, dtype=np.float32)
        fg = values[values > 0].astype(np.int64) - 1
        vec[fg] = 1.0
        labels[img_id] = vec
    return labels


def labels_for_split(labels: Mapping[str, np.ndarray],
                     ids: Sequence[str],
                     num_classes: int,
                     label_file: str = '?') -> np.ndarray:
    """Stacks the label vectors of a split, in split order.

    Args:
        labels (Mapping[str, np.ndarray]): Image id -> label vector (e.g. from :func:`load_cls_labels`).
        ids (Sequence[str]): The split's image ids.
        num_classes (int): Expected vector length C.
        label_file (str): Name of the label source, used in error messages.

    Returns:
        np.ndarray: ``float32 [N, C]``.

    Raises:
        LabelFileError: A split id has no label, or a vector does not have C entries.
    """
    out = np.zeros((len(ids), num_classes), dtype=np.float32)
    missing = [i for i in ids if i not in labels]
    if missing:
        shown = ', '.join(missing[:5]) + (f' ... ({len(missing)} in all)' if len(missing) > 5 else '')
        raise LabelFileError(f'{label_file}: no label for split id(s) {shown}')
    for row, img_id in enumerate(ids):
        vec = np.asarray(labels[img_id], dtype=np.float32).reshape(-1)
        if vec.shape[0] != num_classes:
            raise LabelFileError(f'{label_file}: label of {img_id!r} has {vec.shape[0]} entries, expected '
                                 f'{num_classes} (one per foreground class)')
        out[row] = vec
    return out
