"""Tests for the Vietnamese text normaliser.

Expected strings are what a Vietnamese radio announcer says, written by hand;
they are not produced by a number-to-words library.
"""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest

from broadcaster.audio.normalize import load_abbreviations, normalize_text, number_to_words

SEEDS_DIR = Path("/work/shared/seeds")

Y2021 = "hai nghìn không trăm hai mươi mốt"
Y2022 = "hai nghìn không trăm hai mươi hai"
Y2030 = "hai nghìn không trăm ba mươi"
Y2024 = "hai nghìn không trăm hai mươi tư"


def say(text: str, **kwargs) -> str:
    """Normalise text that holds exactly one sentence."""
    sentences = normalize_text(text, **kwargs)
    assert len(sentences) == 1, sentences
    return sentences[0]


# --------------------------------------------------------------------------
# number_to_words
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("n", "words"),
    [
        (0, "không"),
        (1, "một"),
        (4, "bốn"),
        (5, "năm"),
        (10, "mười"),
        (11, "mười một"),
        (14, "mười bốn"),
        (15, "mười lăm"),
        (20, "hai mươi"),
        (21, "hai mươi mốt"),
        (24, "hai mươi tư"),
        (25, "hai mươi lăm"),
        (41, "bốn mươi mốt"),
        (55, "năm mươi lăm"),
        (100, "một trăm"),
        (101, "một trăm linh một"),
        (104, "một trăm linh bốn"),
        (105, "một trăm linh năm"),
        (110, "một trăm mười"),
        (115, "một trăm mười lăm"),
        (121, "một trăm hai mươi mốt"),
        (219, "hai trăm mười chín"),
        (1000, "một nghìn"),
        (1001, "một nghìn không trăm linh một"),
        (1010, "một nghìn không trăm mười"),
        (1100, "một nghìn một trăm"),
        (1945, "một nghìn chín trăm bốn mươi lăm"),
        (2000, "hai nghìn"),
        (2005, "hai nghìn không trăm linh năm"),
        (2016, "hai nghìn không trăm mười sáu"),
        (2022, Y2022),
        (2024, "hai nghìn không trăm hai mươi tư"),
        (10_000, "mười nghìn"),
        (21_000, "hai mươi mốt nghìn"),
        (50_000, "năm mươi nghìn"),
        (100_000, "một trăm nghìn"),
        (1_000_000, "một triệu"),
        (1_000_500, "một triệu năm trăm"),
        (1_005_000, "một triệu không trăm linh năm nghìn"),
        (1_250_000, "một triệu hai trăm năm mươi nghìn"),
        (1_000_000_000, "một tỷ"),
        (2_500_000_000, "hai tỷ năm trăm triệu"),
        (1_000_000_021, "một tỷ không trăm hai mươi mốt"),
        (1_000_000_000_000, "một nghìn tỷ"),
        (-5, "âm năm"),
    ],
)
def test_number_to_words(n: int, words: str) -> None:
    assert number_to_words(n) == words


# --------------------------------------------------------------------------
# Abbreviations
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("UBND tỉnh Lai Châu", "Ủy ban nhân dân tỉnh Lai Châu"),
        ("HĐND xã", "Hội đồng nhân dân xã"),
        ("công tác CCHC", "công tác cải cách hành chính"),
        ("giải quyết TTHC", "giải quyết thủ tục hành chính"),
        ("Sở KH&CN", "Sở khoa học và công nghệ"),
        ("của CC-VC-NLĐ", "của công chức, viên chức, người lao động"),
        ("tuyển dụng CC-VC", "tuyển dụng công chức, viên chức"),
        ("đội ngũ CBCCVC", "đội ngũ cán bộ, công chức, viên chức"),
        ("Ủy ban MTTQ xã", "Ủy ban Mặt trận Tổ quốc xã"),
        ("chỉ số SIPAS", "chỉ số chỉ số hài lòng về sự phục vụ hành chính"),
        ("kết quả PAR INDEX", "kết quả chỉ số cải cách hành chính"),
        ("Đ/c Chủ tịch", "đồng chí Chủ tịch"),
        ("tại TP.HCM", "tại Thành phố Hồ Chí Minh"),
        ("TP. Hồ Chí Minh", "thành phố Hồ Chí Minh"),
        ("Bản tin KH&CN", "Bản tin khoa học và công nghệ"),
        ("theo TT-BTTTT", "theo thông tư của Bộ Thông tin và Truyền thông"),
        ("các văn bản QĐ-TTg", "các văn bản quyết định của Thủ tướng Chính phủ"),
        ("NQ/TU", "nghị quyết của Tỉnh ủy"),
        ("mẫu KH-UBND", "mẫu kế hoạch của Ủy ban nhân dân"),
        # a code token whose parts are all known, though not listed as a whole
        ("mẫu KH-SKHCN", "mẫu kế hoạch của Sở Khoa học và Công nghệ"),
        ("phát triển KT-XH", "phát triển kinh tế, xã hội"),
        ("(TTHC)", "(thủ tục hành chính)"),
        ("phòng chống COVID-19", "phòng chống cô vít mười chín"),
    ],
)
def test_abbreviations(text: str, spoken: str) -> None:
    assert say(text) == spoken


