"""Text pasted from an office document, previewed and sent as an operator does it: the typographic
punctuation is replaced so the message stays GSM-7, and the preview says what was replaced."""

from __future__ import annotations

import json

from broadcaster.sms.encoding import GSM7, encode_sms

from .test_encoding import WORD_PASTE

SENT = ('Thong bao: "Hop dan" luc 7h30 - nha van hoa thon 3...'
        "\n- Mang theo CCCD - so ho khau; goi 'Ban tu quan'.")


def test_preview_shows_the_replaced_punctuation(sms, run):
    out = run("sms", "preview", WORD_PASTE).output
    assert "GSM-7" in out and "Số tin / segments: 1 " in out
    lines = out.splitlines()
    start = lines.index("  Đã thay để giữ GSM-7 / replaced to keep GSM-7:") + 1
    assert lines[start:start + 10] == [
        "    U+00A0 → ' '  (×1)", '    “ → "  (×1)', '    ” → "  (×1)', "    – → -  (×1)", "    … → ...  (×1)",
        "    • → -  (×1)", "    — → -  (×1)", "    U+200B → ''  (×1)", "    ‘ → '  (×1)", "    ’ → '  (×1)",
    ]
    assert max(len(line) for line in lines[start - 1:start + 10]) <= 80

    data = json.loads(run("sms", "preview", WORD_PASTE, "--json").output)
    assert (data["text"], data["encoding"], data["segments"], data["characters"]) == (SENT, "GSM-7", 1, 103)
    assert {"char": "—", "with": "-", "count": 1} in data["replaced"]
    kept = json.loads(run("sms", "preview", WORD_PASTE, "--keep-diacritics", "--json").output)
    assert kept["encoding"] == "UCS-2" and kept["replaced"] == [] and kept["segments"] == 2


def test_send_puts_the_gsm7_body_on_the_wire(sms, run):
    sms.seed_contacts(2)
    result = run("sms", "send", "--item", sms.add_item(sms_text=WORD_PASTE), "--group", "Thôn 1")
    assert "đã gửi/sent 2" in result.output and "2 tin/segments" in result.output
    bodies = {r["form"]["Body"] for r in sms.fake.requests if r["method"] == "POST"}
    assert bodies == {SENT}
    assert encode_sms(SENT, smart=False).encoding == GSM7  # nothing left for the carrier to widen
    assert {c.segments for c in sms.campaigns()} == {1}
