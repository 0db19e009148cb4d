import unicodedata

import pytest

from broadcaster.sms.encoding import (
    GSM7,
    GSM7_BASIC,
    GSM7_EXTENSION,
    MAX_BODY_CHARS,
    UCS2,
    SmsTooLong,
    encode_sms,
    is_gsm7,
    non_gsm_characters,
    segment_cost,
    split_segments,
    strip_diacritics,
)

PARAGRAPH = (
    "Thực hiện Kế hoạch số 219/KH-UBND ngày 20/1/2022 của Ủy ban nhân dân tỉnh Lai Châu "
    "về công tác thông tin, tuyên truyền cải cách hành chính năm 2022, Đài truyền thanh xã "
    "đề nghị người dân, doanh nghiệp thực hiện thủ tục hành chính qua Bộ phận một cửa, "
    "dịch vụ công trực tuyến mức độ 3, 4; mọi phản ánh, kiến nghị xin gọi đường dây nóng "
    "0213.3876.543. Ông, bà, anh, chị hãy ủng hộ! Quý, Đức, Ngữ, Thủy, Ưu, Ỷ, Ỵ, Ấp, Ộ?"
)
PARAGRAPH_STRIPPED = (
    "Thuc hien Ke hoach so 219/KH-UBND ngay 20/1/2022 cua Uy ban nhan dan tinh Lai Chau "
    "ve cong tac thong tin, tuyen truyen cai cach hanh chinh nam 2022, Dai truyen thanh xa "
    "de nghi nguoi dan, doanh nghiep thuc hien thu tuc hanh chinh qua Bo phan mot cua, "
    "dich vu cong truc tuyen muc do 3, 4; moi phan anh, kien nghi xin goi duong day nong "
    "0213.3876.543. Ong, ba, anh, chi hay ung ho! Quy, Duc, Ngu, Thuy, Uu, Y, Y, Ap, O?"
)


# --- tables -----------------------------------------------------------------


def test_gsm_tables_are_exact():
    assert len(GSM7_BASIC) == 127  # 128 codes minus ESC
    assert GSM7_EXTENSION == frozenset("\f^{}\\[~]|€")
    assert not GSM7_BASIC & GSM7_EXTENSION
    for ch in "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./:;<=>?¡ÄÖÑÜ§¿äöñüà":
        assert ch in GSM7_BASIC, repr(ch)
    for ch in "`ç\tâêôăđ\x1b\u00a0“”–…":
        assert ch not in GSM7_BASIC and ch not in GSM7_EXTENSION, repr(ch)


@pytest.mark.parametrize("ch", list("`çâđ“”–…\t"))
def test_non_gsm_character_forces_ucs2(ch):
    assert encode_sms("abc" + ch, smart=False).encoding == UCS2


@pytest.mark.parametrize("ch", list("çâđ😀"))
def test_character_without_a_gsm_look_alike_forces_ucs2(ch):
    assert encode_sms("abc" + ch).encoding == UCS2


# --- GSM-7 boundaries ----------------------------------------------------------


@pytest.mark.parametrize(
    ("length", "segments"),
    [(1, 1), (159, 1), (160, 1), (161, 2), (305, 2), (306, 2), (307, 3), (459, 3), (460, 4)],
)
def test_ascii_boundaries(length, segments):
    enc = encode_sms("a" * length)
    assert enc.encoding == GSM7
    assert enc.units == enc.characters == length
    assert enc.segments == segments
    assert (enc.unit_limit_single, enc.unit_limit_multi) == (160, 153)
    parts = split_segments(enc)
    assert len(parts) == segments
    assert "".join(parts) == enc.text


def test_extension_chars_count_two_septets():
    enc = encode_sms("Gia: 5€ {x} [y] ~ | \\ ^")
    assert enc.encoding == GSM7
    assert enc.characters == 23
    assert enc.units == 23 + 9
    form_feed = encode_sms("a\fb")
    assert (form_feed.encoding, form_feed.units) == (GSM7, 4)


def test_extension_chars_push_over_single_segment():
    assert encode_sms("€" * 80).segments == 1  # 160 septets
    enc = encode_sms("a" + "€" * 80)  # 161 septets
    assert enc.units == 161
    assert enc.segments == 2


def test_escape_pair_is_never_split_across_segments():
    # 306 septets would be 2 segments by division, but the € at septets
    # 153-154 cannot straddle the boundary, so it moves to segment 2.
    text = "a" * 152 + "€" + "a" * 152
    enc = encode_sms(text)
    assert enc.units == 306
    parts = split_segments(enc)
    assert parts == ["a" * 152, "€" + "a" * 151, "a"]
    assert enc.segments == 3


def test_escape_pair_exactly_filling_segment():
    text = "a" * 151 + "€" + "a" * 153  # 153 + 153 septets
    enc = encode_sms(text)
    assert split_segments(enc) == ["a" * 151 + "€", "a" * 153]
    assert enc.segments == 2


# --- UCS-2 ---------------------------------------------------------------------


