"""Weight files: safetensors only, so loading never runs pickled code."""

import contextlib
import os
import stat
import tempfile
from collections.abc import Mapping
from typing import Any

import numpy as np
from safetensors import SafetensorError
from safetensors.numpy import load_file, save_file

from jaxlinear.interop._arrays import to_numpy

__all__ = ["load_safetensors", "save_safetensors"]

# What safetensors.numpy writes *and* reads back (it writes float8 too but cannot load it into numpy).
_DTYPES = (
    "bool",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "complex64",
)
_RESERVED_KEY = "__metadata__"  # the header's metadata entry: a tensor under this key is unreadable


def _check_path(path: Any) -> str:
    if not isinstance(path, str | os.PathLike):
        raise TypeError(f"`path` must be a str or os.PathLike, got {type(path).__name__} {path!r}.")
    path = os.fspath(path)
    if isinstance(path, bytes):
        path = os.fsdecode(path)
    if os.path.isdir(path):
        raise IsADirectoryError(f"`path` must be a file, got the directory {path!r}.")
    return path


def _is_array(value: Any) -> bool:
    """An array of numpy, jax or torch (anything with a shape, a dtype and an array protocol)."""
    if hasattr(value, "detach") and hasattr(value, "cpu"):  # a torch.Tensor (never imported)
        return True
    return hasattr(value, "shape") and hasattr(value, "dtype") and hasattr(value, "__array__")


def _to_saveable(key: Any, value: Any) -> np.ndarray:
    if not isinstance(key, str):
        raise TypeError(f"`state_dict` keys must be str, got {type(key).__name__} {key!r}.")
    if key == _RESERVED_KEY:
        raise ValueError(
            f"`state_dict` must not have the key {key!r}: safetensors reserves it for the file's "
            "metadata, so the file could not be read back."
        )
    if not _is_array(value):
        raise TypeError(
            f"`state_dict[{key!r}]` must be an array (numpy, jax or torch), got "
            f"{type(value).__name__} {value!r:.80}."
        )
    try:
        array = to_numpy(value)
    except TypeError:  # an object array
        array = np.empty(0, object)
    if array.dtype.name not in _DTYPES:
        raise TypeError(
            f"`state_dict[{key!r}]` must have one of the dtypes {_DTYPES}, got {array.dtype}."
        )
    # C order for safetensors' raw buffer; `copy(order="C")` keeps 0-d arrays 0-d, unlike
    # np.ascontiguousarray (which returns at least 1-d)
    return array if array.flags.c_contiguous else array.copy(order="C")


def _target(path: str) -> str:
    """The regular file to write: a symlink is followed to its target (the link stays a link); an
    existing path that is not a regular file (a device, a FIFO, a socket) is refused."""
    target = os.path.realpath(path) if os.path.islink(path) else path
    if os.path.exists(target) and not stat.S_ISREG(os.stat(target).st_mode):
        raise ValueError(
            f"`path` must be a regular file (or a new one), got {path!r}, which is a "
            f"{_kind(os.stat(target).st_mode)}: weights are only written to regular files."
        )
    if os.path.isdir(target):
        raise IsADirectoryError(f"`path` must be a file, got the directory {path!r}.")
    return target


def _kind(mode: int) -> str:
    for test, name in (
        (stat.S_ISCHR, "character device"),
        (stat.S_ISBLK, "block device"),
        (stat.S_ISFIFO, "FIFO"),
        (stat.S_ISSOCK, "socket"),
    ):
        if test(mode):
            return name
    return "special file"


def _new_file_mode() -> int:
    umask = os.umask(0)
    os.umask(umask)
    return 0o666 & ~umask


