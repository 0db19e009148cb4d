from __future__ import annotations

import json
import shutil
import subprocess
import unicodedata
from datetime import UTC, datetime
from pathlib import Path

import pytest
from sqlmodel import select

from broadcaster import content
from broadcaster.models import ContentItem, ContentText
from tests.conftest import db_snapshot
from tests.core.test_plans import PLAN

pytestmark = pytest.mark.skipif(shutil.which("ffprobe") is None, reason="ffprobe needed")


def write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def make_wav(path: Path, seconds: float = 1.0) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    if shutil.which("sox"):
        subprocess.run(["sox", "-n", "-r", "22050", "-c", "1", str(path), "synth", str(seconds), "sine", "440"],
                       check=True)
    else:
        subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", f"sine=frequency=440:duration={seconds}",
                        str(path)], check=True)
    return path


@pytest.fixture
def planned(run, workspace):
    run("plan", "import", write(workspace, "plan.toml", PLAN))
    return workspace


def add(run, *args, ok: bool = True):
    return run("content", "add", "--title", "Dịch vụ công trực tuyến", "--topic", "TTHC", *args, ok=ok)


def item_id(result) -> int:
    return int(result.output.strip().splitlines()[0])


def show(run, ident: int) -> dict:
    return json.loads(run("content", "show", ident, "--json").output)


def test_add_text_item(run, planned, app):
    decomposed = unicodedata.normalize("NFD", "  Từ ngày 1/7, bà con nộp hồ sơ trực tuyến.  ")
    result = add(run, "--text", decomposed, "--valid-from", "2023-07-01", "--valid-until", "2023-07-31 17:30")
    ident = item_id(result)
    data = show(run, ident)
    assert data["status"] == "draft" and data["channels"] == ["loudspeaker", "sms"] and data["repeat"] == 1
    assert data["plan"] == "911/KH-UBND" and data["topic"] == "TTHC"
    assert data["texts"]["vi"]["text"] == unicodedata.normalize("NFC", decomposed.strip())
    assert data["valid_from"] == "2023-07-01 00:00" and data["valid_until"] == "2023-07-31 17:30"
    assert data["sms_body"] == data["texts"]["vi"]["text"]
    with app.session() as session:
        item = content.get_item(session, ident)
        assert item.valid_from == datetime(2023, 6, 30, 17, 0, tzinfo=UTC)  # 00:00 at UTC+7
        assert content.spoken_text(session, item) == data["texts"]["vi"]["text"]
        assert content.spoken_text(session, item, "th") is None
        assert content.sms_body(session, item) == data["texts"]["vi"]["text"]
        assert content.effective_repeat(item) == 1


def test_add_emergency_approved_with_sms_text(run, planned, app):
    ident = item_id(add(run, "--text", "Bão số 3 sắp đổ bộ", "--priority", "emergency", "--approve",
                        "--sms-text", "Bao so 3: tranh tru an toan", "--topic", "911/KH-UBND:CDS"))
    data = show(run, ident)
    assert data["status"] == "approved" and data["repeat"] == 2 and data["topic"] == "CDS"
    assert data["sms_body"] == "Bao so 3: tranh tru an toan"
    assert item_id(add(run, "--text", "x", "--priority", "emergency", "--repeat", "3")) == ident + 1
    assert show(run, ident + 1)["repeat"] == 3


def test_add_with_audio_copies_the_recording(run, planned, app):
    wav = make_wav(planned / "rec" / "thai.wav")
    ident = item_id(add(run, "--text", "Xin chào bà con", "--audio", wav, "--audio-lang", "th"))
    data = show(run, ident)
    stored = Path(data["texts"]["th"]["audio_path"])
    assert stored == app.config.recordings_dir / f"{ident}_th.wav"
    assert stored.read_bytes() == wav.read_bytes()
    assert data["texts"]["th"]["text"] is None and data["texts"]["th"]["audio_seconds"] == 1.0
    assert data["recordings"] == ["th"] and data["languages"] == ["vi", "th"]
    wav.unlink()  # the item keeps its own copy
    assert show(run, ident)["texts"]["th"]["audio_seconds"] == 1.0


