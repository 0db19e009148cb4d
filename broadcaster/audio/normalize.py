"""Vietnamese text normalisation before speech synthesis.

Bulletins are written for the eye; the TTS engine reads what it sees, so
"UBND", "20/1/2022" or "0912 345 678" come out as letters and digit soup.
:func:`normalize_text` rewrites a bulletin into the words a Vietnamese radio
announcer says, one string per sentence.

Readings chosen (what a commune announcer says, not what a generic library
prints):

* Numbers: 21 "hai mươi mốt", 15 "mười lăm", 24 "hai mươi tư", 14 "mười
  bốn", 105 "một trăm linh năm", 2022 "hai nghìn không trăm hai mươi hai",
  1.250.000 "một triệu hai trăm năm mươi nghìn"; "nghìn" (not "ngàn"),
  "linh" (not "lẻ"), "tỷ" for 10^9. The dot groups thousands, the comma is
  the decimal mark ("2,5" -> "hai phẩy năm"); "4.0" is "bốn chấm không".
  Leading zeros are dropped ("08 nội dung" -> "tám nội dung").
* Dates: "20/1/2022" -> "ngày hai mươi tháng một năm hai nghìn không trăm
  hai mươi hai"; the word "ngày" is not doubled when the text already has
  it; plain "ngày một" rather than the colloquial "ngày mùng một"; month 4
  is "tháng tư"; January/December are "tháng một"/"tháng mười hai" (the
  lunar names giêng/chạp are not used for calendar dates).
* A bare day/month is a date where it is a valid one and the words around
  say so: after từ, đến, hết, hạn, chót, sáng, chiều, trước, sau, vào, a
  weekday..., as the second of two dates, or at the start or end of a
  clause ("Hạn chót 30/4." -> "Hạn chót ngày ba mươi tháng tư"); "15-20/5"
  and "15/5 - 20/5" are "từ ngày ... đến ngày ..."; after đường, lễ, dịp,
  Quốc khánh the date is a name, without "ngày" ("đường ba tháng hai").
  Otherwise a/b is a ratio ("tám trên mười"), or a fraction before số,
  diện tích... ("một phần hai số hộ", "ba phần tư").
* After a quantity a slash is "per", said "một": "1,5 triệu đồng/hộ" ->
  "... đồng một hộ", "2 lần/tuần" -> "hai lần một tuần"; rates keep "trên"
  ("60km/h", "40 km/giờ", "người/km2"); other slashes are lists ("xã,
  phường").
* Year ranges: after "giai đoạn", "nhiệm kỳ", "thời kỳ", "năm học",
  "niên khóa" the range is "X đến Y" ("giai đoạn hai nghìn không trăm hai
  mươi mốt đến hai nghìn không trăm ba mươi"); after "năm" it is "X đến năm
  Y"; otherwise "từ năm X đến năm Y".
* Times: "6h30", "6:30" -> "sáu giờ ba mươi phút"; "17h", "17h00" ->
  "mười bảy giờ"; a trailing SA/CH (Windows vi-VN AM/PM) -> sáng/chiều.
* Document numbers are read the way news readers do: the number, the year
  if the code has one, then "của" and the issuer, dropping the document type
  when the sentence has just said it: "Kế hoạch số 219/KH-UBND" -> "Kế
  hoạch số hai trăm mười chín của Ủy ban nhân dân"; "Quyết định số
  45/2016/QĐ-TTg" -> "Quyết định số bốn mươi lăm năm hai nghìn không trăm
  mười sáu của Thủ tướng Chính phủ"; "theo 219/KH-UBND" -> "theo kế hoạch
  số hai trăm mười chín của Ủy ban nhân dân".
* Phone numbers are read digit by digit, "+" as "cộng", in the groups they
  are written in with a comma (a short pause) between groups so a listener
  can note them ("0912 345 678" -> "không chín một hai, ba bốn năm, sáu bảy
  tám"; an ungrouped mobile number 4-3-3); so are short hotlines a few
  words after "gọi", "điện thoại", "đường dây nóng", "tổng đài" ("gọi 113"
  -> "gọi một một ba"), unless a count follows ("120 cuộc gọi").
* Weekdays: "Thứ 2, thứ 7, CN" -> "thứ hai, thứ bảy, chủ nhật", "T2-T6" ->
  "từ thứ hai đến thứ sáu" ("CN" and "T2" only beside another weekday or
  after ngày, sáng, chiều...).
* Place prefixes before a name or a number: "TP. Bạc Liêu, P.7" ->
  "thành phố Bạc Liêu, phường bảy" (Q., TX., TT., H., KP. too); their dot
  ends no sentence.
* Brackets: one that only repeats what was just said is read once
  ("cải cách hành chính (CCHC)", an amount in words after the figure), as
  is an abbreviation whose capitals are the initials of the words before
  it; "(sau đây gọi tắt là ...)" is not read. A document number may carry a
  letter ("30c/NQ-CP" -> "ba mươi xê của Chính phủ") and the issuing
  office's department code is dropped ("1234/UBND-KT").
* Roman numerals only after a word that introduces one (khóa, quý, phần,
  chương, mục, đại hội, kỳ, thế kỷ ...): "khóa XVI" -> "khóa mười sáu";
  after "thứ" they are ordinals, as are arabic numbers: "thứ 1" / "thứ I"
  -> "thứ nhất", "thứ 4" -> "thứ tư".
* Sentences: split on . ! ? ; … and newlines; the trailing "." ";" "…" is
  dropped, a trailing "?" or "!" is kept (it changes the intonation).

Everything is pure string processing: no database, no network.
"""

from __future__ import annotations

import functools
import re
import tomllib
import unicodedata
from collections.abc import Callable
from dataclasses import dataclass
from importlib import resources

__all__ = ["load_abbreviations", "normalize_text", "number_to_words"]

# --------------------------------------------------------------------------
# Number words
# --------------------------------------------------------------------------

DIGIT_WORDS = ("không", "một", "hai", "ba", "bốn", "năm", "sáu", "bảy", "tám", "chín")
_GROUP_SCALES = ("", "nghìn", "triệu")
_BILLION = 1_000_000_000
_MAX_NUMBER_DIGITS = 15  # longer digit strings are codes: read digit by digit


def _read_hundreds(n: int, full: bool) -> list[str]:
    """Words for 0 < n < 1000; ``full`` reads the leading "không trăm" / "linh"
    needed when a higher group precedes (1001 -> một nghìn không trăm linh một)."""
    hundreds, tens, ones = n // 100, n // 10 % 10, n % 10
    words: list[str] = []
    if hundreds or full:
        words += [DIGIT_WORDS[hundreds], "trăm"]
    if tens == 0:
        if ones:
            if words:
                words.append("linh")
            words.append(DIGIT_WORDS[ones])
    elif tens == 1:
        words.append("mười")
        if ones:
            words.append("lăm" if ones == 5 else DIGIT_WORDS[ones])
    else:
        words += [DIGIT_WORDS[tens], "mươi"]
        if ones:
            words.append({1: "mốt", 4: "tư", 5: "lăm"}.get(ones, DIGIT_WORDS[ones]))
    return words