def test_vietnamese_is_ucs2():
    enc = encode_sms("Ủy ban nhân dân xã")
    assert enc.encoding == UCS2
    assert enc.characters == enc.units == 18
    assert enc.segments == 1
    assert (enc.unit_limit_single, enc.unit_limit_multi) == (70, 67)


@pytest.mark.parametrize(
    ("length", "segments"),
    [(70, 1), (71, 2), (134, 2), (135, 3), (201, 3), (202, 4)],
)
def test_ucs2_boundaries(length, segments):
    enc = encode_sms("ạ" * length)
    assert enc.encoding == UCS2
    assert enc.units == length
    assert enc.segments == segments
    assert all(len(p) <= 67 for p in split_segments(enc)) or segments == 1


def test_emoji_surrogate_pair_counts_two_units():
    enc = encode_sms("Chào 😀")
    assert enc.encoding == UCS2
    assert enc.characters == 6
    assert enc.units == 7
    assert encode_sms("a" * 68 + "😀").segments == 1  # 70 units
    assert encode_sms("a" * 69 + "😀").segments == 2  # 71 units
    # An emoji alone forces UCS-2 even in otherwise plain text.
    assert encode_sms("Hop dan 😀").encoding == UCS2


def test_surrogate_pair_is_never_split_across_segments():
    text = "ạ" * 66 + "😀" + "ạ" * 66  # 134 units
    enc = encode_sms(text)
    assert enc.units == 134
    parts = split_segments(enc)
    assert parts == ["ạ" * 66, "😀" + "ạ" * 65, "ạ"]
    assert enc.segments == 3
    for part in parts:
        assert len(part.encode("utf-16-le")) // 2 <= 67


def test_bmp_symbols_count_one_unit():
    enc = encode_sms("“Tin” – số 1…")
    assert enc.encoding == UCS2
    assert enc.units == enc.characters


# --- normalisation and diacritics -------------------------------------------------


def test_nfd_input_equals_nfc_result():
    nfc = "Ủy ban nhân dân xã Đức Thịnh thông báo"
    nfd = unicodedata.normalize("NFD", nfc)
    assert len(nfd) > len(nfc)
    assert encode_sms(nfd) == encode_sms(nfc)
    assert encode_sms(nfd).text == nfc
    assert encode_sms(nfd, strip=True) == encode_sms(nfc, strip=True)
    assert strip_diacritics(nfd) == strip_diacritics(nfc)


def test_strip_diacritics_paragraph_gives_pure_gsm7():
    stripped = strip_diacritics(PARAGRAPH)
    assert stripped == PARAGRAPH_STRIPPED
    assert is_gsm7(stripped)
    assert len(stripped) == len(unicodedata.normalize("NFC", PARAGRAPH))
    enc = encode_sms(PARAGRAPH, strip=True)
    assert enc.encoding == GSM7
    assert enc.text == PARAGRAPH_STRIPPED
    accented = encode_sms(PARAGRAPH)
    assert accented.encoding == UCS2
    assert accented.segments > enc.segments


def test_strip_diacritics_all_vietnamese_vowels():
    lower = "aàáảãạăằắẳẵặâầấẩẫậeèéẻẽẹêềếểễệiìíỉĩịoòóỏõọôồốổỗộơờớởỡợuùúủũụưừứửữựyỳýỷỹỵđ"
    expected = "a" * 18 + "e" * 12 + "i" * 6 + "o" * 18 + "u" * 12 + "y" * 6 + "d"
    assert strip_diacritics(lower) == expected
    assert strip_diacritics(lower.upper()) == expected.upper()


def test_strip_diacritics_keeps_everything_else():
    text = "Ñandú ç ü ß 123 €{} “quote” 😀 日本 ÀÉ Ð"
    assert strip_diacritics(text) == "Ñandu ç ü ß 123 €{} “quote” 😀 日本 AE D"


def test_strip_removes_leftover_combining_marks_on_vowels():
    # ă + circumflex has no precomposed form; the stray mark must go too.
    assert strip_diacritics("a\u0306\u0302") == "a"
    assert strip_diacritics("n\u0303") == "ñ"  # not Vietnamese: kept (NFC)


def test_non_gsm_characters_lists_culprits():
    assert non_gsm_characters("Hop “khan” luc 7h – nha van hoa") == ["“", "”", "–"]
    assert non_gsm_characters("plain {text} €") == []


def test_stripped_text_with_typographic_quotes_becomes_gsm7():
    enc = encode_sms("“Thông báo”", strip=True)
    assert enc.text == '"Thong bao"'
    assert enc.encoding == GSM7
    assert enc.replaced == (("“", '"', 1), ("”", '"', 1))
    assert encode_sms("“Thông báo”", strip=True, smart=False).text == "“Thong bao”"


# --- length limit and cost ------------------------------------------------------


def test_1600_chars_accepted_1601_refused():
    assert encode_sms("a" * MAX_BODY_CHARS).segments == 11
    assert encode_sms("ạ" * MAX_BODY_CHARS).segments == 24
    with pytest.raises(SmsTooLong) as info:
        encode_sms("a" * 1601)
    assert isinstance(info.value, ValueError)
    assert info.value.length == 1601
    message = str(info.value)
    assert "1601" in message and "1600" in message
    assert "Tin nhắn quá dài" in message and "too long" in message


