"""SMS encoding, segmentation and cost.

An SMS body is sent either in the GSM 03.38 7-bit default alphabet ("GSM-7")
or, as soon as one character falls outside it, in UCS-2 (UTF-16 on every
modern handset). Vietnamese letters with diacritics are outside GSM-7, so a
message "có dấu" costs far more segments than the same message "không dấu":

============  ==============  ======================
encoding      single segment  per segment when split
============  ==============  ======================
GSM-7         160 septets     153 septets
UCS-2         70 code units   67 code units
============  ==============  ======================

In GSM-7 the characters of the extension table (``^ { } \\ [ ~ ] | €`` and
form feed) are sent as ESC + code and so cost two septets. In UCS-2 a
character outside the Basic Multilingual Plane (most emoji) is a surrogate
pair and costs two code units. A multipart message is split so that neither
an escape pair nor a surrogate pair is cut across two segments; a segment may
therefore carry one unit less than its nominal capacity, and the segment
count is derived from that real split, not from a division.

Text pasted from a word processor carries typographic punctuation (curly
quotes, en and em dashes, the ellipsis, non-breaking and zero-width spaces,
bullets) that is outside GSM-7: one curly quote in an otherwise plain
message turns it into UCS-2 and multiplies the segments by about 2.3. As
Twilio's Smart Encoding does, :func:`encode_sms` replaces such characters
with their GSM-7 look-alikes (:data:`SMART_REPLACEMENTS`) when that makes
the whole message GSM-7; when some other character (a Vietnamese letter
with its diacritics, an emoji) keeps it in UCS-2 anyway, the text is left
as written. GSM-7 characters such as é, £ or € are never touched.
"""

from __future__ import annotations

import unicodedata
from dataclasses import dataclass

__all__ = [
    "GSM7",
    "GSM7_BASIC",
    "GSM7_EXTENSION",
    "MAX_BODY_CHARS",
    "SMART_REPLACEMENTS",
    "UCS2",
    "SmsEncoding",
    "SmsTooLong",
    "encode_sms",
    "is_gsm7",
    "non_gsm_characters",
    "segment_cost",
    "smart_replace",
    "split_segments",
    "strip_diacritics",
]

GSM7 = "GSM-7"
UCS2 = "UCS-2"

#: Twilio refuses bodies longer than this many characters (error 21617).
MAX_BODY_CHARS = 1600

GSM7_SINGLE = 160
GSM7_MULTI = 153  # 7 septets go to the user data header (UDH)
UCS2_SINGLE = 70
UCS2_MULTI = 67  # 6 octets of UDH = 3 code units

# GSM 03.38 default alphabet, in code order 0x00..0x7F (Unicode's GSM0338.TXT
# mapping). 0x1B is the escape to the extension table and is not a character:
# it is left out, so the set below holds 127 characters.
_GSM7_BASIC_TABLE = (
    "@£$¥èéùìòÇ\nØø\rÅå"  # 0x00-0x0F
    "Δ_ΦΓΛΩΠΨΣΘΞ\x1bÆæßÉ"  # 0x10-0x1F (0x1B = ESC)
    " !\"#¤%&'()*+,-./"  # 0x20-0x2F
    "0123456789:;<=>?"  # 0x30-0x3F
    "¡ABCDEFGHIJKLMNO"  # 0x40-0x4F
    "PQRSTUVWXYZÄÖÑÜ§"  # 0x50-0x5F
    "¿abcdefghijklmno"  # 0x60-0x6F
    "pqrstuvwxyzäöñüà"  # 0x70-0x7F
)
assert len(_GSM7_BASIC_TABLE) == 128

#: Characters of the GSM-7 basic table (one septet each).
GSM7_BASIC: frozenset[str] = frozenset(_GSM7_BASIC_TABLE) - {"\x1b"}

#: Characters of the GSM-7 extension table (ESC + code: two septets each).
GSM7_EXTENSION: frozenset[str] = frozenset("\f^{}\\[~]|€")


