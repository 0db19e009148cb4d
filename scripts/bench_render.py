#!/usr/bin/env python3
"""Benchmark: render a ~10-minute bulletin of 20 Vietnamese items, cold then warm.

Standalone: creates its own temporary workspace (config, database, cache),
uses the offline TTS chain (espeak-ng only, no network), MP3 output.

* cold: empty render cache - every sentence is synthesised;
* warm: the same items again - every sentence comes from the cache.

Each phase runs in a fresh child process so its peak memory is its own.
Printed per phase: audio seconds, wall seconds, real-time factor (audio
seconds per wall second), the CPU seconds spent (this process and its
ffmpeg/espeak-ng children: steadier than wall time on a busy machine), peak RSS of the Python process (ru_maxrss; the
ffmpeg/espeak-ng children are not counted: Linux charges a forked child the
parent's RSS, so RUSAGE_CHILDREN says nothing useful), and with ``--tracemalloc`` the peak of Python
allocations (slower). Before the cold render the composer's estimate (from
the syllable count) is compared with the real airtime of every item.

Usage::

    .venv/bin/python scripts/bench_render.py [--items 20] [--tracemalloc] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

# Building blocks of realistic commune bulletin items (administrative reform,
# public services, hotlines, dates, money, document numbers). Each item picks
# a different combination, so no two items share a sentence.
OPENINGS = [
    "Thực hiện Kế hoạch số {n}/KH-UBND ngày {d}/{m}/2023 của UBND huyện về công tác CCHC năm 2023",
    "Căn cứ Quyết định số {n}/QĐ-UBND ngày {d}/{m}/2023 của UBND tỉnh về việc công bố danh mục TTHC",
    "Nhằm nâng cao chỉ số hài lòng của người dân {village} đối với sự phục vụ của cơ quan hành chính nhà nước",
    "Thực hiện chương trình chuyển đổi số quốc gia giai đoạn 2021-2025, {village} tổ chức tuyên truyền",
]
BODIES = [
    "Bộ phận một cửa của UBND xã tiếp nhận hồ sơ của bà con {village} từ 7h30 đến 11h30 và từ 13h30 đến "
    "17h00",
    "Người dân có thể nộp hồ sơ trực tuyến trên Cổng dịch vụ công quốc gia mà không cần đến trụ sở, lệ phí "
    "được giảm {p}% so với nộp trực tiếp",
    "Từ ngày {d}/{m}/2023, việc cấp bản sao từ sổ gốc và chứng thực chữ ký được giải quyết trong ngày, lệ phí "
    "{money}.000 đồng mỗi bản",
    "Năm 2023, xã phấn đấu {p}% hồ sơ TTHC được giải quyết đúng hạn và trước hạn, không để xảy ra tình trạng "
    "hồ sơ trễ hẹn",
    "Cán bộ, công chức xã có trách nhiệm hướng dẫn tận tình bà con {village}, không yêu cầu bổ sung giấy tờ "
    "ngoài quy định",
    "Ban công tác mặt trận {village} tuyên truyền đến từng hộ gia đình về việc làm căn cước gắn chíp và tài khoản "
    "định danh điện tử mức độ {level}",
]
CLOSINGS = [
    "Mọi phản ánh, kiến nghị về TTHC xin gọi đường dây nóng 0259 3822 {tail} hoặc gửi về hộp thư góp ý đặt "
    "tại trụ sở UBND xã",
    "Đề nghị bà con {village} quan tâm theo dõi và thực hiện tốt nội dung thông báo trên",
    "Bà con cần hỗ trợ xin liên hệ Tổ công nghệ số cộng đồng ở thôn mình hoặc gọi số 0912 345 {tail}",
]


VILLAGES = ["Phước Thành", "Tà Lọt", "Mỹ Hiệp", "Bà Râu", "Suối Đá", "Láng Me", "Đá Mài", "Ma Lâm",
            "Hòa Thủy", "Gò Đền", "Bầu Ngứ", "Trà Co", "Cầu Đá", "Xóm Bằng", "Hiệp Kiết", "Núi Một",
            "An Hòa", "Tân Sơn", "Phú Thạnh", "Lương Cang"]


def make_items(count: int) -> list[tuple[str, str]]:
    items = []
    for i in range(count):
        values = {"n": 100 + 17 * i, "d": 1 + (3 * i) % 28, "m": 1 + i % 12, "p": 80 + i % 20,
                  "money": 2 + i % 9, "level": 1 + i % 2, "tail": f"{100 + 37 * i:03d}",
                  "village": f"thôn {VILLAGES[i % len(VILLAGES)]}"}
        sentences = [OPENINGS[i % len(OPENINGS)], BODIES[i % len(BODIES)], CLOSINGS[i % len(CLOSINGS)]]
        text = ". ".join(s.format(**values) for s in sentences) + "."
        items.append((f"Tin số {i + 1}: thông tin cải cách hành chính", text))
    return items


def setup_workspace(root: Path, count: int) -> tuple[Path, list[int]]:
    from sqlmodel import Session

    from broadcaster import db
    from broadcaster.app import initialise
    from broadcaster.config import load_config
    from broadcaster.models import ContentItem, ContentText, ItemStatus, Station

    config_path = root / "broadcaster.toml"
    initialise(config_path, data_dir=root / "data")
    text = config_path.read_text(encoding="utf-8")
    text = text.replace('tts = ["gtts", "espeak"]', 'tts = ["espeak"]')
    config_path.write_text(text, encoding="utf-8")
    config = load_config(config_path)
    assert list(config.audio.tts) == ["espeak"], "could not switch the bench to offline TTS"
    engine = db.make_engine(config.database_url)
    ids = []
    with Session(engine) as session:
        session.add(Station(code="XA-01", name="xã Phước Hà", player="file",
                            player_options={"drop_dir": str(root / "drop")}))
        for i, (title, body) in enumerate(make_items(count)):
            item = ContentItem(title=title, channels=["loudspeaker"], status=ItemStatus.APPROVED,
                               priority="emergency" if i == 0 else "normal", repeat=2 if i == 0 else 1)
            session.add(item)
            session.flush()
            session.add(ContentText(item_id=item.id, lang="vi", text=body))
            ids.append(item.id)
        session.commit()
    engine.dispose()
    return config_path, ids


def phase(config_path: Path, ids: list[int], name: str, use_tracemalloc: bool) -> dict:
    """One render in this process; returns the figures as a dict."""
    import tracemalloc

    from sqlmodel import Session, select

    from broadcaster import content, db
    from broadcaster.audio.render import Renderer
    from broadcaster.config import load_config
    from broadcaster.models import Station

    if use_tracemalloc:
        tracemalloc.start()
    config = load_config(config_path)
    renderer = Renderer(config)
    engine = db.make_engine(config.database_url)
    with Session(engine) as session:
        items = [content.get_item(session, i) for i in ids]
        station = session.exec(select(Station)).first()
        estimates = {i.id: renderer.estimate_item(session, i) for i in items}
        job = renderer.prepare(session, items, station)
    engine.dispose()
    def cpu() -> float:
        own = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        return own.ru_utime + own.ru_stime + kids.ru_utime + kids.ru_stime

    t0, c0 = time.perf_counter(), cpu()
    result = renderer.render(job, output=Path(config.output_dir) / f"bench-{name}.mp3")
    wall, cpu_s = time.perf_counter() - t0, cpu() - c0
    figures = {
        "phase": name,
        "audio_s": result.duration_s,
        "wall_s": wall,
        "rtf": result.duration_s / wall,
        "cpu_s": cpu_s,
        "loudness": result.loudness.as_dict(),
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "backends": sorted(set(result.backends.values())),
        "cached_sentences": sum(s.get("cached", False) for p in result.manifest["pieces"] for s in p["sentences"]),
        "sentences": sum(len(p["sentences"]) for p in result.manifest["pieces"]),
        "estimates": {str(k): [v.seconds, v.exact, result.item_seconds[k]] for k, v in estimates.items()},
    }
    if use_tracemalloc:
        figures["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--items", type=int, default=20)
    parser.add_argument("--tracemalloc", action="store_true", help="also measure Python allocation peaks (slower)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workspace")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--workspace", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:  # child process
        spec = json.loads(Path(args.workspace, "bench.json").read_text())
        print(json.dumps(phase(Path(spec["config"]), spec["ids"], args.phase, args.tracemalloc)))
        return

    if not shutil.which("espeak-ng") or not shutil.which("ffmpeg"):
        sys.exit("needs espeak-ng and ffmpeg")
    root = Path(tempfile.mkdtemp(prefix="broadcaster-bench-"))
    try:
        config_path, ids = setup_workspace(root, args.items)
        Path(root, "bench.json").write_text(json.dumps({"config": str(config_path), "ids": ids}))
        env = dict(os.environ, BROADCASTER_CONFIG=str(config_path))
        results = []
        for name in ("cold", "warm"):
            cmd = [sys.executable, __file__, "--phase", name, "--workspace", str(root)]
            if args.tracemalloc:
                cmd.append("--tracemalloc")
            done = subprocess.run(cmd, capture_output=True, text=True, env=env, check=False)
            if done.returncode != 0:
                sys.exit(f"{name} phase failed:\n{done.stderr[-3000:]}")
            results.append(json.loads(done.stdout.strip().splitlines()[-1]))

        print(f"bulletin: {args.items} items (item 1 emergency, read twice), espeak-ng, mp3 "
              f"{results[0]['audio_s'] / 60:.1f} min; python {sys.version.split()[0]}, {os.cpu_count()} CPUs")
        for r in results:
            line = (f"{r['phase']:>4}: audio {r['audio_s']:7.1f} s  wall {r['wall_s']:6.1f} s  "
                    f"RTF {r['rtf']:5.1f}x  CPU {r['cpu_s']:5.1f} s (audio/CPU {r['audio_s'] / r['cpu_s']:4.1f}x)  peak RSS {r['maxrss_mb']:.0f} MB  cached {r['cached_sentences']}/{r['sentences']} sentences  "
                    f"{r['loudness']['integrated_lufs']} LUFS / {r['loudness']['true_peak_dbtp']} dBTP")
            if "tracemalloc_peak_mb" in r:
                line += f"  tracemalloc peak {r['tracemalloc_peak_mb']:.0f} MB"
            print(line)
        cold = results[0]["estimates"]
        errors = [(est - real) / real for est, exact, real in cold.values() if not exact]
        if errors:
            mean_abs = sum(abs(e) for e in errors) / len(errors)
            print(f"estimate before synthesis (syllable rate): mean |error| {mean_abs:.1%}, "
                  f"range {min(errors):+.1%} .. {max(errors):+.1%} over {len(errors)} items")
        warm = results[1]["estimates"]
        exact = [abs(est - real) for est, ok, real in warm.values() if ok]
        print(f"estimate from the cache: {len(exact)}/{len(warm)} items exact, max |error| "
              f"{max(exact) if exact else float('nan'):.3f} s")
        if args.keep:
            print(f"workspace kept: {root}")
    finally:
        if not args.keep:
            shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
