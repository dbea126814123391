"""Per-run variables: fresh values for `{{name}}` placeholders, and the way back to placeholders."""

from __future__ import annotations

import re
import secrets
from collections.abc import Callable, Mapping
from typing import Any

from strangler.contracts.choices import Choice

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
# Captured values shorter than this are too likely to occur by chance ("sms", "1") to be
# turned back into placeholders when a recording is written.
MIN_CAPTURE_LENGTH = 6


class UnknownVariableError(KeyError):
    """A placeholder names a variable that is neither generated nor captured (yet)."""

    def __str__(self) -> str:
        return f"unknown variable {{{{{self.args[0]}}}}}"


def _phone() -> str:
    # +1 555 numbers are fictional; 7 random digits keep runs apart on the send limit.
    return "+1555" + "".join(secrets.choice("0123456789") for _ in range(7))


def _email() -> str:
    return f"c-{secrets.token_hex(5)}@contract.example"


def _name() -> str:
    return f"user_{secrets.token_hex(4)}"


def _token() -> str:
    return secrets.token_hex(12)


class VariableKind(Choice):
    """What a scenario variable is; a typo in a scenario file is refused, naming the choices."""

    PHONE = "phone"
    EMAIL = "email"
    NAME = "name"
    TOKEN = "token"

    def generate(self) -> str:
        return _GENERATORS[self]()


_GENERATORS: dict[VariableKind, Callable[[], str]] = {
    VariableKind.PHONE: _phone,
    VariableKind.EMAIL: _email,
    VariableKind.NAME: _name,
    VariableKind.TOKEN: _token,
}


def generate(kinds: Mapping[str, VariableKind]) -> dict[str, str]:
    """Fresh values for one run of a scenario."""
    return {name: kind.generate() for name, kind in kinds.items()}


def render(template: Any, values: Mapping[str, Any]) -> Any:
    """Fill placeholders in a JSON-like tree; a string that is only a placeholder keeps the type."""
    if isinstance(template, str):
        whole = PLACEHOLDER.fullmatch(template)
        if whole:
            return _lookup(values, whole.group(1))
        return PLACEHOLDER.sub(lambda m: str(_lookup(values, m.group(1))), template)
    if isinstance(template, dict):
        return {render(k, values): render(v, values) for k, v in template.items()}
    if isinstance(template, list):
        return [render(item, values) for item in template]
    return template


def _lookup(values: Mapping[str, Any], name: str) -> Any:
    if name not in values:
        raise UnknownVariableError(name)
    return values[name]


def unrender(tree: Any, generated: Mapping[str, str], captured: Mapping[str, Any]) -> Any:
    """Replace this run's values by their placeholders, so two runs can be compared.

    Generated values (phones, e-mails...) are replaced wherever they occur inside a string;
    captured values only where a whole string equals one (and is long enough to be no accident).
    """
    if isinstance(tree, str):
        for name, value in captured.items():
            if isinstance(value, str) and len(value) >= MIN_CAPTURE_LENGTH and tree == value:
                return "{{" + name + "}}"
        for name, value in sorted(generated.items(), key=lambda kv: -len(kv[1])):
            tree = tree.replace(value, "{{" + name + "}}")
        return tree
    if isinstance(tree, dict):
        return {k: unrender(v, generated, captured) for k, v in tree.items()}
    if isinstance(tree, list):
        return [unrender(item, generated, captured) for item in tree]
    return tree
