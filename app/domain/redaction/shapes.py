"""High-precision shapes of secrets in free text: what is a secret whoever's it is.

Only shapes that ordinary text does not take: PEM private-key blocks, JWTs, tokens
with a vendor's prefix, URL userinfo, a bearer token, and ``name=value`` (or
``name: value``) where the name as a whole names a secret (see :mod:`.names`) and the
value looks like one (:func:`looks_like_value_of`: ``secret: none`` is text).
Every pattern is bounded and free of nested quantifiers, so scanning is linear in
the text; none matches across an earlier ``<redacted>``.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterator

from app.domain.redaction.names import secret_name_strength, words

REDACTED = "<redacted>"

_PEM = re.compile(
    r"(-----BEGIN [A-Z0-9 ]{0,40}PRIVATE KEY(?: BLOCK)?-----)"
    # The body: base64, whitespace and escaped newlines (in a JSON string), no "-".
    r"([A-Za-z0-9+/=\s\\]{1,65536})"
)
_JWT = re.compile(r"(?<![\w-])()(eyJ[\w-]{5,2048}\.eyJ[\w-]{5,4096}\.[\w-]{0,2048})")
_PREFIXED = re.compile(
    r"(?<![\w-])()("
    r"gh[pousr]_[A-Za-z0-9]{36,251}|github_pat_\w{22,255}|glpat-[\w-]{20,64}"
    r"|xox[abposre]-[A-Za-z0-9-]{10,250}|xapp-[A-Za-z0-9-]{10,250}"
    r"|[rs]k_(?:live|test)_[A-Za-z0-9]{10,247}"
    r"|(?:AKIA|ASIA)[A-Z0-9]{16}|AIza[\w-]{35}|npm_[A-Za-z0-9]{36}"
    r"|sk-(?=[A-Za-z_-]{0,199}\d)[\w-]{32,200}"
    r"|kr_[\w-]{43}"  # this service's own API keys
    r")(?![\w-])"
)
# scheme://user:password@host: the whole userinfo (a token alone is often the user).
_USERINFO = re.compile(r"(://)([^/\s@?#\"'<>]{1,512})(?=@)")
# A bearer token anywhere; it must hold a digit, so "the bearer of" is no token.
_BEARER = re.compile(r"(?i)(\bbearer\s{1,8})((?=[A-Za-z._~+/-]{0,4096}\d)[\w.~+/-]{8,4096}=*)")

_SHAPES = (_PEM, _JWT, _PREFIXED, _USERINFO, _BEARER)

# A candidate name and its separator; the value is read by hand (see _value_span).
_NAME = re.compile(
    r"(?:(?<![\w.%-])|(?<=%26)|(?<=%3[Ff])|(?<=%22)|(?<=%27))"  # also after URL-encoded &?"'
    r"((?:[A-Za-z][\w.-]{0,63} )?[A-Za-z_][\w.-]{0,63})"  # "password", "api key"
    r"(?:\\?[\"']|%22|%27)?"  # the closing quote of a quoted key (JSON, repr)
    r"(\s{0,3}(?:[:=]|%3[AaDd])\s{0,3})"
)
_SCHEME = re.compile(r"(?i)(?:bearer|basic|token|digest|bot|negotiate)\s{1,8}")
_UNQUOTED = re.compile(r"[^\s\"'<>,;&)}\]\\]{1,4096}")
_UNQUOTED_ENCODED = re.compile(r"(?:[^\s\"'<>,;&)}\]\\%]|%(?!26)){1,4096}")
_REST_OF_LINE = re.compile(r"[^\r\n\"']{1,4096}")
_QUOTES = ('\\"', "\\'", "%22", "%27", '"', "'")

# Values that say a secret is absent, not what it is ("secret: none", "token: unset").
# Not "changeme" and the like: those are real (weak) secrets.
_PLACEHOLDERS = frozenset(
    [
        "none",
        "null",
        "nil",
        "true",
        "false",
        "yes",
        "no",
        "on",
        "off",
        "enabled",
        "disabled",
        "not",
        "unset",
        "undefined",
        "empty",
        "missing",
        "required",
        "optional",
        "default",
        "hidden",
        "masked",
        "redacted",
        "n/a",
        "na",
        "tbd",
        "-",
        "*",
        "***",
    ]
)
_MIN_WEAK_CHARS = 6  # as for known secrets (see .known)
_LONG_WEAK_CHARS = 20  # a weak name's value without digit or symbol, this long, is a token
_BRACKETED = re.compile(r"<[^<>]*>|\[[^\[\]]*\]")  # a tokenizer's "<unk>", "[PAD]"


def looks_like_value_of(strength: str, value: str) -> bool:
    """Whether ``value``, after a name of that ``strength`` (see
    :func:`.names.secret_name_strength`), is a secret: for a strong name any value but a
    placeholder (``none``, ``disabled``, ``<unk>``); for a weak one only a value of at
    least 6 characters holding a digit or a symbol, or 20 characters long: ``key=user_id``
    and ``token: 1`` are ordinary text."""
    if value.lower() in _PLACEHOLDERS or _BRACKETED.fullmatch(value):
        return False
    if strength == "strong":
        return True
    if len(value) < _MIN_WEAK_CHARS:
        return False
    has_digit_or_symbol = any(c.isdigit() or not (c.isalnum() or c == "_") for c in value)
    return has_digit_or_symbol or len(value) >= _LONG_WEAK_CHARS


def _value_span(text: str, start: int, name: str, encoded: bool) -> tuple[int, int] | None:
    """Where the value of a secret-named pair that begins at ``start`` lies: inside
    its quotes when quoted (spaces and all), else the run up to a delimiter (the
    rest of the line for a cookie). None when there is nothing to mask."""
    scheme = _SCHEME.match(text, start)
    if scheme and words(name)[-1] == "authorization":
        start = scheme.end()
    for quote in _QUOTES:
        if text.startswith(quote, start):
            opened = start + len(quote)
            closing = text.find(quote, opened, opened + 4096)
            end = closing if closing != -1 else _line_end(text, opened)
            return (opened, end) if end > opened else None
    if words(name)[-1] == "cookie":
        value = _REST_OF_LINE
    else:  # a URL-encoded pair ends at the next encoded "&"
        value = _UNQUOTED_ENCODED if encoded else _UNQUOTED
    plain = value.match(text, start)
    return (start, plain.end()) if plain is not None else None


def _line_end(text: str, start: int) -> int:
    end = text.find("\n", start, start + 4096)
    return end if end != -1 else min(len(text), start + 4096)


def secret_spans(text: str) -> Iterator[tuple[int, int]]:
    """The (start, end) of every secret the shapes find in ``text``, in no order,
    possibly overlapping."""
    for pattern in _SHAPES:
        for match in pattern.finditer(text):
            yield match.start(2), match.end(2)
    position = 0
    while (pair := _NAME.search(text, position)) is not None:
        position = pair.end()
        name = pair.group(1)
        strength = secret_name_strength(name, _in_query(text, pair.start(1)))
        if strength is None:
            continue
        span = _value_span(text, pair.end(), name, "%" in pair.group(2))
        if span is None or text.startswith(REDACTED, span[0]):
            continue
        position = max(position, span[1])  # a value is never read as a name: linear
        if looks_like_value_of(strength, text[span[0] : span[1]]):
            yield span


def _in_query(text: str, name_start: int) -> bool:
    """Whether the name at ``name_start`` is a URL query's (after ``?`` or ``&``)."""
    before = text[max(0, name_start - 3) : name_start]
    return before[-1:] in ("?", "&") or before.upper() in ("%26", "%3F")


