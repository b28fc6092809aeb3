"""Reward functions: loaded from source text, validated before training, called with clear errors.

A reward function is Python source defining ``reward_function(params) -> float`` (SPEC §2). It runs in the
trainer's process (never on the league server). Failures are ``RewardFunctionError``s whose message names
the line of the reward function and, at run time, the params that caused it:

====================  ==================================================================================
failure               message (start)
====================  ==================================================================================
syntax error          ``Syntax error in reward_function.py, line 3: invalid syntax``
missing function      ``reward_function.py must define a function named reward_function(params)``
wrong signature       ``reward_function must take exactly one parameter (params), it takes 2: (a, b)``
forbidden import      ``reward_function.py, line 1: import of 'os' is not allowed (allowed: math, ...)``
forbidden builtin     ``reward_function.py, line 4: 'open' is not allowed in a reward function``
exception             ``reward_function raised ZeroDivisionError: division by zero at line 5: ...``
non-numeric return    ``reward_function returned 'fast' (str), which is not a number``
NaN / inf             ``reward_function returned nan: rewards must be finite numbers``
out of range          ``reward_function returned 200000.0, outside the allowed range [-100000, 100000]``
timeout               ``reward_function did not finish within 5.0 s on synthetic car 'start'``
====================  ==================================================================================

Run-time messages end with ``; params: x=…, y=…, progress=…, steps=…, speed=…, steering_angle=…``.
The import and builtin checks mirror the DeepRacer console's validator; they catch mistakes early and are
not a security boundary.
"""

from __future__ import annotations

import ast
import inspect
import math
import multiprocessing
import traceback
from collections.abc import Callable, Mapping, Sequence
from typing import Any

DEFAULT_FILENAME = "reward_function.py"
ALLOWED_IMPORTS = ("math", "random", "numpy", "scipy", "shapely")
FORBIDDEN_NAMES = ("open", "exec", "eval", "compile", "input", "__import__", "breakpoint")
REWARD_RANGE = (-1e5, 1e5)
SUMMARY_KEYS = ("x", "y", "heading", "progress", "steps", "speed", "steering_angle", "distance_from_center",
                "all_wheels_on_track", "is_offtrack")


class RewardFunctionError(ValueError):
    """The reward function cannot be loaded, or failed on some params."""

    def __init__(self, message: str, line: int | None = None) -> None:
        super().__init__(message)
        self.line = line


class RewardFunction:
    """A compiled reward function; call it with a params dict to get a checked float."""

    def __init__(self, source: str, function: Callable[[dict[str, Any]], Any], filename: str) -> None:
        self.source = source
        self.filename = filename
        self._function = function
        self._lines = source.splitlines()

    @classmethod
    def from_source(cls, source: str, filename: str = DEFAULT_FILENAME) -> RewardFunction:
        tree = _parse(source, filename)
        _check_imports_and_names(tree, filename)
        namespace: dict[str, Any] = {"__name__": "reward_function_module"}
        try:
            exec(compile(tree, filename, "exec"), namespace)  # the user's own code, in the trainer only
        except Exception as error:  # a failing module-level statement
            raise RewardFunctionError(
                f"{filename} failed while loading: {type(error).__name__}: {error}{_where(error, filename, source)}",
                line=_error_line(error, filename),
            ) from error
        function = namespace.get("reward_function")
        if not callable(function):
            raise RewardFunctionError(f"{filename} must define a function named reward_function(params)")
        _check_signature(function)
        return cls(source, function, filename)

    def __call__(self, params: Mapping[str, Any]) -> float:
        try:
            value = self._function(_isolated_copy(params))
        except Exception as error:
            line = _error_line(error, self.filename)
            raise RewardFunctionError(
                f"reward_function raised {type(error).__name__}: {error}{_where(error, self.filename, self.source)}"
                f"; params: {summarise_params(params)}",
                line=line,
            ) from error
        return check_reward(value, params)


def check_reward(value: Any, params: Mapping[str, Any] | None = None) -> float:
    """The return-value rules of SPEC §2: ``float()``-able, finite, within [-1e5, 1e5]."""
    suffix = f"; params: {summarise_params(params)}" if params is not None else ""
    try:
        reward = float(value)
    except (TypeError, ValueError):
        raise RewardFunctionError(
            f"reward_function returned {value!r} ({type(value).__name__}), which is not a number{suffix}"
        ) from None
    if not math.isfinite(reward):
        raise RewardFunctionError(f"reward_function returned {reward}: rewards must be finite numbers{suffix}")
    low, high = REWARD_RANGE
    if not low <= reward <= high:
        raise RewardFunctionError(
            f"reward_function returned {reward}, outside the allowed range [{low:.0f}, {high:.0f}]{suffix}"
        )
    return reward


