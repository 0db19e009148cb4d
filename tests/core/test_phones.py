from __future__ import annotations

import pytest

from broadcaster.phones import is_mobile, mask_phone, normalize_mobile, normalize_phone


@pytest.mark.parametrize("raw", ["0912 345 678", "0912.345.678", "+84912345678", "84912345678",
                                 "(+84) 912-345-678", " 0912-345-678 ", "0084912345678"])
def test_ways_of_writing_one_number(raw):
    assert normalize_phone(raw) == "+84912345678"


@pytest.mark.parametrize("raw", ["0321234567", "0561234567", "0701234567", "0812345678", "0912345678",
                                 "0869 123 456"])
def test_vietnamese_mobile_prefixes(raw):
    assert is_mobile(normalize_phone(raw))


@pytest.mark.parametrize("raw", ["024 3823 4567", "028 3829 5555", "1900 1234", "+1 650 253 0000"])
def test_fixed_lines_service_and_foreign_numbers_are_not_mobile(raw):
    assert not is_mobile(normalize_phone(raw))
    with pytest.raises(ValueError, match="not a Vietnamese mobile number"):
        normalize_mobile(raw)


@pytest.mark.parametrize("raw", ["", "abc", "091234", "0912 345 678 999 1"])
def test_invalid_numbers_raise_a_bilingual_value_error(raw):
    with pytest.raises(ValueError) as caught:
        normalize_phone(raw)
    message = str(caught.value)
    assert " / " in message and ("không" in message or "trống" in message)


def test_invalid_is_not_mobile():
    assert not is_mobile("garbage")
    assert not is_mobile("")


def test_mask_keeps_country_code_first_two_and_last_three():
    assert mask_phone("+84912345678") == "+84 91* *** 678"
    masked = mask_phone("+842438234567")
    assert masked.startswith("+84 24") and masked.endswith("567") and "2438234" not in masked


def test_mask_never_shows_the_whole_number():
    for raw in ["+84912345678", "0912345678", "+16502530000", "not a number 0912345678"]:
        digits = "".join(ch for ch in mask_phone(raw) if ch.isdigit())
        assert "912345678" not in digits and "6502530000" not in digits


def test_the_sql_mobile_pattern_accepts_exactly_what_is_mobile_accepts():
    """Recipients are chosen in the database with this pattern: it must agree with is_mobile everywhere."""
    import random
    import re

    from broadcaster.phones import mobile_e164_pattern

    pattern = re.compile(mobile_e164_pattern())
    chance = random.Random(16)
    numbers = [f"+84{prefix}{chance.randrange(10 ** (9 - len(str(prefix)))):0{9 - len(str(prefix))}d}"
               for prefix in range(100, 1000) for _ in range(3)]  # every three-digit start of a 9-digit number
    numbers += [f"+84{chance.randrange(10 ** 8, 10 ** 10)}" for _ in range(500)]  # other lengths
    numbers += ["+842838221234", "+14155552671", "+84912345678", "+8412101234"]
    mobiles = [n for n in numbers if is_mobile(n)]
    assert len(mobiles) > 1000  # the sample does hold mobiles and others
    assert [n for n in numbers if pattern.search(n)] == mobiles