def _table(chars: str, replacement: str) -> dict[str, str]:
    return dict.fromkeys(chars, replacement)


#: Typographic characters and their GSM-7 replacements, after the table of
#: Twilio's Smart Encoding ("List of characters replaced by Smart Encoding",
#: twilio.com/docs/messaging/services/smart-encoding-char-list), plus the
#: invisible characters and bullets of office documents and the đồng sign.
SMART_REPLACEMENTS: dict[str, str] = {
    # double quotes: « » “ ” ʺ ˮ ‟ ❝ ❞ 〝 〞 ＂ „ ″ ‶
    **_table("\u00ab\u00bb\u201c\u201d\u02ba\u02ee\u201f\u275d\u275e\u301d\u301e\uff02\u201e\u2033\u2036", '"'),
    # single quotes and apostrophes: ‘ ’ ʻ ˈ ʼ ʽ ʹ ‛ ＇ ´ ˊ ` ˋ ❛ ❜ ‚ ′ ‵ ‹ ›
    **_table("\u2018\u2019\u02bb\u02c8\u02bc\u02bd\u02b9\u201b\uff07\u00b4\u02ca\u0060\u02cb\u275b\u275c"
             "\u201a\u2032\u2035\u2039\u203a", "'"),
    # dashes, hyphens, minus and bullets: ‐ ‑ ‒ – — ― ⁃ − ﹣ － • ● ▪ ◦ ‣ ∙ ·
    **_table("\u2010\u2011\u2012\u2013\u2014\u2015\u2043\u2212\ufe63\uff0d\u2022\u25cf\u25aa\u25e6\u2023\u2219"
             "\u00b7", "-"),
    # spaces: no-break, en/em and the other fixed-width spaces, ideographic space, tab
    **_table("\u00a0\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u2009\u200a\u202f\u205f\u3000\t", " "),
    # invisible: zero-width space / joiners, word joiner, byte-order mark, soft hyphen
    **_table("\u200b\u200c\u200d\u2060\ufeff\u00ad", ""),
    "\u2026": "...",  # … horizontal ellipsis
    "\u2028": "\n",  # line separator
    "\u2029": "\n",  # paragraph separator
    "\u2044": "/",  # ⁄ fraction slash
    "\u2215": "/",  # ∕ division slash
    "\uff0f": "/",  # ／ fullwidth solidus
    "\uff0c": ",",  # ， fullwidth comma
    "\uff1a": ":",  # ： fullwidth colon
    "\uff1b": ";",  # ； fullwidth semicolon
    "\uff01": "!",  # ！ fullwidth exclamation mark
    "\uff1f": "?",  # ？ fullwidth question mark
    "\uff08": "(",  # （ fullwidth parenthesis
    "\uff09": ")",
    "\u2217": "*",  # ∗ asterisk operator
    "\u02c6": "^",  # ˆ modifier circumflex
    "\u02dc": "~",  # ˜ small tilde
    "\u20ab": "d",  # ₫ đồng sign, as written "không dấu"
}
assert not any(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in SMART_REPLACEMENTS)


def smart_replace(text: str) -> tuple[str, tuple[tuple[str, str, int], ...]]:
    """Replace the characters of :data:`SMART_REPLACEMENTS`.

    Returns the new text and, in order of first appearance, one
    ``(character, replacement, count)`` per character replaced.
    """
    counts: dict[str, int] = {}
    out: list[str] = []
    for ch in text:
        replacement = SMART_REPLACEMENTS.get(ch)
        if replacement is None:
            out.append(ch)
        else:
            counts[ch] = counts.get(ch, 0) + 1
            out.append(replacement)
    return "".join(out), tuple((ch, SMART_REPLACEMENTS[ch], n) for ch, n in counts.items())