def _read_below_billion(n: int, full: bool) -> list[str]:
    groups = [n // 1_000_000, n // 1000 % 1000, n % 1000]
    words: list[str] = []
    for value, scale in zip(groups, reversed(_GROUP_SCALES), strict=True):
        if not value:
            continue
        words += _read_hundreds(value, full=full or bool(words))
        if scale:
            words.append(scale)
    return words


def _number_words(n: int, full: bool = False) -> list[str]:
    if n >= _BILLION:
        high, low = divmod(n, _BILLION)
        words = _number_words(high, full) + ["tỷ"]
        return words + _read_below_billion(low, full=True) if low else words
    return _read_below_billion(n, full)


def number_to_words(n: int) -> str:
    """Vietnamese reading of an integer, as an announcer says it.

    >>> number_to_words(2005)
    'hai nghìn không trăm linh năm'
    """
    if n < 0:
        return "âm " + number_to_words(-n)
    if n == 0:
        return DIGIT_WORDS[0]
    return " ".join(_number_words(n))


# How a letter is named when it is read on its own ("30c/NQ-CP" -> ba mươi xê).
_LETTER_NAMES = {
    "a": "a", "b": "bê", "c": "xê", "d": "dê", "đ": "đê", "e": "e", "f": "ép", "g": "giê", "h": "hát",
    "i": "i", "j": "giây", "k": "ca", "l": "lờ", "m": "mờ", "n": "nờ", "o": "o", "p": "pê", "q": "quy",
    "r": "rờ", "s": "ét", "t": "tê", "u": "u", "v": "vê", "w": "vê kép", "x": "ích", "y": "i dài", "z": "dét",
}


def _ordinal_words(n: int) -> str:
    return {1: "nhất", 4: "tư"}.get(n, number_to_words(n))


def _month_words(n: int) -> str:
    return "tư" if n == 4 else number_to_words(n)


def _digits_words(digits: str) -> str:
    return " ".join(DIGIT_WORDS[int(d)] for d in digits if d.isdigit())


def _integer_string_words(digits: str) -> str:
    """A digit string as a number; long or zero-padded codes digit by digit."""
    stripped = digits.lstrip("0")
    if len(digits) > _MAX_NUMBER_DIGITS or (len(digits) > 2 and digits[0] == "0" and stripped):
        return _digits_words(digits)
    return number_to_words(int(stripped or "0"))


def _decimal_words(integer: str, fraction: str | None) -> str:
    words = _integer_string_words(integer.replace(".", ""))
    if fraction:
        zeros = len(fraction) - len(fraction.lstrip("0"))
        tail = fraction.lstrip("0")
        fraction_words = ["không"] * zeros + ([number_to_words(int(tail))] if tail else [])
        words += " phẩy " + " ".join(fraction_words)
    return words


def _pad(words: str) -> str:
    """Replacement text with spaces around it; ``_tidy`` removes the extras."""
    return f" {words} "


# --------------------------------------------------------------------------
# Abbreviation dictionary
# --------------------------------------------------------------------------

_TOKEN = r"[\w&]+(?:[-/][\w&]+)*"
_TOKEN_RE = re.compile(rf"(?<![\w&/-]){_TOKEN}(?![\w&])")
_TOKEN_FULL_RE = re.compile(_TOKEN)
_CODE_SEPARATOR_RE = re.compile(r"[-/]")


def _nfc_mapping(table: dict[str, str]) -> dict[str, str]:
    return {unicodedata.normalize("NFC", k): unicodedata.normalize("NFC", v) for k, v in table.items()}


@functools.cache
def _dictionary() -> dict[str, dict[str, str]]:
    raw = resources.files("broadcaster").joinpath("data", "abbreviations.toml").read_bytes()
    data = tomllib.loads(raw.decode("utf-8"))
    return {
        section: _nfc_mapping(data.get(section, {}))
        for section in ("abbreviations", "document_types", "issuers")
    }


def load_abbreviations(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The abbreviations expanded anywhere in a text (a fresh dict), with
    ``extra`` merged over them. Document-code parts such as "KH" or "TU" are
    not included: they are expanded only inside document numbers."""
    merged = dict(_dictionary()["abbreviations"])
    if extra:
        merged.update(_nfc_mapping(extra))
    return merged


def _phrase_pattern(keys: list[str]) -> re.Pattern[str] | None:
    if not keys:
        return None
    alternation = "|".join(re.escape(k) for k in sorted(keys, key=len, reverse=True))
    return re.compile(rf"(?<![\w&])(?:{alternation})(?![\w&])")


@functools.cache
def _base_phrase_pattern() -> re.Pattern[str] | None:
    return _phrase_pattern([k for k in _dictionary()["abbreviations"] if not _TOKEN_FULL_RE.fullmatch(k)])


@dataclass(frozen=True)
class _Context:
    abbreviations: dict[str, str]
    document_types: dict[str, str]
    code_parts: dict[str, str]
    phrase_pattern: re.Pattern[str] | None

    @classmethod
    def build(cls, extra: dict[str, str] | None) -> _Context:
        tables = _dictionary()
        abbreviations = load_abbreviations(extra)
        if extra:
            phrase_pattern = _phrase_pattern([k for k in abbreviations if not _TOKEN_FULL_RE.fullmatch(k)])
        else:
            phrase_pattern = _base_phrase_pattern()
        code_parts = {**tables["document_types"], **tables["issuers"], **abbreviations}
        return cls(abbreviations, tables["document_types"], code_parts, phrase_pattern)


def _read_code(parts: list[str], ctx: _Context) -> tuple[str | None, str]:
    """Split a document code into (document type words, issuer words).

    Unknown parts after a known issuer are the issuing office's internal
    department codes ("1234/UBND-KT"): an announcer leaves them out."""
    doc_type = ctx.document_types.get(parts[0])
    issuer_parts = parts[1:] if doc_type else parts
    known = [p for p in issuer_parts if _code_part_words(p, ctx)]
    if known and _code_part_words(issuer_parts[0], ctx):
        issuer_parts = known
    return doc_type, " ".join(_code_part_words(p, ctx) or p for p in issuer_parts)


_NUMBERED_BODY_RE = re.compile(r"(?P<body>[A-ZĐ][\w&]*?)(?P<term>\d{1,2})")


def _code_part_words(part: str, ctx: _Context) -> str | None:
    """One part of a document code, or None if unknown; "QH13" is the 13th National Assembly."""
    if part in ctx.code_parts:
        return ctx.code_parts[part]
    m = _NUMBERED_BODY_RE.fullmatch(part)
    if m and m["body"] in ctx.code_parts:
        term = "khóa " if m["body"].endswith("QH") else ""
        return f"{ctx.code_parts[m['body']]} {term}{number_to_words(int(m['term']))}"
    return None


# --------------------------------------------------------------------------
# Text preparation
# --------------------------------------------------------------------------

_CHAR_MAP = str.maketrans(
    {
        "\u2044": "/",  # fraction slash, as in the seed "20⁄1⁄2022"
        "\u2215": "/",  # division slash
        "\uff0f": "/",  # fullwidth solidus
        "\u2010": "-",
        "\u2011": "-",
        "\u2012": "-",
        "\u2212": "-",  # minus sign
        "\u00a0": " ",
        "\u202f": " ",
        "\u2009": " ",
        "\u200b": None,
        "\u200c": None,
        "\u200d": None,
        "\u2060": None,  # word joiner
        "\u00ad": None,  # soft hyphen, from word processors
        "\ufeff": None,
        "\u3000": " ",
        **dict.fromkeys("\u2002\u2003\u2004\u2005\u2006\u2007\u2008\u200a\u205f", " "),
    }
)
_SPACES_RE = re.compile(r"[ \t\f\v]+")
_BULLET_RE = re.compile(
    r"^(?:[-–—•●▪◦*]+\s*|\+\s+|[a-zđ]\)\s*|\d{1,2}(?:\.\d{1,2})*[.)]\s+|[IVX]{1,4}\.\s+)"
)


def _prepare(text: str) -> str:
    return unicodedata.normalize("NFC", text).translate(_CHAR_MAP)


def _strip_bullet(line: str) -> str:
    return _BULLET_RE.sub("", _SPACES_RE.sub(" ", line).strip(), count=1)


# --------------------------------------------------------------------------
# Rules: each takes one line and the context, returns the rewritten line
# --------------------------------------------------------------------------

Rule = Callable[[str, _Context], str]


_FILE_NAME_RE = re.compile(r"\S+\.(?:pdf|docx?|xlsx?|pptx?|odt|zip|rar)(?!\w)", re.IGNORECASE)
_URL_SCHEME_RE = re.compile(r"\bhttps?://(?:www\.)?", re.IGNORECASE)


def _drop_file_names(line: str, ctx: _Context) -> str:
    """Attachments ("911-KH-tuyen-truyen.pdf") are not read out; URL schemes neither."""
    return _URL_SCHEME_RE.sub("", _FILE_NAME_RE.sub("", line))


def _fold(word: str) -> str:
    """Lower case without diacritics, đ -> d: "Ủy" and "Uỷ" compare equal."""
    decomposed = unicodedata.normalize("NFD", word.lower().replace("đ", "d"))
    return "".join(ch for ch in decomposed if not unicodedata.combining(ch))


_BRACKETED_ABBREVIATION_RE = re.compile(r"\s*\((?P<abbr>[A-ZĐ][\w&.-]{1,15})\)")
# "(sau đây gọi tắt là UBND tỉnh)", "(viết tắt: CCHC)": a note for the reader, not for the ear
_SHORT_NAME_NOTE_RE = re.compile(r"\s*\((?i:sau đây\s+)?(?i:gọi|viết)\s+tắt\b[^()]*\)")
_CONJUNCTION = "và"


def _spells_initials(abbreviation: str, words: list[str]) -> bool:
    """True when the capitals of ``abbreviation`` are the initials of the last ``words``
    ("Ban Chỉ đạo (BCĐ)", "khoa học và công nghệ (KH&CN)": "và" may be left out)."""
    letters = [_fold(c) for c in abbreviation if c.isupper()]
    if len(letters) < 2:
        return False
    for skip_conjunction in (False, True):
        tail = [w for w in words if not (skip_conjunction and w.lower() == _CONJUNCTION)][-len(letters):]
        if len(tail) == len(letters) and [_fold(w[0]) for w in tail] == letters:
            return True
    return False


def _drop_bracketed_initials(line: str, ctx: _Context) -> str:
    """"Ban quản lý dự án (BQLDA)": a bracketed abbreviation whose capitals are the initials
    of the words right before it is not read. One right after its dictionary expansion
    ("cải cách hành chính (CCHC)") goes once expanded: see :func:`_drop_echoed_brackets`."""

    def replace(m: re.Match[str]) -> str:
        words = _WORD_RE.findall(m.string[: m.start()])
        return "" if _spells_initials(m["abbr"].rstrip("."), words) else m.group(0)

    return _BRACKETED_ABBREVIATION_RE.sub(replace, _SHORT_NAME_NOTE_RE.sub("", line))


_PLACE_PREFIXES = {
    "TP": "thành phố",
    "Tp": "thành phố",
    "TX": "thị xã",
    "Tx": "thị xã",
    "TT": "thị trấn",
    "Tt": "thị trấn",
    "KP": "khu phố",
    "P": "phường",
    "Q": "quận",
    "H": "huyện",
}
# "P. Giám đốc", "Q. Chủ tịch": before a title the same letters mean deputy / acting.
_TITLE_PREFIXES = {"P": "phó", "Q": "quyền"}
_TITLES_RE = re.compile(r"(?:Giám đốc|Chủ tịch|Trưởng|Hiệu trưởng|Chánh|Bí thư|Tổng)\b")
_PLACE_PREFIX_RE = re.compile(
    r"(?<![\w.])(?P<prefix>" + "|".join(sorted(_PLACE_PREFIXES, key=len, reverse=True)) + r")\.\s*(?=\w)"
)


def _read_place_prefixes(line: str, ctx: _Context) -> str:
    """TP. Bạc Liêu, P.7, Q.1, TX. Giá Rai, TT. Hộ Phòng, H. Hồng Dân: the dot is no sentence end."""

    def replace(m: re.Match[str]) -> str:
        following = m.string[m.end() :]
        if not (following[0].isdigit() or following[0].isupper()):
            return m.group(0)
        prefix = m["prefix"]
        if prefix in _TITLE_PREFIXES and _TITLES_RE.match(following):
            return _TITLE_PREFIXES[prefix] + " "
        return _PLACE_PREFIXES[prefix] + " "

    line = _PLACE_PREFIX_RE.sub(replace, line)
    return _INITIAL_DOT_RE.sub("", line)


# "ông Nguyễn Văn H. cho biết": an initial's dot before a lower-case word ends no sentence.
_INITIAL_DOT_RE = re.compile(r"(?<=\b[A-ZĐ])\.(?=\s+[a-zđà-ỹ])")


def _expand_phrase_abbreviations(line: str, ctx: _Context) -> str:
    """Abbreviations containing spaces or dots: PAR INDEX, TP.HCM, v.v."""
    if ctx.phrase_pattern is None:
        return line
    return ctx.phrase_pattern.sub(lambda m: ctx.abbreviations[m.group(0)], line)


_DOCUMENT_NUMBER_RE = re.compile(
    r"(?<![\w/.,])(?P<number>\d{1,6})(?P<letter>[a-zđA-ZĐ])?(?:/(?P<year>\d{4}))?[/-]"
    r"(?P<code>[A-ZĐ][\w&]*(?:[-/][A-ZĐ][\w&]*)*)(?![\w&/-])"
)
_WORD_RE = re.compile(r"\w+")
_ENDS_WITH_SO_RE = re.compile(r"\bsố\s*$", re.IGNORECASE)
_DOC_TYPE_LOOKBACK_WORDS = 6
_ISSUER_LOOKAHEAD_WORDS = 12
_SENTENCE_END_RE = re.compile(r"[.!?;…](?:\s|$)")


def _names_issuer(following: str, issuer: str, issuer_codes: list[str]) -> bool:
    """True when the text after a document number already says who issued it
    ("76/NQ-CP của Chính phủ", "405/KH-UBND ngày ... của UBND tỉnh")."""
    sentence_rest = _SENTENCE_END_RE.split(following, maxsplit=1)[0]
    words = _WORD_RE.findall(sentence_rest)[:_ISSUER_LOOKAHEAD_WORDS]
    if words[:1] and words[0].lower() == "của":
        return True
    window = " ".join(words)
    return issuer.lower() in window.lower() or any(code in words for code in issuer_codes)


def _read_document_numbers(line: str, ctx: _Context) -> str:
    """219/KH-UBND, 07-NQ/TU, 45/2016/QĐ-TTg (see the module docstring)."""

    def replace(m: re.Match[str]) -> str:
        parts = _CODE_SEPARATOR_RE.split(m["code"])
        doc_type, issuer = _read_code(parts, ctx)
        number = _integer_string_words(m["number"])
        if m["letter"]:
            number += " " + _LETTER_NAMES.get(m["letter"].lower(), m["letter"])
        if m["year"]:
            number += " năm " + number_to_words(int(m["year"]))
        before = m.string[: m.start()]
        recent = " ".join(_WORD_RE.findall(before)[-_DOC_TYPE_LOOKBACK_WORDS:]).lower()
        if doc_type is None or doc_type.lower() in recent:
            words = [number]
        elif _ENDS_WITH_SO_RE.search(before):
            words = [number, doc_type]
        else:
            words = [doc_type, "số", number]
        if issuer and not _names_issuer(m.string[m.end() :], issuer, parts[1:] if doc_type else parts):
            words += ["của", issuer]
        return _pad(" ".join(words))

    return _DOCUMENT_NUMBER_RE.sub(replace, line)


def _expand_token_abbreviations(line: str, ctx: _Context) -> str:
    """Whole-token abbreviations (UBND, KH&CN, CC-VC-NLĐ) and code tokens
    whose parts are known (KH-SKHCN -> kế hoạch của Sở Khoa học và Công nghệ)."""

    def replace(m: re.Match[str]) -> str:
        token = m.group(0)
        if token in ctx.abbreviations:
            return ctx.abbreviations[token]
        parts = _CODE_SEPARATOR_RE.split(token)
        if len(parts) < 2 or not any(p in ctx.code_parts for p in parts):
            return token
        if all(p in ctx.code_parts for p in parts):
            doc_type, issuer = _read_code(parts, ctx)
            if doc_type:
                return f"{doc_type} của {issuer}" if issuer else doc_type
        joiner = ", " if all(p in ctx.abbreviations for p in parts) else " "  # HĐND-UBND: two bodies
        return joiner.join(ctx.code_parts.get(p, p) for p in parts)

    line = _PLAN_AFTER_PERCENT_RE.sub(" kế hoạch", line)
    if _SCHOOL_CONTEXT_RE.search(line):
        line = _SCHOOL_LEVEL_RE.sub(lambda m: _SCHOOL_LEVELS[m.group(0)], line)
    return _TOKEN_RE.sub(replace, line)


# Short forms that are only unambiguous beside their own kind: "đạt 102% KH" is the plan,
# "MN, TH và THCS" are school levels.
_PLAN_AFTER_PERCENT_RE = re.compile(r"(?<=%)\s*KH(?![\w&/-])")
_SCHOOL_LEVELS = {"MN": "mầm non", "TH": "tiểu học"}
_SCHOOL_CONTEXT_RE = re.compile(r"\b(?:THCS|THPT|(?i:trường|cấp học|bậc học|học sinh))\b")
_SCHOOL_LEVEL_RE = re.compile(r"(?<![\w&/-])(?:MN|TH)(?![\w&/-])")


def _date_words(day: int, month: int, year: int | None) -> str:
    words = f"{number_to_words(day)} tháng {_month_words(month)}"
    return words + (f" năm {number_to_words(year)}" if year is not None else "")


def _valid_date(day: int, month: int) -> bool:
    return 1 <= day <= 31 and 1 <= month <= 12


_NGAY_LOOKBACK_WORDS = 3
_NGAY = r"(?P<ngay>\b(?i:ngày)(?:\s+(?i:mùng))?\s+)?"
_ISO_DATE_RE = re.compile(_NGAY + r"(?<![\d/.])(?P<y>\d{4})-(?P<m>\d{2})-(?P<d>\d{2})(?![\d/-]|[.,]\d)")
_DATE_RE = re.compile(
    _NGAY
    + r"(?<![\d/.,])(?P<d>\d{1,2})(?:\s*[/-]\s*|\.)(?P<m>\d{1,2})(?:\s*[/-]\s*|\.)(?P<y>\d{4})(?![\d/-]|[.,]\d)"
)
_DAY_MONTH_RE = re.compile(
    r"\b(?P<ngay>(?i:ngày)(?:\s+(?i:mùng))?\s+)(?P<d>\d{1,2})\s*[/-]\s*(?P<m>\d{1,2})(?![\d/-]|[.,]\d)"
)
_MONTH_YEAR_RE = re.compile(
    r"\b(?P<thang>(?i:tháng)\s+)(?P<m>\d{1,2})\s*[/-]\s*(?P<y>\d{4})(?![\d/-]|[.,]\d)"
)


def _date_replacer(with_year: bool) -> Callable[[re.Match[str]], str]:
    def replace(m: re.Match[str]) -> str:
        day, month = int(m["d"]), int(m["m"])
        if not _valid_date(day, month):
            return m.group(0)
        prefix = m["ngay"] or ""
        recent = _WORD_RE.findall(m.string[: m.start()])[-_NGAY_LOOKBACK_WORDS:]
        if not prefix and "ngày" not in (w.lower() for w in recent):
            prefix = "ngày "
        return _pad(prefix + _date_words(day, month, int(m["y"]) if with_year else None))

    return replace


def _read_dates(line: str, ctx: _Context) -> str:
    """20/1/2022, 06/01-2022, 20 - 03 - 2023, 2022-01-21, ngày 15/3; ranges and bare d/m
    (see :func:`_read_date_ranges`, :func:`_read_day_months`)."""
    line = _MONTH_RANGE_RE.sub(_month_range_words, line)
    line = _read_date_ranges(line)
    line = _ISO_DATE_RE.sub(_date_replacer(with_year=True), line)
    line = _DATE_RE.sub(_date_replacer(with_year=True), line)
    line = _DAY_MONTH_RE.sub(_date_replacer(with_year=False), line)
    return _read_day_months(line)


_MONTH_RANGE_RE = re.compile(
    r"\b(?P<thang>(?i:tháng)\s+)(?P<a>\d{1,2})\s*[-–—]\s*(?P<b>\d{1,2})(?:\s*/\s*(?P<y>\d{4}))?(?![\d/]|[.,]\d)"
)


def _month_range_words(m: re.Match[str]) -> str:
    """tháng 1-3/2025 -> tháng một đến tháng ba năm hai nghìn không trăm hai mươi lăm."""
    first, last = int(m["a"]), int(m["b"])
    if not 1 <= first < last <= 12:
        return m.group(0)
    year = f" năm {number_to_words(int(m['y']))}" if m["y"] else ""
    return _pad(f"{m['thang']}{_month_words(first)} đến tháng {_month_words(last)}{year}")


_DM = r"(?P<d{n}>\d{{1,2}})\s*/\s*(?P<m{n}>\d{{1,2}})(?:\s*/\s*(?P<y{n}>\d{{4}}))?"
_DATE_RANGE_RE = re.compile(
    r"(?P<lead>\b(?:(?i:từ)\s+)?(?i:ngày)\s+)?(?<![\w/.,])(?:" + _DM.format(n=1) + r"|(?P<d0>\d{1,2}))\s*[-–—]\s*" + _DM.format(n=2)
    + r"(?![\w/]|[.,]\d)"
)
# Words after which a bare d/m is a date ("từ 15/5", "Hạn chót 30/4", "Sáng 20/5").
_DATE_CONTEXT_WORDS = frozenset(
    "ngày mùng từ đến tới hết hạn chót sáng trưa chiều tối đêm trước sau vào hôm nay lúc đầu cuối "
    "kể khoảng dịp lễ nhật".split()
)
_DEADLINE_WORDS = frozenset("hạn chót hết".split())
_DATE_AFTER_RE = re.compile(r"\s+(?:tới|này|vừa qua|sắp tới|hằng năm|hàng năm|năm nay|năm tới)(?!\w)")
# Names that are dates but read without "ngày": "đường 3/2", "Quốc khánh 2/9", "lễ 30/4".
_DATE_NAME_WORDS = frozenset("đường phố cầu quảng trường lễ dịp khánh niệm".split())
# Words after which a/b counts ("đạt 8/10", "chiếm 1/3") or is a number of a place ("lớp 12/3").
_RATIO_WORDS = frozenset("đạt chiếm được có gồm tỷ tỉ lệ trong còn là bằng số lớp phòng tổ nhà lô kiốt hẻm".split())
_FRACTION_NOUNS_RE = re.compile(r"\s*(?:tổng số|số|dân số|diện tích|khối lượng|lượng|phần)\b")
_CLAUSE_START_RE = re.compile(r"(?:^|[.!?;:(\[,–—-])\s*$")
_AFTER_A_DATE_RE = re.compile(
    r"\bngày\s+[^\W\d]+(?:\s+[^\W\d]+){0,3}\s+tháng\s+[^\W\d]+(?:\s+[^\W\d]+)?"
    r"(?:\s+năm(?:\s+[^\W\d]+){1,8})?\s*(?:,|và|hoặc|đến|tới)\s*$"
)
_DAY_MONTH_BARE_RE = re.compile(
    r"(?<![\w/.,])(?P<d>\d{1,2})\s*/\s*(?P<m>\d{1,2})(?![\w/]|[.,]\d)"
)


def _day_month_reading(before: str, after: str, day: int, month: int) -> str | None:
    """How a bare d/m is read: "date", "name" (a date without "ngày"), or None (a ratio)."""
    if not _valid_date(day, month) or _FRACTION_NOUNS_RE.match(after) or (day, month) == (24, 7):
        return None  # 24/7 is round the clock
    words = [w.lower() for w in _WORD_RE.findall(before)]
    last = words[-1] if words else ""
    if last in _DATE_NAME_WORDS:
        return "name"
    if last in _DATE_CONTEXT_WORDS or _WEEKDAY_CONTEXT_RE.search(" ".join(words[-3:])):
        return "date"
    if _DEADLINE_WORDS.intersection(words[-3:]) or _DATE_AFTER_RE.match(after):
        return "date"  # "Hạn nộp là 30/4", "họp 20/5 tới"
    if _AFTER_A_DATE_RE.search(before):
        return "date"  # "ngày 30/4 và 1/5": the second of two dates
    if last in _RATIO_WORDS:
        return None
    at_start = bool(_CLAUSE_START_RE.search(before))
    at_end = not after.strip() or after.lstrip()[0] in ".!?;,)–—-"
    if at_end or (at_start and not after.strip()[:1].islower()):
        return "date"
    return None


def _day_month_words(day: int, month: int, year: str | None, before: str, reading: str = "date") -> str:
    prefix = "" if reading == "name" or _said_ngay(before) else "ngày "
    return prefix + _date_words(day, month, int(year) if year else None)


def _said_ngay(before: str) -> bool:
    """True when "ngày" was just said: within the last words, or before a list of days
    ("các ngày 15, 16 và 17/6")."""
    words = [w.lower() for w in _WORD_RE.findall(before)]
    if "ngày" in words[-_NGAY_LOOKBACK_WORDS:]:
        return True
    for word in reversed(words):
        if word == "ngày":
            return True
        if not (word.isdigit() or word in _DAY_LIST_WORDS):
            return False
    return False


_DAY_LIST_WORDS = frozenset("và hoặc đến mùng".split())


_PART_OF_DAY_DATE_RE = re.compile(
    r"\b(?P<when>(?i:sáng|trưa|chiều|tối|đêm|hôm|nay))\s+(?P<d>\d{1,2})[-.](?P<m>\d{1,2})(?![\w/.-]|[.,]\d)"
)


def _part_of_day_date(m: re.Match[str]) -> str:
    day, month = int(m["d"]), int(m["m"])
    if not _valid_date(day, month):
        return m.group(0)
    return _pad(f"{m['when']} ngày {_date_words(day, month, None)}")


def _read_date_ranges(line: str) -> str:
    """15/5 - 20/5, 15/5/2024-20/5/2024, 15-20/5: "từ ngày ... đến ngày ..."."""

    def replace(m: re.Match[str]) -> str:
        lead = m["lead"] or ""
        before = m.string[: m.start()] + lead
        day2, month2 = int(m["d2"]), int(m["m2"])
        if not _valid_date(day2, month2):
            return m.group(0)
        if m["d0"]:
            day1, month1, year1 = int(m["d0"]), month2, None
            if not 1 <= day1 < day2:
                return m.group(0)
        else:
            day1, month1, year1 = int(m["d1"]), int(m["m1"]), m["y1"]
            reading = _day_month_reading(before, "", day1, month1)
            if reading is None:
                return m.group(0)
            if reading == "name":  # "dịp lễ 30/4 - 1/5": two holidays, not a period
                return _pad(f"{lead}{_date_words(day1, month1, None)} và {_date_words(day2, month2, None)}")
        said_from = bool(re.search(r"\b(?i:từ)(?:\s+(?i:ngày))?\s*$", before))
        start = lead if said_from else "từ " + lead  # "ngày 1-2/6" -> "từ ngày một đến ngày hai ..."
        if m["d0"]:
            first = ("" if _said_ngay(before) else "ngày ") + number_to_words(day1)
        else:
            first = _day_month_words(day1, month1, year1, before)
        second = "ngày " + _date_words(day2, month2, int(m["y2"]) if m["y2"] else None)
        return _pad(f"{start}{first} đến {second}")

    return _DATE_RANGE_RE.sub(replace, line)


def _read_day_months(line: str) -> str:
    """A bare d/m where it is a date: after từ, đến, hạn, sáng ..., or at a clause boundary;
    after a part of the day also the press's "Sáng 20-5" and "Chiều 15.5"."""
    line = _PART_OF_DAY_DATE_RE.sub(_part_of_day_date, line)
    position = 0
    while m := _DAY_MONTH_BARE_RE.search(line, position):
        # one at a time, so the reading of "15/5" is what the next one sees ("15/5 hoặc 20/5")
        day, month = int(m["d"]), int(m["m"])
        before, after = line[: m.start()], line[m.end() :]
        reading = _day_month_reading(before, after, day, month)
        if reading is None:
            position = m.end()
            continue
        words = _pad(_day_month_words(day, month, None, before, reading))
        line = before + words + after
        position = len(before) + len(words)
    return line


def _read_month_years(line: str, ctx: _Context) -> str:
    """tháng 3/2023 -> tháng ba năm hai nghìn không trăm hai mươi ba."""

    def replace(m: re.Match[str]) -> str:
        month = int(m["m"])
        if not 1 <= month <= 12:
            return m.group(0)
        return _pad(f"{m['thang']}{_month_words(month)} năm {number_to_words(int(m['y']))}")

    return _MONTH_YEAR_RE.sub(replace, line)


_YEAR_RANGE_RE = re.compile(
    r"(?P<context>\b(?i:giai đoạn|nhiệm kỳ|nhiệm kì|thời kỳ|thời kì|năm học|niên khóa|niên khoá|năm|từ năm|từ)\s+)?"
    r"(?<![\d/.,])(?P<start>\d{4})\s*[-–—]\s*(?P<end>\d{4})(?![\d/]|[.,]\d)"
)
_RANGE_CONTEXT_PLAIN = (
    "giai đoạn",
    "nhiệm kỳ",
    "nhiệm kì",
    "thời kỳ",
    "thời kì",
    "năm học",
    "niên khóa",
    "niên khoá",
)


def _read_year_ranges(line: str, ctx: _Context) -> str:
    """2021-2030: "từ năm X đến năm Y", or "X đến Y" after giai đoạn etc."""

    def replace(m: re.Match[str]) -> str:
        start, end = int(m["start"]), int(m["end"])
        if not 1900 <= start < end <= 2199:
            return m.group(0)
        first, second = number_to_words(start), number_to_words(end)
        context = m["context"] or ""
        keyword = context.strip().lower()
        if keyword in _RANGE_CONTEXT_PLAIN:
            return _pad(f"{context}{first} đến {second}")
        if keyword in ("năm", "từ năm"):
            return _pad(f"{context}{first} đến năm {second}")
        if keyword == "từ":
            return _pad(f"{context}năm {first} đến năm {second}")
        return _pad(f"từ năm {first} đến năm {second}")

    return _YEAR_RANGE_RE.sub(replace, line)


_TIME = (
    r"(?P<h{n}>\d{{1,2}})(?:[hH](?P<hm{n}>\d{{2}})?|g(?P<gm{n}>\d{{2}})|:(?P<cm{n}>\d{{2}})(?::(?P<s{n}>\d{{2}}))?)"
)
_TIME_RE = re.compile(
    r"(?<![\w:.,])" + _TIME.format(n=1) + r"(?:\s*[-–—]\s*" + _TIME.format(n=2) + r")?"
    r"(?![\w:]|[.,]\d)(?:\s*(?P<ampm>SA|CH|AM|PM)\b)?"
)
_AM_PM_WORDS = {"SA": "sáng", "AM": "sáng", "CH": "chiều", "PM": "chiều"}


def _time_words(m: re.Match[str], n: int) -> str | None:
    hour = int(m[f"h{n}"])
    minute = m[f"hm{n}"] or m[f"gm{n}"] or m[f"cm{n}"]
    second = m[f"s{n}"]
    if hour > 24 or (minute and int(minute) > 59) or (second and int(second) > 59):
        return None
    words = f"{number_to_words(hour)} giờ"
    if minute and int(minute):
        words += f" {number_to_words(int(minute))} phút"
    if second and int(second):
        words += f" {number_to_words(int(second))} giây"
    return words


def _read_times(line: str, ctx: _Context) -> str:
    """6h30, 17h, 6:30, 05:30–06:30, 3:28 CH."""

    def replace(m: re.Match[str]) -> str:
        first = _time_words(m, 1)
        second = _time_words(m, 2) if m["h2"] else None
        if first is None or (m["h2"] and second is None):
            return m.group(0)
        said_from = bool(re.search(r"\b(?i:từ)\s*$", m.string[: m.start()]))
        words = f"{'' if said_from else 'từ '}{first} đến {second}" if second else first
        if m["ampm"]:
            words += " " + _AM_PM_WORDS[m["ampm"]]
        return _pad(words)

    line = _TIME_RE.sub(replace, line)
    line = _ZERO_MINUTES_RE.sub("giờ", line)  # "14 giờ 00" is on the hour
    # the minute mark: "7 giờ 30'", "6h30’"
    return _MINUTE_MARK_RE.sub(lambda m: f"{m[1]} phút" if m[1][-1].isdigit() else m[1], line)


_ZERO_MINUTES_RE = re.compile(r"\bgiờ\s+00(?:\s*(?:phút|['’′]))?(?![\w/.,])")
_MINUTE_MARK_RE = re.compile(r"(\bgiờ\s+\d{1,2}|\bphút)\s*['’′](?!\w)")


_INTERNATIONAL_PHONE_RE = re.compile(r"(?<![\w+])\+84[ .-]?\(?0?\)?\d{1,3}(?:[ .-]?\d{2,4}){2,3}(?!\d)")
_LOCAL_PHONE_RE = re.compile(r"(?<![\w.,/])(?:\(0\d{1,4}\)|0\d{1,4})(?:[ .-]?\d{1,5}){1,4}(?![\d])")
_HOTLINE_RE = re.compile(r"(?<![\w.,/])1[89]00[ .]?\d{2,4}(?:[ .]?\d{2,4})?(?![\d])")
_PHONE_CONTEXT = r"số điện thoại|điện thoại|sđt|đt|hotline|đường dây nóng|tổng đài|fax|số máy|gọi|liên hệ số|số"
_CONTEXT_PHONE_RE = re.compile(
    rf"(?P<context>\b(?i:{_PHONE_CONTEXT})\s*:?\s*)"
    r"(?P<digits>\d{3,6}(?:\s*(?:,|hoặc|và)\s*\d{3,6})*)(?![\d.,/])"
)
_SHORT_NUMBER_RE = re.compile(r"\d+")
# An ungrouped number is read in the groups it is usually written in, so a listener can note it.
_GROUPS_BY_LENGTH = {8: (4, 4), 9: (3, 3, 3), 10: (4, 3, 3), 11: (4, 3, 4)}
_PHONE_GROUP_PAUSE = ", "


def _grouped_digit_words(groups: list[str]) -> str:
    """Digit by digit, a short pause (a comma) between the groups as written."""
    if len(groups) == 1 and len(groups[0]) in _GROUPS_BY_LENGTH:
        digits, groups = groups[0], []
        for size in _GROUPS_BY_LENGTH[len(digits)]:
            groups.append(digits[:size])
            digits = digits[size:]
    return _PHONE_GROUP_PAUSE.join(_digits_words(g) for g in groups if g)


def _read_phone_numbers(line: str, ctx: _Context) -> str:
    """0912345678, 0912 345 678, 02913.822.123, (0231) 3876 543, +84 912 345 678, 1900 1234,
    and short numbers after "gọi" / "tổng đài" / "đường dây nóng": digit by digit, in groups."""

    def international(m: re.Match[str]) -> str:
        national = re.sub(r"^\+84[ .-]?(?:\(0\)|0)?", "", m.group(0))
        return _pad("cộng tám bốn" + _PHONE_GROUP_PAUSE + _grouped_digit_words(re.findall(r"\d+", national)))

    def local(m: re.Match[str]) -> str:
        groups = re.findall(r"\d+", m.group(0))
        return _pad(_grouped_digit_words(groups)) if sum(map(len, groups)) in (10, 11) else m.group(0)

    def hotline(m: re.Match[str]) -> str:
        groups = re.findall(r"\d+", m.group(0))
        return _pad(_grouped_digit_words(groups)) if sum(map(len, groups)) in (8, 10) else m.group(0)

    def contextual(m: re.Match[str]) -> str:
        if m["context"].strip().lower() == "số" and not _PHONE_NEAR_RE.search(m.string[: m.start()]):
            return m.group(0)  # "số 113" alone is a count or a house number
        digits = _SHORT_NUMBER_RE.sub(lambda d: _pad(_digits_words(d.group(0))), m["digits"])
        return m["context"] + digits

    def nearby(m: re.Match[str]) -> str:
        before = m.string[: m.start()]
        if not _PHONE_NEAR_RE.search(before) or _NOT_A_PHONE_BEFORE_RE.search(before):
            return m.group(0)
        next_word = _NEXT_LOWER_WORD_RE.match(m.string, m.end())
        if next_word and next_word.group(1) not in _WORDS_AFTER_A_PHONE:
            return m.group(0)  # "1022 cuộc gọi": a count
        return _pad(_digits_words(m.group(0)))

    line = _INTERNATIONAL_PHONE_RE.sub(international, line)
    line = _LOCAL_PHONE_RE.sub(local, line)
    line = _HOTLINE_RE.sub(hotline, line)
    line = _CONTEXT_PHONE_RE.sub(contextual, line)
    return _NEARBY_SHORT_NUMBER_RE.sub(nearby, line)


# "tổng đài dịch vụ công 1022": a short number a few words after a phone word, not a count.
_PHONE_NEAR_RE = re.compile(r"\b(?i:tổng đài|đường dây nóng|hotline|điện thoại|gọi|liên hệ)\b[^.;!?\d]{0,40}$")
_NOT_A_PHONE_BEFORE_RE = re.compile(r"\b(?i:năm|tháng|ngày|lúc|có|đạt|được|tiếp nhận|gần|hơn|khoảng|trên)\s*$")
_NEARBY_SHORT_NUMBER_RE = re.compile(r"(?<![\w.,/])\d{3,6}(?![\w/%]|[.,]\d)")
_NEXT_LOWER_WORD_RE = re.compile(r"\s+([a-zđà-ỹ]\w*)")
_WORDS_AFTER_A_PHONE = frozenset("để hoặc hay và của miễn khi nếu ngay trong từ vào này sẽ bấm nhấn".split())


_WEEKDAY_DIGIT = r"(?:(?i:thứ)\s*|T)(?P<{name}>[2-7])"
_WEEKDAY_RANGE_RE = re.compile(
    r"(?<![\w])(?P<tu>(?i:từ)\s+)?" + _WEEKDAY_DIGIT.format(name="a")
    + r"\s*[-–—]\s*(?:(?:(?i:thứ)\s*|T)?(?P<b>[2-7])|(?P<cn>CN|(?i:chủ nhật)))(?![\w/])"
)
_ORDINAL_NOUN_BEFORE_RE = re.compile(r"\b(?i:lần|hạng|phiên|kỳ|đợt|khóa|khoá|người|giải)\s*$")
_SHORT_WEEKDAY_RE = re.compile(r"(?<![\w/])T(?P<n>[2-7])(?![\w/])")
_SUNDAY_RE = re.compile(r"(?<![\w/&-])CN(?![\w/&-])")
_WEEKDAY_CONTEXT_RE = re.compile(
    r"\b(?i:thứ\s*(?:[2-7]|hai|ba|tư|năm|sáu|bảy)|chủ nhật|cuối tuần|hằng tuần|hàng tuần)\b"
    r"|(?<![\w/])T[2-7](?![\w/])"
)
_BEFORE_DAY_RE = re.compile(r"\b(?i:ngày|sáng|trưa|chiều|tối|đêm|các|vào|mỗi|từ|đến)\s*$")


def _read_weekdays(line: str, ctx: _Context) -> str:
    """Thứ 2 - thứ 6, T2-T6 -> từ thứ hai đến thứ sáu; T7, CN -> thứ bảy, chủ nhật.
    "CN" and "T2" are weekdays only beside another weekday or after ngày, sáng, chiều ..."""

    def weekday_range(m: re.Match[str]) -> str:
        if _ORDINAL_NOUN_BEFORE_RE.search(m.string[: m.start()]):
            return m.group(0)  # "lần thứ 2-3": ordinals, not weekdays
        end = "chủ nhật" if m["cn"] else f"thứ {_ordinal_words(int(m['b']))}"
        return _pad(f"từ thứ {_ordinal_words(int(m['a']))} đến {end}")

    line = _WEEKDAY_RANGE_RE.sub(weekday_range, line)
    in_context = bool(_WEEKDAY_CONTEXT_RE.search(line))

    def short(m: re.Match[str], words: str) -> str:
        if in_context or _BEFORE_DAY_RE.search(m.string[: m.start()]):
            return _pad(words)
        return m.group(0)

    line = _SHORT_WEEKDAY_RE.sub(lambda m: short(m, f"thứ {_ordinal_words(int(m['n']))}"), line)
    return _SUNDAY_RE.sub(lambda m: short(m, "chủ nhật"), line)


_ORDINAL_RE = re.compile(r"\b(?P<thu>(?i:thứ)\s+)0*(?P<n>\d{1,3})(?![\w/]|[.,]\d)")


def _read_ordinals(line: str, ctx: _Context) -> str:
    """thứ 2 -> thứ hai, thứ 4 -> thứ tư, lần thứ 1 -> lần thứ nhất."""
    return _ORDINAL_RE.sub(lambda m: _pad(m["thu"] + _ordinal_words(int(m["n"]))), line)


_ROMAN_VALID_RE = re.compile(r"(?:XC|XL|L?X{0,3})(?:IX|IV|V?I{0,3})")
_ROMAN_VALUES = {"I": 1, "V": 5, "X": 10, "L": 50, "C": 100}
_ROMAN_CONTEXT = (
    "khóa|khoá|quý|phần|chương|mục|đại hội|kỳ|kì|tập|thế kỷ|thế kỉ|hạng|loại|vùng|đợt|"
    "phụ lục|quân khu|nhóm|lần|bài|tiết|thứ"
)
_ROMAN_RE = re.compile(
    rf"\b(?P<context>(?i:{_ROMAN_CONTEXT})\s+)(?P<roman>[IVXL]+)(?![\w])(?:\s*/\s*(?P<year>\d{{4}})(?![\d]))?"
)


def _roman_to_int(numeral: str) -> int | None:
    if not numeral or numeral == "L" or not _ROMAN_VALID_RE.fullmatch(numeral):
        return None
    total = 0
    for char, following in zip(numeral, numeral[1:] + " ", strict=True):
        value = _ROMAN_VALUES[char]
        total += -value if _ROMAN_VALUES.get(following, 0) > value else value
    return total


def _read_roman_numerals(line: str, ctx: _Context) -> str:
    """khóa XVI -> khóa mười sáu, Quý II/2023 -> Quý hai năm ..., lần thứ IV -> lần thứ tư."""

    def replace(m: re.Match[str]) -> str:
        value = _roman_to_int(m["roman"])
        if value is None:
            return m.group(0)
        is_ordinal = m["context"].strip().lower() == "thứ"
        words = m["context"] + (_ordinal_words(value) if is_ordinal else number_to_words(value))
        if m["year"]:
            words += " năm " + number_to_words(int(m["year"]))
        return _pad(words)

    return _ROMAN_RE.sub(replace, line)


_MONTH_RE = re.compile(r"\b(?P<thang>(?i:tháng)\s+)(?P<m>\d{1,2})(?![\w/]|[.,]\d)")


def _read_months(line: str, ctx: _Context) -> str:
    """tháng 4 -> tháng tư (ngày 27 tháng 3 năm 2021)."""

    def replace(m: re.Match[str]) -> str:
        month = int(m["m"])
        return _pad(m["thang"] + _month_words(month)) if 1 <= month <= 12 else m.group(0)

    return _MONTH_RE.sub(replace, line)


_UNITS = {
    "km²": "ki lô mét vuông",
    "km2": "ki lô mét vuông",
    "m²": "mét vuông",
    "m2": "mét vuông",
    "m³": "mét khối",
    "m3": "mét khối",
    "km": "ki lô mét",
    "cm": "xen ti mét",
    "mm": "mi li mét",
    "m": "mét",
    "ha": "héc ta",
    "kg": "ki lô gam",
    "g": "gam",
    "ml": "mi li lít",
    "kWh": "ki lô oát giờ",
    "kW": "ki lô oát",
    "MW": "mê ga oát",
    "°C": "độ C",
    "oC": "độ C",  # as typed without the degree sign
    "°": "độ",
    "đ": "đồng",
    "VNĐ": "đồng",
    "VND": "đồng",
    "USD": "đô la Mỹ",
}
_PER_UNITS = {**_UNITS, "h": "giờ", "s": "giây"}
_UNIT_ALTERNATION = "|".join(re.escape(u) for u in sorted(_UNITS, key=len, reverse=True))
_PER_ALTERNATION = "|".join(re.escape(u) for u in sorted(_PER_UNITS, key=len, reverse=True))
_UNIT_RE = re.compile(
    rf"(?<=\d)\s?(?P<unit>{_UNIT_ALTERNATION})(?:\s?/\s?(?P<per>{_PER_ALTERNATION}))?(?![\w²³])"
)
_PER_UNIT_RE = re.compile(rf"(?<=\w)\s?/\s?(?P<per>{_UNIT_ALTERNATION})(?![\w²³])")
_MONEY_AFTER_WORD_RE = re.compile(r"\b(?P<scale>tỷ|triệu|nghìn|ngàn|trăm)\s?(?:đ|VNĐ|VND)(?!\w)")


_MONEY_WORDS = ("đồng", "đô la Mỹ")


def _per_word(unit_words: str) -> str:
    """A price is "per" with "một" (đồng một mét vuông); a rate or density with "trên" (km trên giờ)."""
    return "một" if unit_words.endswith(_MONEY_WORDS) else "trên"


_METRES_AND_CENTIMETRES_RE = re.compile(r"(?<![\w.,])(?P<m>\d{1,3})m(?P<cm>\d{2})(?!\w)")


def _read_units(line: str, ctx: _Context) -> str:
    """Units after a number: 50.000đ, 5 km, 100 m2, 60 km/h, người/km2, 2 tỷ đ, 1m50."""
    line = _METRES_AND_CENTIMETRES_RE.sub(lambda m: f"{m['m']} mét {m['cm']}", line)

    def replace(m: re.Match[str]) -> str:
        words = _UNITS[m["unit"]]
        if m["per"]:
            words += f" {_per_word(words)} {_PER_UNITS[m['per']]}"
        return _pad(words)

    def per_unit(m: re.Match[str]) -> str:
        before = _WORD_RE.findall(m.string[: m.start()])
        return _pad(f"{_per_word(before[-1] if before else '')} {_UNITS[m['per']]}")

    line = _UNIT_RE.sub(replace, line)
    line = _PER_UNIT_RE.sub(per_unit, line)
    return _MONEY_AFTER_WORD_RE.sub(lambda m: f"{m['scale']} đồng", line)


_NUMBER = r"\d{1,3}(?:\.\d{3})+(?!\.?\d)(?:,\d+)?|\d+(?:,\d+)?"
_NUMBER_RANGE_RE = re.compile(rf"(?<![\d.,])(?P<a>{_NUMBER})\s*[-–—]\s*(?P<b>{_NUMBER})(?![\d.,]?\d)")


def _number_value(text: str) -> float:
    return float(text.replace(".", "").replace(",", "."))


def _read_number_match(text: str) -> str:
    integer, _, fraction = text.partition(",")
    return _decimal_words(integer, fraction or None)


def _read_number_ranges(line: str, ctx: _Context) -> str:
    """5-10 phút -> năm đến mười phút (only increasing ranges)."""

    def replace(m: re.Match[str]) -> str:
        if not _number_value(m["a"]) < _number_value(m["b"]):
            return m.group(0)
        return _pad(f"{_read_number_match(m['a'])} đến {_read_number_match(m['b'])}")

    return _NUMBER_RANGE_RE.sub(replace, line)


_NUMBER_SLASH_RE = re.compile(r"(?<=\d)\s*/\s*(?=\d)")
_WORD_SLASH_RE = re.compile(r"(?<=\w)\s*/\s*(?=\w)")
_FRACTION_RE = re.compile(r"(?<![\w/.,])(?P<a>\d{1,3})\s*/\s*(?P<b>\d{1,3})(?=" + _FRACTION_NOUNS_RE.pattern + ")")
# "1,5 triệu đồng/hộ", "2 lần/tuần": the slash after a quantity is "một" (per).
_PER_WORDS = (
    "hộ|người|khẩu|suất|lượt|con|cháu|em|học sinh|lớp|trường|ngày|tuần|tháng|năm|quý|buổi|"
    "giờ|phút|lần|kỳ|đợt|tiết|ca|chuyến|tấn|cây|ha|sào|mẫu|công|bao|túi|hộp|chai|liều|kg|lít|"
    "bình|viên|gói|lọ|thùng|chiếc|cái|xe|thửa|suất ăn"
)
_PER_SLASH_RE = re.compile(rf"(?<=[\w%])\s*/\s*(?=(?:{_PER_WORDS})(?!\w))")
_MEASURE_BEFORE_RE = re.compile(
    "(?:" + "|".join(sorted({re.escape(w) for w in _UNITS.values() if w not in _MONEY_WORDS}, key=len, reverse=True))
    + r")\s*$"
)
_TIME_UNIT_RE = re.compile(r"(?:giờ|phút|giây)(?!\w)")
_QUANTITY_BEFORE_RE = re.compile(r"(?:\d|%|\bđồng|\bnghìn|\btriệu|\btỷ|\bmột)[^/.,;:]{0,30}$")


def _read_slashes(line: str, ctx: _Context) -> str:
    """Leftover slashes: 1/2 số hộ -> một phần hai số hộ; 15/20 -> mười lăm trên hai mươi;
    đồng/hộ -> đồng một hộ (after a quantity); xã/phường -> xã, phường."""
    line = _FRACTION_RE.sub(lambda m: _pad(f"{m['a']} phần {_month_words(int(m['b']))}"), line)
    line = _NUMBER_SLASH_RE.sub(" trên ", line)
    while True:  # one at a time: "đồng/người/tháng" reads "đồng một người một tháng"
        per = next((m for m in _PER_SLASH_RE.finditer(line) if _QUANTITY_BEFORE_RE.search(line[: m.start()])), None)
        if per is None:
            break
        is_speed = _MEASURE_BEFORE_RE.search(line[: per.start()]) and _TIME_UNIT_RE.match(line, per.end())
        word = "trên" if is_speed else "một"  # 40 km/giờ is a rate, 10 kg/người a share
        line = f"{line[: per.start()]} {word} {line[per.end() :]}"
    return _WORD_SLASH_RE.sub(", ", line)


_NUMBER_RE = re.compile(
    r"(?<!\d)(?:(?P<grouped>\d{1,3}(?:\.\d{3})+)(?!\.?\d)(?:,(?P<gfrac>\d+))?"
    r"|(?P<dotted>\d+(?:\.\d+)+)(?!\d)"
    r"|(?P<plain>\d+)(?:,(?P<frac>\d+))?)"
)


def _read_numbers(line: str, ctx: _Context) -> str:
    """1.250.000, 2,5, 4.0 (bốn chấm không), 08, 2022."""

    def replace(m: re.Match[str]) -> str:
        if m["grouped"]:
            return _pad(_decimal_words(m["grouped"], m["gfrac"]))
        if m["dotted"]:
            return _pad(" chấm ".join(_integer_string_words(p) for p in m["dotted"].split(".")))
        return _pad(_decimal_words(m["plain"], m["frac"]))

    return _NUMBER_RE.sub(replace, line)


_BRACKET_RE = re.compile(r"\s*\((?P<inner>[^()]{2,160})\)")


def _drop_echoed_brackets(line: str, ctx: _Context) -> str:
    """A bracket that only repeats, word for word, what was just said is said once:
    "cải cách hành chính (CCHC)" once the abbreviation is expanded, "Uỷ ban nhân dân (UBND)",
    "2.500.000 đ (Hai triệu năm trăm nghìn đồng)" once the amount is read."""

    def replace(m: re.Match[str]) -> str:
        inner = [_fold(w) for w in _WORD_RE.findall(m["inner"])]
        if inner[-1:] == ["chan"]:  # "(Mười lăm triệu đồng chẵn)": an exact amount
            inner.pop()
        before = [_fold(w) for w in _WORD_RE.findall(m.string[: m.start()])]
        return "" if inner and before[-len(inner):] == inner else m.group(0)

    return _BRACKET_RE.sub(replace, line)


_DOMAIN_DOT_RE = re.compile(r"(?<=\w)\.(?=[a-z])")
_SYMBOLS = {
    "&": "và",
    "%": "phần trăm",
    "‰": "phần nghìn",
    "@": "a còng",
    "≥": "lớn hơn hoặc bằng",
    "≤": "nhỏ hơn hoặc bằng",
    ">": "lớn hơn",
    "<": "nhỏ hơn",
    "=": "bằng",
    "~": "khoảng",
    "≈": "khoảng",
    "№": "số",
}
_SYMBOL_RE = re.compile("|".join(re.escape(s) for s in _SYMBOLS))


def _replace_symbols(line: str, ctx: _Context) -> str:
    """& -> và, % -> phần trăm, and dots inside web addresses -> chấm."""
    line = _DOMAIN_DOT_RE.sub(" chấm ", line)
    return _SYMBOL_RE.sub(lambda m: _pad(_SYMBOLS[m.group(0)]), line)


_SPACED_DASH_RE = re.compile(r"\s+[-–—]+\s+")
_SPACE_BEFORE_PUNCT_RE = re.compile(r"\s+(?=[.,;:!?…)\]”’])")
_SPACE_AFTER_OPEN_RE = re.compile(r"(?<=[(\[“‘])\s+")
_GLUED_OPEN_RE = re.compile(r"(?<=\w)(?=\()")


def _tidy(line: str, ctx: _Context) -> str:
    """Collapse spaces, turn a free-standing dash into a pause (comma)."""
    line = _SPACED_DASH_RE.sub(", ", f" {line} ")
    line = _SPACES_RE.sub(" ", line)
    line = _SPACE_BEFORE_PUNCT_RE.sub("", line)
    line = _GLUED_OPEN_RE.sub(" ", line)
    return _SPACE_AFTER_OPEN_RE.sub("", line).strip()


PIPELINE: tuple[Rule, ...] = (
    _drop_file_names,
    _drop_bracketed_initials,
    _expand_phrase_abbreviations,
    _read_place_prefixes,
    _read_document_numbers,
    _expand_token_abbreviations,
    _read_dates,
    _read_month_years,
    _read_year_ranges,
    _read_times,
    _read_phone_numbers,
    _read_roman_numerals,
    _read_weekdays,
    _read_ordinals,
    _read_months,
    _read_units,
    _read_number_ranges,
    _read_slashes,
    _read_numbers,
    _drop_echoed_brackets,
    _replace_symbols,
    _tidy,
)

# --------------------------------------------------------------------------
# Sentences
# --------------------------------------------------------------------------

_SENTENCE_RE = re.compile(r"[^.!?;…]+(?P<end>[.!?;…]*)|[.!?;…]+")
_EDGE_PUNCT = " ,;:.-–—/…"


def _split_sentences(line: str) -> list[str]:
    sentences = []
    for m in _SENTENCE_RE.finditer(line):
        body = m.group(0).rstrip(".!?;… ").strip(_EDGE_PUNCT)
        if not re.search(r"\w", body):
            continue
        end = m["end"] or ""
        mark = "?" if "?" in end else "!" if "!" in end else ""
        sentences.append(body + mark)
    return sentences


def normalize_text(text: str, extra_abbreviations: dict[str, str] | None = None) -> list[str]:
    """Return the text exactly as it will be spoken: NFC, one string per sentence, nothing the TTS would spell letter by letter."""
    if not text or not text.strip():
        return []
    ctx = _Context.build(extra_abbreviations)
    sentences: list[str] = []
    for raw_line in _prepare(text).splitlines():
        line = _strip_bullet(raw_line)
        if not line:
            continue
        for rule in PIPELINE:
            line = rule(line, ctx)
        sentences.extend(unicodedata.normalize("NFC", s) for s in _split_sentences(line))
    return sentences
