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

import threading
from heapq import heappop, heappush

from ..backend import xp_of
from ..tensor import Tensor
from . import grad_mode
from .graph import POST_HOOKS, AccumulateGrad, post_hooks_used

#: what the engine needs from the op table, registered by it (``register``): ``add`` sums two
#: arrays, ``unbroadcast(g, shape, nbatch)`` sums a gradient down to an input's shape as a
#: graph op (so that it is differentiable under ``create_graph``); ``copy`` and ``clone`` are
#: the graph ops PyTorch's first ``.grad`` of a leaf / of a retained non-leaf goes through under
#: ``create_graph`` (grad_fn ``CopyBackwards`` / ``CloneBackward0``)
_table: dict = {}


def register(*, add, unbroadcast, copy=None, clone=None):
    _table["add"], _table["unbroadcast"] = add, unbroadcast
    _table["copy"], _table["clone"] = copy or _same, clone or _same


def _same(g):
    return g


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


def execute(roots, grads, *, retain_graph=False, create_graph=False, capture=None, nbatch=0, trace=None):
    """Run backward from ``roots`` (``(node, output_nr)`` edges) seeded with ``grads``.

    ``capture``: None to accumulate into leaves' ``.grad``; else ``(edges, accumulate)``: the
    incoming gradient of each edge's node is returned (in that order), and with ``accumulate``
    False nothing is accumulated (``autograd.grad``); True accumulates only into those leaves
    (``backward(inputs=...)``).  ``nbatch``: leading batch dimensions of every gradient
    (``is_grads_batched``).  ``trace``: an object told of each step (``explain``):
    ``trace.node(node, g, sent)`` after a node ran, ``sent`` = [(input index, gradient as the
    rule gave it, as sent after un-broadcasting)], and ``trace.leaf(node, g)`` for each leaf.
    """
    walk = _Walk(retain_graph, create_graph, nbatch)
    walk.trace = trace
    if capture is not None:
        edges, walk.accumulate = capture
        walk.targets = {edge[0] for edge in edges if edge[0] is not None}
        walk.needed = _needed(_post_order([edge[0] for edge in roots]), walk.targets)
    for (node, nr), g in zip(roots, grads):
        if node is not None:
            walk.send(node, nr, g, True)
    depth = getattr(_reentrant, "depth", 0)
    if depth >= _HANDOFF:  # a backward inside a backward, deeply: a fresh thread
        _in_thread(walk, create_graph)
    else:
        previous = grad_mode.state.enabled
        grad_mode.state.enabled = create_graph
        _reentrant.depth = depth + 1
        try:
            walk.run()
        finally:
            grad_mode.state.enabled = previous
            _reentrant.depth = depth
    if capture is None:
        return None
    return [walk.captured.get(edge[0]) if edge[0] is not None else None for edge in capture[0]]


#: how deep backward may run inside a custom Function's backward before the next level goes to a
#: new thread (its own Python stack), as PyTorch's engine hands deep reentrant backwards to a pool
_HANDOFF = 24
_reentrant = threading.local()


def _in_thread(walk, create_graph):
    anomaly, failure = grad_mode.state.anomaly, []

    def run():
        grad_mode.state.enabled, grad_mode.state.anomaly = create_graph, anomaly
        try:
            walk.run()
        except BaseException as exc:  # noqa: BLE001 - raised again in the caller's thread
            failure.append(exc)

    thread = threading.Thread(target=run, name="gradcli-reentrant-backward")
    thread.start()
    thread.join()
    if failure:
        raise failure[0]