def test_audio_only_item_on_the_loudspeaker(run, planned, app):
    wav = make_wav(planned / "vi.wav")
    ident = item_id(add(run, "--audio", wav, "--channel", "loudspeaker"))
    with app.session() as session:
        item = content.get_item(session, ident)
        assert item.channels == ["loudspeaker"]
        texts = content.item_texts(session, item)
        assert list(texts) == ["vi"] and texts["vi"].text is None and texts["vi"].audio_path


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--text", "x", "--audio", "missing.wav"], "missing.wav"),
        (["--text", "x", "--topic", "NOPE"], "NOPE"),
        (["--text", "   "], "--text"),
        (["--text", "x", "--valid-from", "2023-13-01"], "--valid-from"),
        (["--text", "x", "--valid-until", "ngày mai"], "--valid-until"),
        (["--text", "x", "--valid-from", "2023-07-02", "--valid-until", "2023-07-01"], "valid_until"),
        ([], "text"),
        (["--text", "x", "--repeat", "0"], "--repeat"),
        (["--text", "x", "--lang", "Tiếng Thái"], "--lang"),
        (["--text", "x", "--text-file", "t.txt"], "--text-file"),
        (["--text-file", "nope.txt"], "nope.txt"),
        (["--text", "x", "--lang", "th"], "sms"),
    ],
)
def test_bad_add_is_one_line_and_changes_nothing(run, planned, app, args, expected):
    before = db_snapshot(app)
    result = add(run, *args, ok=False)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert expected in lines[0]
    assert db_snapshot(app) == before
    assert not list(app.config.recordings_dir.iterdir())


def test_unreadable_audio_is_refused(run, planned, app):
    fake = write(planned, "not-audio.wav", "this is text, not sound\n")
    before = db_snapshot(app)
    result = add(run, "--text", "x", "--audio", fake, ok=False)
    assert "not-audio.wav" in result.output and "audio" in result.output
    assert len(result.output.strip().splitlines()) == 1
    assert db_snapshot(app) == before


def test_failed_transaction_leaves_no_recording(planned, app, monkeypatch):
    wav = make_wav(planned / "th.wav")
    spec = content.spec_from_options({"title": "t", "topic": "TTHC", "text": "x", "audio": {"th": str(wav)}},
                                     "Asia/Ho_Chi_Minh")
    before = db_snapshot(app)
    with pytest.raises(RuntimeError):
        with content.StagedFiles() as staged, app.session() as session:
            content.add_item(session, spec, recordings_dir=app.config.recordings_dir, staged=staged)
            assert list(app.config.recordings_dir.iterdir())  # copied after the flush…
            raise RuntimeError("commit fails")
    assert not list(app.config.recordings_dir.iterdir())  # …and removed with the rollback
    assert db_snapshot(app) == before


TOML = """\
[[items]]
title = "Một cửa liên thông"
topic = "TTHC"
text = "Bộ phận một cửa làm việc cả sáng thứ Bảy."
texts = { th = "Bản dịch tiếng Thái" }
audio = { th = "rec/th.wav" }
channels = ["loudspeaker"]
valid_from = 2023-07-01
valid_until = "2023-07-31"
status = "approved"

[[items]]
title = "Cổng dịch vụ công"
topic = "CDS"
text = "Nộp hồ sơ trực tuyến tại dichvucong.gov.vn"
priority = "emergency"
sms_text = "Nop ho so truc tuyen: dichvucong.gov.vn"
"""


