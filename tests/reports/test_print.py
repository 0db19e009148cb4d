"""The report as a clerk prints it: XLSX and DOCX through LibreOffice to PDF (one conversion run)."""

from __future__ import annotations

import re
import subprocess

from tests.reports.conftest import set_commune

A4_LANDSCAPE = re.compile(r"Page size:\s+841\.\d+ x 595\.\d+ pts \(A4\)")


def pdf_pages(path) -> list[str]:
    info = subprocess.run(["pdfinfo", str(path)], capture_output=True, text=True, check=True).stdout
    assert A4_LANDSCAPE.search(info), info
    count = int(re.search(r"Pages:\s+(\d+)", info).group(1))
    return [subprocess.run(["pdftotext", "-layout", "-f", str(n), "-l", str(n), str(path), "-"],
                           capture_output=True, text=True, check=True).stdout for n in range(1, count + 1)]


def flat(text: str) -> str:
    return " ".join(text.split())


def test_xlsx_and_docx_print_one_page_wide(run, dataset, workspace, tmp_path):
    set_commune(workspace, "Phước Hà")
    for fmt in ("xlsx", "docx"):
        run("report", "--plan", "911/KH-UBND", "--period", "2023-Q2", "--as-of", "2023-05-16",
            "--format", fmt, "-o", tmp_path / f"bao-cao.{fmt}")
    out = tmp_path / "pdf"
    # Word and Calc files of one name would overwrite each other's PDF.
    (tmp_path / "bao-cao.docx").rename(tmp_path / "bao-cao-van-ban.docx")
    subprocess.run(["soffice", f"-env:UserInstallation=file://{tmp_path / 'lo-profile'}", "--headless",
                    "--convert-to", "pdf", "--outdir", str(out), str(tmp_path / "bao-cao.xlsx"),
                    str(tmp_path / "bao-cao-van-ban.docx")], check=True, capture_output=True, timeout=240)

    sheets = pdf_pages(out / "bao-cao.pdf")
    # The form (2 pages), then the targets, topics, channels and log sheets (one page each here).
    assert 5 <= len(sheets) <= 8, len(sheets)
    first = flat(sheets[0])
    for words in ("ỦY BAN NHÂN DÂN", "XÃ PHƯỚC HÀ", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM",
                  "Độc lập - Tự do - Hạnh phúc", "/BC-UBND", "Phước Hà, ngày 16 tháng 5 năm 2023", "BÁO CÁO",
                  "Kết quả thông tin, tuyên truyền thực hiện Kế hoạch số 911/KH-UBND kỳ quý II năm 2023"):
        assert words in first, words
    form = flat(" ".join(sheets[:3]))
    assert form.index("1. Tổng hợp theo kênh") < form.index("2. Kết quả so với chỉ tiêu")
    for words in ("Chậm tiến độ", "NGƯỜI LẬP BIỂU", "TM. ỦY BAN NHÂN DÂN", "CHỦ TỊCH", "12.000"):
        assert words in form, words
    # One page wide: every page starts with its table's first column and reaches its last (the heading
    # row repeats on each page), so no page holds only the right-hand columns of a table.
    edges = [("STT", "Đánh giá"), ("Chủ đề", "Đánh giá"), ("Chủ đề", "Bỏ qua"), ("Kênh", "Bỏ qua"),
             ("Số", "Lỗi")]
    for n, page in enumerate(sheets, 1):
        assert any(left in page and right in page for left, right in edges), f"page {n}:\n{page}"
    fonts = subprocess.run(["pdffonts", str(out / "bao-cao.pdf")], capture_output=True, text=True).stdout
    assert "Serif" in fonts or "Times" in fonts, fonts  # Times New Roman, or its metric twin

    document = pdf_pages(out / "bao-cao-van-ban.pdf")
    assert 2 <= len(document) <= 6, len(document)
    text = flat(" ".join(document))
    for words in ("ỦY BAN NHÂN DÂN", "CỘNG HÒA XÃ HỘI CHỦ NGHĨA VIỆT NAM", "Độc lập - Tự do - Hạnh phúc",
                  "kỳ quý II năm 2023", "1. Tổng hợp theo kênh", "2. Kết quả so với chỉ tiêu",
                  "NGƯỜI LẬP BIỂU", "(Ký tên, đóng dấu)"):
        assert words in text, words
    # The pages as a reader sees them, beside the test's files.
    subprocess.run(["pdftoppm", "-r", "60", "-png", str(out / "bao-cao.pdf"), str(tmp_path / "page")],
                   check=True, timeout=60)
    assert len(list(tmp_path.glob("page-*.png"))) == len(sheets)