@pytest.mark.parametrize(
    "text",
    [
        "ubnd",  # acronyms are case-sensitive
        "UBNDX",  # whole tokens only
        "XUBND",
        "Mục B",
        "Hội nghị I",  # a lone Roman-looking letter without a context word
        "I am here",
        "Zalo, Fanpage",
    ],
)
def test_text_left_alone(text: str) -> None:
    assert say(text) == text


def test_load_abbreviations_has_the_administrative_dictionary() -> None:
    table = load_abbreviations()
    assert len(table) >= 40
    assert table["UBND"] == "Ủy ban nhân dân"
    assert table["CC-VC-NLĐ"] == "công chức, viên chức, người lao động"
    assert table["KH&CN"] == "khoa học và công nghệ"
    for key in (
        "HĐND",
        "CCHC",
        "TTHC",
        "CBCCVC",
        "MTTQ",
        "SIPAS",
        "PAR INDEX",
        "TT-BTTTT",
        "QĐ-TTg",
        "NQ/TU",
    ):
        assert key in table
    for key, value in table.items():
        assert unicodedata.is_normalized("NFC", key), key
        assert unicodedata.is_normalized("NFC", value), key
        assert not re.search(r"\d", value), key


def test_load_abbreviations_merges_extras_and_returns_a_copy() -> None:
    table = load_abbreviations({"UBND": "Ủy ban", "BQL": "Ban quản lý"})
    assert table["UBND"] == "Ủy ban"
    assert table["BQL"] == "Ban quản lý"
    table["CCHC"] = "changed"
    assert load_abbreviations()["CCHC"] == "cải cách hành chính"
    assert load_abbreviations()["UBND"] == "Ủy ban nhân dân"


def test_extra_abbreviations() -> None:
    extra = {"BQL": "Ban quản lý", "HTX NN": "hợp tác xã nông nghiệp"}
    assert say("BQL dự án và HTX NN Tân Uyên", extra_abbreviations=extra) == (
        "Ban quản lý dự án và hợp tác xã nông nghiệp Tân Uyên"
    )
    # extras do not leak into later calls
    assert say("BQL dự án") == "BQL dự án"


def test_extra_abbreviations_are_nfc_normalised() -> None:
    extra = {unicodedata.normalize("NFD", "ĐVHC"): unicodedata.normalize("NFD", "đơn vị hành chính")}
    assert say("các ĐVHC cấp xã", extra_abbreviations=extra) == "các đơn vị hành chính cấp xã"


# --------------------------------------------------------------------------
# Numbers, money, percentages, units
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("có 21 xã", "có hai mươi mốt xã"),
        ("15 thôn", "mười lăm thôn"),
        ("mức độ 3, 4", "mức độ ba, bốn"),
        ("08 nội dung", "tám nội dung"),
        ("sơ kết 05 năm", "sơ kết năm năm"),
        ("10 nhóm nội dung", "mười nhóm nội dung"),
        ("năm 2022", f"năm {Y2022}"),
        ("năm 2005", "năm hai nghìn không trăm linh năm"),
        ("1.000.000 người", "một triệu người"),
        ("50.000 đồng", "năm mươi nghìn đồng"),
        ("50.000đ", "năm mươi nghìn đồng"),
        ("1.250.000 VNĐ", "một triệu hai trăm năm mươi nghìn đồng"),
        ("2,5 tỷ đồng", "hai phẩy năm tỷ đồng"),
        ("3 tỷ đ", "ba tỷ đồng"),
        ("tăng 2,5 lần", "tăng hai phẩy năm lần"),
        ("0,05", "không phẩy không năm"),
        ("đạt 95%", "đạt chín mươi lăm phần trăm"),
        ("tăng 2,5%", "tăng hai phẩy năm phần trăm"),
        ("100%", "một trăm phần trăm"),
        ("dài 12 km", "dài mười hai ki lô mét"),
        ("rộng 500 ha", "rộng năm trăm héc ta"),
        ("1.000 m2", "một nghìn mét vuông"),
        ("60km/h", "sáu mươi ki lô mét trên giờ"),
        ("300 người/km2", "ba trăm người trên ki lô mét vuông"),
        ("từ 5-10 phút", "từ năm đến mười phút"),
        ("15/20 xã", "mười lăm trên hai mươi xã"),
        ("cách mạng công nghiệp 4.0", "cách mạng công nghiệp bốn chấm không"),
        ("mạng 4G", "mạng bốn G"),
    ],
)
def test_numbers(text: str, spoken: str) -> None:
    assert say(text) == spoken


