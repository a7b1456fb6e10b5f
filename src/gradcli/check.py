"""``gradcli check``: analytic derivatives against central finite differences, element by element.

For an input ``x`` of ``n`` elements, the analytic Jacobian of the output comes from one batched
backward pass (``is_grads_batched``; its rows weighted by a fixed random vector when the
Jacobian would be large), the numerical one from ``2n`` evaluations of the program at
``x ± eps·e_k`` — in float64 even for a float32 program, so the differences do not drown in
float32 rounding.  An element fails when ``|analytic - numerical| > atol + rtol·|numerical|`` or
either side is not finite (NaN and infinities are failures, never dropped from a maximum).

Above ``FULL`` elements an input gets PyTorch's fast mode instead: one comparison along a random
direction over all its elements, then element by element only where it matters — the
largest analytic entries, a random sample, the non-finite ones, and, when the direction
disagrees, the culprits found by bisection (halving the set of elements the direction moves).
A 200×200 input then takes a few dozen evaluations, not 80 000.

``--order 2`` checks the gradient the same way: the function checked is
``x -> d(v·output)/d(inputs)`` (``v`` = 1 for a scalar output, else a fixed random vector).
"""

from __future__ import annotations

import math

import numpy as np

from .errors import GradcliError

EPS, ATOL, RTOL = 1e-6, 1e-5, 1e-3  # PyTorch's gradcheck defaults
FULL = 2048  # inputs up to this many elements: every element
MAX_JACOBIAN = 1_000_000  # analytic Jacobians built whole up to this many numbers
WORST = 3  # elements reported per input
SAMPLE = 8  # fast mode: largest and random elements checked one by one


def validate(order, eps, atol, rtol):
    """Usage errors for the options (exit 2)."""
    if order not in (1, 2):
        raise GradcliError(
            "option", f"--order {order}: check compares first (--order 1) or second (--order 2) derivatives"
        )
    if not (math.isfinite(eps) and eps > 0):
        raise GradcliError("option", f"--eps {eps!r}: the finite-difference step must be a positive number")
    for flag, value in (("--atol", atol), ("--rtol", rtol)):
        if not (math.isfinite(value) and value >= 0):
            raise GradcliError("option", f"{flag} {value!r}: a tolerance must be a number >= 0")


def evaluations(run, names, order=1) -> int:
    """How many times the program will run (the numbers the progress bar counts)."""
    total = 0
    for name in names:
        n = int(np.prod(run.inputs[name].shape, dtype=np.int64))
        total += 2 * n if n <= FULL else _fast_budget(n)
    return total


def _fast_budget(n):
    depth = max(1, math.ceil(math.log2(n)))
    return 2 + 4 * SAMPLE + WORST * (2 + 4 * depth)


def compare(run, names, order=1, eps=EPS, atol=ATOL, rtol=RTOL, progress=None) -> dict:
    """Check the derivatives of ``run`` (a ``commands._Run``) w.r.t. ``names``.

    Returns ``{"ok", "max_abs_error", "max_rel_error", "atol", "rtol", "eps", "order",
    "inputs": {name: {...}}}`` (SPEC §4); ``progress(k)`` is called after each evaluation.
    """
    validate(order, eps, atol, rtol)
    problem = _Problem(run, names, order)
    tick = progress or (lambda k=1: None)
    inputs = {}
    for name in names:
        if problem.numel(name) <= FULL and problem.size * problem.numel(name) <= MAX_JACOBIAN:
            inputs[name] = _full(problem, name, eps, atol, rtol, tick, weighted=False)
        elif problem.numel(name) <= FULL:
            inputs[name] = _full(problem, name, eps, atol, rtol, tick, weighted=True)
        else:
            inputs[name] = _fast(problem, name, eps, atol, rtol, tick)
    ok = all(entry["ok"] for entry in inputs.values())
    return {
        "ok": ok,
        "max_abs_error": _max(e["max_abs_error"] for e in inputs.values()),
        "max_rel_error": _max(e["max_rel_error"] for e in inputs.values()),
        "atol": atol,
        "rtol": rtol,
        "eps": eps,
        "order": order,
        "numerical_dtype": "float64",
        "inputs": inputs,
    }


