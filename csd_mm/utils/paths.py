"""Path checks that keep outputs where the user asked for them.

Output file names are built from image ids and config values. An id such as ``../../x`` or ``a/b`` (a split
or a label file of another layout, or a crafted one) would put a file outside the output folder, and a config
value such as ``out_dir='../../x'`` outside the work dir; both are refused here with the value named.
"""
import os.path as osp

__all__ = ['check_image_id', 'resolve_inside']


def check_image_id(img_id: str, source: str = 'the split') -> str:
    """Returns ``img_id`` when it is a plain file name, else raises naming it and where it came from.

    Args:
        img_id (str): An image id that will become part of an output file name (``<out_dir>/<img_id>.png``).
        source (str): Where the id comes from (a split file, a CAM folder), for the message.

    Raises:
        ValueError: The id is empty, ``.`` or ``..``, or holds a path separator or a NUL byte.
    """
    if not isinstance(img_id, str) or img_id in ('', '.', '..') or '/' in img_id or '\\' in img_id or \
            '\0' in img_id:
        raise ValueError(f'image id {img_id!r} from {source} is not a plain file name (no "/", "\\\\", "..", '
                         'empty or NUL): output files named after it could land outside the output folder')
    return img_id


def resolve_inside(base: str, path: str, what: str) -> str:
    """Joins a relative ``path`` (a config value) to ``base`` and refuses it when it leaves ``base``.

    Args:
        base (str): The folder the user named (e.g. the runner's ``work_dir``).
        path (str): A relative path from a config.
        what (str): The config key, for the message (e.g. ``'CAMGenerationHook out_dir'``).

    Returns:
        str: ``base/path``, normalised.

    Raises:
        ValueError: ``path`` is absolute or climbs out of ``base`` with ``..``.
    """
    if osp.isabs(path):
        raise ValueError(f'{what}={path!r} is an absolute path; config values may only name folders inside the '
                         f'work dir {base} (give a relative path, or the folder on the command line where the tool '
                         'offers an option)')
    joined = osp.normpath(osp.join(base, path))
    base_norm = osp.normpath(base)
    if osp.commonpath([osp.abspath(joined), osp.abspath(base_norm)]) != osp.abspath(base_norm):
        raise ValueError(f'{what}={path!r} leaves the work dir {base}; config values may only name folders '
                         'inside it')
    return joined