def test_import_toml(run, planned, app):
    make_wav(planned / "content" / "rec" / "th.wav")
    path = write(planned, "content/items.toml", TOML)
    out = run("content", "import", path).output
    assert "2 tin/items" in out and "1 nháp/draft" in out
    items = json.loads(run("content", "list", "--json").output)
    assert [(i["title"], i["status"], i["topic"]) for i in items] == [
        ("Một cửa liên thông", "approved", "TTHC"), ("Cổng dịch vụ công", "draft", "CDS")]
    first = show(run, items[0]["id"])
    assert first["texts"]["th"]["text"] == "Bản dịch tiếng Thái"
    assert Path(first["texts"]["th"]["audio_path"]).name == f"{items[0]['id']}_th.wav"
    assert first["valid_until"] == "2023-07-31 23:59"
    second = show(run, items[1]["id"])
    assert second["repeat"] == 2 and second["channels"] == ["loudspeaker", "sms"]
    assert json.loads(run("content", "list", "--channel", "sms", "--json").output)[0]["id"] == items[1]["id"]


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (lambda s: s.replace('topic = "CDS"', 'topic = "NOPE"'), "items[2].topic"),
        (lambda s: s.replace('rec/th.wav', 'rec/missing.wav'), "items[1].audio.th"),
        (lambda s: s.replace('priority = "emergency"', 'priority = "urgent"'), "items[2].priority"),
        (lambda s: s.replace('valid_until = "2023-07-31"', 'valid_until = "2023-06-01"'), "items[1]"),
        (lambda s: s.replace('text = "Nộp', 'txt = "Nộp'), "items[2].txt"),
        (lambda s: s.replace('status = "approved"', 'status = "approved'), "TOML"),
        (lambda s: s.replace('text = "Bộ phận một cửa làm việc cả sáng thứ Bảy."', 'text = "  "'), "items[1].text"),
    ],
)
def test_bad_toml_import_names_the_item_and_writes_nothing(run, planned, app, mutation, expected):
    make_wav(planned / "content" / "rec" / "th.wav")
    path = write(planned, "content/items.toml", mutation(TOML))
    before = db_snapshot(app)
    result = run("content", "import", path, ok=False)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert str(path) in lines[0] and expected in lines[0]
    assert db_snapshot(app) == before
    assert not list(app.config.recordings_dir.iterdir())


CSV = """\
title,topic,text,channels,priority,repeat,valid_from,valid_until,status,sms_text
Giờ làm việc,TTHC,"Bộ phận một cửa làm việc từ 7h30, cả sáng thứ Bảy.",loudspeaker;sms,normal,,2023-07-01,2023-07-31,approved,
Đường dây nóng,CDS,Gọi 0259 3822 000 để phản ánh.,loudspeaker,khẩn cấp,3,1/7/2023 06:00,,,
"""


def test_import_csv_with_bom(run, planned, app):
    path = planned / "items.csv"
    path.write_bytes(CSV.encode("utf-8-sig"))
    run("content", "import", path)
    items = json.loads(run("content", "list", "--json").output)
    assert [i["title"] for i in items] == ["Giờ làm việc", "Đường dây nóng"]
    assert items[0]["status"] == "approved" and items[0]["channels"] == ["loudspeaker", "sms"]
    assert items[1]["priority"] == "emergency" and items[1]["repeat"] == 3
    assert items[1]["valid_from"] == "2023-07-01 06:00" and items[1]["status"] == "draft"
    assert show(run, items[0]["id"])["texts"]["vi"]["text"].startswith("Bộ phận một cửa làm việc từ 7h30,")


@pytest.mark.parametrize(
    ("mutation", "expected"),
    [
        (lambda s: s.replace(",CDS,", ",NOPE,"), ":3 [topic]"),
        (lambda s: s.replace(",3,1/7/2023", ",ba,1/7/2023"), ":3 [repeat]"),
        (lambda s: s.replace("2023-07-31", "2023-31-07"), ":2 [valid_until]"),
        (lambda s: s.replace("loudspeaker;sms", "loa;fax"), ":2 [channels"),
        (lambda s: s.replace("sms_text\n", "sms_txt\n"), ":1"),
        (lambda s: s.replace("Giờ làm việc,TTHC", ",TTHC"), ":2 [title]"),
    ],
)
def test_bad_csv_import_names_the_line_and_writes_nothing(run, planned, app, mutation, expected):
    path = write(planned, "items.csv", mutation(CSV))
    before = db_snapshot(app)
    result = run("content", "import", path, ok=False)
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert f"{path}{expected}" in lines[0]
    assert db_snapshot(app) == before