def save_safetensors(path: str | os.PathLike, state_dict: Mapping[str, Any]) -> None:
    """Write a ``state_dict`` (torch tensors, numpy or jax arrays) to a safetensors file.

    Shapes (0-d included) and dtypes (bfloat16 included) round-trip exactly through
    :func:`load_safetensors`.

    The file is written whole to a temporary file beside it, then renamed over it, so a failed
    write (a full disk) leaves the old file untouched. An existing file keeps its permission bits
    (a new one gets ``0o666`` less the umask, as ``open`` gives); a symlink is followed and its
    target replaced (the link stays). Only regular files are written: a device (``/dev/full``), a
    FIFO or a socket is refused, never replaced by a regular file.

    Args:
        path: the file to write (replaced if it exists; a symlink's target is replaced).
        state_dict: a mapping from str keys to arrays.

    Raises:
        TypeError: for a ``state_dict`` that is not a mapping, a key that is not a str, a value that
            is not an array or has a dtype safetensors cannot read back into numpy (strings,
            objects, float8), or a ``path`` that is not a str/PathLike.
        ValueError: for the key ``"__metadata__"`` (reserved by the format), or a ``path`` that
            exists and is not a regular file (a device, a FIFO, a socket).
        IsADirectoryError: if ``path`` is a directory.
        FileNotFoundError: if the directory of ``path`` does not exist.
        OSError: if the file cannot be written (a full disk, no permission); the message names
            ``path``.

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "w.safetensors")
        >>> save_safetensors(p, {"weight": np.ones((2, 3), np.float32), "step": np.array(7)})
        >>> {k: v.shape for k, v in load_safetensors(p).items()}
        {'step': (), 'weight': (2, 3)}
    """
    path = _check_path(path)
    if not isinstance(state_dict, Mapping):
        raise TypeError(
            f"`state_dict` must be a mapping of str to arrays, got {type(state_dict).__name__}."
        )
    arrays = {key: _to_saveable(key, value) for key, value in state_dict.items()}
    target = _target(path)
    parent = os.path.dirname(os.path.abspath(target))
    if not os.path.isdir(parent):
        raise FileNotFoundError(
            f"`path` must be in an existing directory, got {path!r} ({parent!r} does not exist)."
        )
    mode = stat.S_IMODE(os.stat(target).st_mode) if os.path.exists(target) else _new_file_mode()
    fd, tmp = tempfile.mkstemp(prefix=".tmp-", suffix=".safetensors", dir=parent)
    os.close(fd)
    try:
        try:
            save_file(arrays, tmp)
        except SafetensorError as e:  # a full disk, ...: an OSError that names the path
            raise OSError(f"`path` could not be written: {path!r}: {e}") from e
        os.chmod(tmp, mode)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.remove(tmp)
        raise


def load_safetensors(path: str | os.PathLike) -> dict[str, np.ndarray]:
    """Read a safetensors file into a ``state_dict`` of numpy arrays (keys unchanged).

    Args:
        path: a safetensors file.

    Returns:
        A dict from keys to numpy arrays (bfloat16 as ``ml_dtypes.bfloat16``).

    Raises:
        TypeError: for a ``path`` that is not a str/PathLike.
        IsADirectoryError: if ``path`` is a directory.
        FileNotFoundError: if ``path`` does not exist.
        ValueError: if the file is not a safetensors file numpy can read (the message names it), or
            not a regular file (a device, a FIFO).

    Example:
        >>> import tempfile, os
        >>> p = os.path.join(tempfile.mkdtemp(), "w.safetensors")
        >>> save_safetensors(p, {"bias": np.zeros(3, np.float32)})
        >>> load_safetensors(p)["bias"].tolist()
        [0.0, 0.0, 0.0]
    """
    path = _check_path(path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"`path` must be an existing file, got {path!r}.")
    if not stat.S_ISREG(os.stat(path).st_mode):  # reading a FIFO would block forever
        raise ValueError(
            f"`path` must be a regular file, got {path!r}, a {_kind(os.stat(path).st_mode)}."
        )
    try:
        return load_file(path)
    except (SafetensorError, AttributeError) as e:  # AttributeError: a dtype numpy lacks (float8)
        raise ValueError(
            f"`path` must be a safetensors file with numpy dtypes, got {path!r}: {e}"
        ) from e
