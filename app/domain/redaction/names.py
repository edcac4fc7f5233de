"""Which names name a secret: of a mapping's keys (environment variables, params,
credentials) and of ``name=value`` pairs in free text.

Names are split into words at ``_``, ``-``, ``.``, spaces and camelCase humps, and
compared word by word, never as substrings: ``max_tokens`` and ``tokenizer`` are not
``token``.
"""

from __future__ import annotations

import re

_WORD_BREAK = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")

# A key of a mapping names a secret when any of its words is one of these.
_SECRET_KEY_WORDS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "secret",
        "secrets",
        "token",
        "key",
        "apikey",
        "privatekey",
        "credential",
        "credentials",
        "signature",
        "cookie",
        "sas",
    }
)

# In free text a name is a secret's when its last word is one of these ...
_SECRET_LAST_WORDS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "secret",
        "token",
        "apikey",
        "privatekey",
        "accesskey",
        "secretkey",
        "accountkey",
        "credential",
        "signature",
        "sig",
        "authorization",
        "cookie",
    }
)
# ... or its last two words are one of these ("AccountKey", "X-Api-Key", "api key").
_SECRET_LAST_PAIRS = frozenset(
    {
        ("api", "key"),
        ("access", "key"),
        ("secret", "key"),
        ("private", "key"),
        ("account", "key"),
        ("session", "key"),
        ("auth", "key"),
        ("master", "key"),
        ("signing", "key"),
        ("encryption", "key"),
        ("key", "id"),  # aws_access_key_id
    }
)


def words(name: str) -> list[str]:
    """``name`` split into lower-case words (``X-Api-Key`` -> ``["x", "api", "key"]``)."""
    return [word.lower() for word in _WORD_BREAK.split(name) if word]


def is_secret_key(name: str) -> bool:
    """Whether a mapping key (an environment variable, a param, a credentials entry)
    names a secret: any of its words does (``AWS_SECRET_ACCESS_KEY``, ``db_password``)."""
    return any(word in _SECRET_KEY_WORDS for word in words(name))


def is_secret_name(name: str) -> bool:
    """Whether the name of a ``name=value`` pair in free text names a secret, as a
    whole: its last word, or last two, say so (``client_secret``, ``AccountKey``),
    or it is exactly ``key`` (fsspec's credentials). ``log_token_node`` and
    ``max_tokens`` do not."""
    parts = words(name)
    if not parts:
        return False
    if parts == ["key"] or parts[-1] in _SECRET_LAST_WORDS:
        return True
    return len(parts) >= 2 and (parts[-2], parts[-1]) in _SECRET_LAST_PAIRS