# ------------------------------------------------------------------------------------------


class _Problem:
    """The function whose Jacobian is checked, as flat arrays: the program's output (order 1) or
    its gradient (order 2); analytic at the program's dtype, numerical in float64."""

    def __init__(self, run, names, order):
        import gradcli as G

        from .backend import to_numpy

        self.G, self.run, self.names, self.order = G, run, list(names), order
        self.device = run.spec.device
        self.base = {n: np.asarray(to_numpy(t.detach()._data), dtype=np.float64) for n, t in run.inputs.items()}
        # every evaluation draws the same rand()/randn() numbers, or differences would be noise
        self.random_seed = run.spec.seed if run.spec.seed is not None else 0
        out = self._evaluate(run.inputs, run.spec.dtype)
        self.rng = np.random.default_rng(0)
        if order == 2:
            shape = tuple(out.shape)
            self.seed = np.ones(shape) if int(np.prod(shape)) == 1 else self.rng.standard_normal(shape)
            self.outputs = self._gradients(run.inputs, run.spec.dtype, create_graph=True)
        else:
            self.seed = None
            self.outputs = [out]
        self.sizes = [int(np.prod(o.shape, dtype=np.int64)) for o in self.outputs]
        self.size = sum(self.sizes)
        # which input each flat position of a (second-order) output belongs to, for labels
        self.parts = list(zip(self.names, self.sizes)) if order == 2 else [("out", self.size)]

    def numel(self, name) -> int:
        return int(self.base[name].size)

    def _evaluate(self, inputs, dtype):
        run = self.run
        self.G.manual_seed(self.random_seed)
        with np.errstate(all="ignore"):
            return run._run(run.program, inputs, run.functions or None, dtype=dtype, device=self.device).output

    def _gradients(self, inputs, dtype, create_graph):
        G = self.G
        out = self._evaluate(inputs, dtype)
        wanted = [inputs[n] for n in self.names]
        if not getattr(out, "requires_grad", False):
            return [G.zeros(*x.shape, dtype=dtype) if x.shape else G.tensor(0.0, dtype=dtype) for x in wanted]
        seed = G.tensor(self.seed, dtype=dtype, device=self.device)
        grads = G.autograd.grad([out], wanted, [seed], create_graph=create_graph, allow_unused=True)
        return [
            g if g is not None else (G.zeros(*x.shape, dtype=dtype) if x.shape else G.tensor(0.0, dtype=dtype))
            for g, x in zip(grads, wanted)
        ]

    def value(self, name, flat) -> np.ndarray:
        """The checked function, flat, in float64, with ``name`` set to ``flat``."""
        G = self.G
        from .backend import to_numpy

        inputs = {}
        for n, array in self.base.items():
            data = flat.reshape(array.shape) if n == name else array
            inputs[n] = G.tensor(data, dtype="float64", device=self.device)
        if self.order == 1:
            with G.no_grad():
                outs = [self._evaluate(inputs, "float64")]
        else:
            for n in self.names:
                inputs[n].requires_grad_()
            outs = self._gradients(inputs, "float64", create_graph=False)
        return np.concatenate([np.asarray(to_numpy(o.detach()._data), dtype=np.float64).ravel() for o in outs])

    def analytic(self, name, weights=None) -> np.ndarray:
        """Rows of the Jacobian w.r.t. ``name``: all of them (``weights`` None, one batched
        backward pass), or the one row ``weights · J``."""
        G = self.G
        from .backend import to_numpy

        x = self.run.inputs[name]
        dtype = self.run.spec.dtype
        used = [(o, k) for k, o in enumerate(self.outputs) if getattr(o, "requires_grad", False)]
        rows = 1 if weights is not None else self.size
        if not used:
            return np.zeros((rows, self.numel(name)))
        offsets = np.cumsum([0] + self.sizes)
        seeds = []
        for o, k in used:
            lo, hi = offsets[k], offsets[k + 1]
            if weights is None:
                block = np.zeros((self.size, hi - lo))
                block[lo:hi] = np.eye(hi - lo)
                seeds.append(G.tensor(block.reshape((self.size,) + tuple(o.shape)), dtype=dtype, device=self.device))
            else:
                seeds.append(G.tensor(weights[lo:hi].reshape(tuple(o.shape)), dtype=dtype, device=self.device))
        try:
            (g,) = G.autograd.grad(
                [o for o, _ in used], [x], seeds, retain_graph=True, allow_unused=True, is_grads_batched=weights is None
            )
        except RuntimeError as exc:
            raise GradcliError("autograd", str(exc)) from None
        if g is None:
            return np.zeros((rows, self.numel(name)))
        return np.asarray(to_numpy(g.detach()._data), dtype=np.float64).reshape(rows, self.numel(name))

    def label(self, name, k, row=None) -> str:
        """``x[0, 1]``; with a row of a non-scalar output ``∂out[2]/∂x[0]``; second order ``∂²/∂y[1]∂x[0]``."""
        element = _element(name, self.base[name].shape, k)
        if row is None:
            return element
        for part, size in self.parts:
            if row < size:
                shape = self.run.output.shape if self.order == 1 else self.base[part].shape
                if self.order == 1:
                    return f"∂{_element(part, shape, row)}/∂{element}"
                return f"∂²/∂{_element(part, shape, row)}∂{element}"
            row -= size
        return element  # pragma: no cover - rows are within the parts