# --------------------------------------------------------------------------
# Dates, years, ranges, times
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("ký 20/1/2022", f"ký ngày hai mươi tháng một năm {Y2022}"),
        ("Ngày 20/1/2022", f"Ngày hai mươi tháng một năm {Y2022}"),
        ("ngày 20\u20441\u20442022", f"ngày hai mươi tháng một năm {Y2022}"),  # fraction slash
        ("ngày 06/01-2022", f"ngày sáu tháng một năm {Y2022}"),
        ("ngày 09/8/2021", f"ngày chín tháng tám năm {Y2021}"),
        ("ngày 24/4/2022", f"ngày hai mươi tư tháng tư năm {Y2022}"),
        ("ngày 4/12/2022", f"ngày bốn tháng mười hai năm {Y2022}"),
        ("Đăng ngày 20 - 03 - 2023", "Đăng ngày hai mươi tháng ba năm hai nghìn không trăm hai mươi ba"),
        ("2022-01-21", f"ngày hai mươi mốt tháng một năm {Y2022}"),
        ("ngày 15/3", "ngày mười lăm tháng ba"),
        ("tháng 3/2023", "tháng ba năm hai nghìn không trăm hai mươi ba"),
        ("ngày 27 tháng 3 năm 2021", f"ngày hai mươi bảy tháng ba năm {Y2021}"),
        ("trong tháng 4", "trong tháng tư"),
        ("Tháng 11", "Tháng mười một"),
        ("giai đoạn 2021-2030", f"giai đoạn {Y2021} đến {Y2030}"),
        ("giai đoạn 2021 - 2030", f"giai đoạn {Y2021} đến {Y2030}"),
        ("nhiệm kỳ 2021 – 2026", f"nhiệm kỳ {Y2021} đến hai nghìn không trăm hai mươi sáu"),
        ("kế hoạch 2021-2030", f"kế hoạch từ năm {Y2021} đến năm {Y2030}"),
        ("năm 2021-2022", f"năm {Y2021} đến năm {Y2022}"),
        ("phát sóng lúc 6h30", "phát sóng lúc sáu giờ ba mươi phút"),
        ("lúc 17h", "lúc mười bảy giờ"),
        ("lúc 17h00", "lúc mười bảy giờ"),
        ("lúc 6:30", "lúc sáu giờ ba mươi phút"),
        ("lúc 6h05", "lúc sáu giờ năm phút"),
        ("khung giờ 05:30–06:30", "khung giờ từ năm giờ ba mươi phút đến sáu giờ ba mươi phút"),
        ("khung 17h-18h", "khung từ mười bảy giờ đến mười tám giờ"),
        (
            "(03/01/2025 3:34 CH)",
            "(ngày ba tháng một năm hai nghìn không trăm hai mươi lăm ba giờ ba mươi tư phút chiều)",
        ),
    ],
)
def test_dates_and_times(text: str, spoken: str) -> None:
    assert say(text) == spoken


# --------------------------------------------------------------------------
# Phone numbers: digit by digit
# --------------------------------------------------------------------------

# Digit by digit, in the groups they are written in (an ungrouped mobile number in the usual
# 4-3-3), a comma between the groups so the voice pauses and a listener can note it down.
MOBILE = "không chín một hai, ba bốn năm, sáu bảy tám"


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("gọi 0912345678", f"gọi {MOBILE}"),
        ("số 0912 345 678", f"số {MOBILE}"),
        ("số 0912.345.678", f"số {MOBILE}"),
        ("số +84 912 345 678", "số cộng tám bốn, chín một hai, ba bốn năm, sáu bảy tám"),
        ("số +84912345678", "số cộng tám bốn, chín một hai, ba bốn năm, sáu bảy tám"),
        ("máy bàn (0231) 3876 543", "máy bàn không hai ba một, ba tám bảy sáu, năm bốn ba"),
        ("điện thoại 02913.822.123", "điện thoại không hai chín một ba, tám hai hai, một hai ba"),
        ("02913.822.123", "không hai chín một ba, tám hai hai, một hai ba"),
        ("tổng đài 1900 1234", "tổng đài một chín không không, một hai ba bốn"),
        ("gọi 113", "gọi một một ba"),
        ("đường dây nóng: 1022", "đường dây nóng: một không hai hai"),
        ("tổng đài 1022", "tổng đài một không hai hai"),
        ("Tổng đài dịch vụ công 1022 để phản ánh", "Tổng đài dịch vụ công một không hai hai để phản ánh"),
        ("gọi 113, 114 hoặc 115", "gọi một một ba, một một bốn hoặc một một năm"),
        # counts near a phone word stay numbers
        ("đường dây nóng tiếp nhận 120 cuộc gọi", "đường dây nóng tiếp nhận một trăm hai mươi cuộc gọi"),
        ("số 12 đường Lê Lợi", "số mười hai đường Lê Lợi"),
    ],
)
def test_phone_numbers(text: str, spoken: str) -> None:
    assert say(text) == spoken


