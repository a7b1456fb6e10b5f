"""W2 per-node overhead: build and backward a ~20,000-node scalar graph through the Python API.

``y = y*a + sin(y)*0.5`` repeated 5,000 times (4 nodes each: mul, sin, mul, add), then
``backward``; gradients w.r.t. ``a`` and the starting ``y``. Contestants: gradcli, torch (the
same code, float64), HIPS autograd and jax (``jax.grad``, not jitted: it traces every
operation, as the others record them) when installed, and the floor: the same forward and
reverse loops by hand on Python floats. Reported as µs per node; target gradcli <= 1.0x torch,
goal 0.5x.
"""

from __future__ import annotations

import gc
import math

from .common import Config, Report, peer, race

ID = "W2"
TITLE = "per-node: build + backward of a 20,000-node scalar graph"

A0, Y0 = 0.9, 0.5


def floor(steps):
    ys = [0.0] * steps
    a, y = A0, Y0
    for i in range(steps):
        ys[i] = y
        y = y * a + math.sin(y) * 0.5
    ga, gy = 0.0, 1.0
    for i in range(steps - 1, -1, -1):
        yp = ys[i]
        ga += gy * yp
        gy *= a + 0.5 * math.cos(yp)
    return y, ga, gy


def gradcli_run(steps):
    import gradcli as G

    a = G.tensor(A0, requires_grad=True)
    y0 = G.tensor(Y0, requires_grad=True)
    y = y0
    for _ in range(steps):
        y = y * a + G.sin(y) * 0.5
    y.backward()
    return y.item(), a.grad.item(), y0.grad.item()


def torch_run(torch, steps):
    a = torch.tensor(A0, requires_grad=True, dtype=torch.float64)
    y0 = torch.tensor(Y0, requires_grad=True, dtype=torch.float64)
    y = y0
    for _ in range(steps):
        y = y * a + torch.sin(y) * 0.5
    y.backward()
    return y.item(), a.grad.item(), y0.grad.item()


def loop_fn(np_like, steps):
    def f(a, y):
        for _ in range(steps):
            y = y * a + np_like.sin(y) * 0.5
        return y

    return f


def run(cfg: Config, rep: Report) -> None:
    steps = cfg.pick(5000, 5000, 50)
    nodes = 4 * steps
    rep.say(f"{steps} steps = {nodes} nodes")
    rep.peer_notes(cfg)
    want = floor(steps)
    contestants = [("gradcli", lambda: gradcli_run(steps))]
    rep.check("gradcli (y, dy/da, dy/dy0)", gradcli_run(steps), want)

    torch = peer("torch", cfg)
    if torch is not None:
        contestants.append(("torch", lambda: torch_run(torch, steps)))
        rep.check("torch (y, dy/da, dy/dy0)", torch_run(torch, steps), want)

    # the tracing peers cost ~0.5 ms a node: in --quick they get a 1,000-step graph (µs per node
    # is what is compared); in a full run the same 5,000 steps, fewer rounds
    slow_steps = cfg.pick(steps, 1000, steps)
    if slow_steps != steps:
        rep.note(
            f"HIPS autograd and jax run {slow_steps} steps ({4 * slow_steps} nodes) in --quick; compare their µs/node"
        )
    slow_want = floor(slow_steps)
    slow = {}
    autograd = peer("autograd", cfg)
    if autograd is not None:
        import autograd.numpy as anp

        ag_vg = autograd.value_and_grad(loop_fn(anp, slow_steps), (0, 1))

        def ag_run():
            y, (ga, gy) = ag_vg(A0, Y0)
            return y, ga, gy

        name = "HIPS autograd" + ("" if slow_steps == steps else f" ({4 * slow_steps} nodes)")
        contestants.append((name, ag_run))
        slow[name] = cfg.pick(2, 2, 1)
        rep.check("HIPS autograd (y, dy/da, dy/dy0)", ag_run(), slow_want)

    jax = peer("jax", cfg)
    if jax is not None:
        import jax.numpy as jnp

        jax_vg = jax.value_and_grad(loop_fn(jnp, slow_steps), (0, 1))

        def jax_run():
            y, (ga, gy) = jax_vg(jnp.float64(A0), jnp.float64(Y0))
            return float(y), float(ga), float(gy)

        name = "jax (grad, no jit)" + ("" if slow_steps == steps else f" ({4 * slow_steps} nodes)")
        contestants.append((name, jax_run))
        slow[name] = cfg.pick(2, 2, 1)
        rep.check("jax (y, dy/da, dy/dy0)", jax_run(), slow_want)

    def gradcli_nogc():
        gc.disable()
        try:
            return gradcli_run(steps)
        finally:
            gc.enable()

    contestants.insert(1, ("gradcli, gc disabled (diagnostic)", gradcli_nogc))
    contestants.append(("floor: python floats by hand", lambda: floor(steps)))
    times = race(contestants, rounds=cfg.pick(9, 5, 1), warmup=1, max_rounds=slow, warmups={name: 0 for name in slow})
    med = rep.table(
        f"build + backward, {nodes} nodes",
        {k: v for k, v in times.items() if k not in slow},
        per=nodes,
        per_unit="node",
    )
    if slow:
        med.update(
            rep.table(
                f"build + backward, {4 * slow_steps} nodes (tracing peers, fewer rounds)",
                {k: times[k] for k in slow},
                per=4 * slow_steps,
                per_unit="node",
            )
        )
    per_node = {k: v / (4 * slow_steps if k in slow else nodes) for k, v in med.items()}
    g = per_node["gradcli"]
    for name in med:
        if name != "gradcli" and not name.startswith("floor"):
            rep.ratio(f"gradcli / {name} (per node)", g, per_node[name])
    rep.ratio("gradcli / floor (per node)", g, per_node["floor: python floats by hand"])
    rep.extra["us_per_node"] = {k: v * 1e6 for k, v in per_node.items()}
    g = med["gradcli"]
    if "torch" in med:
        rep.target("gradcli / torch (per node)", g / med["torch"], 1.0, goal=0.5)
    else:
        rep.note("no torch: the per-node target is not judged")
