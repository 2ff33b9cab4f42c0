"""Find and redact personal data in Italian posts, on Microsoft Presidio (presidio-analyzer).

One detector serves everyone: labeling redacts before anything reaches annotators, serving moves
the reply to a private channel when a post carries personal data.

What finds what (docs/SECURITY.md, "Personal data", has each kind's precision and recall):
- Presidio's own recognizers, checksum-backed where a checksum exists: IBAN (mod 97), payment
  cards (Luhn), codice fiscale (check character), partita IVA (check digit), Italian identity
  card, passport and driving licence (only beside a word that names the document), phone numbers
  (Google's `phonenumbers`, Italian numbering plan).
- Ours, where Presidio has nothing usable offline: @handles of private persons; e-mail addresses
  (Presidio's e-mail recognizer checks the domain against the Public Suffix List, which it
  downloads at first use); person names (PersonNames below: Italian first names and surnames cut
  from the maintained names-dataset into data/names/, titles, capitalisation).

Presidio is run with spaCy's rule-based Italian tokenizer and no statistical model (none can be
downloaded here), with each token's lemma set to its lower-cased text so that context words
("passaporto", "patente") still raise a document number's score.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

PII_KINDS = ("email", "iban", "card", "codice_fiscale", "partita_iva", "id_document", "phone", "person", "handle")

PLACEHOLDERS = {
    "email": "[EMAIL]",
    "iban": "[IBAN]",
    "card": "[CARTA]",
    "codice_fiscale": "[CODICE_FISCALE]",
    "partita_iva": "[PARTITA_IVA]",
    "id_document": "[DOCUMENTO]",
    "phone": "[TELEFONO]",
    "person": "[NOME]",
    "handle": "[UTENTE]",
}

# Presidio's entity types, as our kinds.
PRESIDIO_KINDS = {
    "IBAN_CODE": "iban",
    "CREDIT_CARD": "card",
    "IT_FISCAL_CODE": "codice_fiscale",
    "IT_VAT_CODE": "partita_iva",
    "IT_IDENTITY_CARD": "id_document",
    "IT_PASSPORT": "id_document",
    "IT_DRIVER_LICENSE": "id_document",
    "PHONE_NUMBER": "phone",
    "PERSON": "person",
    "EMAIL_ADDRESS": "email",
    "HANDLE": "handle",
}
# Presidio's pattern scores: 1.0 with a valid checksum, 0.4 for a phone number the numbering plan
# accepts, 0.3 for a codice fiscale with a wrong check character, 0.01-0.05 for a document-shaped
# code with no document named beside it (0.4 when one is). Below MIN_SCORE is not personal data.
MIN_SCORE = 0.4
NAMES_DIR = Path(__file__).with_name("names")


@dataclass(frozen=True)
class PiiMatch:
    kind: str
    start: int
    end: int
    text: str


_EMAIL = re.compile(r"(?<![\w.+-])[\w.+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}\b")
_HANDLE = re.compile(r"(?<![\w@.])@[A-Za-z0-9_](?:[A-Za-z0-9_.]{0,28}[A-Za-z0-9_])?")


def _name_list(filename: str) -> frozenset[str]:
    lines = (NAMES_DIR / filename).read_text(encoding="utf-8").splitlines()
    return frozenset(line.strip() for line in lines if line.strip() and not line.startswith("#"))


class PersonNames:
    """Names of people in Italian text, by rule:

    - a title (sig., sig.ra, dott., dott.ssa, dr., prof., avv., ing., geom., rag.) and the one or
      two capitalised words after it ("grazie al dott. Bianchi");
    - a first name of the list and the capitalised words after it ("Mario Rossi", "Anna De Luca");
    - a first name of the list alone, capitalised ("Giulia guarda!", "chiedete a Luca");
    - a surname of the list after "sono" / "mi chiamo" ("sono Esposito").
    """

    _WORD = re.compile(r"[A-Za-zÀ-ÖØ-öø-ÿ'’]+")
    _TITLE = re.compile(
        r"(?i:\b(?:sig(?:\.ra|\.na|nora|nore|nor)?|dott(?:\.ssa|oressa|ore)?|dr|prof(?:\.ssa|essoressa|essore)?"
        r"|avv(?:ocato|ocatessa)?|ing(?:egnere)?|geom|rag)\.?)\s+"
        r"((?:de |di |del |della |d'|lo |la )?[A-ZÀ-Ý][a-zà-ÿ'’]+(?:\s+[A-ZÀ-Ý][a-zà-ÿ'’]+)?)"
    )
    _INTRODUCTION = re.compile(r"(?i:\b(?:sono|mi chiamo)\s+)([A-ZÀ-Ý][a-zà-ÿ'’]+)")
    _PARTICLES = frozenset({"De", "Di", "Del", "Della", "Lo", "La", "Da", "Dal", "Dalla"})

    def __init__(self, first_names: frozenset[str], surnames: frozenset[str]):
        self.first_names = first_names
        self.surnames = surnames

    @classmethod
    @functools.cache
    def bundled(cls) -> PersonNames:
        return cls(_name_list("first_names_it.txt"), _name_list("surnames_it.txt"))

    def spans(self, text: str) -> list[tuple[int, int]]:
        found: list[tuple[int, int]] = []
        for match in self._TITLE.finditer(text):
            found.append(match.span(1))
        for match in self._INTRODUCTION.finditer(text):
            if match.group(1) in self.surnames or match.group(1) in self.first_names:
                found.append(match.span(1))
        words = list(self._WORD.finditer(text))
        index = 0
        while index < len(words):
            word = words[index]
            if word.group() not in self.first_names:
                index += 1
                continue
            # The rest of the name: capitalised words right after, one space apart: a second first
            # name ("Anna Maria"), particles ("De Luca"), then the surname.
            end, following = word.end(), index + 1
            while following < len(words) and text[end:words[following].start()] == " " and following - index <= 3:
                candidate = words[following].group()
                if not candidate[:1].isupper():
                    break
                end, following = words[following].end(), following + 1
                if candidate not in self._PARTICLES and candidate not in self.first_names:
                    break
            found.append((word.start(), end))
            index = following
        return _merged(found)


def _merged(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    merged: list[tuple[int, int]] = []
    for start, end in sorted(spans):
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(end, merged[-1][1]))
        else:
            merged.append((start, end))
    return merged


@functools.cache
def _analyzer():
    """Presidio's AnalyzerEngine for Italian with the recognizers above (built once per process)."""
    # Lazy: presidio takes 5.4 s and 440 MB to import, spaCy 2.2 s; only redaction needs them.
    import spacy
    from presidio_analyzer import AnalyzerEngine, EntityRecognizer, RecognizerRegistry, RecognizerResult
    from presidio_analyzer.nlp_engine import SpacyNlpEngine
    from presidio_analyzer.predefined_recognizers import (
        CreditCardRecognizer,
        IbanRecognizer,
        ItDriverLicenseRecognizer,
        ItFiscalCodeRecognizer,
        ItIdentityCardRecognizer,
        ItPassportRecognizer,
        ItVatCodeRecognizer,
        PhoneRecognizer,
    )
    from spacy.language import Language

    if "smista_lowercase_lemma" not in Language.factories:
        @Language.component("smista_lowercase_lemma")
        def _lowercase_lemma(doc):
            for token in doc:
                token.lemma_ = token.lower_
            return doc

    class TokenizerOnly(SpacyNlpEngine):
        def __init__(self) -> None:
            super().__init__(models=[{"lang_code": "it", "model_name": "blank:it"}])

        def load(self) -> None:  # never spacy.load: that would try to download a model
            nlp = spacy.blank("it")
            nlp.add_pipe("smista_lowercase_lemma")
            self.nlp = {"it": nlp}

    class Regex(EntityRecognizer):
        def __init__(self, entity: str, pattern: re.Pattern) -> None:
            self.pattern = pattern
            super().__init__(supported_entities=[entity], supported_language="it", name=f"smista_{entity.lower()}")

        def load(self) -> None:
            pass

        def analyze(self, text, entities, nlp_artifacts=None):
            return [RecognizerResult(self.supported_entities[0], m.start(), m.end(), 1.0)
                    for m in self.pattern.finditer(text)]

    class People(EntityRecognizer):
        def __init__(self) -> None:
            super().__init__(supported_entities=["PERSON"], supported_language="it", name="smista_person_names")

        def load(self) -> None:
            self.names = PersonNames.bundled()

        def analyze(self, text, entities, nlp_artifacts=None):
            return [RecognizerResult("PERSON", start, end, 0.6) for start, end in self.names.spans(text)]

    engine = TokenizerOnly()
    engine.load()
    registry = RecognizerRegistry(supported_languages=["it"])
    for recognizer in (IbanRecognizer, CreditCardRecognizer, ItFiscalCodeRecognizer, ItVatCodeRecognizer,
                       ItIdentityCardRecognizer, ItPassportRecognizer, ItDriverLicenseRecognizer):
        registry.add_recognizer(recognizer(supported_language="it"))
    registry.add_recognizer(PhoneRecognizer(supported_language="it", supported_regions=("IT",)))
    registry.add_recognizer(Regex("EMAIL_ADDRESS", _EMAIL))
    registry.add_recognizer(Regex("HANDLE", _HANDLE))
    registry.add_recognizer(People())
    return AnalyzerEngine(registry=registry, nlp_engine=engine, supported_languages=["it"])


