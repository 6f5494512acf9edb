"""Find and redact personal data: emails, phone numbers, card numbers, IP addresses, URLs.

Regular expressions with validation (not Presidio: it needs spaCy plus ~300 MB of
dependencies, runs ~250 docs/s, and its blank-pipeline recognizers are the same kind of
patterns): card numbers must pass the Luhn check and start with a card network's
prefix, IP addresses must parse with ``ipaddress``, and phone numbers are validated
against the numbering plans of the ``phonenumbers`` library (Google's libphonenumber
metadata), so dates, prices, ISBNs and times are not taken for phones.

Redaction is recorded: each masked value becomes a ``PiiSpan`` with its kind, its place
in the original and in the redacted text, and a keyed hash of the value (never the value)
so a reviewer can see what was masked and match repeats without seeing the data.
"""

import hashlib
import hmac
import ipaddress
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import pandas as pd

#: Every kind this module finds, in the order used when two findings overlap exactly.
PII_KINDS = ("email", "url", "credit_card", "ipv4", "ipv6", "phone")
#: Placeholder written in place of a value; ``{kind}`` is upper-cased.
DEFAULT_PLACEHOLDER = "[{kind}]"
#: Region used for phone numbers written without a country code.
DEFAULT_REGION = "US"

_EMAIL = re.compile(
    r"(?<![\w.%+-])[A-Za-z0-9](?:[A-Za-z0-9._%+-]{0,62}[A-Za-z0-9_%+-])?"
    r"@(?:[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?\.)+[A-Za-z]{2,24}(?![\w-])"
)
_URL = re.compile(
    r"(?<![\w@/.])(?:(?:https?|ftp)://|www\.)[^\s<>\"'`{}|\\^\[\]“”‘’«»「」（）、。，]+",
    re.IGNORECASE,
)
_IPV4 = re.compile(
    r"(?<![\w.])(?:(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)\.){3}(?:25[0-5]|2[0-4]\d|1\d\d|[1-9]?\d)"
    r"(?![\w]|\.\d)"
)
_IPV6 = re.compile(
    r"(?<![\w:.])(?:[0-9A-Fa-f]{0,4}:){2,7}(?:(?:\d{1,3}\.){3}\d{1,3}|[0-9A-Fa-f]{0,4})(?![\w:])"
)
_CARD = re.compile(r"(?<![\d.,-])\d(?:[ -]?\d){12,18}(?![\d]|[.,-]\d)")
#: Card network prefixes (IIN ranges): Visa, Mastercard, Amex, Discover, JCB, Diners, UnionPay.
_CARD_PREFIX = re.compile(
    r"^(?:4\d{12}(?:\d{3}){0,2}|5[1-5]\d{14}|2(?:2[2-9]|[3-6]\d|7[01])\d{13}|2720\d{12}"
    r"|3[47]\d{13}|6(?:011|5\d\d|4[4-9]\d)\d{12,15}|35(?:2[89]|[3-8]\d)\d{12,15}"
    r"|3(?:0[0-5]|[689]\d)\d{11,16}|62\d{14,17})$"
)
#: A phone-like run: digits with separators, optionally + or (, at least 7 digits.
_PHONE_RUN = re.compile(r"(?:\+|\(|\b)\d[\d\s().\-/]{5,}\d")
_TRAILING_URL_PUNCT = ".,;:!?'\")]}*…"


@dataclass(frozen=True)
class PiiSpan:
    """One masked value: where it was (``start:end`` in the original text), where its
    placeholder is (``out_start:out_end`` in the redacted text), and a hash of it."""

    kind: str
    start: int
    end: int
    out_start: int
    out_end: int
    value_hash: str


def find_pii(
    text: str, kinds: Sequence[str] = PII_KINDS, *, region: str = DEFAULT_REGION
) -> list[tuple[str, int, int]]:
    """Non-overlapping (kind, start, end) findings, in text order; on overlap the longer
    finding wins (a URL with an IP in it stays a URL), then the earlier kind in PII_KINDS."""
    found: list[tuple[str, int, int]] = []
    wanted = set(kinds)
    if "email" in wanted and "@" in text:
        found += [("email", m.start(), m.end()) for m in _EMAIL.finditer(text)]
    if "url" in wanted and ("://" in text or "www." in text.lower()):
        found += [("url", s, e) for s, e in _urls(text)]
    if "credit_card" in wanted:
        found += [
            ("credit_card", m.start(), m.end()) for m in _CARD.finditer(text) if _is_card(m[0])
        ]
    if "ipv4" in wanted and "." in text:
        found += [("ipv4", m.start(), m.end()) for m in _IPV4.finditer(text)]
    if "ipv6" in wanted and ("::" in text or text.count(":") >= 7):
        found += [("ipv6", m.start(), m.end()) for m in _IPV6.finditer(text) if _is_ipv6(m[0])]
    if "phone" in wanted:
        found += [("phone", s, e) for s, e in _phones(text, region)]
    order = {kind: i for i, kind in enumerate(PII_KINDS)}
    found.sort(key=lambda f: (f[1], -(f[2] - f[1]), order[f[0]]))
    kept: list[tuple[str, int, int]] = []
    for finding in found:
        if kept and finding[1] < kept[-1][2]:
            continue  # overlaps an earlier, longer (or same-length, higher-priority) finding
        kept.append(finding)
    return kept