# --------------------------------------------------------------------------
# Roman numerals and ordinals
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("khóa XVI", "khóa mười sáu"),
        ("Quốc hội khoá XV", "Quốc hội khoá mười lăm"),
        ("Quý II", "Quý hai"),
        ("quý IV năm nay", "quý bốn năm nay"),
        ("Quý I/2023", "Quý một năm hai nghìn không trăm hai mươi ba"),
        ("Phần I", "Phần một"),
        ("Chương IX", "Chương chín"),
        ("Mục XIV", "Mục mười bốn"),
        ("Đại hội XIII", "Đại hội mười ba"),
        ("thế kỷ XXI", "thế kỷ hai mươi mốt"),
        ("lần thứ IV", "lần thứ tư"),
        ("thứ 2", "thứ hai"),
        ("Thứ 4", "Thứ tư"),
        ("thứ 7", "thứ bảy"),
        ("lần thứ 1", "lần thứ nhất"),
        ("lần thứ 14", "lần thứ mười bốn"),
        ("Phiên họp thứ 9", "Phiên họp thứ chín"),
    ],
)
def test_roman_numerals_and_ordinals(text: str, spoken: str) -> None:
    assert say(text) == spoken


# --------------------------------------------------------------------------
# Document numbers
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("Kế hoạch số 219/KH-UBND", "Kế hoạch số hai trăm mười chín của Ủy ban nhân dân"),
        ("Kế hoạch số 219\u2044KH-UBND", "Kế hoạch số hai trăm mười chín của Ủy ban nhân dân"),
        ("Quyết định số 468/QĐ-TTg", "Quyết định số bốn trăm sáu mươi tám của Thủ tướng Chính phủ"),
        ("Nghị quyết số 07-NQ/TU", "Nghị quyết số bảy của Tỉnh ủy"),
        (
            "Quyết định số 45/2016/QĐ-TTg",
            "Quyết định số bốn mươi lăm năm hai nghìn không trăm mười sáu của Thủ tướng Chính phủ",
        ),
        (
            "Thông tư 01/2020/TT-BTTTT",
            "Thông tư một năm hai nghìn không trăm hai mươi của Bộ Thông tin và Truyền thông",
        ),
        # the type is said when the sentence has not said it yet
        ("theo 219/KH-UBND", "theo kế hoạch số hai trăm mười chín của Ủy ban nhân dân"),
        ("văn bản số 219/KH-UBND", "văn bản số hai trăm mười chín kế hoạch của Ủy ban nhân dân"),
        # the issuer is not repeated when the sentence names it right after
        ("Nghị quyết số 76/NQ-CP của Chính phủ", "Nghị quyết số bảy mươi sáu của Chính phủ"),
        (
            "Kế hoạch số 405/KH-UBND ngày 30/12/2021 của UBND tỉnh",
            f"Kế hoạch số bốn trăm linh năm ngày ba mươi tháng mười hai năm {Y2021} của Ủy ban nhân dân tỉnh",
        ),
    ],
)
def test_document_numbers(text: str, spoken: str) -> None:
    assert say(text) == spoken


# --------------------------------------------------------------------------
# Sentences, whitespace, bullets, Unicode
# --------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["", "   ", "\n\n", "- ", "./.", "…"])
def test_empty_input_gives_no_sentences(text: str) -> None:
    assert normalize_text(text) == []


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        (
            "Câu một. Câu hai! Câu ba? Câu bốn; câu năm",
            ["Câu một", "Câu hai!", "Câu ba?", "Câu bốn", "câu năm"],
        ),
        ("Dòng một\nDòng hai", ["Dòng một", "Dòng hai"]),
        ("- Gạch đầu dòng\n-Dính liền\n• Chấm tròn", ["Gạch đầu dòng", "Dính liền", "Chấm tròn"]),
        ("Nhiều     khoảng\t trắng  ", ["Nhiều khoảng trắng"]),
        ("1. Mục đích\n2) Yêu cầu\na) Nội dung", ["Mục đích", "Yêu cầu", "Nội dung"]),
        ("I. MỤC ĐÍCH\nII. NỘI DUNG\n1.1. Tuyên truyền", ["MỤC ĐÍCH", "NỘI DUNG", "Tuyên truyền"]),
        ("Thu 1.250.000 đồng. Xong.", ["Thu một triệu hai trăm năm mươi nghìn đồng", "Xong"]),
        ("Đạt 2,5%. Tốt", ["Đạt hai phẩy năm phần trăm", "Tốt"]),
        ("Tại TP. Hồ Chí Minh. Hết", ["Tại thành phố Hồ Chí Minh", "Hết"]),
        ("điều hành cải cách…. Tình hình", ["điều hành cải cách", "Tình hình"]),
        ("lý luận chính trị,...Tuyên truyền qua", ["lý luận chính trị", "Tuyên truyền qua"]),
        ("đạt kết quả./.", ["đạt kết quả"]),
        ("a\u00a0b\u200bc", ["a bc"]),
        ("Thông báo\u00ad\u2003khẩn\u2060", ["Thông báo khẩn"]),  # soft hyphen, em space, word joiner
        ("Tải tệp 911-KH-tuyen-truyen-CCHC-nam-2023.pdf", ["Tải tệp"]),
        (
            "Báo Lai Châu, Đài Phát thanh - Truyền hình tỉnh",
            ["Báo Lai Châu, Đài Phát thanh, Truyền hình tỉnh"],
        ),
        ("xã/phường/thị trấn", ["xã, phường, thị trấn"]),
    ],
)
def test_sentence_split_and_cleanup(text: str, sentences: list[str]) -> None:
    assert normalize_text(text) == sentences


