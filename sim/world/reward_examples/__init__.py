"""The reward-function examples of the DeepRacer console lab (../shared/seed), verbatim.

Example 1 follows the centre line, Example 2 also penalises steering (zig-zag), Example 3 also penalises
slow actions. They are the standard AWS DeepRacer examples our users start from.
"""

from __future__ import annotations

from pathlib import Path

_HERE = Path(__file__).parent

EXAMPLE_FILES: dict[str, str] = {
    "example_1_follow_center_line": "Example 1: follow the centre line",
    "example_2_prevent_zig_zag": "Example 2: follow the centre line, penalise zig-zag steering",
    "example_3_penalize_slow": "Example 3: follow the centre line, penalise slow actions",
}


def example_source(name: str) -> str:
    """The source text of an example by name (see ``EXAMPLE_FILES``)."""
    if name not in EXAMPLE_FILES:
        raise KeyError(f"unknown reward example {name!r} (choose one of {', '.join(EXAMPLE_FILES)})")
    return (_HERE / f"{name}.py").read_text(encoding="utf-8")


EXAMPLES: dict[str, str] = {name: example_source(name) for name in EXAMPLE_FILES}
