"""Names as the conflict check compares them: case, accents, punctuation and word order ignored."""

from __future__ import annotations

import hashlib
import hmac
import re
import unicodedata
import weakref
from typing import Any

# Words that say what kind of entity a name is, not which one: "ACME Holdings, LLC" is
# "Acme Holdings".
ENTITY_WORDS = frozenset(
    {
        "ag", "co", "company", "corp", "corporation", "gmbh", "inc", "incorporated", "limited",
        "llc", "llp", "lp", "ltd", "pc", "plc", "pllc", "sa", "the",
    }
)  # fmt: skip
MAX_WORDS = 20  # a name is a few words; a pasted essay must not cost a query per word
MAX_WORD = 100  # NameToken.token's length
_WORD = re.compile(r"\w+")
# Unicode's default-ignorable code points (DerivedCoreProperties.txt): invisible, so a name
# typed with one inside a word ("Nu\u00adnez", a soft hyphen) must match the name without it.
# They are dropped for matching only: the joiners are part of some scripts' names and stay in
# the stored name.
_IGNORABLE = re.compile(
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180b-\u180f\u200b-\u200f"
    "\u202a-\u202e\u2060-\u206f\u3164\ufe00-\ufe0f\ufeff\uffa0\ufff0-\ufff8"
    "\U0001bca0-\U0001bca3\U0001d173-\U0001d17a\U000e0000-\U000e0fff]"
)
# The `erasure` secret of each bound database, once read: every conflict check hashes a
# handful of keys, and a query per hash would cost more than the check itself.
_secrets: weakref.WeakKeyDictionary[Any, bytes] = weakref.WeakKeyDictionary()


def has_ignorable(text: str) -> bool:
    """Whether `text` holds a character `words` drops (a soft hyphen, a zero-width space)."""
    return _IGNORABLE.search(text) is not None


def words(text: str) -> list[str]:
    """The distinct folded words of a name, in order: `"Ñúñez, Zoë"` → `["nunez", "zoe"]`."""
    decomposed = _IGNORABLE.sub("", unicodedata.normalize("NFKD", text[:2000]))
    plain = "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()
    seen: dict[str, None] = {}
    for found in _WORD.findall(plain.replace("_", " ")):
        word = found[:MAX_WORD]
        if word not in ENTITY_WORDS and word not in seen:
            seen[word] = None
            if len(seen) == MAX_WORDS:
                break
    return list(seen)


def name_key(text: str) -> str:
    """The folded words in alphabetical order: the same key whatever their order or spelling
    of case, accents and punctuation (`"Zoe Nunez"` and `"Ñúñez, Zoë"` → `"nunez zoe"`)."""
    return " ".join(sorted(words(text)))


def keyed_hash(value: str) -> str:
    """HMAC-SHA256 of `value` with the database's `erasure` secret. An erased lead keeps this of
    its name key and email key instead of the data; a later check of the same name or address
    computes the same hash and finds the tombstone, and nothing can be read back from it."""
    return hmac.new(_erasure_secret(), value.encode(), hashlib.sha256).hexdigest()


def _erasure_secret() -> bytes:
    """The `erasure` secret, kept per database once read back as stored. One made here is not
    kept: the transaction that made it might still be rolled back."""
    from leadctl.models import AppSecret, database
    from leadctl.submissions import shared_secret

    db = database.obj
    known = _secrets.get(db)
    if known is not None:
        return known
    row = AppSecret.get_or_none(AppSecret.name == "erasure")
    if row is None:
        return shared_secret("erasure")
    _secrets[db] = secret = bytes.fromhex(row.value)
    return secret
