"""W5 Hessian: f(x) = sum(x**4) + x @ A @ x + sum(sin(x)), n = 10, 100, 300, 1000 (--quick: to 300).

gradcli ``gradcli.autograd.functional.hessian`` against ``torch.autograd.functional.hessian(f, x,
vectorize=True)`` and ``torch.func.hessian``, HIPS ``autograd.hessian`` and jitted
``jax.hessian`` when installed, and the floor: the analytic Hessian in numpy,
``A + A.T + diag(12 x^2 - sin x)``. Target: gradcli <= 1.0x torch's functional hessian at every
n. The growth of each contestant's cost with n is printed (exponent of n between sizes).
"""

from __future__ import annotations

import math

import numpy as np

from .common import Config, Report, peer, race

ID = "W5"
TITLE = "Hessian of sum(x**4) + x@A@x + sum(sin(x))"


def floor(x, A):
    H = A + A.T
    H[np.diag_indices_from(H)] += 12.0 * x * x - np.sin(x)
    return H


def run(cfg: Config, rep: Report) -> None:
    import gradcli as G
    from gradcli.autograd.functional import hessian

    sizes = cfg.pick([10, 100, 300, 1000], [10, 100, 300], [4, 9])
    rep.peer_notes(cfg)
    torch, autograd, jax = peer("torch", cfg), peer("autograd", cfg), peer("jax", cfg)
    medians = {}
    for n in sizes:
        rng = np.random.default_rng(5)
        xn = rng.standard_normal(n)
        An = rng.standard_normal((n, n))
        want = floor(xn, An)

        Ag, xg = G.tensor(An), G.tensor(xn)
        fg = lambda v: (v**4).sum() + v @ Ag @ v + G.sin(v).sum()  # noqa: E731
        g_run = lambda: hessian(fg, xg).data  # noqa: E731
        contestants = [("gradcli functional.hessian", g_run)]
        rep.check(f"gradcli (n={n})", g_run(), want)

        if torch is not None:
            At, xt = torch.tensor(An), torch.tensor(xn)
            ft = lambda v: (v**4).sum() + v @ At @ v + torch.sin(v).sum()  # noqa: E731
            t_fun = lambda: torch.autograd.functional.hessian(ft, xt, vectorize=True).numpy()  # noqa: E731
            t_func_h = torch.func.hessian(ft)
            t_func = lambda: t_func_h(xt).numpy()  # noqa: E731
            contestants += [("torch functional.hessian vectorize", t_fun), ("torch.func.hessian", t_func)]
            rep.check(f"torch functional.hessian (n={n})", t_fun(), want)
            rep.check(f"torch.func.hessian (n={n})", t_func(), want)

        if autograd is not None:
            import autograd.numpy as anp

            ah = autograd.hessian(lambda v: anp.sum(v**4) + anp.dot(v, anp.dot(An, v)) + anp.sum(anp.sin(v)))
            a_run = lambda: ah(xn)  # noqa: E731
            contestants.append(("HIPS autograd.hessian", a_run))
            rep.check(f"HIPS autograd.hessian (n={n})", a_run(), want)

        if jax is not None:
            import jax.numpy as jnp

            Aj = jnp.asarray(An)
            jh = jax.jit(jax.hessian(lambda v: jnp.sum(v**4) + v @ Aj @ v + jnp.sum(jnp.sin(v))))
            xj = jnp.asarray(xn)
            j_run = lambda: np.asarray(jh(xj))  # noqa: E731
            contestants.append(("jax.hessian (jit)", j_run))
            rep.check(f"jax.hessian (n={n})", j_run(), want)

            def j_compile_run():
                # a new function each call: jax traces and compiles it again (the goal
                # counts the compile, as a one-off Hessian in a script pays it)
                fresh = jax.jit(jax.hessian(lambda v: jnp.sum(v**4) + v @ Aj @ v + jnp.sum(jnp.sin(v))))
                return np.asarray(fresh(xj))

            contestants.append(("jax.hessian (jit, compile counted)", j_compile_run))
            rep.check(f"jax.hessian with compile (n={n})", j_compile_run(), want)

        contestants.append(("floor: analytic numpy", lambda: floor(xn, An)))
        rounds = cfg.pick(15 if n <= 300 else 5, 7, 1)
        slow = {"HIPS autograd.hessian": cfg.pick(3, 3, 1)} if n >= 300 else {}
        slow["jax.hessian (jit, compile counted)"] = cfg.pick(5, 3, 1)
        times = race(contestants, rounds=rounds, warmup=1, max_rounds=slow)
        med = rep.table(f"Hessian, n={n}", times)
        medians[n] = med
        g = med["gradcli functional.hessian"]
        for name in med:
            if name != "gradcli functional.hessian" and not name.startswith("floor"):
                rep.ratio(f"gradcli / {name} (n={n})", g, med[name])
        rep.ratio(f"gradcli / floor (n={n})", g, med["floor: analytic numpy"])
        if "torch functional.hessian vectorize" in med:
            rep.target(
                f"gradcli / torch functional.hessian (n={n})", g / med["torch functional.hessian vectorize"], 1.0
            )
        else:
            rep.note(f"no torch: the n={n} target is not judged")
        if "jax.hessian (jit, compile counted)" in med:
            rep.target(
                f"goal: gradcli / jax.jit(jax.hessian) with compile (n={n})",
                g / med["jax.hessian (jit, compile counted)"],
                1.0,
            )

    if len(sizes) > 1:
        rep.say("cost growth with n (exponent p in time ~ n^p between consecutive sizes):")
        growth = {}
        for name in medians[sizes[0]]:
            parts = []
            for lo, hi in zip(sizes, sizes[1:]):
                if name in medians[lo] and name in medians[hi]:
                    p = math.log(medians[hi][name] / medians[lo][name]) / math.log(hi / lo)
                    parts.append(f"{lo}->{hi}: {medians[hi][name] / medians[lo][name]:6.1f}x (p={p:.2f})")
            growth[name] = parts
            rep.say(f"    {name:<36} " + "; ".join(parts))
        rep.extra["growth"] = growth
