"""Phone numbers: one E.164 form for every way people write a Vietnamese number, and a mask.

``0912 345 678``, ``0912.345.678``, ``+84912345678``, ``84912345678`` and
``(+84) 912-345-678`` are all ``+84912345678``. A full number never reaches a
log line or a table: show :func:`mask_phone` instead.
"""

from __future__ import annotations

import phonenumbers
from phonenumbers import NumberParseException, PhoneNumberType

DEFAULT_REGION = "VN"
_MOBILE_TYPES = {PhoneNumberType.MOBILE, PhoneNumberType.FIXED_LINE_OR_MOBILE}


def _parse(raw: str) -> phonenumbers.PhoneNumber:
    text = str(raw or "").strip()
    if not text:
        raise ValueError("số điện thoại trống / phone number is empty")
    try:
        number = phonenumbers.parse(text, DEFAULT_REGION)
    except NumberParseException as exc:
        raise ValueError(f"không phải số điện thoại / not a phone number: {mask_raw(text)}") from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError(f"số điện thoại không hợp lệ / invalid phone number: {mask_raw(text)}")
    return number


def normalize_phone(raw: str) -> str:
    """Any common way of writing a number -> E.164 (``+84912345678``); ValueError if it is not one."""
    return phonenumbers.format_number(_parse(raw), phonenumbers.PhoneNumberFormat.E164)


def is_mobile(e164: str) -> bool:
    """True for a Vietnamese mobile number (03x, 05x, 07x, 08x, 09x); False for fixed lines, others."""
    try:
        number = _parse(e164)
    except ValueError:
        return False
    return (phonenumbers.region_code_for_number(number) == DEFAULT_REGION
            and phonenumbers.number_type(number) in _MOBILE_TYPES)


def mobile_e164_pattern() -> str:
    """A regular expression matching exactly the E.164 strings :func:`is_mobile` accepts, built from the
    same phonenumbers metadata, for choosing recipients inside the database (SQLite and PostgreSQL)."""
    meta = phonenumbers.PhoneMetadata.metadata_for_region(DEFAULT_REGION)
    return rf"^\+{meta.country_code}(?:{meta.mobile.national_number_pattern})$"


def normalize_mobile(raw: str) -> str:
    """E.164 of a Vietnamese mobile number; ValueError naming why otherwise."""
    e164 = normalize_phone(raw)
    if not is_mobile(e164):
        raise ValueError(
            f"không phải số di động Việt Nam / not a Vietnamese mobile number: {mask_phone(e164)}"
        )
    return e164


def _group(digits: str) -> str:
    head, tail = digits[:-3], digits[-3:]
    chunks = [head[i:i + 3] for i in range(0, len(head), 3)]
    if len(chunks) > 1 and len(chunks[-1]) == 1:
        chunks[-2:] = [chunks[-2] + chunks[-1]]
    return " ".join([*chunks, tail])


def mask_phone(e164: str) -> str:
    """``+84912345678`` -> ``+84 91* *** 678``: the country code, the first 2 and the last 3 digits."""
    text = str(e164 or "").strip()
    try:
        number = phonenumbers.parse(text, DEFAULT_REGION)
    except NumberParseException:
        return mask_raw(text)
    national = str(number.national_number)
    if len(national) < 7:
        return f"+{number.country_code} " + "*" * (len(national) - 2) + national[-2:]
    masked = national[:2] + "*" * (len(national) - 5) + national[-3:]
    return f"+{number.country_code} {_group(masked)}"


def mask_raw(text: str) -> str:
    """Mask whatever an operator typed (it may not be a number at all): keep the last 3 digits."""
    digits = [ch for ch in str(text) if ch.isdigit()]
    if len(digits) <= 4:
        return "*" * len(str(text).strip()) or "''"
    return "*" * (len(digits) - 3) + "".join(digits[-3:])
