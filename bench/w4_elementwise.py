"""W4 elementwise: ``sum(sin(x) * exp(-x**2) + log(1 + x*x))`` forward and backward w.r.t. x.

n = 10^6 and 10^7 (--quick: 10^6). Contestants: gradcli, torch, HIPS autograd, jax (jitted)
when installed, and the floor: numpy by hand (the derivative
``(cos x - 2x sin x) exp(-x^2) + 2x / (1 + x^2)`` with in-place updates). Target: gradcli <= 1.0x
the floor; peak memory (tracemalloc, separate un-timed run) <= 2x the floor's.
"""

from __future__ import annotations

import numpy as np

from .common import Config, Report, fmt_bytes, peak_memory, peer, race

ID = "W4"
TITLE = "elementwise: sum(sin(x)*exp(-x**2)+log(1+x*x)), fwd+bwd"


def floor(x):
    x2 = x * x
    e = np.exp(-x2)
    s = np.sin(x)
    d = x2
    d += 1.0  # 1 + x^2 (x2 is no longer needed)
    y = s @ e + np.log(d).sum()
    g = np.cos(x)
    s *= x
    s *= 2.0
    g -= s  # cos x - 2x sin x
    g *= e
    t = np.divide(x, d, out=e)
    t *= 2.0
    g += t
    return y, g


def run(cfg: Config, rep: Report) -> None:
    import gradcli as G

    sizes = cfg.pick([10**6, 10**7], [10**6], [1000])
    rep.peer_notes(cfg)
    torch, autograd, jax = peer("torch", cfg), peer("autograd", cfg), peer("jax", cfg)
    for n in sizes:
        rep.say(f"n = {n:,}")
        xn = np.random.default_rng(4).standard_normal(n)
        want = floor(xn)

        def compare(label, got):
            rep.check(f"{label} value (n={n})", got[0], want[0], rtol=1e-9)
            rep.check(f"{label} grad (n={n})", got[1], want[1])

        x = G.tensor(xn, requires_grad=True)

        def g_run():
            y = (G.sin(x) * G.exp(-(x**2)) + G.log(1 + x * x)).sum()
            (gx,) = G.autograd.grad(y, (x,))
            return y.item(), gx.data

        contestants = [("gradcli", g_run)]
        compare("gradcli", g_run())

        if torch is not None:
            xt = torch.tensor(xn, requires_grad=True)

            def torch_run():
                y = (torch.sin(xt) * torch.exp(-(xt**2)) + torch.log(1 + xt * xt)).sum()
                (gx,) = torch.autograd.grad(y, (xt,))
                return y.item(), gx.numpy()

            contestants.append(("torch", torch_run))
            compare("torch", torch_run())

        if autograd is not None:
            import autograd.numpy as anp

            ag = autograd.value_and_grad(lambda v: anp.sum(anp.sin(v) * anp.exp(-(v**2)) + anp.log(1 + v * v)))
            ag_run = lambda: ag(xn)  # noqa: E731
            contestants.append(("HIPS autograd", ag_run))
            compare("HIPS autograd", ag_run())

        if jax is not None:
            import jax.numpy as jnp

            jf = jax.jit(jax.value_and_grad(lambda v: jnp.sum(jnp.sin(v) * jnp.exp(-(v**2)) + jnp.log(1 + v * v))))
            xj = jnp.asarray(xn)

            def jax_run():
                y, gx = jf(xj)
                return float(y), np.asarray(gx)

            contestants.append(("jax (jit)", jax_run))
            compare("jax (jit)", jax_run())

        contestants.append(("floor: numpy by hand", lambda: floor(xn)))
        rounds = cfg.pick(7 if n <= 10**6 else 5, 5, 1)
        times = race(contestants, rounds=rounds, warmup=1)
        med = rep.table(f"forward + backward, n={n:,}", times)
        g = med["gradcli"]
        for name in med:
            if name != "gradcli" and not name.startswith("floor"):
                rep.ratio(f"gradcli / {name} (n={n:,})", g, med[name])
        to_floor = rep.ratio(f"gradcli / floor (n={n:,})", g, med["floor: numpy by hand"])
        mem_g, mem_f = peak_memory(g_run), peak_memory(lambda: floor(xn))
        rep.say(f"peak memory (tracemalloc, input excluded): gradcli {fmt_bytes(mem_g)}, floor {fmt_bytes(mem_f)}")
        mem = {"gradcli": mem_g, "floor": mem_f}
        if autograd is not None:
            mem["HIPS autograd"] = peak_memory(ag_run)
            rep.say(f"    HIPS autograd {fmt_bytes(mem['HIPS autograd'])}")
        rep.extra[f"peak_memory_bytes_n{n}"] = mem
        rep.target(f"gradcli / floor (time, n={n:,})", to_floor, 1.0)
        rep.target(f"gradcli / floor (peak memory, n={n:,})", mem_g / mem_f, 2.0)
        del x, contestants, times
