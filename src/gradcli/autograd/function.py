"""The custom ``Function`` with ``ctx``: PyTorch's ``torch.autograd.Function``.

``Cls.apply(...)`` runs ``forward(ctx, ...)`` without recording, then gives its tensor outputs
one ``ClsBackward`` node (``BackwardCFunction``, which is also the ``ctx``) whose ``backward``
must return one gradient per input.  It sits above the Tensor (it wraps outputs) and below the
op table; the graph types it builds on are in ``graph``.
"""

from __future__ import annotations

import functools

import numpy as np

from ..tensor import Tensor, _counter, zeros
from . import grad_mode
from .graph import FREED, NO_EDGE, Node, next_seq, split_edges

ONCE = "trying to differentiate twice a function that was marked with @once_differentiable"


class BackwardCFunction(Node):
    """The node of one call of a custom Function; it is also the ``ctx`` that ``forward`` and
    ``backward`` share (any attribute may be set on it)."""

    def save_for_backward(self, *tensors):
        self.to_save = tensors

    @property
    def saved_tensors(self):
        if self._freed:
            raise RuntimeError(FREED)
        return tuple(self.to_save)

    def mark_non_differentiable(self, *tensors):
        """These outputs get no grad_fn and do not require grad (their gradient arrives as zeros)."""
        self.non_differentiable = tensors

    def mark_dirty(self, *tensors):
        """These inputs were modified in place by ``forward`` (and are returned): they take the
        node as their grad_fn."""
        self.dirty = tensors

    def set_materialize_grads(self, value):
        """False: an output that gets no gradient passes None to ``backward`` (not zeros)."""
        self.materialize_grads = bool(value)

    def name(self) -> str:
        return f"{self.cls.__name__}Backward"

    def apply(self, grads, needed):
        if self._freed and self.to_save:
            raise RuntimeError(FREED)
        if self.n_outputs == 1:
            grads = (grads,)
        materialize = getattr(self, "materialize_grads", True)
        grads = tuple(
            None if meta[1] is None else g if g is not None or not materialize else zeros(*meta)
            for g, meta in zip(grads, self.out_meta)
        )
        cls = self.cls
        backward, vjp = cls.backward, cls.vjp
        if backward is not Function.backward and vjp is not Function.vjp:
            raise RuntimeError(
                "Implementing both 'backward' and 'vjp' for a custom Function is not allowed. You "
                "should only implement one of them."
            )
        result = (vjp if backward is Function.backward else backward)(self, *grads)
        if not isinstance(result, tuple):
            result = (result,)
        expected = len(self.next)  # set when the node was made
        if len(result) != expected:
            if len(result) > expected and all(r is None for r in result[expected:]):
                result = result[:expected]
            else:
                raise RuntimeError(
                    f"function {self.name()} returned an incorrect number of gradients "
                    f"(expected {expected}, got {len(result)})"
                )
        for i, (r, shape) in enumerate(zip(result, self.in_shapes)):
            if isinstance(r, Tensor) and tuple(r.shape) != tuple(shape) and not _expandable(shape, r.shape):
                raise RuntimeError(
                    f"Function {self.name()} returned an invalid gradient at index {i} - got "
                    f"{list(r.shape)} but expected shape compatible with {list(shape)}"
                )
        return result

    def input_shapes(self) -> tuple:
        return self.in_shapes

    def release(self):
        if self.to_save:
            self._freed = True
            self.to_save = ()


def _expandable(shape, to):
    try:
        return np.broadcast_shapes(tuple(shape), tuple(to)) == tuple(to)
    except ValueError:
        return False