class SmsTooLong(ValueError):
    """The body is longer than :data:`MAX_BODY_CHARS` characters."""

    def __init__(self, length: int, limit: int = MAX_BODY_CHARS) -> None:
        self.length = length
        self.limit = limit
        super().__init__(
            f"Tin nhắn quá dài: {length} ký tự, tối đa {limit} ký tự. "
            f"/ SMS body too long: {length} characters, the maximum is {limit}."
        )


@dataclass(frozen=True)
class SmsEncoding:
    """How an SMS body will travel and what it will cost in segments."""

    text: str  #: final text (NFC; diacritics stripped if asked)
    encoding: str  #: ``"GSM-7"`` or ``"UCS-2"``
    characters: int  #: user-visible characters (code points of the NFC text)
    units: int  #: septets for GSM-7 (extension chars count 2), UTF-16 code units for UCS-2
    segments: int  #: number of segments after a real split (0 for an empty body)
    unit_limit_single: int  #: 160 (GSM-7) or 70 (UCS-2)
    unit_limit_multi: int  #: 153 (GSM-7) or 67 (UCS-2)
    #: typographic characters replaced so the message fits GSM-7: (character, replacement, count)
    replaced: tuple[tuple[str, str, int], ...] = ()


# --------------------------------------------------------------------------
# Diacritics
# --------------------------------------------------------------------------

# Vietnamese vowels: a base vowel, at most one vowel mark (breve ă,
# circumflex â ê ô, horn ơ ư) and at most one of the five tone marks
# (huyền U+0300, sắc U+0301, ngã U+0303, hỏi U+0309, nặng U+0323).
_VOWEL_MARKS = {
    "a": ("", "\u0306", "\u0302"),
    "e": ("", "\u0302"),
    "i": ("",),
    "o": ("", "\u0302", "\u031b"),
    "u": ("", "\u031b"),
    "y": ("",),
}
_TONE_MARKS = ("", "\u0300", "\u0301", "\u0303", "\u0309", "\u0323")
_VIETNAMESE_MARKS = frozenset("\u0300\u0301\u0303\u0309\u0323\u0302\u0306\u031b")
_VIETNAMESE_VOWELS = frozenset("aeiouyAEIOUY")

_SPECIAL = {
    "đ": "d",
    "Đ": "D",
    # U+00D0 (Icelandic eth) looks identical to Đ and is a common typing
    # mistake for it in Vietnamese documents.
    "Ð": "D",
}


def _build_unaccent_map() -> dict[int, str]:
    table: dict[int, str] = {ord(k): v for k, v in _SPECIAL.items()}
    for base, vowel_marks in _VOWEL_MARKS.items():
        for case_base in (base, base.upper()):
            for vowel_mark in vowel_marks:
                for tone in _TONE_MARKS:
                    if not vowel_mark and not tone:
                        continue
                    composed = unicodedata.normalize("NFC", case_base + vowel_mark + tone)
                    assert len(composed) == 1, composed  # all 132 exist precomposed
                    table[ord(composed)] = case_base
    return table


_UNACCENT = _build_unaccent_map()


def strip_diacritics(text: str) -> str:
    """Write Vietnamese "không dấu": remove tone and vowel marks, đ → d, Đ → D.

    The text is first normalised to NFC, so decomposed (NFD) input gives the
    same result as precomposed input. Only Vietnamese vowels and đ/Đ change;
    everything else (digits, punctuation, other scripts, emoji, letters such
    as ñ or ç whose marks are not Vietnamese) is kept as it is. Each character
    of the NFC text maps to exactly one character, so the length is kept.
    """
    nfc = unicodedata.normalize("NFC", text)
    stripped = nfc.translate(_UNACCENT)
    # A combining Vietnamese mark left over after NFC (one that could not be
    # composed) still hangs on a plain vowel: drop it too.
    if any(ch in _VIETNAMESE_MARKS for ch in stripped):
        out: list[str] = []
        for ch in stripped:
            if ch in _VIETNAMESE_MARKS and out and out[-1] in _VIETNAMESE_VOWELS:
                continue
            out.append(ch)
        stripped = "".join(out)
    return stripped


