"""The base class of the errors a user can fix, and validation errors turned into messages that
name the bad field and say what is wrong."""

from __future__ import annotations

from pydantic import ValidationError


class UserError(Exception):
    """A mistake the user can fix (a bad file, flag, setting or address): `smista` prints it as
    `smista: error: <message>` and exits 2, with no traceback. Every such error of every floor
    derives from it (with its other base, e.g. ValueError, kept), so the CLI needs no list of them;
    the message names the problem and how to fix it."""


def field_path(location: tuple[int | str, ...]) -> str:
    """('labels', 'intent') -> 'labels.intent'; list positions are shown as [i]."""
    parts: list[str] = []
    for part in location:
        if isinstance(part, int):
            parts.append(f"[{part}]")
        else:
            parts.append(("." if parts else "") + str(part))
    return "".join(parts)


def describe_validation_error(error: ValidationError) -> str:
    """One line per problem: '<field path>: <message>'."""
    lines = []
    for item in error.errors(include_url=False):
        message = item["msg"]
        # pydantic prefixes messages from our own validators with "Value error, ".
        message = message.removeprefix("Value error, ")
        path = field_path(item["loc"])
        # Whole-record checks (no location) already name their field in the message.
        lines.append(f"  {path}: {message}" if path else f"  {message}")
    return "\n".join(lines)