# Which kind wins where two overlap: the checksum-backed ones first, names and handles last.
_PRECEDENCE = {kind: rank for rank, kind in enumerate(PII_KINDS)}


def find_pii(text: str, public_handles: Iterable[str] = (), kinds: Iterable[str] = PII_KINDS) -> list[PiiMatch]:
    """Every piece of personal data of `kinds` in `text`, left to right, without overlaps.

    `public_handles` are handles that are not private persons (the brand's own accounts, media):
    they are kept. Matching is case-insensitive and ignores the leading "@".
    """
    wanted = set(kinds)
    unknown = wanted - set(PII_KINDS)
    if unknown:
        raise ValueError(f"unknown PII kind(s) {sorted(unknown)}; known: {', '.join(PII_KINDS)}")
    keep = {handle.lower().lstrip("@") for handle in public_handles}
    entities = [entity for entity, kind in PRESIDIO_KINDS.items() if kind in wanted]
    analyzer = _analyzer()
    results = analyzer.analyze(text, language="it", entities=entities, score_threshold=MIN_SCORE) if entities else []
    upper = text.upper()
    if "iban" in wanted and len(upper) == len(text) and upper != text:
        # Presidio's IBAN pattern is upper case; people type "it60 x054 ...": the same recognizer
        # on an upper-cased copy (same length, so the same offsets).
        results += analyzer.analyze(upper, language="it", entities=["IBAN_CODE"], score_threshold=MIN_SCORE)
    candidates = []
    for result in results:
        kind = PRESIDIO_KINDS[result.entity_type]
        # Some of Presidio's patterns take the space after the value along ("00123456782 ").
        start = result.start + len(text[result.start:result.end]) - len(text[result.start:result.end].lstrip())
        end = result.end - len(text[result.start:result.end]) + len(text[result.start:result.end].rstrip())
        found = text[start:end]
        if not found or kind == "handle" and found.lower().lstrip("@") in keep:
            continue
        candidates.append((PiiMatch(kind, start, end, found), result.score))
    candidates.sort(key=lambda item: (-item[1], _PRECEDENCE[item[0].kind], item[0].start - item[0].end))
    accepted: list[PiiMatch] = []
    for candidate, _score in candidates:
        if all(candidate.end <= other.start or candidate.start >= other.end for other in accepted):
            accepted.append(candidate)
    return sorted(accepted, key=lambda match: match.start)


def redact(text: str, public_handles: Iterable[str] = (), kinds: Iterable[str] = PII_KINDS) -> tuple[str, list[PiiMatch]]:
    """Replace personal data with typed placeholders such as [TELEFONO]; return the text and the matches."""
    matches = find_pii(text, public_handles, kinds)
    pieces: list[str] = []
    cursor = 0
    for match in matches:
        pieces.append(text[cursor : match.start])
        pieces.append(PLACEHOLDERS[match.kind])
        cursor = match.end
    pieces.append(text[cursor:])
    return "".join(pieces), matches
