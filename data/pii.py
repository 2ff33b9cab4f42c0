"""Find and redact personal data in Italian posts: phone numbers, e-mail addresses, IBANs,
codici fiscali, payment card numbers and @handles of private persons.

One detector serves everyone: labeling redacts before anything reaches annotators, serving moves
the reply to a private channel when a post carries personal data. Patterns are written for
Italian formats and checked where a checksum exists (IBAN mod 97, card Luhn, codice fiscale
check character), so order numbers and dates are not mistaken for personal data.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

PII_KINDS = ("email", "iban", "card", "codice_fiscale", "phone", "handle")


@dataclass(frozen=True)
class PiiMatch:
    kind: str
    start: int
    end: int
    text: str


_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
# IBAN: country code, 2 check digits, then up to 30 alphanumerics, optionally grouped by 4.
_IBAN = re.compile(r"\b[A-Z]{2}\d{2}(?:[ ]?[A-Z0-9]){11,30}\b", re.IGNORECASE)
_CARD = re.compile(r"(?<!\d)(?:\d[ -]?){12,18}\d(?!\d)")
# Codice fiscale: 6 letters, 2 digits, month letter, 2 digits, a letter + 3 digits, check letter.
# Omocodia replaces digits with letters from LMNPQRSTUV, so digit positions accept those too.
_CF_DIGIT = "[0-9LMNPQRSTUV]"
_CODICE_FISCALE = re.compile(
    rf"\b[A-Z]{{6}}{_CF_DIGIT}{{2}}[ABCDEHLMPRST]{_CF_DIGIT}{{2}}[A-Z]{_CF_DIGIT}{{3}}[A-Z]\b", re.IGNORECASE
)
# Italian phone numbers: mobile 3xx, landline 0x, optional +39/0039, spaces, dots or dashes inside.
_PHONE = re.compile(
    r"(?<![\w+])(?:(?:\+|00)39[ .-]?)?(?:3\d{2}(?:[ .-]?\d){6,7}|0[1-9]\d{0,2}(?:[ .-]?\d){4,8})(?!\d)"
)
_HANDLE = re.compile(r"(?<![\w@.])@[A-Za-z0-9_](?:[A-Za-z0-9_.]{0,28}[A-Za-z0-9_])?")

_CF_ODD = {
    **dict(zip("0123456789", [1, 0, 5, 7, 9, 13, 15, 17, 19, 21])),
    **dict(zip("ABCDEFGHIJKLMNOPQRSTUVWXYZ",
               [1, 0, 5, 7, 9, 13, 15, 17, 19, 21, 2, 4, 18, 20, 11, 3, 6, 8, 12, 14, 16, 10, 22, 25, 24, 23])),
}


_ITALIAN_IBAN_SHAPE = re.compile(r"IT\d{2}[A-Z]\d{10}[A-Z0-9]{12}")


def _iban_is_valid(candidate: str) -> bool:
    """A valid IBAN checksum, or the exact Italian IBAN layout: a mistyped Italian IBAN is still
    personal data, while other countries' layouts are too loose to trust without the checksum."""
    compact = candidate.replace(" ", "").upper()
    if _ITALIAN_IBAN_SHAPE.fullmatch(compact):
        return True
    if not 15 <= len(compact) <= 34:
        return False
    rearranged = compact[4:] + compact[:4]
    digits = "".join(str(int(ch, 36)) for ch in rearranged)
    return int(digits) % 97 == 1


def _longest_valid_iban(candidate: str) -> str | None:
    """The pattern may run on into the next word ("...3456 e"): drop trailing groups until valid."""
    while candidate:
        if _iban_is_valid(candidate):
            return candidate
        if " " not in candidate:
            return None
        candidate = candidate.rsplit(" ", 1)[0]
    return None


def _luhn_is_valid(candidate: str) -> bool:
    digits = [int(ch) for ch in candidate if ch.isdigit()]
    if not 13 <= len(digits) <= 19:
        return False
    total = 0
    for position, digit in enumerate(reversed(digits)):
        if position % 2 == 1:
            digit *= 2
            if digit > 9:
                digit -= 9
        total += digit
    return total % 10 == 0


def _codice_fiscale_is_valid(candidate: str) -> bool:
    code = candidate.upper()
    total = 0
    for position, char in enumerate(code[:15]):
        if position % 2 == 0:  # odd positions, counting from 1
            total += _CF_ODD[char]
        else:
            total += int(char) if char.isdigit() else ord(char) - ord("A")
    return chr(ord("A") + total % 26) == code[15]


def find_pii(text: str, public_handles: Iterable[str] = ()) -> list[PiiMatch]:
    """Every piece of personal data in `text`, left to right, without overlaps.

    `public_handles` are handles that are not private persons (the brand's own accounts, media):
    they are kept. Matching is case-insensitive and ignores the leading "@".
    """
    keep = {handle.lower().lstrip("@") for handle in public_handles}
    candidates: list[PiiMatch] = []

    def add(kind: str, pattern: re.Pattern, check=None) -> None:
        for match in pattern.finditer(text):
            if check is None or check(match.group()):
                candidates.append(PiiMatch(kind, match.start(), match.end(), match.group()))

    # Order matters for overlaps: the more specific, checksum-backed kinds claim their span first.
    add("email", _EMAIL)
    for match in _IBAN.finditer(text):
        iban = _longest_valid_iban(match.group())
        if iban:
            candidates.append(PiiMatch("iban", match.start(), match.start() + len(iban), iban))
    add("card", _CARD, _luhn_is_valid)
    add("codice_fiscale", _CODICE_FISCALE, _codice_fiscale_is_valid)
    add("phone", _PHONE)
    add("handle", _HANDLE, lambda handle: handle.lower().lstrip("@") not in keep)

    accepted: list[PiiMatch] = []
    for candidate in candidates:
        if all(candidate.end <= other.start or candidate.start >= other.end for other in accepted):
            accepted.append(candidate)
    return sorted(accepted, key=lambda match: match.start)


def redact(text: str, public_handles: Iterable[str] = (), kinds: Iterable[str] = PII_KINDS) -> tuple[str, list[PiiMatch]]:
    """Replace personal data with typed placeholders such as [TELEFONO]; return the text and the matches."""
    wanted = set(kinds)
    unknown = wanted - set(PII_KINDS)
    if unknown:
        raise ValueError(f"unknown PII kind(s) {sorted(unknown)}; known: {', '.join(PII_KINDS)}")
    matches = [match for match in find_pii(text, public_handles) if match.kind in wanted]
    pieces: list[str] = []
    cursor = 0
    for match in matches:
        pieces.append(text[cursor : match.start])
        pieces.append(PLACEHOLDERS[match.kind])
        cursor = match.end
    pieces.append(text[cursor:])
    return "".join(pieces), matches


PLACEHOLDERS = {
    "email": "[EMAIL]",
    "iban": "[IBAN]",
    "card": "[CARTA]",
    "codice_fiscale": "[CODICE_FISCALE]",
    "phone": "[TELEFONO]",
    "handle": "[UTENTE]",
}