def redact(
    text: str,
    kinds: Sequence[str] = PII_KINDS,
    *,
    key: bytes = b"",
    placeholder: str = DEFAULT_PLACEHOLDER,
    region: str = DEFAULT_REGION,
) -> tuple[str, list[PiiSpan]]:
    """``text`` with each finding replaced by its placeholder, and the list of spans.

    ``key`` keys the value hash (HMAC-SHA-256, 16 hex characters): without a secret key a
    hash of a phone number can be reversed by trying every number, so pass one in production.
    """
    parts: list[str] = []
    spans: list[PiiSpan] = []
    position = out = 0
    for kind, start, end in find_pii(text, kinds, region=region):
        parts.append(text[position:start])
        out += start - position
        mask = placeholder.format(kind=kind.upper())
        parts.append(mask)
        spans.append(
            PiiSpan(kind, start, end, out, out + len(mask), value_hash(text[start:end], key))
        )
        out += len(mask)
        position = end
    parts.append(text[position:])
    return "".join(parts), spans


def redact_many(
    texts: Iterable[str | None],
    kinds: Sequence[str] = PII_KINDS,
    *,
    key: bytes = b"",
    placeholder: str = DEFAULT_PLACEHOLDER,
    region: str = DEFAULT_REGION,
) -> tuple[list[str | None], list[list[PiiSpan]]]:
    """``redact`` over many texts; missing texts stay missing with no spans."""
    redacted: list[str | None] = []
    all_spans: list[list[PiiSpan]] = []
    for text in texts:
        if not isinstance(text, str) or not text:
            redacted.append(text if isinstance(text, str) else None)
            all_spans.append([])
            continue
        clean, spans = redact(text, kinds, key=key, placeholder=placeholder, region=region)
        redacted.append(clean)
        all_spans.append(spans)
    return redacted, all_spans


def redact_column(
    frame: pd.DataFrame,
    column: str,
    *,
    id_column: str = "record_id",
    kinds: Sequence[str] = PII_KINDS,
    key: bytes = b"",
    placeholder: str = DEFAULT_PLACEHOLDER,
    region: str = DEFAULT_REGION,
) -> tuple[pd.Series, pd.DataFrame]:
    """The redacted column, and one row per masked value for a ``pii_redactions`` table:
    (id, column, kind, start, end, out_start, out_end, value_hash)."""
    redacted, spans = redact_many(
        frame[column].tolist(), kinds, key=key, placeholder=placeholder, region=region
    )
    rows = [
        (record_id, column, s.kind, s.start, s.end, s.out_start, s.out_end, s.value_hash)
        for record_id, found in zip(frame[id_column].tolist(), spans, strict=True)
        for s in found
    ]
    spans_frame = pd.DataFrame(
        rows,
        columns=[id_column, "column", "kind", "start", "end", "out_start", "out_end", "value_hash"],
    )
    return pd.Series(redacted, index=frame.index, name=column, dtype="object"), spans_frame


def value_hash(value: str, key: bytes = b"") -> str:
    """Keyed SHA-256 of a value (16 hex characters): equal values, equal hashes."""
    return hmac.new(key, value.encode("utf-8"), hashlib.sha256).hexdigest()[:16]


def luhn_ok(digits: str) -> bool:
    """The Luhn checksum of a string of digits (the check every card number passes)."""
    total = 0
    for i, char in enumerate(reversed(digits)):
        d = ord(char) - 48
        if i % 2:
            d = d * 2 - 9 if d > 4 else d * 2
        total += d
    return total % 10 == 0


def _is_card(candidate: str) -> bool:
    digits = candidate.replace(" ", "").replace("-", "")
    return (
        13 <= len(digits) <= 19
        and len(set(digits)) > 1
        and _CARD_PREFIX.match(digits) is not None
        and luhn_ok(digits)
    )


def _is_ipv6(candidate: str) -> bool:
    groups = [g for g in candidate.split(":") if g]
    if len(groups) < 2 or not any(c.isdigit() for c in candidate):
        return False  # "a::b" in C++ code, "::" alone
    try:
        ipaddress.IPv6Address(candidate)
    except ValueError:
        return False
    return True


def _urls(text: str) -> list[tuple[int, int]]:
    spans = []
    for match in _URL.finditer(text):
        value = match[0]
        while value and value[-1] in _TRAILING_URL_PUNCT:
            if value[-1] == ")" and value.count("(") >= value.count(")"):
                break  # a balanced parenthesis belongs to the URL (Wikipedia links)
            value = value[:-1]
        if len(value) > len("www.") + 2:
            spans.append((match.start(), match.start() + len(value)))
    return spans


def _phones(text: str, region: str) -> list[tuple[int, int]]:
    """Phone numbers valid in their numbering plan; libphonenumber's matcher only runs on
    phone-like runs of digits (with one character of context), which keeps it fast."""
    import phonenumbers

    spans = []
    for run in _PHONE_RUN.finditer(text):
        if sum(c.isdigit() for c in run[0]) < 7:
            continue
        lo = max(0, run.start() - 1)
        window = text[lo : run.end() + 1]
        for match in phonenumbers.PhoneNumberMatcher(
            window, region, leniency=phonenumbers.Leniency.VALID
        ):
            spans.append((lo + match.start, lo + match.end))
    return spans