def _element(name, shape, k) -> str:
    if not shape:
        return name
    return f"{name}[{', '.join(map(str, np.unravel_index(k, shape)))}]"


def _index(shape, k) -> list:
    return [int(i) for i in np.unravel_index(k, shape)] if shape else []


def _max(values) -> float:
    values = [float(v) for v in values]
    if any(math.isnan(v) for v in values):
        return math.nan
    return max(values, default=0.0)


def _errors(analytic, numerical, atol, rtol):
    """abs error, rel error, bad mask, and how far beyond tolerance (inf for non-finite)."""
    with np.errstate(all="ignore"):
        finite = np.isfinite(analytic) & np.isfinite(numerical)
        absolute = np.where(finite, np.abs(analytic - numerical), np.nan)
        relative = np.where(finite, absolute / np.maximum(np.abs(numerical), np.finfo(np.float64).tiny), np.nan)
        relative = np.where(finite & (absolute == 0), 0.0, relative)
        bad = ~finite | (absolute > atol + rtol * np.abs(numerical))
        excess = np.where(finite, absolute / (atol + rtol * np.abs(numerical) + 1e-300), np.inf)
    return absolute, relative, bad, excess


def _entry(problem, name, analytic, numerical, positions, atol, rtol, weighted, how):
    """The per-input report from the elements checked one by one (``positions``: (row, k))."""
    absolute, relative, bad, excess = _errors(analytic, numerical, atol, rtol)
    order = sorted(range(len(positions)), key=lambda i: (-excess[i], positions[i]))
    shape = problem.base[name].shape
    worst = []
    full_rows = problem.size > 1 and not weighted
    for i in order[:WORST]:
        row, k = positions[i]
        item = {
            "index": _index(shape, k),
            "analytic": float(analytic[i]),
            "numerical": float(numerical[i]),
            "abs_error": float(absolute[i]),
            "rel_error": float(relative[i]),
            "ok": not bool(bad[i]),
            "label": problem.label(name, k, row if full_rows else None),
        }
        if full_rows:
            item["output_index"] = int(row)
        worst.append(item)
    return {
        "ok": not bool(bad.any()),
        "max_abs_error": _max(absolute) if len(absolute) else 0.0,
        "max_rel_error": _max(relative) if len(relative) else 0.0,
        "failed": int(bad.sum()),
        "nonfinite": int((~(np.isfinite(analytic) & np.isfinite(numerical))).sum()),
        "elements": problem.numel(name),
        "checked": how,
        "weighted": weighted,
        "worst": worst,
    }