def test_decomposed_input_gives_the_same_output() -> None:
    text = "Ngày 20/1/2022, UBND tỉnh Lai Châu ban hành Kế hoạch số 219/KH-UBND về CCHC; khóa XVI."
    nfd = unicodedata.normalize("NFD", text)
    assert nfd != text
    assert normalize_text(nfd) == normalize_text(text)
    assert all(unicodedata.is_normalized("NFC", s) for s in normalize_text(nfd))


# --------------------------------------------------------------------------
# Whole seed sentences
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        (
            "Ngày 20⁄1⁄2022, UBND tỉnh Lai Châu đã ban hành Kế hoạch số 219⁄KH-UBND về tuyên truyền công tác "
            "cải cách hành chính nhà nước tỉnh Lai Châu năm 2022.",
            [
                f"Ngày hai mươi tháng một năm {Y2022}, Ủy ban nhân dân tỉnh Lai Châu đã ban hành Kế hoạch số "
                "hai trăm mười chín của Ủy ban nhân dân về tuyên truyền công tác cải cách hành chính nhà nước "
                f"tỉnh Lai Châu năm {Y2022}"
            ],
        ),
        (
            "Tuyên truyền về xây dựng và phát triển Chính quyền điện tử, Chính quyền số, việc ứng dụng công nghệ "
            "thông tin, cung cấp dịch vụ công trực tuyến mức độ 3, 4. Tuyên truyền các mô hình thí điểm trong quá "
            "trình CCHC; các điển hình tiên tiến trong thực hiện CCHC tại sở, ngành.",
            [
                "Tuyên truyền về xây dựng và phát triển Chính quyền điện tử, Chính quyền số, việc ứng dụng công "
                "nghệ thông tin, cung cấp dịch vụ công trực tuyến mức độ ba, bốn",
                "Tuyên truyền các mô hình thí điểm trong quá trình cải cách hành chính",
                "các điển hình tiên tiến trong thực hiện cải cách hành chính tại sở, ngành",
            ],
        ),
        (
            "Căn cứ Kế hoạch số 405/KH-UBND ngày 30/12/2021 của UBND tỉnh về việc ban hành Kế hoạch tuyên truyền "
            "cải cách hành chính tỉnh (CCHC) Thừa Thiên Huế năm 2022, Sở Khoa học và Công nghệ (KH&CN) cũng đã "
            "ban hành Kế hoạch số 29/KH-SKHCN ngày 06/01-2022 tuyên truyền CCHC năm 2022 của Sở.",
            [
                "Căn cứ Kế hoạch số bốn trăm linh năm ngày ba mươi tháng mười hai năm "
                f"{Y2021} của Ủy ban nhân dân tỉnh về việc ban hành Kế hoạch tuyên truyền cải cách hành chính "
                f"tỉnh (cải cách hành chính) Thừa Thiên Huế năm {Y2022}, Sở Khoa học và Công nghệ "
                "cũng đã ban hành Kế hoạch số hai mươi chín của Sở Khoa học và Công nghệ ngày sáu "
                f"tháng một năm {Y2022} tuyên truyền cải cách hành chính năm {Y2022} của Sở"
            ],
        ),
        (
            "- Tuyên truyền các quan điểm về CCHC gắn với việc triển khai Nghị quyết số 07-NQ/TU ngày 09/8/2021 "
            "của Hội nghị lần thứ tư Ban chấp hành Đảng bộ tỉnh Thừa Thiên Huế khóa XVI về xây dựng Thừa Thiên "
            "Huế trở thành một trong những trung tâm lớn của cả nước về KH&CN giai đoạn 2021-2025 và tầm nhìn "
            "đến năm 2030.",
            [
                "Tuyên truyền các quan điểm về cải cách hành chính gắn với việc triển khai Nghị quyết số bảy của "
                f"Tỉnh ủy ngày chín tháng tám năm {Y2021} của Hội nghị lần thứ tư Ban chấp hành Đảng bộ tỉnh Thừa "
                "Thiên Huế khóa mười sáu về xây dựng Thừa Thiên Huế trở thành một trong những trung tâm lớn của cả "
                f"nước về khoa học và công nghệ giai đoạn {Y2021} đến hai nghìn không trăm hai mươi lăm và tầm "
                f"nhìn đến năm {Y2030}"
            ],
        ),
        (
            "Mục đích của kế hoạch là tăng cường nâng cao nhận thức, trách nhiệm của công chức, viên chức, người "
            "lao động (CC-VC-NLĐ) về ý nghĩa, mục tiêu, tầm quan trọng của công tác CCHC.",
            [
                "Mục đích của kế hoạch là tăng cường nâng cao nhận thức, trách nhiệm của công chức, viên chức, "
                "người lao động về ý nghĩa, mục tiêu, tầm quan trọng của "
                "công tác cải cách hành chính"
            ],
        ),
        (
            "theo Quyết định số 468/QĐ-TTg ngày 27 tháng 3 năm 2021 của Thủ tướng Chính phủ về Phê duyệt Đề án",
            [
                "theo Quyết định số bốn trăm sáu mươi tám ngày hai mươi bảy tháng ba năm "
                f"{Y2021} của Thủ tướng Chính phủ về Phê duyệt Đề án"
            ],
        ),
        (
            "Cơ cấu Chính phủ nhiệm kỳ 2021 – 2026;\n\nTình hình triển khai",
            [
                f"Cơ cấu Chính phủ nhiệm kỳ {Y2021} đến hai nghìn không trăm hai mươi sáu",
                "Tình hình triển khai",
            ],
        ),
        (
            "Ngoài ra, Chủ tịch UBND tỉnh đề ra mục tiêu thực hiện và 08 nội dung thông tin, tuyên truyền cụ thể",
            [
                "Ngoài ra, Chủ tịch Ủy ban nhân dân tỉnh đề ra mục tiêu thực hiện và tám nội dung thông tin, "
                "tuyên truyền cụ thể"
            ],
        ),
        (
            "Quyết định số 1216/QĐ-BTTTT ngày 13/8/2021..",
            [
                "Quyết định số một nghìn hai trăm mười sáu của Bộ Thông tin và Truyền thông ngày mười ba tháng "
                f"tám năm {Y2021}"
            ],
        ),
    ],
)
def test_seed_sentences(text: str, sentences: list[str]) -> None:
    assert normalize_text(text) == sentences


