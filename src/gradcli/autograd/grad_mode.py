"""Grad modes: ``no_grad``, ``enable_grad``, ``set_grad_enabled``, and anomaly detection.

The mode is thread-local, as in PyTorch.  Each class works as a context manager and as a
decorator (``@no_grad()`` and ``@no_grad``).
"""

from __future__ import annotations

import functools
import inspect
import sys
import threading


class _State(threading.local):
    enabled = True
    anomaly = False


state = _State()


def is_grad_enabled() -> bool:
    return state.enabled


def is_anomaly_enabled() -> bool:
    return state.anomaly


class _Mode:
    """Base of the grad-mode context managers: sets ``state.<attr>`` on enter, restores on exit."""

    attr = "enabled"

    def __init__(self, mode: bool):
        self.mode = bool(mode)
        self.prev = []

    def __new__(cls, *args, **kwargs):
        # ``@no_grad`` without parentheses: the class is called with the function.
        if len(args) == 1 and callable(args[0]) and cls is not set_grad_enabled and not kwargs:
            return cls()(args[0])
        return super().__new__(cls)

    def __enter__(self):
        self.prev.append(getattr(state, self.attr))
        setattr(state, self.attr, self.mode)
        return self

    def __exit__(self, *exc):
        setattr(state, self.attr, self.prev.pop())
        return False

    def __call__(self, func):
        fresh = lambda: self.__class__.__new__(self.__class__)._init_like(self)  # noqa: E731
        if inspect.isgeneratorfunction(func):
            return _generator(func, fresh)
        if inspect.iscoroutinefunction(func):

            @functools.wraps(func)
            async def coroutine(*args, **kwargs):
                with fresh():
                    return await func(*args, **kwargs)

            return coroutine

        @functools.wraps(func)
        def wrapper(*args, **kwargs):
            with fresh():
                return func(*args, **kwargs)

        return wrapper

    def _init_like(self, other):
        _Mode.__init__(self, other.mode)
        return self


def _generator(func, fresh):
    """A generator function whose body runs in the mode each time it resumes (PyTorch's
    ``_wrap_generator``); the caller's mode is back between the values it yields."""

    @functools.wraps(func)
    def wrapper(*args, **kwargs):
        gen = func(*args, **kwargs)
        try:
            with fresh():
                request = gen.send(None)
            while True:
                try:
                    response = yield request
                except GeneratorExit:
                    with fresh():
                        gen.close()
                    raise
                except BaseException:
                    with fresh():
                        request = gen.throw(*sys.exc_info())
                else:
                    with fresh():
                        request = gen.send(response)
        except StopIteration as stop:
            return stop.value

    return wrapper


class set_grad_enabled(_Mode):
    """Enables (``True``) or disables (``False``) gradient recording; also takes effect at once,
    as PyTorch's does when called as a function."""

    def __init__(self, mode: bool):
        super().__init__(mode)
        self.prev.append(state.enabled)
        state.enabled = self.mode

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        state.enabled = self.prev.pop()
        return False

    def __call__(self, func):
        state.enabled = self.prev.pop()  # used as a decorator: undo the immediate effect (as PyTorch)
        return super().__call__(func)

    def _init_like(self, other):
        _Mode.__init__(self, other.mode)
        self.prev.append(state.enabled)
        state.enabled = self.mode
        return self


class no_grad(_Mode):
    """Operations inside do not record a graph: results have ``requires_grad=False``."""

    def __init__(self):
        super().__init__(False)


class enable_grad(_Mode):
    """Re-enables gradient recording inside a ``no_grad`` block."""

    def __init__(self):
        super().__init__(True)


class detect_anomaly(_Mode):
    """Backward checks every gradient for NaN/inf and names the forward op that produced it."""

    attr = "anomaly"

    def __init__(self, check_nan: bool = True):
        super().__init__(check_nan)
