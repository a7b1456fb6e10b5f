"""Non-finite numbers on request (SPEC §3): ``--detect-anomaly``, ``--strict``, and a note
without them.

``guarded(command, spec, **options)`` runs a command function of ``commands``:

- with ``spec.detect_anomaly`` the whole command runs under ``autograd.detect_anomaly``: the
  interpreter checks every operation's output as the program runs (forward) and the engine every
  gradient (backward); the first NaN or infinity is a ``nonfinite`` error (exit 1) naming the
  operation and pointing at its span in the program text;
- with ``spec.strict`` a NaN or infinity anywhere in the output, a gradient, a Jacobian, ... is a
  ``nonfinite`` error (exit 1);
- without either, inf and nan stay values; one note on stderr names the first operation that
  produced one.  Finding it costs a second run (with the same random numbers) under
  ``detect_anomaly``, paid only when the answer holds a non-finite number.
"""

from __future__ import annotations

import re
import warnings

from .errors import GradcliError

_BAD = {"nan": "NaN", "inf": "infinity"}


def guarded(command, spec, **options):
    """``command(spec, **options)`` with the element limit set and non-finite numbers handled."""
    from . import limits

    limits.set_max_elements(getattr(spec, "max_elements", None))
    limits.max_elements()  # a malformed GRADCLI_MAX_ELEMENTS is an error at once
    detect, strict = bool(getattr(spec, "detect_anomaly", False)), bool(getattr(spec, "strict", False))
    saved = _rng_state()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # numpy's "degrees of freedom <= 0": the note says it
        return _guarded(command, spec, options, detect, strict, saved)


def _guarded(command, spec, options, detect, strict, saved):
    result = _run(command, spec, options) if detect else command(spec, **options)
    if getattr(result, "command", None) == "check":
        return result  # check reports non-finite derivatives itself (a failure, exit 1)
    found = find_nonfinite(result)
    if found is None:
        return result
    where, what = found
    origin = None
    if not detect:
        _set_rng_state(saved)
        try:
            _run(command, spec, options)
        except GradcliError as err:
            if err.kind == "nonfinite":
                origin = err
        except Exception:  # noqa: BLE001 - only a diagnosis; the answer stands
            origin = None
    if strict:
        message = f"--strict: {where} holds {what}"
        if origin is not None:
            error = GradcliError(
                "nonfinite", f"{message}; {origin.message}", origin.line, origin.column, origin.span, origin.source
            )
            raise error
        raise GradcliError("nonfinite", message)
    if origin is not None:
        at = f" at line {origin.line}, column {origin.column}" if origin.line is not None else ""
        result.notes.append(
            f"note: {where} holds {what}; first: {origin.message}{at} (--detect-anomaly "
            "stops there, --strict makes it an error)"
        )
    else:
        result.notes.append(f"note: {where} holds {what}; --strict makes it an error")
    return result


def _run(command, spec, options):
    from .autograd import AnomalyError, detect_anomaly

    try:
        with detect_anomaly():
            return command(spec, **options)
    except AnomalyError as exc:
        raise backward_error(exc, spec.program) from None


def backward_error(exc, source) -> GradcliError:
    """The engine's anomaly (a node's backward returned NaN/inf) as a ``nonfinite`` error at the
    span of the forward operation that made the node."""
    node = getattr(exc, "node", None)
    match = re.search(r"returned (nan|inf) values", str(exc))
    bad = _BAD.get(match.group(1), "a non-finite number") if match else "a non-finite number"
    name = node.name() if node is not None else "a backward function"
    error = GradcliError(
        "nonfinite", f"{name} (the backward of {_op_at(source, getattr(node, 'span', None))}) produced {bad}"
    )
    span = getattr(node, "span", None)
    if span is not None and source is not None:
        error.locate(source, span)
    return error


def _op_at(source, span) -> str:
    if source is None or span is None:
        return "an operation"
    text = source[span[0] : span[1]]
    text = text if len(text) <= 40 else text[:37] + "..."
    return f"'{_printable(text)}'"


def _printable(text: str) -> str:
    return "".join(c if c.isprintable() else " " for c in text)


def forward_error(what: str, out, operands) -> GradcliError | None:
    """The ``nonfinite`` error for an operation whose output holds NaN/inf (None when finite)."""
    bad = first_bad(out)
    if bad is None:
        return None
    received = next((b for b in (first_bad(o) for o in operands) if b is not None), None)
    if received is not None:
        return GradcliError("nonfinite", f"{what} received {_BAD[received]} from its operands (forward)")
    return GradcliError("nonfinite", f"{what} produced {_BAD[bad]} (forward)")


def input_error(name: str, value) -> GradcliError | None:
    bad = first_bad(value)
    return None if bad is None else GradcliError("nonfinite", f"the value of input '{name}' holds {_BAD[bad]}")


def first_bad(value) -> str | None:
    """ "nan", "inf" or None for a Tensor, array or number."""
    data = value
    if not isinstance(value, (int, float)):
        data = getattr(value, "_data", None)  # a Tensor's array (``.data`` is a Tensor)
        data = getattr(value, "data", value) if data is None else data
    if isinstance(data, bool) or data is None:
        return None
    if isinstance(data, (int, float)):
        return None if data - data == 0 else ("nan" if data != data else "inf")
    try:
        from .backend import xp_of

        xp = xp_of(data)
        kind = getattr(getattr(data, "dtype", None), "kind", "")
        if kind not in "fc":
            return None
        if bool(xp.isfinite(data).all()):
            return None
        return "nan" if bool(xp.isnan(data).any()) else "inf"
    except (TypeError, ValueError, AttributeError):
        return None


def find_nonfinite(result):
    """``(where, what)`` for the first non-finite number in a command's result, else None."""
    import numpy as np

    places = [("the output", result.value)]
    for key, value in result.extra.items():
        places.append((_label(key), value))
    for where, value in places:
        stack = [(where, value)]
        while stack:
            where, item = stack.pop()
            if isinstance(item, dict):
                if "name" in item and "value" in item:  # a backward record
                    name = item["name"]
                    stack.extend([(f"the grad of '{name}'", item.get("grad")), (f"'{name}'", item.get("value"))])
                    continue
                join = "," if where.endswith("'") and " for '" in where else " for "
                stack.extend((f"{where}{join}'{k}'", v) for k, v in reversed(list(item.items())))
            elif isinstance(item, (list, tuple)):
                stack.extend((where, v) for v in reversed(item))
            elif isinstance(item, (float, np.ndarray, np.floating)):
                bad = first_bad(np.asarray(item))
                if bad is not None:
                    return where, _BAD[bad]
    return None


def _label(key: str) -> str:
    return {
        "grads": "the gradient",
        "jacobian": "the Jacobian",
        "hessian": "the Hessian",
        "derivative": "the derivative",
        "tensors": "a tensor",
        "max_abs_error": "check's error",
        "max_rel_error": "check's relative error",
    }.get(key, f"'{key}'")


def _rng_state():
    """The state of ``rand``/``randn``'s generator; None when none is made yet (it is made on first
    use: asking for it here would import numpy.random on every start)."""
    from .constructors import _random

    generator = _random._generator
    return None if generator is None else generator.bit_generator.state


def _set_rng_state(state):
    """Put ``rand``/``randn`` back where they were, so the second run draws the same numbers (a
    generator made during the first run starts again from the state it was made with)."""
    from .constructors import _random

    generator = _random._generator
    if generator is not None:
        generator.bit_generator.state = state if state is not None else _random.made_with
