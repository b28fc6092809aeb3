"""Reward functions: loaded from source text, validated before training, called with clear errors.

A reward function is Python source defining ``reward_function(params) -> float`` (SPEC §2). It runs in the
trainer's process, never on the league server. ``RewardFunction.from_source`` loads it;
``validate_reward_function`` also runs it on a few synthetic cars in a forked child under a time limit.
Every failure is a ``RewardFunctionError`` (a ``ValueError``) with ``.line`` (line in the reward function,
or None) and ``.car`` (the synthetic car's name during validation, or None). Messages:

=====================  ===========================================================================================
failure                message
=====================  ===========================================================================================
syntax error           ``Syntax error in reward_function.py, line 3: expected ':'`` + the offending line, indented
forbidden import       ``reward_function.py, line 1: import of 'os' is not allowed (allowed: math, random, numpy,
                       scipy, shapely, copy, typing, __future__)``
forbidden name         ``reward_function.py, line 4: 'open' is not allowed in a reward function``
file access            ``reward_function.py, line 4: '.save' (file access) is not allowed in a reward function``
failure while loading  ``reward_function.py failed while loading: NameError: name 'np' is not defined at line 2:
                       x = np.pi``
no function            ``reward_function.py must define a function named reward_function(params)``
not a function         ``reward_function in reward_function.py is a float, not a function``
wrong signature        ``reward_function.py, line 1: reward_function must take exactly one parameter (params), but
                       its signature is (a, b)``
exception              ``reward_function raised ZeroDivisionError: division by zero at line 5: return 1 / x``
non-numeric return     ``reward_function returned 'fast' (str), which is not a number, at line 3: return 'fast'``
NaN / inf              ``reward_function returned nan, rewards must be finite numbers, at line 3: return r``
out of range           ``reward_function returned 200000.0, outside the allowed range [-100000, 100000], at line 3:
                       return r``
timeout (validation)   ``Reward function timed out after 5.0 s on synthetic car 'start'`` (or ``while loading``)
child died             ``Reward function ended the validation process (exit code 3) on synthetic car 'start'``
=====================  ===========================================================================================

Run-time messages (exception, return value, timeout, child died) end with ``; params: x=3.2, y=0.68,
heading=12.5, progress=42.5, steps=2.0, speed=1.0, steering_angle=-15.0, ...`` (the keys of ``SUMMARY_KEYS``
present). During validation, failures of a car are prefixed with ``On synthetic car 'off track': ``. The line of
a bad return value is found by running the function once more under a line tracer (only on that error path);
the ``at line`` part is left out when that second run returns a valid value (a random reward function).

Checks like the DeepRacer console's validator: imports limited to its five modules (math, random, numpy,
scipy, shapely) plus copy, typing and __future__ (harmless, common in reward functions); the builtins
``open, exec, eval, compile, input, __import__, breakpoint`` and numpy's file functions (``np.load``,
``np.save`` ...) are refused. They catch mistakes early and are not a security boundary: the league server
never runs uploaded reward functions. Unlike the console (which insists on ``float``), any value
``float()`` accepts is a reward (ints, bools, numpy scalars), as in the simapp at run time.

Each call gets its own copy of ``params`` (the simapp passes a ``copy.deepcopy``), so a function mutating
its params cannot affect later calls or the caller. The copy is cheap: the dict and every list are fresh
copies; numbers, strings, bools and tuples of numbers (the waypoints' points) are immutable and shared;
anything else is deep-copied.
"""

from __future__ import annotations

import ast
import copy
import inspect
import math
import multiprocessing
import sys
import traceback
from collections.abc import Callable, Mapping, Sequence
from types import FrameType
from typing import Any

DEFAULT_FILENAME = "reward_function.py"
ALLOWED_IMPORTS = ("math", "random", "numpy", "scipy", "shapely", "copy", "typing", "__future__")
FORBIDDEN_NAMES = ("open", "exec", "eval", "compile", "input", "__import__", "breakpoint")
FILE_ACCESS_ATTRIBUTES = ("load", "fromfile", "genfromtxt", "loadtxt", "tofile", "savez", "save", "savetxt",
                          "memmap")
