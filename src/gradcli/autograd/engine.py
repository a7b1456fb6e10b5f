"""The backward pass: one iterative walk of the graph in dependency order.

1. Nodes run in decreasing creation order (``seq``), taken from a heap that holds the nodes
   which have received a gradient so far.  A node's users are all younger than it, so every
   gradient it will receive has arrived when it is popped.  No recursion, and no pass over the
   graph before the first node runs.
2. For ``autograd.grad`` a depth-first walk (explicit stack) first marks the nodes that lead to
   a requested input; the others are skipped.
3. Each node runs once with the sum of its incoming gradients (``buffers``); what it returns
   for each input is reduced to that input's shape here — the only place broadcasting is undone.
4. Without ``retain_graph`` each node drops its saved tensors as soon as it has run.
"""
from __future__ import annotations

from heapq import heappop, heappush

from . import grad_mode
from .function import FREED, AccumulateGrad, BackwardCFunction, OpNode


class _Lazy:
    """Names from modules that import this one, bound on the first backward."""
    Tensor = ADD = sum_to = None

    def bind(self):
        from .. import ops
        from ..tensor import Tensor
        _Lazy.Tensor, _Lazy.ADD, _Lazy.sum_to = Tensor, staticmethod(ops.ADD), staticmethod(ops.sum_to)


_lazy = _Lazy()


class AnomalyError(RuntimeError):
    """A node's backward produced NaN or infinity (under ``detect_anomaly``); ``node`` is that node."""

    def __init__(self, message, node):
        super().__init__(message)
        self.node = node


def _post_order(roots):
    post, seen = [], set()
    for root in roots:
        if root is None or root in seen:
            continue
        seen.add(root)
        stack = [(root, iter(root.nexts()))]
        while stack:
            node, children = stack[-1]
            for child in children:
                if child is not None and child not in seen:
                    seen.add(child)
                    stack.append((child, iter(child.nexts())))
                    break
            else:
                stack.pop()
                post.append(node)
    return post


def _needed(post, targets):
    """The nodes from which some node of ``targets`` can be reached (``post``: children first)."""
    needed = set()
    for node in post:
        if node in targets:
            needed.add(node)
        else:
            for child in node.nexts():
                if child in needed:
                    needed.add(node)
                    break
    return needed


def execute(roots, grads, *, retain_graph=False, create_graph=False, capture=None, nbatch=0):
    """Run backward from ``roots`` (``(node, output_nr)`` edges) seeded with ``grads``.

    ``capture``: None to accumulate into leaves' ``.grad``; else ``(edges, accumulate)``: the
    incoming gradient of each edge's node is returned (in that order), and with ``accumulate``
    False nothing is accumulated (``autograd.grad``); True accumulates only into those leaves
    (``backward(inputs=...)``).  ``nbatch``: leading batch dimensions of every gradient
    (``is_grads_batched``).
    """
    if _lazy.Tensor is None:
        _lazy.bind()
    Tensor = _lazy.Tensor
    sum_to = _lazy.sum_to
    accumulate = True
    targets = needed = None
    captured = {}
    if capture is not None:
        edges, accumulate = capture
        targets = {edge[0] for edge in edges if edge[0] is not None}
        needed = _needed(_post_order([edge[0] for edge in roots]), targets)
    buffers: dict = {}
    heap: list = []
    for (node, nr), g in zip(roots, grads):
        if node is not None:
            if node not in buffers:
                heappush(heap, (-node.seq, node))
            _add(buffers, node, nr, g, True)

    anomaly = grad_mode.state.anomaly
    previous = grad_mode.state.enabled
    grad_mode.state.enabled = create_graph
    try:
        while heap:
            node = heappop(heap)[1]
            g = buffers.pop(node)
            if needed is not None and node not in needed:
                continue
            if node.pre_hooks:
                g = _run_hooks(node.pre_hooks, g)
            if node.retained is not None:
                _retain(node, g, create_graph)
            cls = node.__class__
            if cls is AccumulateGrad:
                _accumulate(node, g, targets, accumulate, captured, create_graph)
                continue
            if targets is not None and node in targets:
                captured[node] = g              # and it passes it on if a target lies below
            nexts = node.next
            if nexts is None:
                nexts = node.nexts()
            if needed is None:
                mask = [child is not None for child in nexts]
            else:
                mask = [child is not None and child in needed for child in nexts]
            if cls is OpNode:
                inputs = node.inputs
                if inputs is None:
                    if node.op.saves:
                        raise RuntimeError(FREED)
                    shapes = node.shapes
                    outs = node.op.backward(node, g, (None,) * len(shapes), mask)
                else:
                    shapes = None
                    outs = node.op.backward(node, g, inputs, mask)
            else:
                outs = node.apply(g, mask)
                shapes = node.in_shapes
            nrs = node.nrs
            for i, child in enumerate(nexts):
                if not mask[i]:
                    continue
                gi = outs[i]
                if gi is None:
                    continue
                if gi.__class__ is not Tensor:
                    if not isinstance(gi, Tensor):
                        raise TypeError(f"function {node.name()} returned a gradient of type "
                                        f"{type(gi).__name__} at index {i}, expected a Tensor or None")
                shape = shapes[i] if shapes is not None else inputs[i].shape
                gshape = gi.data.shape
                if len(gshape) != len(shape) + nbatch or (gshape[nbatch:] if nbatch else gshape) != shape:
                    gi = sum_to(gi, shape, nbatch, node)
                if anomaly:
                    _check(node, i, gi)
                if child not in buffers:
                    heappush(heap, (-child.seq, child))
                    if nrs is None:
                        buffers[child] = gi
                        continue
                _add(buffers, child, nrs[i] if nrs else 0, gi, create_graph)
            if not retain_graph and cls is OpNode:
                if node.n:
                    node.a = node.b = node.out = None       # what release() does, inline
                    node.n = 0
            elif not retain_graph:
                node.release()
            g = outs = gi = inputs = None       # let go of this node's arrays before the next one
    finally:
        grad_mode.state.enabled = previous
    if capture is None:
        return None
    return [captured.get(edge[0]) if edge[0] is not None else None for edge in capture[0]]