def test_approve_and_retire(run, planned, app):
    ident = item_id(add(run, "--text", "x"))
    assert json.loads(run("content", "list", "--status", "approved", "--json").output) == []
    assert "approved" in run("content", "approve", ident).output
    assert "already approved" in run("content", "approve", ident).output
    assert [i["id"] for i in json.loads(run("content", "list", "--status", "approved", "--json").output)] == [ident]
    assert "retired" in run("content", "retire", ident).output
    assert json.loads(run("content", "list", "--status", "approved", "--json").output) == []
    assert json.loads(run("content", "list", "--json").output) == []
    assert [i["id"] for i in json.loads(run("content", "list", "--status", "retired", "--json").output)] == [ident]
    result = run("content", "approve", 999, ok=False)
    assert "999" in result.output and len(result.output.strip().splitlines()) == 1


def test_list_filters_and_table(run, planned):
    add(run, "--text", "một")
    run("content", "add", "--title", "Chuyển đổi số", "--topic", "CDS", "--text", "hai", "--channel", "sms")
    by_topic = json.loads(run("content", "list", "--topic", "CDS", "--json").output)
    assert [i["title"] for i in by_topic] == ["Chuyển đổi số"]
    assert [i["title"] for i in json.loads(run("content", "list", "--channel", "loudspeaker", "--json").output)] \
        == ["Dịch vụ công trực tuyến"]
    table = run("content", "list").output
    assert "Chuyển đổi số" in table and "Dịch vụ công trực tuyến" in table
    text = run("content", "show", 1).output
    assert "một" in text and "TTHC" in text


def test_text_file_and_rows(run, planned, app):
    path = planned / "tin.txt"
    path.write_bytes("\ufeffNội dung từ tệp\n".encode())
    ident = item_id(add(run, "--text-file", path))
    with app.session() as session:
        rows = session.exec(select(ContentText).where(ContentText.item_id == ident)).all()
        assert [(r.lang, r.text) for r in rows] == [("vi", "Nội dung từ tệp")]
        assert session.get(ContentItem, ident).status == "draft"


def test_example_content_imports_and_only_emergency_items_may_lack_a_topic(run, workspace, app):
    from tests.conftest import EXAMPLES, db_snapshot

    run("plan", "import", EXAMPLES / "plans" / "ninh-thuan-2023.toml")
    assert "13" in run("content", "import", EXAMPLES / "content" / "ninh-thuan-2023.toml").output
    items = json.loads(run("content", "list", "--json").output)
    assert [i for i in items if i["priority"] == "emergency" and i["topic"] is None]
    bad = workspace / "no-topic.toml"
    bad.write_text('[[items]]\ntitle = "x"\ntext = "Thông báo."\n', encoding="utf-8")
    before = db_snapshot(app)
    result = run("content", "import", bad, ok=False)
    assert "items[1]" in result.output and "topic" in result.output
    assert db_snapshot(app) == before


def _silent_wav(path: Path, seconds: float) -> Path:
    subprocess.run(["ffmpeg", "-v", "error", "-y", "-f", "lavfi", "-i", "anullsrc=r=22050:cl=mono",
                    "-t", str(seconds), str(path)], check=True)
    return path


@pytest.mark.parametrize("problem", ["silent", "truncated", "too short"])
def test_silent_truncated_or_too_short_recordings_are_refused(run, planned, app, problem):
    path = planned / "rec.wav"
    if problem == "silent":
        _silent_wav(path, 2.0)
    elif problem == "truncated":
        make_wav(path, 4.0)
        data = path.read_bytes()
        path.write_bytes(data[: len(data) // 2])  # the header still says 4 s
    else:
        make_wav(path, 0.2)
    before = db_snapshot(app)
    result = add(run, "--text", "x", "--audio", path, ok=False)
    (line,) = result.output.strip().splitlines()
    assert "rec.wav" in line and "audio" in line and {"silent": "silent", "truncated": "truncated",
                                                       "too short": "too short"}[problem] in line
    assert db_snapshot(app) == before