def _seed_texts() -> list[str]:
    return [p.read_text(encoding="utf-8") for p in sorted(SEEDS_DIR.glob("*.txt"))]


@pytest.mark.skipif(not SEEDS_DIR.is_dir(), reason="seed documents not available")
def test_no_digit_or_known_abbreviation_survives_in_the_seeds() -> None:
    acronyms = [k for k in load_abbreviations() if re.fullmatch(r"[A-ZĐ&/-]{3,}", k)]
    for text in _seed_texts():
        for sentence in normalize_text(text):
            assert not re.search(r"\d", sentence), sentence
            for acronym in acronyms:
                assert not re.search(rf"(?<![\w&]){re.escape(acronym)}(?![\w&])", sentence), (
                    acronym,
                    sentence,
                )


# --------------------------------------------------------------------------
# Readings real bulletins got wrong (issue 13): what the announcer says
# --------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("cải cách hành chính (CCHC)", "cải cách hành chính"),
        ("công tác cải cách hành chính (CCHC) năm nay", "công tác cải cách hành chính năm nay"),
        ("Uỷ ban nhân dân (UBND) xã", "Uỷ ban nhân dân xã"),  # old tone placement compares equal
        ("Sở Khoa học và Công nghệ (KH&CN)", "Sở Khoa học và Công nghệ"),
        # not in the dictionary, but the capitals are the initials of the words before it
        ("Ban quản lý dự án (BQLDA) huyện", "Ban quản lý dự án huyện"),
        ("Trung tâm Phục vụ hành chính công (sau đây gọi tắt là TTPVHCC)", "Trung tâm Phục vụ hành chính công"),
        ("Ủy ban nhân dân tỉnh (sau đây gọi tắt là UBND tỉnh) quyết định", "Ủy ban nhân dân tỉnh quyết định"),
        ("Số tiền 50.000 đồng (Năm mươi nghìn đồng)", "Số tiền năm mươi nghìn đồng"),
        ("Kinh phí: 15.000.000đ (Mười lăm triệu đồng chẵn)", "Kinh phí: mười lăm triệu đồng"),
        # not right after its expansion: read, expanded
        ("cải cách hành chính tỉnh (CCHC)", "cải cách hành chính tỉnh (cải cách hành chính)"),
        ("thực hiện (TTHC)", "thực hiện (thủ tục hành chính)"),
    ],
)
def test_bracketed_abbreviation_after_its_expansion_is_read_once(text: str, spoken: str) -> None:
    assert say(text) == spoken


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("từ 15/5 đến 30/5", "từ ngày mười lăm tháng năm đến ngày ba mươi tháng năm"),
        ("Hạn chót 30/4.", "Hạn chót ngày ba mươi tháng tư"),
        ("Sáng 20/5 họp dân.", "Sáng ngày hai mươi tháng năm họp dân"),
        ("Hội nghị vào chiều 25/5 tại hội trường", "Hội nghị vào chiều ngày hai mươi lăm tháng năm tại hội trường"),
        ("nộp trước 30/6 năm nay", "nộp trước ngày ba mươi tháng sáu năm nay"),
        ("kể từ 1/7", "kể từ ngày một tháng bảy"),
        ("15/5, Ủy ban họp", "ngày mười lăm tháng năm, Ủy ban họp"),  # at the start of a clause
        ("Thời gian: 15/5", "Thời gian: ngày mười lăm tháng năm"),
        ("sáng thứ 7 (25/5) tại trạm", "sáng thứ bảy (ngày hai mươi lăm tháng năm) tại trạm"),
        ("Từ ngày 01/6 đến hết ngày 30/6", "Từ ngày một tháng sáu đến hết ngày ba mươi tháng sáu"),
        # ranges
        ("đợt 1 từ 10-15/6", "đợt một từ ngày mười đến ngày mười lăm tháng sáu"),
        ("Thời gian 15/5 - 20/5", "Thời gian từ ngày mười lăm tháng năm đến ngày hai mươi tháng năm"),
        ("ngày 1-2/6/2024", f"từ ngày một đến ngày hai tháng sáu năm {Y2024}"),
        ("trong tháng 1-3/2025", "trong tháng một đến tháng ba năm hai nghìn không trăm hai mươi lăm"),
        # dates that are names: no "ngày"
        ("đường 3/2", "đường ba tháng hai"),
        ("dịp lễ 30/4 - 1/5", "dịp lễ ba mươi tháng tư và một tháng năm"),
        ("Quốc khánh 2/9", "Quốc khánh hai tháng chín"),
        # not dates: ratios and fractions
        ("đạt 8/10 tiêu chí", "đạt tám trên mười tiêu chí"),
        ("3/5 xã đạt chuẩn", "ba trên năm xã đạt chuẩn"),
        ("Xã đạt 8/10.", "Xã đạt tám trên mười"),
        ("15/20 xã", "mười lăm trên hai mươi xã"),
        ("1/2 số hộ", "một phần hai số hộ"),
        ("khoảng 2/3 số hộ", "khoảng hai phần ba số hộ"),
        ("3/4 diện tích lúa", "ba phần tư diện tích lúa"),
        ("hạn 32/5", "hạn ba mươi hai trên năm"),  # not a valid date
        ("Sáng 20-5, Ủy ban họp", "Sáng ngày hai mươi tháng năm, Ủy ban họp"),  # the press's way
        ("Chiều 15.5, xã họp", "Chiều ngày mười lăm tháng năm, xã họp"),
        ("trực 24/7.", "trực hai mươi tư trên bảy"),
        ("Hội nghị 20/5 tới sẽ bàn", "Hội nghị ngày hai mươi tháng năm tới sẽ bàn"),
        ("Hạn nộp là 30/4.", "Hạn nộp là ngày ba mươi tháng tư"),
        ("học sinh lớp 12/3.", "học sinh lớp mười hai trên ba"),
    ],
)
def test_day_month_dates_ratios_and_fractions(text: str, spoken: str) -> None:
    assert say(text) == spoken


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("Nghị quyết số 30c/NQ-CP", "Nghị quyết số ba mươi xê của Chính phủ"),
        ("theo 30c/NQ-CP", "theo nghị quyết số ba mươi xê của Chính phủ"),
        ("Chỉ thị số 05-CT/TU", "Chỉ thị số năm của Tỉnh ủy"),
        ("Thông báo số 45/TB-UBND", "Thông báo số bốn mươi lăm của Ủy ban nhân dân"),
        ("Công điện số 02/CĐ-TTg", "Công điện số hai của Thủ tướng Chính phủ"),
        ("Giấy mời số 10/GM-UBND", "Giấy mời số mười của Ủy ban nhân dân"),
        ("Quyết định số 12/QĐ-SYT", "Quyết định số mười hai của Sở Y tế"),
        ("Hướng dẫn số 12-HD/BTGTW", "Hướng dẫn số mười hai của Ban Tuyên giáo Trung ương"),
        ("Thông tư số 01/2024/TT-BTC", "Thông tư số một năm hai nghìn không trăm hai mươi tư của Bộ Tài chính"),
        ("Luật số 77/2015/QH13", "Luật số bảy mươi bảy năm hai nghìn không trăm mười lăm của Quốc hội khóa mười ba"),
        # the office's internal department code after the issuer is not read
        ("Công văn số 1234/UBND-KT", "Công văn số một nghìn hai trăm ba mươi tư của Ủy ban nhân dân"),
    ],
)
def test_document_numbers_of_every_type(text: str, spoken: str) -> None:
    assert say(text) == spoken


