"""Bounds on rendering one template field, so that no template and no user's data can take the
process's memory or hang a dispatch.

Templates loop, multiply and concatenate, over values that come from users: without bounds
``{{ 'a' * 10**10 }}`` asks for 10 GB and two nested ``range`` loops run for hours. Each field
render gets, through the sandbox's hooks (no threads, no timers, so a result never depends on the
machine's speed):

- **output**: at most ``MAX_OUTPUT`` characters, checked before the pieces are joined;
- **values**: a string, list or other collection built by an operator (``*``, ``+``, ``%``,
  ``~``), a slice, a filter or a method call holds at most ``MAX_SIZE`` characters or items, and
  an integer at most ``MAX_INT_BITS`` bits. What can grow more than linearly in one step (``*``,
  ``**``, ``%`` and ``format`` widths, ``center``/``ljust``/``indent``/``replace``/``wordwrap``,
  ``batch``/``slice`` counts) is checked *before* it is built;
- **work**: every loop iteration (recursive loops included), call (``CALL_STEPS``), filter and
  test, plus the size of every value built, sliced or searched (``in``), counts against
  ``MAX_WORK`` steps: a render that would take more than a few seconds is stopped.

Exceeding a bound raises ``LimitExceeded``, whose text says which bound; the renderer reports it
as a ``RenderError`` for that message (a permanent failure). ``lipsum`` is not available, and the
``sum`` filter adds numbers only (adding lists with it is quadratic).
"""

from __future__ import annotations

import copy
import functools
import re
import string
from collections.abc import Callable, Iterable, Iterator, Mapping
from numbers import Number
from typing import Any

from jinja2 import Template, nodes
from jinja2.compiler import CodeGenerator, Frame
from jinja2.runtime import Context, LoopContext
from jinja2.sandbox import SandboxedEnvironment

MAX_OUTPUT = 1_000_000  # characters of one rendered field
MAX_SIZE = 1_000_000  # characters or items of one value built while rendering
MAX_INT_BITS = 16_384  # about 4,900 decimal digits
MAX_WORK = 10_000_000  # steps per field: iterations, calls, characters and items built
# What a call (a macro, a method, a global) costs: a macro call takes about as long as 25 loop
# iterations, so the budget lasts a few seconds however it is spent.
CALL_STEPS = 25


class LimitExceeded(Exception):
    """A template went past one of the bounds; ``str(err)`` says which."""


_SIZED = (str, bytes, list, tuple, dict, set, frozenset)
_SEARCHED_LINEARLY = (str, bytes, list, tuple)


def _size(value: Any) -> int:
    return len(value) if isinstance(value, _SIZED) else 1


def _too_big(what: str, size: int) -> LimitExceeded:
    return LimitExceeded(
        f"{what} would build {size:,} characters or items; the limit is {MAX_SIZE:,}"
    )


# A filter name the generated code turns into ``environment.counted(...)``: the iterable of a
# ``for`` loop, counted against the work budget as it is consumed (Jinja allows no custom nodes).
_COUNTED = "nudge_counted_loop"


class _BoundedCodeGenerator(CodeGenerator):
    """Generated code that routes loops, ``~`` and ``in`` through the environment's bounds."""

    def visit_For(self, node: nodes.For, frame: Frame) -> None:
        counted = copy.copy(node)
        counted.iter = nodes.Filter(node.iter, _COUNTED, [], [], None, None, lineno=node.lineno)
        counted.iter.set_environment(self.environment)
        super().visit_For(counted, frame)

    def visit_Filter(self, node: nodes.Filter, frame: Frame) -> None:
        if node.name != _COUNTED:
            super().visit_Filter(node, frame)
            return
        self.write("environment.counted(")
        self.visit(node.node, frame)  # type: ignore[arg-type]
        self.write(")")

    def visit_Concat(self, node: nodes.Concat, frame: Frame) -> None:
        self.write("environment.built(")
        super().visit_Concat(node, frame)
        self.write(")")

    def visit_Getitem(self, node: nodes.Getitem, frame: Frame) -> None:
        if not isinstance(node.arg, nodes.Slice):  # slices bypass ``environment.getitem``
            super().visit_Getitem(node, frame)
            return
        self.write("environment.built(")
        super().visit_Getitem(node, frame)
        self.write(")")

    def visit_Operand(self, node: nodes.Operand, frame: Frame) -> None:
        if node.op not in ("in", "notin"):
            super().visit_Operand(node, frame)
            return
        self.write(" in " if node.op == "in" else " not in ")
        self.write("environment.searched(")
        self.visit(node.expr, frame)
        self.write(")")