def _retain(node, g, create_graph):
    Tensor = _lazy.Tensor
    tensor = node.retained()
    if tensor is not None:
        kept = g if create_graph else Tensor(g.data)
        tensor._grad = kept if tensor._grad is None else _sum(tensor._grad, kept, create_graph)


def _accumulate(node, g, targets, accumulate, captured, create_graph):
    """A leaf's gradient: run its hooks, then capture it or add it to ``.grad``."""
    Tensor = _lazy.Tensor
    variable = node.variable
    if variable._hooks:
        g = _run_hooks(variable._hooks, g)
    if targets is not None and node in targets:
        captured[node] = g
    if not accumulate or (targets is not None and node not in targets):
        return
    if variable._grad is None:
        variable._grad = g if create_graph else Tensor(g.data)
    elif create_graph:
        variable._grad = variable._grad + g
    else:
        variable._grad.data = variable._grad.data + g.data


def _add(buffers, node, nr, g, create_graph):
    """Sum ``g`` into ``node``'s buffer: as a graph op under ``create_graph``, else on the arrays."""
    if node.__class__ is BackwardCFunction and node.n_outputs > 1:
        slot = buffers.get(node)
        if slot is None:
            slot = buffers[node] = _Multi(node.n_outputs)
        slot[nr] = g if slot[nr] is None else _sum(slot[nr], g, create_graph)
        return
    old = buffers.get(node)
    buffers[node] = g if old is None else _sum(old, g, create_graph)


def _sum(a, b, create_graph):
    if create_graph:
        return a + b
    return _lazy.Tensor(_lazy.ADD(None, a.data, b.data))


class _Multi(list):
    """Incoming gradients of a node with several outputs."""

    def __init__(self, n):
        super().__init__([None] * n)


def _run_hooks(hooks, g):
    for hook in list(hooks):
        result = hook(g)
        if result is not None:
            g = result
    return g


def _check(node, index, g):
    xp_data = g.data
    from ..backend import xp_of
    xp = xp_of(xp_data)
    bad = None
    if bool(xp.isnan(xp_data).any()):
        bad = "nan"
    elif bool(xp.isinf(xp_data).any()):
        bad = "inf"
    if bad:
        where = f" (the forward op at characters {node.span[0]}-{node.span[1]})" if node.span else ""
        raise AnomalyError(f"Function '{node.name()}' returned {bad} values in its {index}th output{where}.", node)