@pytest.mark.parametrize(
    ("text", "sentences"),
    [
        ("TP. Bạc Liêu, P.7", ["thành phố Bạc Liêu, phường bảy"]),
        ("Q.1, TX. Giá Rai, TT. Hộ Phòng, H. Hồng Dân", ["quận một, thị xã Giá Rai, thị trấn Hộ Phòng, huyện Hồng Dân"]),
        ("họp tại KP.3, P. Nhà Mát.", ["họp tại khu phố ba, phường Nhà Mát"]),
        ("P. Giám đốc Sở", ["phó Giám đốc Sở"]),
        ("ông Nguyễn Văn H. cho biết", ["ông Nguyễn Văn H cho biết"]),
        ("Trụ sở tại P.7. Mời bà con đến", ["Trụ sở tại phường bảy", "Mời bà con đến"]),
    ],
)
def test_place_prefixes_do_not_end_a_sentence(text: str, sentences: list[str]) -> None:
    assert normalize_text(text) == sentences


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("Thứ 2, thứ 7, CN", "Thứ hai, thứ bảy, chủ nhật"),
        ("làm việc từ thứ 2 - thứ 6", "làm việc từ thứ hai đến thứ sáu"),
        ("làm việc thứ 2-6", "làm việc từ thứ hai đến thứ sáu"),
        ("làm việc T2-T6, nghỉ T7, CN", "làm việc từ thứ hai đến thứ sáu, nghỉ thứ bảy, chủ nhật"),
        ("mở cửa cả ngày CN", "mở cửa cả ngày chủ nhật"),
        ("ngành CN chế biến", "ngành CN chế biến"),  # no weekday in sight: not Sunday
    ],
)
def test_weekdays(text: str, spoken: str) -> None:
    assert say(text) == spoken


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("1,5 triệu đồng/hộ", "một phẩy năm triệu đồng một hộ"),
        ("500.000đ/người/tháng", "năm trăm nghìn đồng một người một tháng"),
        ("họp 2 lần/tuần", "họp hai lần một tuần"),
        ("mức thu 20.000đ/m2", "mức thu hai mươi nghìn đồng một mét vuông"),
        ("giá 5.000 đồng/kg", "giá năm nghìn đồng một ki lô gam"),
        ("hộ/năm", "hộ, năm"),  # no quantity before: a list
        ("Văn phòng HĐND-UBND xã", "Văn phòng Hội đồng nhân dân, Ủy ban nhân dân xã"),
    ],
)
def test_per_unit_slashes(text: str, spoken: str) -> None:
    assert say(text) == spoken


