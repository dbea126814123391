"""Enums read from files and command lines: a typo is refused with the valid choices named."""

from __future__ import annotations

import argparse
from collections.abc import Callable
from enum import Enum
from typing import Self, TypeVar


class Choice(Enum):
    """String values whose `parse` names every valid one in its error, as vcrpy's record modes."""

    @classmethod
    def parse(cls, text: str) -> Self:
        try:
            return cls(text)
        except ValueError:
            choices = ", ".join(str(item.value) for item in cls)
            raise ValueError(f"{text!r} is not one of: {choices}") from None


C = TypeVar("C", bound=Choice)


def option_type(kind: type[C]) -> Callable[[str], C]:
    """An argparse `type=` for a Choice whose error names the valid values."""

    def parse(text: str) -> C:
        try:
            return kind.parse(text)
        except ValueError as exc:
            raise argparse.ArgumentTypeError(str(exc)) from None

    return parse