class _Walk:
    """One backward pass: the heap of nodes with a gradient, their summed gradients (``buffers``),
    and what ``autograd.grad`` asked to capture."""

    trace = None  # see ``execute``; None (the usual case) costs one test per node

    def __init__(self, retain_graph, create_graph, nbatch):
        self.retain_graph, self.create_graph, self.nbatch = retain_graph, create_graph, nbatch
        self.accumulate = True
        self.targets = self.needed = None
        self.captured: dict = {}
        self.buffers: dict = {}
        self.heap: list = []
        self.anomaly = grad_mode.state.anomaly

    def run(self):
        """The backward loop.  One node's step is written out here rather than in a method of its
        own: a call and a dozen attribute look-ups less per node (W2's per-node cost)."""
        heap, buffers, needed, targets = self.heap, self.buffers, self.needed, self.targets
        create_graph, retain_graph, nbatch, anomaly = self.create_graph, self.retain_graph, self.nbatch, self.anomaly
        trace, send, unbroadcast = self.trace, self.send, _table["unbroadcast"]
        while heap:
            node = heappop(heap)[1]
            g = buffers.pop(node)
            if needed is not None and node not in needed:
                continue
            if node.pre_hooks:
                g = _run_hooks(node.pre_hooks, g)
            if node.retained is not None:
                _retain(node, g, create_graph)
            if node.__class__ is AccumulateGrad:
                if trace is not None:
                    trace.leaf(node, g)
                self.accumulate_leaf(node, g)
                continue
            if targets is not None and node in targets:
                self.captured[node] = g  # and it passes it on if a target lies below
            # run the node on g and send what it gives each input on to that input's node
            nexts = node.next
            if nexts is None:
                nexts = node.nexts()
            if needed is None:
                mask = [child is not None for child in nexts]
            else:
                mask = [child is not None and child in needed for child in nexts]
            outs = node.apply(g, mask)
            if post_hooks_used[0] and node in POST_HOOKS:
                outs = _run_post_hooks(node, outs, g)
            shapes = node.input_shapes()
            nrs = node.nrs
            sent = [] if trace is not None else None
            for i, child in enumerate(nexts):
                if not mask[i]:
                    continue
                gi = outs[i]
                if gi is None:
                    continue
                if gi.__class__ is not Tensor and not isinstance(gi, Tensor):
                    raise TypeError(
                        f"function {node.name()} returned a gradient of type "
                        f"{type(gi).__name__} at index {i}, expected a Tensor or None"
                    )
                shape = shapes[i]
                gshape = gi._data.shape
                raw = gi
                if len(gshape) != len(shape) + nbatch or (gshape[nbatch:] if nbatch else gshape) != shape:
                    gi = unbroadcast(gi, shape, nbatch)
                if sent is not None:
                    sent.append((i, raw, gi))
                if anomaly:
                    _check(node, i, gi)
                if nrs is None and child.n_outputs == 1 and child not in buffers:
                    heappush(heap, (-child.seq, child))  # the usual case, inline
                    buffers[child] = gi
                else:
                    send(child, nrs[i] if nrs else 0, gi, create_graph)
            if sent is not None:
                trace.node(node, g, sent)
            if not retain_graph:
                node.release()
            g = outs = gi = raw = None  # let go of this node's arrays before the next one

    def send(self, node, nr, g, create_graph):
        """Sum ``g`` into output ``nr`` of ``node``'s buffer (as a graph op under ``create_graph``)."""
        buffers = self.buffers
        if node not in buffers:
            heappush(self.heap, (-node.seq, node))
        if node.n_outputs > 1:
            slot = buffers.get(node)
            if slot is None:
                slot = buffers[node] = [None] * node.n_outputs
            slot[nr] = g if slot[nr] is None else _sum(slot[nr], g, create_graph)
            return
        old = buffers.get(node)
        buffers[node] = g if old is None else _sum(old, g, create_graph)

    def accumulate_leaf(self, node, g):
        """A leaf's gradient: run its hooks, then capture it or add it to ``.grad``."""
        variable, targets = node.variable, self.targets
        if variable._hooks:
            g = _run_hooks(variable._hooks, g)
        if targets is not None and node in targets:
            self.captured[node] = g
        if not self.accumulate or (targets is not None and node not in targets):
            return
        if variable._grad is None:
            variable._grad = _table["copy"](g) if self.create_graph else _shared(g._data)
        elif self.create_graph:
            variable._grad = variable._grad + g
        else:
            variable._grad._data = _table["add"](variable._grad._data, g._data)
            variable._grad._cow = False
        hooks = getattr(variable, "_post_hooks", None)
        if hooks:
            for hook in list(hooks):
                hook(variable)


def _retain(node, g, create_graph):
    tensor = node.retained()
    if tensor is not None:
        if tensor._grad is None:
            tensor._grad = _table["clone"](g) if create_graph else _shared(g._data)
        else:
            tensor._grad = _sum(tensor._grad, g if create_graph else Tensor(g._data), create_graph)


def _shared(array):
    """A gradient for ``.grad``: its array may be another gradient's too, so an in-place write
    copies it first (copy-on-write)."""
    t = Tensor(array)
    t._cow = True
    return t


def _sum(a, b, create_graph):
    if create_graph:
        return a + b
    return Tensor(_table["add"](a._data, b._data))


def _run_post_hooks(node, outs, g):
    grad_outputs = tuple(g) if node.n_outputs > 1 else (g,)
    outs = tuple(outs)
    for hook in list(POST_HOOKS[node]):
        result = hook(outs, grad_outputs)
        if result is not None:
            outs = tuple(result)
    return outs


def _run_hooks(hooks, g):
    for hook in list(hooks):
        result = hook(g)
        if result is not None:
            g = result
    return g


def _check(node, index, g):
    xp_data = g._data
    xp = xp_of(xp_data)
    bad = None
    if bool(xp.isnan(xp_data).any()):
        bad = "nan"
    elif bool(xp.isinf(xp_data).any()):
        bad = "inf"
    if bad:
        where = f" (the forward op at characters {node.span[0]}-{node.span[1]})" if node.span else ""
        raise AnomalyError(f"Function '{node.name()}' returned {bad} values in its {index}th output{where}.", node)
