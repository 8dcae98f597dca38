"""Files only inside allowed folders, named literally: the file driver's confinement.

A path is first checked by its text (absolute, no ``..``, under one of the
allowed folders); that check needs no I/O, so the API can refuse a datasource
up front.  Then every use walks the path again from an open descriptor of the
allowed folder, one component at a time with ``openat`` (``dir_fd``) and
``O_NOFOLLOW``: a folder on the way that is (or has just become) a symbolic
link is refused, never followed, so what is checked is what is opened, and a
race that swaps a folder for a link between the check and the use loses.  The
file itself must be a regular file with one name (a hard link is another name
for a file that may live anywhere on the file system).

The allowed folders themselves are trusted: root names them in the service's
configuration, and they are opened as named.
"""

from __future__ import annotations

import errno
import os
import stat
from collections.abc import Iterator
from contextlib import contextmanager

OPTION = "[drivers] file_allowed_dirs"

_DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


class Refused(Exception):
    """The path is not what it must be (a link, a FIFO, ...); the message is for people."""


class Outside(Refused):
    """The path is not inside an allowed folder (by its text)."""


class AllowedDirs:
    """The folders a file driver may use, and the walk that keeps it inside them."""

    def __init__(self, dirs: tuple[str, ...] | list[str]):
        if not dirs:
            raise ValueError("no allowed folder: the file driver would have none to use")
        self.dirs = tuple(dirs)

    def describe(self) -> str:
        return ", ".join(self.dirs)

    # -- the check by text (no I/O) -----------------------------------------

    def locate(self, path: str) -> tuple[str, list[str]]:
        """The allowed folder ``path`` is in and the components below it; Refused if none."""
        if not isinstance(path, str) or not path.startswith("/"):
            raise Outside(f"{path!r} is not an absolute path")
        parts = [p for p in path.split("/") if p not in ("", ".")]
        if ".." in parts:
            raise Outside(f"{path} holds '..'; name the file by its own path")
        for base in sorted(self.dirs, key=len, reverse=True):
            prefix = [p for p in base.split("/") if p]
            if parts[:len(prefix)] == prefix:
                return base, parts[len(prefix):]
        raise Outside(f"{path} is outside the folders the file driver may use "
                      f"({OPTION} = {self.describe()})")

    # -- the walk ------------------------------------------------------------

    @contextmanager
    def entries(self, path: str) -> Iterator[tuple[int, list[str], bool]]:
        """What to read for ``path``: an open folder, the names to open in it, and
        whether ``path`` is a folder (then every entry of it, sorted; else its own
        name, opened later with ``open_in``)."""
        base, parts = self.locate(path)
        parent = self._walk(base, parts[:-1], path)
        try:
            if not parts:
                yield parent, sorted(os.listdir(parent)), True
                return
            name = parts[-1]
            try:
                info = os.stat(name, dir_fd=parent, follow_symlinks=False)
            except OSError as exc:
                raise Refused(_why(exc, path, path, "a file")) from None
            if not stat.S_ISDIR(info.st_mode):
                yield parent, [name], False
                return
            try:
                fd = os.open(name, _DIR_FLAGS, dir_fd=parent)
            except OSError as exc:
                if exc.errno == errno.ENOTDIR and _is_link(name, parent):
                    exc = OSError(errno.ELOOP, "a symbolic link")  # swapped since the stat
                raise Refused(_why(exc, path, path, "a folder")) from None
            try:
                yield fd, sorted(os.listdir(fd)), True
            finally:
                os.close(fd)
        finally:
            os.close(parent)

    def check_folder_of(self, path: str) -> None:
        """Refused unless the folder that holds ``path`` can be reached inside."""
        base, parts = self.locate(path)
        if not parts:
            raise Refused(f"{path} is an allowed folder itself, not a file in it")
        os.close(self._walk(base, parts[:-1], path))

    def open_file(self, path: str, flags: int, mode: int = 0o640) -> int:
        """``path`` opened with ``flags`` (plus O_NOFOLLOW, O_NONBLOCK, O_CLOEXEC),
        checked on the open descriptor: a regular file with one name."""
        base, parts = self.locate(path)
        if not parts:
            raise Refused(f"{path} is an allowed folder itself, not a file in it")
        parent = self._walk(base, parts[:-1], path)
        try:
            return open_in(parent, parts[-1], flags, mode, path)
        finally:
            os.close(parent)

    def _walk(self, base: str, parts: list[str], path: str) -> int:
        try:
            fd = os.open(base, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError as exc:
            raise Refused(f"cannot open the allowed folder {base} ({exc.strerror}); "
                          f"create it or change {OPTION}") from None
        done = base
        try:
            for part in parts:
                try:
                    nxt = os.open(part, _DIR_FLAGS, dir_fd=fd)
                except OSError as exc:
                    if exc.errno == errno.ENOTDIR and _is_link(part, fd):
                        exc = OSError(errno.ELOOP, "a symbolic link")  # Linux says ENOTDIR
                    raise Refused(_why(exc, os.path.join(done, part), path,
                                       "a folder")) from None
                os.close(fd)
                fd, done = nxt, os.path.join(done, part)
        except BaseException:
            os.close(fd)
            raise
        return fd


def open_in(dir_fd: int, name: str, flags: int, mode: int, shown: str) -> int:
    """``name`` in the open folder ``dir_fd``, literally: no link, only a regular
    file with one name, never blocking on a FIFO. ``shown`` names it in errors."""
    # Looked at first, so that a device is refused without being opened (opening
    # some has effects); the descriptor is checked again below, which is what counts.
    try:
        seen = os.stat(name, dir_fd=dir_fd, follow_symlinks=False)
    except FileNotFoundError:
        seen = None
    except OSError as exc:
        raise Refused(_why(exc, shown, shown, "a file")) from None
    if seen is not None and stat.S_ISLNK(seen.st_mode):
        raise Refused(f"{shown} is a symbolic link; links are not followed (name a file "
                      "itself)")
    if seen is not None and not stat.S_ISREG(seen.st_mode):
        raise Refused(f"{shown} is not a regular file ({_kind(seen.st_mode)})")
    try:
        fd = os.open(name, flags | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC, mode,
                     dir_fd=dir_fd)
    except OSError as exc:
        raise Refused(_why(exc, shown, shown, "a file")) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise Refused(f"{shown} is not a regular file ({_kind(info.st_mode)})")
        if info.st_nlink > 1:
            raise Refused(f"{shown} has {info.st_nlink} names (a hard link): name a "
                          "file of its own")
    except BaseException:
        os.close(fd)
        raise
    return fd


def _is_link(name: str, dir_fd: int) -> bool:
    try:
        return stat.S_ISLNK(os.stat(name, dir_fd=dir_fd, follow_symlinks=False).st_mode)
    except OSError:
        return False


def _why(exc: OSError, where: str, path: str, what: str) -> str:
    if exc.errno in (errno.ELOOP, errno.EMLINK):
        return f"{where} is a symbolic link; links are not followed (name {what} itself)"
    if exc.errno == errno.ENOTDIR:
        return f"{where} is not a folder (on the way to {path})"
    if exc.errno == errno.ENXIO:  # a FIFO opened for writing without a reader
        return f"{where} is not a regular file (a FIFO or a socket)"
    return f"cannot open {where}: {exc.strerror}"


def _kind(mode: int) -> str:
    for test, name in ((stat.S_ISDIR, "a folder"), (stat.S_ISFIFO, "a FIFO"),
                       (stat.S_ISCHR, "a character device"), (stat.S_ISBLK, "a block device"),
                       (stat.S_ISSOCK, "a socket")):
        if test(mode):
            return name
    return "not a file"