def summarise_params(params: Mapping[str, Any]) -> str:
    parts = []
    for key in SUMMARY_KEYS:
        if key in params:
            value = params[key]
            parts.append(f"{key}={value:.4g}" if isinstance(value, float) else f"{key}={value!r}")
    return ", ".join(parts)


def validate_reward_function(
    source: str,
    synthetic_params: Sequence[Mapping[str, Any]],
    time_limit_s: float = 5.0,
    names: Sequence[str] | None = None,
    filename: str = DEFAULT_FILENAME,
) -> RewardFunction:
    """Load ``source`` and run it on each synthetic car in a child process under a wall-clock limit.

    ``names`` label the synthetic cars in messages (e.g. "start", "off track"). Returns the loaded
    function when every call succeeds; raises ``RewardFunctionError`` with the first failure otherwise.
    """
    reward_function = RewardFunction.from_source(source, filename)  # syntax/signature errors: no child needed
    labels = list(names) if names is not None else [f"#{i + 1}" for i in range(len(synthetic_params))]
    context = multiprocessing.get_context("fork")
    for label, params in zip(labels, synthetic_params, strict=True):
        receiver, sender = context.Pipe(duplex=False)
        child = context.Process(target=_validate_in_child, args=(reward_function, dict(params), sender), daemon=True)
        child.start()
        sender.close()
        if not receiver.poll(time_limit_s):
            child.kill()
            child.join()
            raise RewardFunctionError(
                f"reward_function did not finish within {time_limit_s} s on synthetic car '{label}'"
            )
        outcome = receiver.recv()
        child.join()
        if outcome is not None:
            message, line = outcome
            raise RewardFunctionError(f"On synthetic car '{label}': {message}", line=line)
    return reward_function


def _validate_in_child(reward_function: RewardFunction, params: dict[str, Any], sender: Any) -> None:
    try:
        reward_function(params)
    except RewardFunctionError as error:
        sender.send((str(error), error.line))
    else:
        sender.send(None)


def _parse(source: str, filename: str) -> ast.Module:
    try:
        return ast.parse(source, filename)
    except SyntaxError as error:
        text = (error.text or "").rstrip()
        shown = f":\n    {text}" if text else ""
        raise RewardFunctionError(
            f"Syntax error in {filename}, line {error.lineno}: {error.msg}{shown}", line=error.lineno
        ) from None


def _check_imports_and_names(tree: ast.Module, filename: str) -> None:
    allowed = ", ".join(ALLOWED_IMPORTS)
    for node in ast.walk(tree):
        modules: list[str] = []
        if isinstance(node, ast.Import):
            modules = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            modules = [node.module or ""]
        for module in modules:
            if module.split(".")[0] not in ALLOWED_IMPORTS:
                raise RewardFunctionError(
                    f"{filename}, line {node.lineno}: import of '{module}' is not allowed (allowed: {allowed})",
                    line=node.lineno,
                )
        if isinstance(node, ast.Name) and node.id in FORBIDDEN_NAMES:
            raise RewardFunctionError(
                f"{filename}, line {node.lineno}: '{node.id}' is not allowed in a reward function", line=node.lineno
            )


def _check_signature(function: Callable[..., Any]) -> None:
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        raise RewardFunctionError("reward_function must be a plain Python function") from None
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = [p for p in parameters if p.default is p.empty and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)]
    if len(positional) != 1 or len(required) > 1:
        names = ", ".join(p.name for p in parameters)
        raise RewardFunctionError(
            f"reward_function must take exactly one parameter (params), it takes {len(parameters)}: ({names})"
        )


def _isolated_copy(params: Mapping[str, Any]) -> dict[str, Any]:
    """A copy the function may mutate freely (the simapp passes a deepcopy).

    Only containers are copied; numbers, strings, bools and tuples are immutable. This is much cheaper
    than ``copy.deepcopy`` on the ~150-point waypoint list at every step, with the same isolation.
    """
    return {key: _copy_value(value) for key, value in params.items()}


def _copy_value(value: Any) -> Any:
    if isinstance(value, list):
        if value and isinstance(value[0], list | dict):
            return [_copy_value(item) for item in value]
        return list(value)
    if isinstance(value, dict):
        return {key: _copy_value(item) for key, item in value.items()}
    return value


def _error_line(error: BaseException, filename: str) -> int | None:
    frames = [frame for frame in traceback.extract_tb(error.__traceback__) if frame.filename == filename]
    return frames[-1].lineno if frames else None


def _where(error: BaseException, filename: str, source: str) -> str:
    line = _error_line(error, filename)
    if line is None:
        return ""
    lines = source.splitlines()
    text = lines[line - 1].strip() if 0 < line <= len(lines) else ""
    return f" at line {line}: {text}"
