"""Folders a run writes to (the lake): checked before a stage writes, failures said in one sentence.

A full disk, a read-only mount or a folder without write permission shows up deep inside
pyarrow, Spark (a Java IOException) or Python's own file calls; `writes_to` turns each into a
`StorageError` that names the folder, the cause and what to do.
"""

from __future__ import annotations

import errno
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

#: causes, by errno and by the text a Java or Hadoop error carries
_CAUSES = {
    errno.ENOSPC: "no space left on the device",
    errno.EDQUOT: "the disk quota is used up",
    errno.EFBIG: "a file grew beyond the size allowed",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.EROFS: "the file system is read-only",
    errno.ENOTDIR: "a file stands where a folder should be",
    errno.EEXIST: "a file stands where a folder should be",
}
_JAVA_CAUSES = {
    "No space left on device": _CAUSES[errno.ENOSPC],
    "Disk quota exceeded": _CAUSES[errno.EDQUOT],
    "Read-only file system": _CAUSES[errno.EROFS],
    "Permission denied": _CAUSES[errno.EACCES],
    "Mkdirs failed to create": _CAUSES[errno.EACCES],
    "Not a directory": _CAUSES[errno.ENOTDIR],
}
PROBE_BYTES = 1 << 20


class StorageError(RuntimeError):
    """A folder of the run cannot be written; the message is one sentence."""


def _sentence(folder: Path, cause: str) -> str:
    return (f"The folder {folder} cannot be written ({cause}); free space on its disk or make it "
            "writable (PROMO_WORK_DIR sets where the work folder is), then rerun.")


def check_writable(folder: Path) -> None:
    """Create `folder` and write, flush and remove a 1 MiB probe file in it: a folder that cannot
    be written, or a disk without that much room, is refused before a stage starts writing."""
    probe = folder / f".probe-{os.getpid()}"
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with probe.open("wb") as out:
            out.write(b"\0" * PROBE_BYTES)
            out.flush()
            os.fsync(out.fileno())
    except OSError as error:
        raise StorageError(_sentence(folder, _CAUSES.get(error.errno, error.strerror or
                                                         type(error).__name__))) from None
    finally:
        try:
            probe.unlink(missing_ok=True)
        except OSError:
            pass


def storage_cause(error: BaseException) -> str | None:
    """The storage cause of an error (an OSError, or a Java/Hadoop error's text), else None."""
    seen = error
    while seen is not None:
        if isinstance(seen, OSError) and seen.errno in _CAUSES:
            return _CAUSES[seen.errno]
        seen = seen.__cause__ or seen.__context__
    text = str(error)
    return next((cause for marker, cause in _JAVA_CAUSES.items() if marker in text), None)


@contextmanager
def writes_to(folder: Path) -> Iterator[None]:
    """Check that `folder` can be written, then run the block; a storage failure inside it (a
    disk that fills up while Spark or pyarrow writes) becomes a StorageError naming `folder`."""
    check_writable(folder)
    try:
        yield
    except StorageError:
        raise
    except Exception as error:
        cause = storage_cause(error)
        if cause is None:
            raise
        raise StorageError(_sentence(folder, cause)) from error