REWARD_RANGE = (-1e5, 1e5)
SUMMARY_KEYS = ("x", "y", "heading", "progress", "steps", "speed", "steering_angle", "distance_from_center",
                "track_width", "closest_waypoints", "all_wheels_on_track", "is_offtrack", "is_crashed",
                "is_reversed")


class RewardFunctionError(ValueError):
    """The reward function cannot be loaded, or failed on some params."""

    def __init__(self, message: str, line: int | None = None, car: str | None = None) -> None:
        super().__init__(message)
        self.line = line
        self.car = car


class RewardFunction:
    """A loaded reward function; call it with a params dict to get a checked float."""

    def __init__(self, source: str, function: Callable[[dict[str, Any]], Any], filename: str) -> None:
        self.source = source
        self.filename = filename
        self._function = function
        self._lines = source.splitlines()

    @classmethod
    def from_source(cls, source: str, filename: str = DEFAULT_FILENAME) -> RewardFunction:
        """Check and execute ``source``; raises ``RewardFunctionError`` naming the problem and its line."""
        tree = check_source(source, filename)
        namespace: dict[str, Any] = {"__name__": "reward_function"}
        try:
            exec(compile(tree, filename, "exec"), namespace)  # the racer's own code, in the trainer only
        except Exception as error:  # a failing module-level statement
            line = _error_line(error, filename)
            raise RewardFunctionError(
                f"{filename} failed while loading: {_describe(error)}{_where(line, source)}", line=line
            ) from error
        if "reward_function" not in namespace:
            raise RewardFunctionError(f"{filename} must define a function named reward_function(params)")
        function = namespace["reward_function"]
        if not callable(function):
            raise RewardFunctionError(
                f"reward_function in {filename} is a {type(function).__name__}, not a function"
            )
        _check_signature(function, filename)
        return cls(source, function, filename)

    def __call__(self, params: Mapping[str, Any]) -> float:
        """The function's reward for ``params`` as a finite float in [-1e5, 1e5], or ``RewardFunctionError``."""
        try:
            value = self._function(isolated_copy(params))
        except (Exception, SystemExit) as error:  # SystemExit too: sys.exit() in a reward function is a bug
            line = _error_line(error, self.filename)
            raise RewardFunctionError(
                f"reward_function raised {_describe(error)}{_where(line, self.source)}; "
                f"params: {summarise_params(params)}",
                line=line,
            ) from error
        problem = reward_problem(value)
        if problem is None:
            return float(value)
        line = self._bad_return_line(params)
        raise RewardFunctionError(
            f"reward_function {problem}{',' if line else ''}{_where(line, self.source)}; "
            f"params: {summarise_params(params)}",
            line=line,
        )

    def _bad_return_line(self, params: Mapping[str, Any]) -> int | None:
        """Run the function again under a tracer to find the ``return`` that produced a bad value."""
        code = getattr(self._function, "__code__", None)
        if code is None:
            return None
        line: int | None = None

        def local(frame: FrameType, event: str, arg: Any) -> Any:
            nonlocal line
            if event == "return" and frame.f_code is code:
                line = frame.f_lineno
            return local

        def start(frame: FrameType, event: str, arg: Any) -> Any:
            return local if frame.f_code is code else None

        previous = sys.gettrace()
        sys.settrace(start)
        try:
            value = self._function(isolated_copy(params))
        except (Exception, SystemExit):
            return None
        finally:
            sys.settrace(previous)
        return line if reward_problem(value) is not None else None


