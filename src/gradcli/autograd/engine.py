"""The backward pass: one iterative walk of the graph in dependency order.

1. A depth-first walk from the roots (explicit stack, no recursion) lists every reachable node
   in post-order; reversed, that is an order in which a node runs only after every node that
   sends it a gradient.
2. For ``autograd.grad`` the walk is pruned to the nodes that lead to a requested input.
3. Each node runs once with the sum of its incoming gradients (``buffers``); what it returns
   for each input is reduced to that input's shape here — the only place broadcasting is undone.
4. Without ``retain_graph`` each node drops its saved tensors as soon as it has run.
"""
from __future__ import annotations

from . import grad_mode
from .function import AccumulateGrad, BackwardCFunction


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
        stack = [(root, iter(root.next_functions))]
        while stack:
            node, children = stack[-1]
            for child, _ in children:
                if child is not None and child not in seen:
                    seen.add(child)
                    stack.append((child, iter(child.next_functions)))
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
            for child, _ in node.next_functions:
                if child in needed:
                    needed.add(node)
                    break
    return needed


def execute(roots, grads, *, retain_graph=False, create_graph=False, capture=None, nbatch=0):
    """Run backward from ``roots`` (``(node, output_nr)`` edges) seeded with ``grads``.

    ``capture``: None to accumulate into leaves' ``.grad``; else a list of edges whose incoming
    gradient is returned (in that order) instead, and nothing is accumulated.  ``capture`` given
    as ``(edges, accumulate=True)`` accumulates only into those leaves (``backward(inputs=...)``).
    ``nbatch``: leading batch dimensions of every gradient (``is_grads_batched``).
    """
    from .. import ops
    from ..tensor import Tensor
    sum_to = ops.sum_to
    post = _post_order([edge[0] for edge in roots])
    accumulate = True
    targets = None
    if capture is not None:
        edges, accumulate = capture
        targets = {edge[0] for edge in edges if edge[0] is not None}
        needed = _needed(post, targets)
        captured = {}
    buffers: dict = {}
    for (node, nr), g in zip(roots, grads):
        if node is not None:
            _add(buffers, node, nr, g)

    anomaly = grad_mode.state.anomaly
    previous = grad_mode.state.enabled
    grad_mode.state.enabled = create_graph
    try:
        for node in reversed(post):
            g = buffers.pop(node, None)
            if g is None:
                continue
            if targets is not None and node not in needed:
                continue
            if node.pre_hooks:
                g = _run_hooks(node.pre_hooks, g)
            if node.retained is not None:
                tensor = node.retained()
                if tensor is not None:
                    kept = g if create_graph else Tensor(g.data)
                    tensor._grad = kept if tensor._grad is None else tensor._grad + kept
            if node.__class__ is AccumulateGrad:
                variable = node.variable
                if variable._hooks:
                    g = _run_hooks(variable._hooks, g)
                if targets is not None and node in targets:
                    captured[node] = g
                    if not accumulate:
                        continue
                elif not accumulate:
                    continue
                if variable._grad is None:
                    variable._grad = g if create_graph else Tensor(g.data)
                elif create_graph:
                    variable._grad = variable._grad + g
                else:
                    variable._grad.data = variable._grad.data + g.data
                continue
            if targets is not None and node in targets:
                captured[node] = g              # and it passes it on if a target lies below
            nexts = node.next_functions
            if targets is None:
                mask = [child is not None for child, _ in nexts]
            else:
                mask = [child is not None and child in needed for child, _ in nexts]
            if True not in mask:
                continue
            outs = node.apply(g, mask)
            if node.__class__ is BackwardCFunction:
                shapes = node.in_shapes
            else:
                shapes = node.input_shapes()
            for i, (child, nr) in enumerate(nexts):
                gi = outs[i]
                if gi is None or not mask[i]:
                    continue
                if not isinstance(gi, Tensor):
                    raise TypeError(f"function {node.name()} returned a gradient of type "
                                    f"{type(gi).__name__} at index {i}, expected a Tensor or None")
                shape = shapes[i]
                gshape = gi.shape
                if len(gshape) != len(shape) + nbatch or gshape[nbatch:] != shape:
                    gi = sum_to(gi, shape, nbatch, node)
                if anomaly:
                    _check(node, i, gi)
                _add(buffers, child, nr, gi)
            if not retain_graph:
                node.release()
    finally:
        grad_mode.state.enabled = previous
    if capture is None:
        return None
    return [captured.get(edge[0]) if edge[0] is not None else None for edge in capture[0]]


def _add(buffers, node, nr, g):
    if node.__class__ is BackwardCFunction and node.n_outputs > 1:
        slot = buffers.get(node)
        if slot is None:
            slot = buffers[node] = _Multi(node.n_outputs)
        slot[nr] = g if slot[nr] is None else slot[nr] + g
        return
    old = buffers.get(node)
    buffers[node] = g if old is None else old + g


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
