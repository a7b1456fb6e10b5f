"""Limits checked before work or allocation (SPEC §3): tensor sizes, program size, files.

Every check raises a ``GradcliError`` of kind ``"limit"`` (exit 2) whose message says what was
asked for, how much memory it would take and how to change the limit.  Standard library only:
the checks run before numpy is asked to allocate anything.
"""

from __future__ import annotations

import errno
import os
import stat

from .errors import GradcliError

#: the default element limit: 2^27 numbers, 1 GiB of float64
DEFAULT_MAX_ELEMENTS = 2**27
#: the default program size limit (bytes); ``GRADCLI_MAX_PROGRAM_SIZE`` changes it
DEFAULT_MAX_PROGRAM_SIZE = 16 * 2**20
#: ``diff``: the most derivatives taken in a row, and the most graph nodes the last one may have
MAX_ORDER = 64
MAX_DIFF_NODES = 50_000

_CHUNK = 1 << 16
_max_elements: int | None = None


def _positive(text, where) -> int:
    try:
        value = int(str(text).strip().replace("_", ""))
    except ValueError:
        value = 0
    if value < 1:
        raise GradcliError("option", f"{where}: expected a positive whole number, got {str(text)[:40]!r}")
    return value


def set_max_elements(value=None) -> None:
    """Set the element limit for this command (None: ``GRADCLI_MAX_ELEMENTS`` or the default)."""
    global _max_elements
    _max_elements = None if value is None else _positive(value, "--max-elements")


def max_elements() -> int:
    if _max_elements is not None:
        return _max_elements
    env = os.environ.get("GRADCLI_MAX_ELEMENTS")
    if env:
        return _positive(env, "GRADCLI_MAX_ELEMENTS")
    return DEFAULT_MAX_ELEMENTS


def size(count: float, itemsize: int = 8) -> str:
    """``count`` numbers of ``itemsize`` bytes, for people: ``7.5 GiB``."""
    amount = float(count) * itemsize
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB", "PiB"):
        if amount < 1024 or unit == "PiB":
            return (
                f"{amount:.0f} {unit}"
                if unit == "bytes"
                else f"{amount:.1f} {unit}"
                if amount < 1e4
                else f"{amount:.3g} {unit}"
            )
        amount /= 1024
    return f"{amount:.1f} PiB"  # pragma: no cover - the loop returns


def _count(count) -> str:
    return f"{count:,}" if count < 10**15 else f"{float(count):.3g}"


def check_elements(count, what: str, hint: str = "", itemsize: int = 8) -> None:
    """Refuse ``what`` when it needs more than the element limit (one tensor of ``count`` numbers)."""
    limit = max_elements()
    if count > limit:
        advice = hint or "use smaller sizes"
        raise GradcliError(
            "limit",
            f"{what} would hold {_count(count)} numbers ({size(count, itemsize)}), over "
            f"the limit of {limit:,} (--max-elements or GRADCLI_MAX_ELEMENTS): {advice}",
        )


def numel(shape) -> int:
    n = 1
    for s in shape:
        n *= int(s)
    return n


def check_shape(shape, what: str, itemsize: int = 8) -> None:
    check_elements(numel(shape), f"{what} of shape {tuple(int(s) for s in shape)}", itemsize=itemsize)


# -- constructors ----------------------------------------------------------------------------


