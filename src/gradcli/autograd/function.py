"""Graph nodes: ``Node`` (an op's backward), ``AccumulateGrad`` (a leaf's sink), and the custom
``Function`` with ``ctx``.

A node knows where its gradient goes (``next_functions``, one ``(node, output_nr)`` pair per
input, ``(None, 0)`` for an input that needs no gradient) and how to compute it (``apply``).
Nodes are numbered in creation order (``seq``); an input's node is always older than its user.
"""
from __future__ import annotations

import itertools

from . import grad_mode

_seq = itertools.count()
next_seq = _seq.__next__
multi_output = [False]      # becomes True once a custom Function returns several tensors

FREED = ("Trying to backward through the graph a second time (or directly access saved tensors after "
         "they have already been freed). Saved intermediate values of the graph are freed when you call "
         ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the "
         "graph a second time or if you need to access saved tensors after calling backward.")


class Node:
    """Base of every graph node.  ``span`` is where in a program's text the forward op was."""

    # ``next``: the node each input's gradient goes to (None: no gradient); ``nrs``: which output
    # of that node each input was (None when all are 0, the usual case)
    __slots__ = ("next", "nrs", "seq", "span", "pre_hooks", "retained", "__weakref__")

    @property
    def next_functions(self) -> tuple:
        nexts = self.nexts()
        return tuple(zip(nexts, self.nrs or (0,) * len(nexts)))

    def nexts(self) -> tuple:
        return self.next

    def name(self) -> str:
        return type(self).__name__

    def __repr__(self):
        return f"<{self.name()} object at {id(self):#x}>"

    def register_prehook(self, fn):
        if self.pre_hooks is None:
            self.pre_hooks = []
        self.pre_hooks.append(fn)
        return _Handle(self.pre_hooks, fn)

    def release(self):
        """Drop what forward saved (called after backward unless ``retain_graph``)."""


class _Handle:
    __slots__ = ("hooks", "fn")

    def __init__(self, hooks, fn):
        self.hooks, self.fn = hooks, fn

    def remove(self):
        if self.fn in self.hooks:
            self.hooks.remove(self.fn)


class AccumulateGrad(Node):
    """The node behind a leaf that requires grad: adds the incoming gradient to ``variable.grad``."""

    __slots__ = ("variable",)

    def __init__(self, variable):
        self.variable = variable
        self.next = ()
        self.seq = -next(_seq)      # a leaf's sink runs after every function node (any order among them)
        self.nrs = self.span = self.pre_hooks = self.retained = None


class OpNode(Node):
    """The backward of one op-table primitive: the rule with the inputs and output it saved."""

    # the saved inputs: one or two in slots ``a``, ``b`` (no tuple per node: fewer objects for the
    # garbage collector while a graph is built), more as a tuple in ``a``; ``n`` counts them
    # (0: nothing saved, or released)
    __slots__ = ("op", "params", "a", "b", "n", "out", "shapes")

    def __init__(self, op, params, inputs, out, next, nrs=None):
        self.op, self.params, self.out = op, params, out
        if inputs is None:
            self.n, self.a, self.b = 0, None, None
        else:
            n = self.n = len(inputs)
            if n == 2:
                self.a, self.b = inputs
            elif n == 1:
                self.a, self.b = inputs[0], None
            else:
                self.a, self.b = inputs, None
        self.next, self.nrs = next, nrs
        self.seq = next_seq()
        self.span = self.pre_hooks = self.retained = self.shapes = None

    @property
    def inputs(self):
        """The saved inputs (a tuple), or None when nothing is saved (any more)."""
        n = self.n
        if n == 2:
            return (self.a, self.b)
        if n == 1:
            return (self.a,)
        return self.a if n else None

    def name(self) -> str:
        node = self.op.node
        return node if node.__class__ is str else node(self.params)

    def nexts(self) -> tuple:
        """Where each input's gradient goes; worked out from the saved inputs on first use (one
        tuple fewer per node while the graph is built: fewer objects for the garbage collector)."""
        nexts = self.next
        if nexts is None:
            Tensor = _tensor_class()
            inputs = self.inputs
            nexts = self.next = tuple([(a.grad_fn or (a._accumulator() if a._requires_grad else None))
                                       if a.__class__ is Tensor else None for a in inputs])
            if multi_output[0]:
                nrs = tuple([a._output_nr if a.__class__ is Tensor else 0 for a in inputs])
                self.nrs = nrs if any(nrs) else None
        return nexts

    def input_shapes(self):
        if self.inputs is None:
            return self.shapes
        return tuple(getattr(x, "shape", ()) for x in self.inputs)

    def release(self):
        if self.n:
            self.nexts()                 # next_functions outlive the saved tensors
            self.a = self.b = self.out = None
            self.n = 0


def _tensor_class():
    from ..tensor import Tensor
    global _tensor_class
    _tensor_class = lambda: Tensor  # noqa: E731 - imported once, then a constant
    return Tensor


# ----------------------------------------------------------------------------------------------
# custom Function

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
        from ..tensor import Tensor
        grads = tuple(g if g is not None else _zeros(shape, Tensor) for g, shape in zip(grads, self.out_shapes))
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

    def release(self):
        if self.to_save:
            self._freed = True
            self.to_save = ()


def _zeros(shape, Tensor):
    import numpy as np
    return Tensor(np.zeros(shape))


class _FunctionMeta(type):
    pass


class Function(metaclass=_FunctionMeta):
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
        from ..tensor import Tensor
        node = BackwardCFunction.__new__(BackwardCFunction)
        node.to_save, node._freed = (), False
        node.cls = cls
        node.seq = next(_seq)
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
        edges = [t._edge() if need else (None, 0) for t, need in zip(tensors, node.needs_input_grad)]
        node.next = tuple(e[0] for e in edges)
        node.nrs = tuple(e[1] for e in edges) if any(e[1] for e in edges) else None
        if len(outs) > 1:
            multi_output[0] = True
        node.in_shapes = tuple(t.shape if t is not None else () for t in tensors)
        node.n_outputs = len(outs)
        node.out_shapes = tuple(getattr(o, "shape", ()) for o in outs)
        wrapped = []
        for nr, o in enumerate(outs):
            if isinstance(o, Tensor):
                if any(o is t for t in tensors):       # an input returned as is: a new view of it
                    o = Tensor(o.data)
                o.grad_fn, o._output_nr = node, nr
                o._requires_grad = True
            wrapped.append(o)
        return wrapped[0] if single else tuple(wrapped)


FunctionCtx = BackwardCFunction