class BoundedEnvironment(SandboxedEnvironment):
    """A sandbox whose renders are bounded (see the module docstring); render with
    ``render_bounded``. One render at a time per environment (the budget is the environment's)."""

    code_generator_class = _BoundedCodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%"})

    def __init__(self, **options: Any):
        super().__init__(**options)
        self.globals.pop("lipsum", None)
        self.filters = {name: self._bounded(name, f) for name, f in self.filters.items()}
        self.tests = {name: self._bounded(name, f) for name, f in self.tests.items()}
        self._left = MAX_WORK

    def render_bounded(self, template: Template, variables: Mapping[str, Any]) -> str:
        """``template`` rendered with ``variables``, within every bound.

        The pieces are collected before they are joined: their number is bounded by the work
        budget (every loop iteration is counted), their total length is checked before the join.
        (Streaming through ``generate()`` would cost a third more per message.)"""
        self._left = MAX_WORK
        parts = list(template.root_render_func(template.new_context(dict(variables))))
        length = sum(map(len, parts))
        if length > MAX_OUTPUT:
            raise LimitExceeded(
                f"the rendered text would be {length:,} characters; the limit is {MAX_OUTPUT:,}"
            )
        return "".join(parts)

    # --- the work budget, called from generated code ------------------------------------------

    def charge(self, steps: int) -> None:
        self._left -= steps
        if self._left < 0:
            raise LimitExceeded(
                f"rendering takes more than {MAX_WORK:,} steps (loop iterations, calls, and "
                "characters or items built or searched)"
            )

    def counted(self, iterable: Iterable[Any]) -> Iterator[Any]:
        for item in iterable:
            self.charge(1)
            yield item

    def built(self, value: Any) -> Any:
        """``value``, refused when it is past the size bounds, its size charged."""
        if isinstance(value, int) and value.bit_length() > MAX_INT_BITS:
            raise LimitExceeded(f"an integer would have more than {MAX_INT_BITS:,} bits")
        size = _size(value)
        if size > MAX_SIZE:
            raise _too_big("a value", size)
        self.charge(size)
        return value

    def searched(self, value: Any) -> Any:
        self.charge(len(value) if isinstance(value, _SEARCHED_LINEARLY) else 1)
        return value

    # --- the sandbox's hooks ------------------------------------------------------------------

    def call_binop(self, context: Context, operator: str, left: Any, right: Any) -> Any:
        if operator == "*":
            _check_repeat(left, right)
        elif operator == "**":
            _check_power(left, right)
        elif operator == "%" and isinstance(left, str):
            _check_printf(left, right if isinstance(right, tuple) else (right,))
        return self.built(super().call_binop(context, operator, left, right))

    def call(self, context: Context, obj: Any, /, *args: Any, **kwargs: Any) -> Any:
        if isinstance(obj, LoopContext) and args:  # a recursive loop's ``loop(children)``
            args = (self.counted(args[0]), *args[1:])
        _check_method(obj, args)
        self.charge(CALL_STEPS + sum(_size(a) for a in args))
        return self.built(super().call(context, obj, *args, **kwargs))

    def wrap_str_format(self, value: Any) -> Callable[..., str] | None:
        wrapped = super().wrap_str_format(value)
        if wrapped is None:
            return None
        template: str = value.__self__

        def bounded(*args: Any, **kwargs: Any) -> str:
            _check_format_spec(template, [*args, *kwargs.values()])
            return wrapped(*args, **kwargs)

        return bounded

    def _bounded(self, name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        """``function`` (a filter or test) with its pre-check, its result bounded and charged."""
        skip = 1 if getattr(function, "jinja_pass_arg", None) else 0
        check = _FILTER_CHECKS.get(name)

        @functools.wraps(function)
        def bounded(*args: Any, **kwargs: Any) -> Any:
            own = args[skip:]
            if check is not None and own:
                check(*own, **kwargs)
            self.charge(1 + sum(_size(a) for a in own[1:]))
            return self.built(function(*args, **kwargs))

        return bounded


# --- checks before a value is built ----------------------------------------------------------


def _check_repeat(left: Any, right: Any) -> None:
    if isinstance(left, int) and isinstance(right, int):
        if left.bit_length() + right.bit_length() > MAX_INT_BITS:
            raise LimitExceeded(f"'*' would make an integer of more than {MAX_INT_BITS:,} bits")
        return
    count, sequence = (left, right) if isinstance(left, int) else (right, left)
    if isinstance(count, int) and isinstance(sequence, _SIZED):
        _check_width("'*'", len(sequence) * count)


def _check_power(base: Any, exponent: Any) -> None:
    growing = isinstance(base, int) and isinstance(exponent, int) and abs(base) > 1
    if growing and exponent > 0 and base.bit_length() * exponent > MAX_INT_BITS:
        raise LimitExceeded(f"'**' would make an integer of more than {MAX_INT_BITS:,} bits")


def _check_width(what: str, size: Any) -> None:
    if isinstance(size, int) and size > MAX_SIZE:
        raise _too_big(what, size)


_PRINTF_SPEC = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")


def _check_printf(template: str, args: tuple[Any, ...]) -> None:
    """``template % args`` (and the ``format`` filter): no width or precision past the limit."""
    for match in _PRINTF_SPEC.finditer(template):
        for number in match.groups():
            if number == "*":
                for arg in args:
                    _check_width("a '%' width", arg)
            elif number:
                _check_width("a '%' width", int(number))


def _check_format_spec(template: str, args: list[Any]) -> None:
    """``str.format``: no width or precision past the limit, nested ones included."""
    for _, _, spec, _ in string.Formatter().parse(template):
        if not spec:
            continue
        for number in re.findall(r"\d+", spec):
            _check_width("a format width", int(number))
        if "{" in spec:
            for arg in args:
                _check_width("a format width", arg)


_PADDING_METHODS = frozenset({"ljust", "rjust", "center", "zfill"})


def _check_method(obj: Any, args: tuple[Any, ...]) -> None:
    """String methods whose result grows with an argument, checked before they run."""
    owner = getattr(obj, "__self__", None)
    if not isinstance(owner, str) or not args:
        return
    name = getattr(obj, "__name__", "")
    if name in _PADDING_METHODS:
        _check_width(f"'{name}'", args[0])
    elif name == "expandtabs" and isinstance(args[0], int):
        _check_width("'expandtabs'", len(owner) + owner.count("\t") * args[0])
    elif name == "replace" and len(args) >= 2:
        _check_replace(owner, *args)


def _check_replace(text: Any, old: Any, new: Any, count: Any = None, *_: Any) -> None:
    if not isinstance(old, str) or not isinstance(new, str):
        return
    text = str(text)
    found = text.count(old) if old else len(text) + 1
    if isinstance(count, int) and count >= 0:
        found = min(found, count)
    _check_width("'replace'", len(text) + found * (len(new) - len(old)))


def _check_indent(text: Any, width: Any = 4, *_: Any, **__: Any) -> None:
    step = len(width) if isinstance(width, str) else width
    if isinstance(step, int):
        _check_width("'indent'", len(str(text)) + (str(text).count("\n") + 1) * step)


def _check_wordwrap(text: Any, width: Any = 79, *args: Any, **kwargs: Any) -> None:
    wrapstring = kwargs.get("wrapstring", args[1] if len(args) > 1 else None)
    if isinstance(wrapstring, str) and len(wrapstring) > 1:  # a line break per character, at most
        _check_width("'wordwrap'", (len(str(text)) + 1) * len(wrapstring))


def _check_sum(iterable: Any, attribute: Any = None, start: Any = 0, **_: Any) -> None:
    if not isinstance(start, Number):
        raise LimitExceeded("the 'sum' filter adds numbers only; join lists with a loop")


_FILTER_CHECKS: dict[str, Callable[..., None]] = {
    "center": lambda value, width=80, **_: _check_width("'center'", width),
    "indent": _check_indent,
    "replace": lambda s, old, new, count=None, **_: _check_replace(s, old, new, count),
    "wordwrap": _check_wordwrap,
    "format": lambda value, *args, **_: _check_printf(str(value), args),
    "batch": lambda value, linecount, *_, **__: _check_width("'batch'", linecount),
    "slice": lambda value, slices, *_, **__: _check_width("'slice'", slices),
    "sum": _check_sum,
}
