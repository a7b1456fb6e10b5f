"""The custom ``Function`` with ``ctx``: PyTorch's ``torch.autograd.Function``.

``Cls.apply(...)`` runs ``forward(ctx, ...)`` without recording, then gives its tensor outputs
one ``ClsBackward`` node (``BackwardCFunction``, which is also the ``ctx``) whose ``backward``
must return one gradient per input.  It sits above the Tensor (it wraps outputs) and below the
op table; the graph types it builds on are in ``graph``.
"""
from __future__ import annotations

from ..tensor import Tensor, zeros
from . import grad_mode
from .graph import FREED, NO_EDGE, Node, next_seq, split_edges


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
        self.non_differentiable = tensors

    def set_materialize_grads(self, value):
        self.materialize_grads = value

    def name(self) -> str:
        return f"{self.cls.__name__}Backward"

    def apply(self, grads, needed):
        if self._freed and self.to_save:
            raise RuntimeError(FREED)
        if self.n_outputs == 1:
            grads = (grads,)
        grads = tuple(g if g is not None else zeros(*meta) for g, meta in zip(grads, self.out_meta))
        result = self.cls.backward(self, *grads)
        if not isinstance(result, tuple):
            result = (result,)
        expected = len(self.next)  # set when the node was made
        if len(result) != expected:
            if len(result) > expected and all(r is None for r in result[expected:]):
                result = result[:expected]
            else:
                raise RuntimeError(f"function {self.name()} returned an incorrect number of gradients "
                                   f"(expected {expected}, got {len(result)})")
        return result

    def input_shapes(self) -> tuple:
        return self.in_shapes

    def release(self):
        if self.to_save:
            self._freed = True
            self.to_save = ()


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
        raise NotImplementedError("You must implement either the backward or vjp method for your custom "
                                  "autograd.Function to use it with backward mode AD.")

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
            outputs = cls.forward(node, *args, **kwargs)
        single = not isinstance(outputs, tuple)
        outs = (outputs,) if single else outputs
        record = grad_mode.state.enabled and any(node.needs_input_grad)
        if not record:
            return outputs
        node.next, node.nrs = split_edges([t._edge() if need else NO_EDGE
                                           for t, need in zip(tensors, node.needs_input_grad)])
        node.in_shapes = tuple(t.shape if t is not None else () for t in tensors)
        node.n_outputs = len(outs)
        node.out_meta = tuple((o.shape, o.dtype, o.device) if isinstance(o, Tensor) else ((), None, "cpu")
                              for o in outs)      # for zeros where an output gets no gradient
        wrapped = []
        for nr, o in enumerate(outs):
            if isinstance(o, Tensor):
                if any(o is t for t in tensors):       # an input returned as is: a new view of it
                    o = Tensor(o._data)
                o.grad_fn, o._output_nr = node, nr
                o._requires_grad = True
            wrapped.append(o)
        return wrapped[0] if single else tuple(wrapped)


FunctionCtx = BackwardCFunction