# --------------------------------------------------------------------------
# Encoding and segmentation
# --------------------------------------------------------------------------


def is_gsm7(text: str) -> bool:
    """True if every character of ``text`` is in the GSM-7 basic or extension table."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def non_gsm_characters(text: str) -> list[str]:
    """The distinct characters that force ``text`` into UCS-2, in order of appearance."""
    seen: dict[str, None] = {}
    for ch in unicodedata.normalize("NFC", text):
        if ch not in GSM7_BASIC and ch not in GSM7_EXTENSION:
            seen.setdefault(ch, None)
    return list(seen)


def _unit_cost(ch: str, encoding: str) -> int:
    if encoding == GSM7:
        return 2 if ch in GSM7_EXTENSION else 1
    return 2 if ord(ch) > 0xFFFF else 1


def _limits(encoding: str) -> tuple[int, int]:
    return (GSM7_SINGLE, GSM7_MULTI) if encoding == GSM7 else (UCS2_SINGLE, UCS2_MULTI)


def _split(text: str, encoding: str) -> list[str]:
    if not text:
        return []
    single, multi = _limits(encoding)
    costs = [_unit_cost(ch, encoding) for ch in text]
    if sum(costs) <= single:
        return [text]
    parts: list[str] = []
    start = 0
    used = 0
    for i, cost in enumerate(costs):
        # A two-unit character (escape pair / surrogate pair) that does not
        # fit whole in this segment starts the next one.
        if used + cost > multi:
            parts.append(text[start:i])
            start, used = i, 0
        used += cost
    parts.append(text[start:])
    return parts


def split_segments(enc: SmsEncoding) -> list[str]:
    """Split the text as the network will: one string per segment.

    A single-segment message is returned whole. Otherwise each part holds at
    most :attr:`SmsEncoding.unit_limit_multi` units and never ends in the
    middle of a GSM-7 escape pair or a UTF-16 surrogate pair. An empty text
    gives an empty list.
    """
    return _split(enc.text, enc.encoding)


def encode_sms(text: str, *, strip: bool = False, smart: bool = True) -> SmsEncoding:
    """Work out the encoding, size and segment count of an SMS body.

    ``text`` is normalised to NFC; with ``strip=True`` Vietnamese diacritics
    are removed first (see :func:`strip_diacritics`). With ``smart=True``
    (the default) typographic punctuation is then replaced by its GSM-7
    look-alike when that makes the whole message GSM-7 (see the module
    docstring); :attr:`SmsEncoding.replaced` lists what was replaced. Raises
    :class:`SmsTooLong` if the result is longer than :data:`MAX_BODY_CHARS`.
    """
    final = strip_diacritics(text) if strip else unicodedata.normalize("NFC", text)
    replaced: tuple[tuple[str, str, int], ...] = ()
    if smart and not is_gsm7(final):
        candidate, changes = smart_replace(final)
        if changes and is_gsm7(candidate):
            final, replaced = candidate, changes
    if len(final) > MAX_BODY_CHARS:
        raise SmsTooLong(len(final))
    encoding = GSM7 if is_gsm7(final) else UCS2
    single, multi = _limits(encoding)
    units = sum(_unit_cost(ch, encoding) for ch in final)
    return SmsEncoding(
        text=final,
        encoding=encoding,
        characters=len(final),
        units=units,
        segments=len(_split(final, encoding)),
        unit_limit_single=single,
        unit_limit_multi=multi,
        replaced=replaced,
    )


def segment_cost(enc: SmsEncoding, price_per_segment: float) -> float:
    """Cost of sending ``enc`` once: segments × price (rounded to 6 decimals)."""
    if price_per_segment < 0:
        raise ValueError(f"price_per_segment must not be negative: {price_per_segment!r}")
    return round(enc.segments * price_per_segment, 6)