def check_source(source: str, filename: str = DEFAULT_FILENAME) -> ast.Module:
    """Parse ``source`` and apply the static checks (syntax, imports, forbidden names), without running it."""
    if not isinstance(source, str):
        raise RewardFunctionError(f"{filename} must be text, got {type(source).__name__}")
    try:
        tree = ast.parse(source, filename)
    except SyntaxError as error:
        text = (error.text or "").strip("\n").rstrip()
        shown = f"\n    {text.strip()}" if text.strip() else ""
        raise RewardFunctionError(
            f"Syntax error in {filename}, line {error.lineno}: {error.msg}{shown}", line=error.lineno
        ) from None
    except ValueError as error:  # e.g. null bytes
        raise RewardFunctionError(f"{filename} is not valid Python source: {error}") from None
    allowed = ", ".join(ALLOWED_IMPORTS)
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = ["." * node.level + (node.module or "")]
        for module in modules:
            if module.split(".")[0] not in ALLOWED_IMPORTS:
                raise RewardFunctionError(
                    f"{filename}, line {node.lineno}: import of '{module}' is not allowed (allowed: {allowed})",
                    line=node.lineno,
                )
        if isinstance(node, ast.ImportFrom):
            for alias in node.names:
                if alias.name in FILE_ACCESS_ATTRIBUTES:
                    raise _file_access(filename, node.lineno, alias.name)
        if isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            raise RewardFunctionError(
                f"{filename}, line {node.lineno}: '{node.id}' is not allowed in a reward function", line=node.lineno
            )
        if isinstance(node, ast.Attribute) and node.attr in FILE_ACCESS_ATTRIBUTES:
            raise _file_access(filename, node.lineno, node.attr)
    return tree


def reward_problem(value: Any) -> str | None:
    """What is wrong with a returned value under SPEC §2 (``float()``-able, finite, in [-1e5, 1e5]), or None."""
    try:
        reward = float(value)
    except (TypeError, ValueError, OverflowError):
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        return f"returned {shown} ({type(value).__name__}), which is not a number"
    if not math.isfinite(reward):
        return f"returned {reward}, rewards must be finite numbers"
    low, high = REWARD_RANGE
    if not low <= reward <= high:
        return f"returned {reward}, outside the allowed range [{low:.0f}, {high:.0f}]"
    return None


def summarise_params(params: Mapping[str, Any]) -> str:
    """``x=3.2, y=0.68, progress=42.5, ...``: the keys of ``SUMMARY_KEYS`` present, floats to 4 decimals."""
    parts = []
    for key in SUMMARY_KEYS:
        if key in params:
            value = params[key]
            shown = round(value, 4) if isinstance(value, float) else value
            parts.append(f"{key}={shown!r}")
    return ", ".join(parts)


