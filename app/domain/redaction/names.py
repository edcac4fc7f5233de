"""Which names name a secret: of a mapping's keys (environment variables, params),
of the keys of the project's credentials that do not, and of ``name=value`` pairs in
free text.

Names are split into words at ``_``, ``-``, ``.``, spaces and camelCase humps, and
compared word by word: ``max_tokens`` and ``tokenizer`` are not ``token``. Only the
words no ordinary word contains (``password``, ``passwd``, ``passphrase``) are also
found inside a word (``PGPASSWORD``).
"""

from __future__ import annotations

import re

_WORD_BREAK = re.compile(r"[^A-Za-z0-9]+|(?<=[a-z0-9])(?=[A-Z])")

# Found inside any word: no ordinary word holds them.
_SECRET_INFIXES = ("password", "passwd", "passphrase")

# A key of a mapping names a secret when any of its words is one of these.
_SECRET_KEY_WORDS = frozenset(
    {
        "secret",
        "secrets",
        "token",
        "authtoken",  # NPM_AUTHTOKEN
        "key",
        "apikey",
        "privatekey",
        "credential",
        "credentials",
        "cred",
        "creds",
        "signature",
        "cookie",
        "sas",
        "pass",  # DB_PASS
        "pwd",  # MYSQL_PWD, an ODBC string's PWD
        "passcode",
        "pat",  # GH_PAT, DATABRICKS_PAT: personal access tokens
        "auth",  # BASIC_AUTH
    }
)
# Named after a webhook (Slack's and Discord's URLs are their credentials).
_WEBHOOK_WORDS = frozenset({"webhook", "webhooks"})
_URL_WORDS = frozenset({"url", "urls", "uri"})

# Keys of the project's credentials that name who or where, not a secret.
_NOT_SECRET_CREDENTIAL_KEYS = frozenset(
    {
        "user",
        "username",
        "login",
        "uid",
        "account",
        "account_name",
        "client_id",
        "region",
        "region_name",
        "endpoint",
        "endpoint_url",
        "url",
        "host",
        "hostname",
        "port",
        "database",
        "dbname",
        "db",
        "schema",
        "warehouse",
        "role",
        "project",
        "project_id",
        "type",
        "driver",
        "protocol",
        "drivername",
        # Options and places of common connectors: sslmode, Snowflake's authenticator,
        # buckets, a GCP service account's addresses (its private_key stays a secret).
        "sslmode",
        "authenticator",
        "bucket",
        "bucket_name",
        "token_uri",
        "auth_uri",
        "auth_provider_x509_cert_url",
        "client_x509_cert_url",
        "client_email",
        "universe_domain",
        "api_version",
    }
)

# In free text a name is a secret's when its last word is one of these, STRONG ones
# taking any value that is no placeholder, WEAK ones (also ordinary words: "key",
# "pass", "auth") only a value that looks like a secret (see .shapes) ...
STRONG_LAST_WORDS = frozenset(
    {
        "password",
        "passwd",
        "passphrase",
        "passcode",
        "secret",
        "privatekey",
        "secretkey",
        "authorization",
        "cookie",
    }
)
_WEAK_LAST_WORDS = frozenset(
    {
        "token",
        "authtoken",
        "apikey",
        "accesskey",
        "accountkey",
        "credential",
        "pass",
        "pwd",
        "pat",
        "auth",
    }
)
# ... or its last two words are one of these ("AccountKey", "X-Api-Key", "api key") ...
STRONG_LAST_PAIRS = frozenset({("private", "key"), ("secret", "key"), ("client", "secret")})
_WEAK_LAST_PAIRS = frozenset(
    {
        ("api", "key"),
        ("access", "key"),
        ("account", "key"),
        ("session", "key"),
        ("auth", "key"),
        ("master", "key"),
        ("signing", "key"),
        ("encryption", "key"),
        ("key", "id"),  # aws_access_key_id
        ("webhook", "url"),
    }
)
# ... and in a URL's query only, these too ("sig=", "X-Amz-Signature="): in prose a
# signature is a function's.
QUERY_LAST_WORDS = frozenset({"signature", "sig"})


def words(name: str) -> list[str]:
    """``name`` split into lower-case words (``X-Api-Key`` -> ``["x", "api", "key"]``)."""
    return [word.lower() for word in _WORD_BREAK.split(name) if word]


def is_secret_key(name: str) -> bool:
    """Whether a mapping key (an environment variable, a param) names a secret: any of
    its words does (``AWS_SECRET_ACCESS_KEY``, ``db_password``, ``GH_PAT``), a word
    holds ``password`` (``PGPASSWORD``), or it names a webhook's URL."""
    parts = words(name)
    if any(infix in word for word in parts for infix in _SECRET_INFIXES):
        return True
    if any(word in _SECRET_KEY_WORDS for word in parts):
        return True
    return bool(parts) and (
        parts[-1] in _WEBHOOK_WORDS
        or (parts[-1] in _URL_WORDS and not _WEBHOOK_WORDS.isdisjoint(parts))
    )


def is_secret_environment_name(name: str) -> bool:
    """Whether an environment variable holds a secret (:func:`is_secret_key`); the
    shell's ``PWD`` and ``OLDPWD`` (working directories) do not."""
    return name.upper() not in {"PWD", "OLDPWD"} and is_secret_key(name)


def is_credential_secret_key(name: str) -> bool:
    """Whether a value under ``name`` in the project's credentials is a secret: every
    one is, except who and where (``username``, ``host``, ``region_name``, ...)."""
    return "_".join(words(name)) not in _NOT_SECRET_CREDENTIAL_KEYS


def secret_name_strength(name: str, in_query: bool) -> str | None:
    """How the name of a ``name=value`` pair in free text names a secret, as a whole
    (its last word, or last two): ``"strong"`` (``client_secret``, ``password``),
    ``"weak"`` (``token``, ``api key``, exactly ``key`` as fsspec's credentials), or
    None (``log_token_node``, ``max_tokens``, ``signature`` outside a URL's query)."""
    parts = words(name)
    if not parts:
        return None
    last, pair = parts[-1], tuple(parts[-2:])
    if last in STRONG_LAST_WORDS or pair in STRONG_LAST_PAIRS:
        return "strong"
    if parts == ["key"] or last in _WEAK_LAST_WORDS or pair in _WEAK_LAST_PAIRS:
        return "weak"
    if in_query and last in QUERY_LAST_WORDS:
        return "weak"
    return None