def secrets_in_text(text: str) -> list[str]:
    """Every secret the shapes find in ``text``, as it is written there."""
    found = {text[start:end] for start, end in secret_spans(text)}
    for userinfo in _USERINFO.finditer(text):
        user = userinfo.group(2)
        if ":" in user:  # "user:password": the password alone is a secret too
            found.add(user.split(":", 1)[1])
        elif not _token_like(user):
            # A plain user name (postgresql://postgres@db): masked where it stands in a
            # URL, but not remembered, or every "postgres" anywhere would be masked.
            found.discard(user)
    return sorted(found)


def _token_like(text: str) -> bool:
    """Whether a lone userinfo may be a token (https://<token>@host), not a user name."""
    return len(text) >= 16 and any(char.isdigit() for char in text)


def mask_shapes(text: str, on_mask: Callable[[], None] | None = None) -> str:
    """``text`` with every secret the shapes find replaced by ``<redacted>``."""
    spans = sorted(secret_spans(text))
    if not spans:
        return text
    pieces: list[str] = []
    position = 0
    for start, end in spans:
        if end <= position:
            continue  # inside a span already masked
        pieces.append(text[position : max(start, position)])
        if start >= position:
            pieces.append(REDACTED)
        position = end
    pieces.append(text[position:])
    if on_mask is not None:
        on_mask()
    return "".join(pieces)