def _size_of(value):
    """A plain number as a size (clamped: NaN and negatives count 0, huge values stay huge); None
    for anything else."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if value != value or value <= 0:
        return 0
    return int(min(value, 1e300))


def constructor_elements(func: str, args, kwargs) -> int | None:
    """How many numbers ``func(*args, **kwargs)`` would make (None when the arguments are not plain
    numbers: the constructor then reports them itself)."""
    if func in ("zeros", "ones", "rand", "randn"):
        sizes = list(args[0]) if len(args) == 1 and isinstance(args[0], (list, tuple)) else list(args)
        sizes = [_size_of(s) for s in sizes]
        return None if None in sizes else numel(sizes)
    if func == "eye":
        n = _size_of(args[0]) if args else None
        m = _size_of(args[1]) if len(args) > 1 else _size_of(kwargs["m"]) if "m" in kwargs else n
        return None if n is None or m is None else n * m
    if func == "arange":
        numbers = [a if isinstance(a, (int, float)) and not isinstance(a, bool) else None for a in args[:3]]
        if not numbers or None in numbers or any(abs(v) == float("inf") or v != v for v in numbers):
            return None
        start, end, step = (0, numbers[0], 1) if len(numbers) == 1 else (numbers + [1])[:3]
        return _size_of((end - start) / step) if step else None
    if func == "linspace":
        return _size_of(args[2]) if len(args) > 2 else _size_of(kwargs.get("steps"))
    return None


def check_constructor(func: str, args, kwargs) -> None:
    count = constructor_elements(func, args, kwargs)
    if count is not None:
        check_elements(count, f"{func}(...)", hint="use smaller sizes")


# -- graphs (Jacobian, Hessian, check) ---------------------------------------------------------


def largest_tensor(output) -> int:
    """The most numbers any tensor of ``output``'s graph holds (walked iteratively)."""
    largest = numel(getattr(output, "shape", ()))
    root = getattr(output, "grad_fn", None)
    stack, seen = ([root] if root is not None else []), set()
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        shapes = getattr(node, "input_shapes", None)
        try:
            for shape in (shapes() if shapes is not None else ()) or ():
                largest = max(largest, numel(shape or ()))
        except Exception:  # noqa: BLE001 - a node that cannot say (AccumulateGrad, plugins)
            pass
        stack.extend(n for n, _ in getattr(node, "next_functions", ()) if n is not None)
    return largest


# -- the program text ----------------------------------------------------------------------------


def max_program_size() -> int:
    env = os.environ.get("GRADCLI_MAX_PROGRAM_SIZE")
    return _positive(env, "GRADCLI_MAX_PROGRAM_SIZE") if env else DEFAULT_MAX_PROGRAM_SIZE


def _too_big(where, limit):
    return GradcliError(
        "limit",
        f"{where} is larger than {size(limit, 1)} (the limit on a program; GRADCLI_MAX_PROGRAM_SIZE=BYTES changes it)",
    )


def read_bounded(fd: int, where: str, limit: int) -> bytes:
    """Everything readable from ``fd``, in chunks, failing once it passes ``limit`` bytes."""
    parts, total = [], 0
    while True:
        try:
            chunk = os.read(fd, _CHUNK)
        except BlockingIOError:  # pragma: no cover - regular files and stdin block
            continue
        if not chunk:
            return b"".join(parts)
        total += len(chunk)
        if total > limit:
            raise _too_big(where, limit)
        parts.append(chunk)


def _decode(data: bytes, where: str) -> str:
    try:
        return data.decode("utf-8-sig")  # a UTF-8 BOM is no part of the program
    except UnicodeDecodeError as exc:
        raise GradcliError("file", f"{where} is not UTF-8 text (byte {exc.start} is 0x{data[exc.start]:02x})") from None


def open_regular(path: str, what: str = "file") -> int:
    """A descriptor of the regular file ``path``, with a clear error for anything else (a folder,
    a FIFO, a device, a symlink loop): opened without blocking, checked by descriptor."""
    if not path:
        raise GradcliError("file", f"no {what} name after '@'")
    path = os.path.expanduser(path)
    shown = path if len(path) <= 200 else path[:200] + "..."
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0))
    except OSError as exc:
        raise GradcliError("file", f"cannot read {what} '{shown}': {_why(exc)}") from None
    except ValueError:  # a NUL character: no file can have that name
        raise GradcliError("file", f"cannot read {what} '{shown}': a file name cannot hold a NUL character") from None
    try:
        info = os.fstat(fd)
        kind = _not_regular(info.st_mode)
        if kind:
            hint = (
                ": give the text on standard input as '-' instead"
                if kind.startswith("a FIFO") and what == "program file"
                else ""
            )
            raise GradcliError("file", f"cannot read {what} '{shown}': it is {kind}, not a regular file{hint}")
        if hasattr(os, "set_blocking"):
            os.set_blocking(fd, True)
    except BaseException:
        os.close(fd)
        raise
    return fd