def isolated_copy(params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy of ``params`` the reward function may mutate freely (same isolation as ``copy.deepcopy``).

    About 10 µs for a full SPEC §2 dict with 150 waypoints, against about 330 µs for ``copy.deepcopy``
    (benchmarks/reward_function_call.py).
    """
    return {key: _fresh(value) for key, value in params.items()}


_SCALARS = frozenset((int, float, bool, str, bytes, complex, type(None)))
_POINT_LIST_ITEMS = _SCALARS | {tuple}


def _fresh(value: Any) -> Any:
    kind = type(value)
    if kind in _SCALARS:
        return value
    if kind is list:
        # Numbers, or points as tuples of numbers (the waypoints): a shallow copy is a full copy.
        if set(map(type, value)) <= _POINT_LIST_ITEMS:
            return value.copy()
        return [_fresh(item) for item in value]
    if kind is dict:
        return {key: _fresh(item) for key, item in value.items()}
    if kind is tuple and set(map(type, value)) <= _SCALARS:
        return value
    return copy.deepcopy(value)  # numpy arrays and anything unusual


def validate_reward_function(
    source: str,
    synthetic_params: Sequence[Mapping[str, Any]],
    time_limit_s: float = 5.0,
    *,
    names: Sequence[str] | None = None,
    filename: str = DEFAULT_FILENAME,
) -> RewardFunction:
    """Load ``source`` and run it on each synthetic car in a forked child, each call under ``time_limit_s``.

    The static checks run here first; loading (module-level code) and the calls run in the child, so an
    endless loop anywhere is killed after ``time_limit_s``. ``names`` label the cars in messages (e.g.
    ``synthetic_params(track)`` from ``sim.world.params`` gives names and params); default ``#1``, ``#2`` ...
    Returns the loaded function when every call succeeds, else raises the first failure.
    """
    check_source(source, filename)  # syntax and imports need no child
    if not (isinstance(time_limit_s, int | float) and math.isfinite(time_limit_s) and time_limit_s > 0):
        raise ValueError(f"time_limit_s must be a positive number of seconds, got {time_limit_s!r}")
    cars = [dict(params) for params in synthetic_params]
    labels = list(names) if names is not None else [f"#{index + 1}" for index in range(len(cars))]
    if len(labels) != len(cars):
        raise ValueError(f"{len(labels)} names for {len(cars)} synthetic cars")

    context = multiprocessing.get_context("fork")
    receiver, sender = context.Pipe(duplex=False)
    child = context.Process(target=_validate_in_child, args=(source, filename, cars, sender), daemon=True)
    child.start()
    sender.close()
    try:
        # Step 0 is loading the module; step k >= 1 is synthetic car k - 1.
        for step in range(len(cars) + 1):
            car = labels[step - 1] if step else None
            where = f"on synthetic car '{car}'" if car is not None else f"while loading {filename}"
            suffix = f"; params: {summarise_params(cars[step - 1])}" if step else ""
            if not receiver.poll(time_limit_s):
                raise RewardFunctionError(
                    f"Reward function timed out after {float(time_limit_s)} s {where}{suffix}", car=car
                )
            try:
                outcome, message, line = receiver.recv()
            except EOFError:
                child.join()
                raise RewardFunctionError(
                    f"Reward function ended the validation process (exit code {child.exitcode}) {where}{suffix}",
                    car=car,
                ) from None
            if outcome == "error":
                prefix = f"On synthetic car '{car}': " if car is not None else ""
                raise RewardFunctionError(prefix + message, line=line, car=car)
    finally:
        if child.is_alive():
            child.kill()
        child.join()
        receiver.close()
    return RewardFunction.from_source(source, filename)  # terminates: the child just loaded it


def _validate_in_child(source: str, filename: str, cars: list[dict[str, Any]], sender: Any) -> None:
    try:
        reward_function = RewardFunction.from_source(source, filename)
        sender.send(("ok", "", None))
        for params in cars:
            reward_function(params)
            sender.send(("ok", "", None))
    except RewardFunctionError as error:
        sender.send(("error", str(error), error.line))


def _check_signature(function: Callable[..., Any], filename: str) -> None:
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        raise RewardFunctionError(f"reward_function in {filename} must be a plain Python function") from None
    parameters = list(signature.parameters.values())
    positional = (inspect.Parameter.POSITIONAL_ONLY, inspect.Parameter.POSITIONAL_OR_KEYWORD)
    if len(parameters) != 1 or parameters[0].kind not in positional:
        code = getattr(function, "__code__", None)
        line = code.co_firstlineno if code is not None and code.co_filename == filename else None
        at = f"{filename}, line {line}: " if line else ""
        raise RewardFunctionError(
            f"{at}reward_function must take exactly one parameter (params), but its signature is {signature}",
            line=line,
        )


def _file_access(filename: str, line: int, name: str) -> RewardFunctionError:
    return RewardFunctionError(
        f"{filename}, line {line}: '.{name}' (file access) is not allowed in a reward function", line=line
    )


def _describe(error: BaseException) -> str:
    text = str(error)
    return f"{type(error).__name__}: {text}" if text else type(error).__name__


def _error_line(error: BaseException, filename: str) -> int | None:
    """The innermost line of the traceback that lies in the reward function's own file."""
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename == filename]
    return frames[-1].lineno if frames else None


def _where(line: int | None, source: str) -> str:
    if line is None:
        return ""
    lines = source.splitlines()
    text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    return f" at line {line}: {text}" if text else f" at line {line}"