@pytest.mark.parametrize(
    ("text", "spoken"),
    [
        ("Mỗi hộ được 10kg gạo/khẩu/tháng", "Mỗi hộ được mười ki lô gam gạo một khẩu một tháng"),
        ("lãi suất 0,66%/tháng", "lãi suất không phẩy sáu mươi sáu phần trăm một tháng"),
        ("Số tiền 2.500.000 đ (Hai triệu năm trăm nghìn đồng)", "Số tiền hai triệu năm trăm nghìn đồng"),
        ("Điện thoại: 0290.3.822.456", "Điện thoại: không hai chín không, ba, tám hai hai, bốn năm sáu"),
        ("Mực nước trên BĐ2", "Mực nước trên báo động hai"),
        ("vào các ngày 15, 16 và 17/6", "vào các ngày mười lăm, mười sáu và mười bảy tháng sáu"),
        ("ngày 30/4 và 1/5 hàng năm", "ngày ba mươi tháng tư và ngày một tháng năm hàng năm"),
        ("từ 15/5 hoặc 20/5 tới", "từ ngày mười lăm tháng năm hoặc ngày hai mươi tháng năm tới"),
        ("tháng 5, 3/5 xã đạt", "tháng năm, ba trên năm xã đạt"),
        ("lúc 7g30 sáng", "lúc bảy giờ ba mươi phút sáng"),  # the southern way of writing 7h30
        ("10g muối", "mười gam muối"),
        ("từ 20h-22h", "từ hai mươi giờ đến hai mươi hai giờ"),
        ("lúc 7 giờ 30'", "lúc bảy giờ ba mươi phút"),
        ("Từ 6h30’ đến 7h", "Từ sáu giờ ba mươi phút đến bảy giờ"),
        ("tốc độ 40km/giờ", "tốc độ bốn mươi ki lô mét trên giờ"),
        ("lúc 14 giờ 00 ngày 20/5", "lúc mười bốn giờ ngày hai mươi tháng năm"),
        ("thấp nhất 18-20oC", "thấp nhất mười tám đến hai mươi độ C"),
        ("mực nước 1m50", "mực nước một mét năm mươi"),
        ("cấp 10kg/người", "cấp mười ki lô gam một người"),
        ("liều 20ml/bình", "liều hai mươi mi li lít một bình"),
        ("đạt 102% KH", "đạt một trăm linh hai phần trăm kế hoạch"),
        ("Xã có 3 trường: MN, TH và THCS", "Xã có ba trường: mầm non, tiểu học và trung học cơ sở"),
        ("TH nào cũng vậy", "TH nào cũng vậy"),  # no school in sight
    ],
)
def test_more_bulletin_readings(text: str, spoken: str) -> None:
    assert say(text) == spoken
