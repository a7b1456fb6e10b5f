"""The graph types, at the bottom of the layers: ``Node``, edges and ``AccumulateGrad``.

A node knows where its gradient goes: one edge ``(node, output_nr)`` per input, ``(None, 0)``
for an input that needs no gradient.  It keeps them split, as ``next`` (the nodes) and ``nrs``
(the output numbers, None when all are 0, the usual case), and exposes them joined as
PyTorch's ``next_functions``.  Nodes are numbered in creation order (``seq``); an input's node
is always older than its user.  A function node runs itself: ``apply(grad, mask)`` gives one
gradient per input (``mask`` says which are wanted) and ``input_shapes()`` the shapes the
engine reduces them to.  Nothing here imports the Tensor, the op table or the engine.
"""

from __future__ import annotations

import itertools
import weakref

_seq = itertools.count()
next_seq = _seq.__next__

#: the edge of an input that needs no gradient
NO_EDGE = (None, 0)

FREED = (
    "Trying to backward through the graph a second time (or directly access saved tensors after "
    "they have already been freed). Saved intermediate values of the graph are freed when you call "
    ".backward() or autograd.grad(). Specify retain_graph=True if you need to backward through the "
    "graph a second time or if you need to access saved tensors after calling backward."
)


def split_edges(edges) -> tuple:
    """``(next, nrs)`` for a list of ``(node, output_nr)`` edges (see the module docstring)."""
    if len(edges) == 2:  # the usual cases first: on the hot path of every graph
        (a, i), (b, j) = edges
        return (a, b), ((i, j) if i or j else None)
    if len(edges) == 1:
        ((a, i),) = edges
        return (a,), ((i,) if i else None)
    nrs = tuple([e[1] for e in edges])
    return tuple([e[0] for e in edges]), (nrs if any(nrs) else None)


class Node:
    """Base of every graph node.  ``span`` is where in a program's text the forward op was."""

    __slots__ = ("next", "nrs", "seq", "span", "pre_hooks", "retained", "__weakref__")
    #: how many outputs the forward had (a custom Function may have several)
    n_outputs = 1

    @property
    def next_functions(self) -> tuple:
        nexts = self.nexts()
        return tuple(zip(nexts, self.nrs or (0,) * len(nexts)))

    def nexts(self) -> tuple:
        return self.next

    def name(self) -> str:
        return type(self).__name__

    def __repr__(self):
        return f"<{self.name().rsplit('::', 1)[-1]} object at {id(self):#x}>"

    def register_prehook(self, fn):
        """``fn(grad_outputs)`` (a tuple, one per output) before this node runs; a returned tuple
        replaces the gradients."""
        return self._add_prehook(_TupleHook(fn, self.n_outputs))

    def _add_prehook(self, hook):
        """``hook(g)`` on what the engine holds for this node (a tensor, or a list per output)."""
        if self.pre_hooks is None:
            self.pre_hooks = []
        self.pre_hooks.append(hook)
        return Handle(self.pre_hooks, hook)

    def register_hook(self, fn):
        """``fn(grad_inputs, grad_outputs)`` after this node ran (``grad_inputs``: one per
        ``next_functions`` entry, None where none is computed); a returned tuple replaces them."""
        post_hooks_used[0] = True
        hooks = POST_HOOKS.setdefault(self, [])
        hooks.append(fn)
        return Handle(hooks, fn)

    def apply(self, grad, mask) -> tuple:
        """One gradient (or None) per input, for the incoming ``grad``."""
        raise NotImplementedError

    def input_shapes(self) -> tuple:
        """The shape of each input: what the engine un-broadcasts each gradient to."""
        raise NotImplementedError

    def release(self):
        """Drop what forward saved (called after backward unless ``retain_graph``)."""


#: node -> its post hooks (``Node.register_hook``), held weakly; the engine looks here only once
#: one was registered (``post_hooks_used[0]``)
POST_HOOKS = weakref.WeakKeyDictionary()
post_hooks_used = [False]


class _TupleHook:
    """A node pre-hook as PyTorch calls it: with a tuple of the gradients of the outputs."""

    __slots__ = ("fn", "n")

    def __init__(self, fn, n):
        self.fn, self.n = fn, n

    def __call__(self, g):
        grads = tuple(g) if self.n > 1 else (g,)
        result = self.fn(grads)
        if result is None:
            return None
        return list(result) if self.n > 1 else result[0]


class Handle:
    """What ``register_hook`` returns: ``remove()`` takes the hook away again."""

    __slots__ = ("hooks", "fn")

    def __init__(self, hooks, fn):
        self.hooks, self.fn = hooks, fn

    def remove(self):
        if self.fn in self.hooks:
            self.hooks.remove(self.fn)


class AccumulateGrad(Node):
    """The node behind a leaf that requires grad: the engine adds what reaches it to
    ``variable.grad``.  It has no inputs, so it never runs as a function node."""

    __slots__ = ("variable",)

    def __init__(self, variable):
        self.variable = variable
        self.next = ()
        self.seq = -next(_seq)  # a leaf's sink runs after every function node (any order among them)
        self.nrs = self.span = self.pre_hooks = self.retained = None