class Function:
    """A differentiable function defined by its ``forward(ctx, ...)`` and ``backward(ctx, *grads)``.

    Call it with ``Cls.apply(...)``.  ``forward`` runs without recording a graph; its tensor
    outputs get a ``ClsBackward`` node whose ``backward`` must return one gradient per input.
    """

    @staticmethod
    def forward(ctx, *args, **kwargs):
        raise NotImplementedError("You must implement the forward function for custom autograd.Function.")

    @staticmethod
    def backward(ctx, *grads):
        raise NotImplementedError(
            "You must implement either the backward or vjp method for your custom "
            "autograd.Function to use it with backward mode AD."
        )

    vjp = backward

    @staticmethod
    def setup_context(ctx, inputs, output):
        """Override it to write ``forward(*args)`` without ``ctx`` (PyTorch's second style)."""
        raise NotImplementedError("setup_context is not implemented.")

    @classmethod
    def apply(cls, *args, **kwargs):
        node = BackwardCFunction.__new__(BackwardCFunction)
        node.to_save, node._freed = (), False
        node.cls = cls
        node.seq = next_seq()
        node.span = node.pre_hooks = node.retained = None
        tensors = [a if isinstance(a, Tensor) else None for a in args]
        node.needs_input_grad = tuple(t is not None and t.requires_grad for t in tensors)
        with grad_mode.no_grad():
            if cls.setup_context is Function.setup_context:
                outputs = cls.forward(node, *args, **kwargs)
            else:
                outputs = cls.forward(*args, **kwargs)
                cls.setup_context(node, args, outputs)
        single = not isinstance(outputs, tuple)
        outs = (outputs,) if single else outputs
        record = grad_mode.state.enabled and any(node.needs_input_grad)
        dirty = getattr(node, "dirty", ())
        for t in dirty:
            if t._requires_grad and t.grad_fn is None and record:
                raise RuntimeError("a leaf Variable that requires grad has been used in an in-place operation.")
            _counter(t)[0] += 1  # PyTorch counts marking it dirty as a write
        if not record:
            return outputs
        node.next, node.nrs = split_edges(
            [t._edge() if need else NO_EDGE for t, need in zip(tensors, node.needs_input_grad)]
        )
        node.in_shapes = tuple(t.shape if t is not None else () for t in tensors)
        node.n_outputs = len(outs)
        node.out_meta = tuple(
            (o.shape, o.dtype, o.device) if isinstance(o, Tensor) else ((), None, "cpu") for o in outs
        )  # for zeros where an output gets no gradient
        skip = getattr(node, "non_differentiable", ())
        wrapped = []
        for nr, o in enumerate(outs):
            if isinstance(o, Tensor) and not any(o is s for s in skip) and o._data.dtype.kind in "fc":
                if any(o is t for t in tensors) and not any(o is d for d in dirty):
                    o = Tensor(o._data)  # an input returned as is: a new tensor on its storage
                o.grad_fn, o._output_nr = node, nr
                o._requires_grad = True
            wrapped.append(o)
        return wrapped[0] if single else tuple(wrapped)


class _DelayedError(Function):
    """What a ``once_differentiable`` backward's results hang from under ``create_graph``: the
    error, if anything tries to differentiate through them."""

    @staticmethod
    def forward(ctx, *xs):
        return tuple(Tensor(x._data) if isinstance(x, Tensor) else x for x in xs)

    @staticmethod
    def backward(ctx, *grads):
        raise RuntimeError(ONCE)


def once_differentiable(fn):
    """For a ``backward`` that cannot itself be differentiated: it runs without recording, and its
    results raise PyTorch's error if a later backward reaches them."""

    @functools.wraps(fn)
    def wrapper(ctx, *args):
        with grad_mode.no_grad():
            outputs = fn(ctx, *args)
        if not (grad_mode.state.enabled and any(isinstance(a, Tensor) and a.requires_grad for a in args)):
            return outputs
        single = not isinstance(outputs, tuple)
        outs = (outputs,) if single else outputs
        tensors = [o for o in outs if isinstance(o, Tensor)]
        if not tensors:
            return outputs
        anchor = next(a for a in args if isinstance(a, Tensor) and a.requires_grad)
        linked = _DelayedError.apply(anchor, *tensors)[1:]
        it = iter(linked)
        result = tuple(next(it) if isinstance(o, Tensor) else o for o in outs)
        return result[0] if single else result

    return wrapper


FunctionCtx = BackwardCFunction