def test_length_limit_applies_to_nfc_length():
    nfd = unicodedata.normalize("NFD", "ệ" * MAX_BODY_CHARS)
    assert len(nfd) > MAX_BODY_CHARS
    assert encode_sms(nfd).characters == MAX_BODY_CHARS


def test_empty_body():
    enc = encode_sms("")
    assert (enc.encoding, enc.units, enc.segments) == (GSM7, 0, 0)
    assert split_segments(enc) == []
    assert segment_cost(enc, 0.05) == 0


def test_segment_cost():
    assert segment_cost(encode_sms("a" * 161), 0.0345) == pytest.approx(0.069)
    assert segment_cost(encode_sms("ạ" * 135), 350) == 1050
    assert segment_cost(encode_sms("a" * 307), 0.1) == 0.3
    with pytest.raises(ValueError):
        segment_cost(encode_sms("a"), -1)


def test_result_is_frozen():
    enc = encode_sms("abc")
    with pytest.raises(AttributeError):
        enc.segments = 5  # type: ignore[misc]


# --- text pasted from office documents (smart encoding) ---------------------------

WORD_PASTE = (
    "Th\u00f4ng b\u00e1o:\u00a0\u201cH\u1ecdp d\u00e2n\u201d l\u00fac 7h30 \u2013 nh\u00e0 v\u0103n h\u00f3a th\u00f4n 3\u2026"
    "\n\u2022 Mang theo CCCD \u2014 s\u1ed5 h\u1ed9 kh\u1ea9u\u200b; g\u1ecdi \u2018Ban t\u1ef1 qu\u1ea3n\u2019."
)


def test_word_paste_stripped_goes_out_in_gsm7_with_what_was_replaced():
    enc = encode_sms(WORD_PASTE, strip=True)
    assert enc.text == (
        'Thong bao: "Hop dan" luc 7h30 - nha van hoa thon 3...'
        "\n- Mang theo CCCD - so ho khau; goi 'Ban tu quan'."
    )
    assert enc.encoding == GSM7
    assert dict((ch, (to, n)) for ch, to, n in enc.replaced) == {
        "\u00a0": (" ", 1), "\u201c": ('"', 1), "\u201d": ('"', 1), "\u2013": ("-", 1), "\u2026": ("...", 1),
        "\u2022": ("-", 1), "\u2014": ("-", 1), "\u200b": ("", 1), "\u2018": ("'", 1), "\u2019": ("'", 1),
    }
    assert enc.characters == len(enc.text) == 102 + 2 - 1 and enc.segments == 1  # … is 3, the ZWSP 0
    as_typed = encode_sms(WORD_PASTE, strip=True, smart=False)
    assert as_typed.encoding == UCS2 and as_typed.characters == 102 and as_typed.segments == 2  # 67 + 35


@pytest.mark.parametrize(
    ("text", "units", "segments"),
    [
        ("a" * 158 + "“”", 160, 1),  # GSM-7 single: 160
        ("a" * 159 + "“”", 161, 2),
        ("a" * 304 + "“”", 306, 2),  # GSM-7 multipart: 153 a part
        ("a" * 305 + "“”", 307, 3),
        ("a" * 157 + "…", 160, 1),  # the ellipsis becomes three dots
        ("a" * 158 + "…", 161, 2),
        ("a" * 158 + "ˆ", 160, 1),  # replaced by ^, an extension character: two septets
        ("a" * 159 + "ˆ", 161, 2),
        ("a" * 152 + "ˆ" + "a" * 10, 164, 2),  # the escape pair is not cut: 152 + (2 + 10)
    ],
)
def test_smart_encoded_segments_are_exact(text, units, segments):
    enc = encode_sms(text)
    assert (enc.encoding, enc.units, enc.segments) == (GSM7, units, segments)
    parts = split_segments(enc)
    assert len(parts) == segments and "".join(parts) == enc.text
    if segments > 1:
        assert all(sum(2 if c in GSM7_EXTENSION else 1 for c in part) <= 153 for part in parts)


@pytest.mark.parametrize(
    ("text", "segments"),
    [
        ("ạ" * 68 + "“”", 1),  # UCS-2 single: 70
        ("ạ" * 69 + "“”", 2),
        ("ạ" * 132 + "“”", 2),  # UCS-2 multipart: 67 a part
        ("ạ" * 133 + "“”", 3),
    ],
)
def test_text_that_stays_ucs2_keeps_its_punctuation(text, segments):
    enc = encode_sms(text)
    assert enc.text == text and enc.replaced == ()
    assert (enc.encoding, enc.segments) == (UCS2, segments)


def test_gsm7_letters_are_kept_and_emoji_keep_the_text_as_written():
    enc = encode_sms("Café £5 – “ngon”")
    assert enc.text == 'Café £5 - "ngon"' and enc.encoding == GSM7
    assert encode_sms("Chúc mừng 😀 “Tết”").text == "Chúc mừng 😀 “Tết”"
    assert encode_sms("Gia 50.000₫ ­/ hộ", strip=True).text == "Gia 50.000d / ho"  # đồng sign, soft hyphen