def _full(problem, name, eps, atol, rtol, tick, weighted):
    """Every element of ``name``: 2n evaluations; the whole Jacobian, or ``w·J`` when large."""
    n = problem.numel(name)
    weights = problem.rng.standard_normal(problem.size) if weighted else None
    analytic = problem.analytic(name, weights)  # (rows, n)
    numerical = np.empty_like(analytic)
    flat = problem.base[name].ravel().copy()
    for k in range(n):
        original = flat[k]
        flat[k] = original + eps
        plus = problem.value(name, flat)
        flat[k] = original - eps
        minus = problem.value(name, flat)
        flat[k] = original
        with np.errstate(all="ignore"):
            column = (plus - minus) / (2 * eps)
        numerical[:, k] = column if weights is None else weights @ column
        tick(2)
    rows = analytic.shape[0]
    positions = [(r, k) for r in range(rows) for k in range(n)]
    return _entry(problem, name, analytic.ravel(), numerical.ravel(), positions, atol, rtol, weighted, "all")


def _fast(problem, name, eps, atol, rtol, tick):
    """A random direction over every element, then chosen elements one by one."""
    n = problem.numel(name)
    rng = problem.rng
    weights = np.ones(1) if problem.size == 1 else rng.standard_normal(problem.size)
    gradient = problem.analytic(name, weights)[0]
    flat = problem.base[name].ravel().copy()

    def along(direction):
        with np.errstate(all="ignore"):
            plus = weights @ problem.value(name, flat + eps * direction)
            minus = weights @ problem.value(name, flat - eps * direction)
            tick(2)
            return float((plus - minus) / (2 * eps))

    def element(k):
        step = np.zeros(n)
        step[k] = 1.0
        return along(step)

    def directional(indices):
        # random signs, not normal numbers: every element moves by 1/sqrt(len), none by chance ~0
        direction = np.zeros(n)
        direction[indices] = rng.choice((-1.0, 1.0), size=len(indices)) / math.sqrt(len(indices))
        with np.errstate(all="ignore"):
            analytic = float(gradient[indices] @ direction[indices])
        numerical = along(direction)
        return analytic, numerical, float(_errors(np.array([analytic]), np.array([numerical]), atol, rtol)[3][0])

    nonfinite = np.flatnonzero(~np.isfinite(gradient))
    finite = np.flatnonzero(np.isfinite(gradient))
    chosen = list(nonfinite[:WORST])
    magnitude = np.abs(np.where(np.isfinite(gradient), gradient, 0.0))
    chosen += [int(k) for k in np.argsort(-magnitude, kind="stable")[:SAMPLE]]
    chosen += [int(k) for k in rng.choice(n, size=min(SAMPLE, n), replace=False)]
    direction = {"analytic": None, "numerical": None, "ok": True}
    if len(finite):
        analytic, numerical, excess = directional(finite)
        direction = {"analytic": analytic, "numerical": numerical, "ok": bool(excess <= 1)}
        remaining = finite
        for _ in range(WORST):
            if excess <= 1:
                break
            suspects = remaining
            while len(suspects) > 1:
                half = len(suspects) // 2
                left, right = suspects[:half], suspects[half:]
                suspects = left if directional(left)[2] >= directional(right)[2] else right
            chosen.append(int(suspects[0]))
            remaining = remaining[remaining != suspects[0]]
            if not len(remaining):
                break
            excess = directional(remaining)[2]
    chosen = list(dict.fromkeys(int(k) for k in chosen))
    numerical = np.array([element(k) for k in chosen])
    entry = _entry(
        problem, name, gradient[chosen], numerical, [(0, k) for k in chosen], atol, rtol, problem.size > 1, "sampled"
    )
    entry["checked_elements"] = len(chosen)
    entry["direction"] = direction
    entry["ok"] = entry["ok"] and direction["ok"] and not len(nonfinite)
    if len(nonfinite):
        entry["failed"] = max(entry["failed"], int(len(nonfinite)))
        entry["nonfinite"] = max(entry["nonfinite"], int(len(nonfinite)))
        entry["max_abs_error"] = entry["max_rel_error"] = math.nan
    return entry