def _why(exc: OSError) -> str:
    if exc.errno == errno.ELOOP:
        return "a symbolic link loop (too many levels of symbolic links)"
    if exc.errno == errno.ENOENT:
        return "no such file"
    if exc.errno == errno.EACCES:
        return "permission denied"
    if exc.errno == errno.EISDIR:
        return "it is a directory, not a regular file"
    return exc.strerror or str(exc)


def _not_regular(mode) -> str:
    if stat.S_ISREG(mode):
        return ""
    if stat.S_ISDIR(mode):
        return "a directory"
    if stat.S_ISFIFO(mode):
        return "a FIFO (named pipe)"
    if stat.S_ISCHR(mode) or stat.S_ISBLK(mode):
        return "a device"
    if stat.S_ISSOCK(mode):
        return "a socket"
    return "not a regular file"


def read_program(program: str, stdin=None) -> str:
    """The program text of a PROGRAM argument: the text itself, ``-`` (standard input) or
    ``@FILE`` (a regular file), read in bounded chunks and decoded as UTF-8."""
    limit = max_program_size()
    if program == "-":
        if stdin is None:
            import sys

            stdin = sys.stdin
        if stdin is None:
            raise GradcliError("file", "cannot read the program from standard input: it is closed")
        try:
            fd = stdin.fileno()
        except (OSError, ValueError, AttributeError):
            fd = None
        if fd is None:  # a replaced stdin (tests): read it in bounded pieces
            stream = getattr(stdin, "buffer", stdin)
            parts, total = [], 0
            try:
                while True:
                    chunk = stream.read(_CHUNK)
                    if not chunk:
                        break
                    total += len(chunk)
                    if total > limit:
                        raise _too_big("the program on standard input", limit)
                    parts.append(chunk)
            except UnicodeDecodeError as exc:
                raise GradcliError("file", f"the program on standard input is not UTF-8 text ({exc.reason})") from None
            if parts and isinstance(parts[0], bytes):
                return _decode(b"".join(parts), "the program on standard input")
            return "".join(parts)
        try:
            data = read_bounded(fd, "the program on standard input", limit)
        except OSError as exc:
            raise GradcliError("file", f"cannot read the program from standard input: {_why(exc)}") from None
        return _decode(data, "the program on standard input")
    if program.startswith("@"):
        path = program[1:]
        fd = open_regular(path, "program file")
        try:
            info = os.fstat(fd)
            if info.st_size > limit:
                raise _too_big(f"program file '{path}'", limit)
            data = read_bounded(fd, f"program file '{path}'", limit)
        except OSError as exc:
            raise GradcliError("file", f"cannot read program file '{path}': {_why(exc)}") from None
        finally:
            os.close(fd)
        return _decode(data, f"program file '{path}'")
    if len(program) > limit:
        raise _too_big("the program", limit)
    return program


# -- .npy / .npz headers -----------------------------------------------------------------------


def npy_header(handle, where: str):
    """``(shape, dtype)`` from an open ``.npy`` stream's header, checked against the element
    limit before any data is read; the stream is left at the start of the data."""
    import numpy as np
    from numpy.lib import format as npformat

    try:
        major, _minor = npformat.read_magic(handle)
        if major == 1:
            shape, fortran, dtype = npformat.read_array_header_1_0(handle)
        else:
            shape, fortran, dtype = npformat.read_array_header_2_0(handle)
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise GradcliError("file", f"{where} is not a valid .npy array: {str(exc)[:200]}") from None
    dtype = np.dtype(dtype)
    if dtype.hasobject or dtype.kind not in "biuf":
        raise GradcliError("value", f"{where} holds {dtype} data, not numbers")
    check_elements(
        numel(shape), f"{where} (shape {tuple(shape)})", hint="load a smaller array", itemsize=max(8, dtype.itemsize)
    )
    return tuple(shape), dtype
