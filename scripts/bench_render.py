#!/usr/bin/env python3
"""Benchmark: render bulletins of about 1, 5, 10 and 30 minutes, cold and warm, beside their floors.

Standalone: creates its own temporary workspace per size (config, database, cache), uses the
offline TTS chain (espeak-ng only, no network), MP3 output. The 10-minute bulletin is the
20-item one the performance targets speak of.

* cold: empty render cache - every sentence is synthesised and mastered;
* warm: the same items again - every sentence comes from the cache;
* floor, measured here on the same material: espeak-ng alone speaking the bulletin's whole
  (normalised) text in one run, and ffmpeg alone reading the bulletin's own samples (the warm
  output decoded once, untimed, to a WAV: the clips, silences and repeats, same length) and
  encoding them once at the project's MP3 settings. The ratios say how far a render is from them.

Every render runs in a fresh child process so its peak memory is its own; each figure is the
median of ``--runs`` runs (a cold run starts from an emptied cache). Printed per size: audio
seconds, wall seconds, real-time factor (audio seconds per wall second), CPU seconds (the
process and its ffmpeg/espeak-ng children: steadier than wall time on a busy machine), peak
RSS of the Python process (ru_maxrss; children not counted: Linux charges a forked child the
parent's RSS), and the output's loudness and true peak measured by a separate ffmpeg
``ebur128`` run. The machine's load is printed before each size. Before the cold render the
composer's estimate (from the syllable count) is compared with the real airtime of each item.
With the 10-minute size, an emergency announcement is rendered the way the daemon airs one
(``Renderer(local_only=True)``, ``check=False``) and its ffmpeg processes are counted.

Usage::

    .venv/bin/python scripts/bench_render.py [--minutes 1 5 10 30] [--runs 3] [--tracemalloc] [--keep]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import resource
import shutil
import statistics
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


ANNOUNCEMENT = ("Thông báo khẩn của Ủy ban nhân dân xã. Mưa lớn kéo dài, nước suối Tà Lọt dâng cao. "
                "Bà con không qua suối, di chuyển người già và trẻ em lên nhà văn hóa thôn. "
                "Mọi trường hợp cần hỗ trợ gọi ngay số 0259 3822 {run:03d}.")


def announce_phase(config_path: Path, run: int) -> dict:
    """An emergency announcement, as ``broadcaster announce`` airs it: new text (cold), read twice,
    rendered as the daemon renders one (local voices only, check=False). Counts the ffmpeg processes
    and times the render module's import."""
    started = time.perf_counter()
    from broadcaster.audio.render import BulletinJob, ItemSnapshot, Renderer
    imported = time.perf_counter() - started

    from broadcaster.config import load_config

    ffmpeg_runs = 0
    real_popen = subprocess.Popen

    class CountingPopen(real_popen):
        def __init__(self, args, *rest, **kwargs):
            nonlocal ffmpeg_runs
            ffmpeg_runs += os.path.basename(str(args[0])) == "ffmpeg"
            super().__init__(args, *rest, **kwargs)

    subprocess.Popen = CountingPopen
    config = load_config(config_path)
    t0 = time.perf_counter()
    renderer = Renderer(config, local_only=True)
    item = ItemSnapshot(id=1, title="Thông báo khẩn", priority="emergency", repeat=2, topic_code=None,
                        topic_title=None, texts=(("vi", ANNOUNCEMENT.format(run=run), None),))
    job = BulletinJob(items=[item], station_code="XA-01", station_name="xã Phước Hà", timezone="Asia/Ho_Chi_Minh")
    result = renderer.render(job, output=Path(config.output_dir) / f"announce-{run}.mp3", check=False)
    return {"phase": "announce", "import_s": imported, "wall_s": time.perf_counter() - t0,
            "audio_s": result.duration_s, "ffmpeg_runs": ffmpeg_runs, "path": str(result.path),
            "cached_sentences": sum(s.get("cached", False) for p in result.manifest["pieces"] for s in p["sentences"])}


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
    result = renderer.render(job, output=Path(config.output_dir) / f"bench-{name}-{os.getpid()}.mp3")
    wall, cpu_s = time.perf_counter() - t0, cpu() - c0
    figures = {
        "phase": name,
        "audio_s": result.duration_s,
        "wall_s": wall,
        "rtf": result.duration_s / wall,
        "cpu_s": cpu_s,
        "loudness": result.loudness.as_dict(),
        "maxrss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "path": str(result.path),
        "backends": sorted(set(result.backends.values())),
        "cached_sentences": sum(s.get("cached", False) for p in result.manifest["pieces"] for s in p["sentences"]),
        "sentences": sum(len(p["sentences"]) for p in result.manifest["pieces"]),
        "estimates": {str(k): [v.seconds, v.exact, result.item_seconds[k]] for k, v in estimates.items()},
    }
    if use_tracemalloc:
        figures["tracemalloc_peak_mb"] = tracemalloc.get_traced_memory()[1] / 1e6
        tracemalloc.stop()
    return figures


# Items per bulletin size (minutes): about 32 s of speech an item.
ITEMS_FOR_MINUTES = {1: 2, 5: 9, 10: 20, 30: 56}
TARGETS = "targets (10 min): warm >= 200x, cold >= 60x, -16 +/- 0.5 LUFS, <= -1 dBTP, peak RSS <= 120 MB"


def run_phase(root: Path, name: str, tracemalloc: bool) -> dict:
    cmd = [sys.executable, __file__, "--phase", name, "--workspace", str(root)]
    if tracemalloc:
        cmd.append("--tracemalloc")
    done = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        sys.exit(f"{name} phase failed:\n{done.stderr[-3000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def ebur128(path: Path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) by a separate ffmpeg run, independent of the project's meter."""
    err = subprocess.run(["ffmpeg", "-hide_banner", "-nostats", "-i", str(path), "-filter_complex",
                          "ebur128=peak=true", "-f", "null", "-"], capture_output=True, text=True, check=True).stderr
    summary = err[err.rfind("Summary:"):]
    integrated = float(re.search(r"I:\s*(-?[\d.]+) LUFS", summary).group(1))
    peak = float(re.search(r"Peak:\s*(-?[\d.]+|-inf) dBFS", summary).group(1))
    return integrated, peak


def timed(cmd: list[str], **kwargs) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, **kwargs)
    return time.perf_counter() - start


def espeak_floor(config_path: Path, ids: list[int], work: Path) -> float:
    """Seconds espeak-ng alone takes to speak the bulletin's sentences (one run, the render's voice)."""
    from sqlmodel import Session

    from broadcaster import content, db
    from broadcaster.audio.render import Renderer
    from broadcaster.config import load_config

    config = load_config(config_path)
    renderer = Renderer(config)
    engine = db.make_engine(config.database_url)
    with Session(engine) as session:
        texts = [content.item_texts(session, content.get_item(session, i))["vi"].text for i in ids]
    engine.dispose()
    sentences = [s for text in [renderer.ident_text("xã Phước Hà") or "", *texts] for s in renderer.normalize(text)]
    text_file = work / "floor.txt"
    text_file.write_text("\n".join(sentences) + "\n", encoding="utf-8")
    espeak = renderer.chain.synthesizers[0]
    return timed(["espeak-ng", "-b", "1", "-v", espeak.voice, "-s", str(espeak.speed), "-p", str(espeak.pitch),
                  "-w", str(work / "floor.wav"), "-f", str(text_file)])


def encode_floor(bulletin: Path, work: Path, bitrate: str) -> float:
    """Seconds ffmpeg alone takes to read the bulletin's own samples and encode them once."""
    from broadcaster.audio.assemble import MP3_ENCODER_ARGS

    samples = work / "floor-input.wav"
    if not samples.exists():  # untimed: the warm output decoded once (its encoder delay trimmed)
        subprocess.run(["ffmpeg", "-y", "-hide_banner", "-loglevel", "error", "-i", str(bulletin),
                        "-c:a", "pcm_s16le", str(samples)], check=True)
    return timed(["ffmpeg", "-y", "-hide_banner", "-loglevel", "error", "-i", str(samples),
                  *MP3_ENCODER_ARGS, "-b:a", bitrate, str(work / "floor.mp3")])


def bench_size(minutes: int, runs: int, use_tracemalloc: bool, keep: bool) -> None:
    count = ITEMS_FOR_MINUTES.get(minutes, max(1, round(minutes * 2)))
    root = Path(tempfile.mkdtemp(prefix=f"broadcaster-bench-{minutes}min-"))
    try:
        config_path, ids = setup_workspace(root, count)
        Path(root, "bench.json").write_text(json.dumps({"config": str(config_path), "ids": ids}))
        from broadcaster.config import load_config

        config = load_config(config_path)
        load = os.getloadavg()
        colds, warms = [], []
        for _ in range(runs):
            shutil.rmtree(config.cache_dir, ignore_errors=True)
            colds.append(run_phase(root, "cold", use_tracemalloc))
        for _ in range(runs):
            warms.append(run_phase(root, "warm", use_tracemalloc))
        floor_speak = statistics.median(espeak_floor(config_path, ids, root) for _ in range(runs))
        floor_encode = statistics.median(encode_floor(Path(warms[-1]["path"]), root, str(config.audio.bitrate))
                                         for _ in range(runs))
        audio_s = warms[-1]["audio_s"]
        print(f"\n{minutes:>2} min bulletin: {count} items, {audio_s:.1f} s of audio; load before "
              f"{load[0]:.2f} {load[1]:.2f} {load[2]:.2f}, after {os.getloadavg()[0]:.2f}; medians of {runs} runs")
        for name, results, floor, floor_name in (("cold", colds, floor_speak, "espeak-ng alone"),
                                                 ("warm", warms, floor_encode, "one encode, same audio")):
            wall = statistics.median(r["wall_s"] for r in results)
            cpu = statistics.median(r["cpu_s"] for r in results)
            rss = max(r["maxrss_mb"] for r in results)
            integrated, peak = ebur128(Path(results[-1]["path"]))
            line = (f"  {name}: wall {wall:6.2f} s  RTF {audio_s / wall:6.1f}x  CPU {cpu:5.2f} s  "
                    f"peak RSS {rss:4.0f} MB  ffmpeg ebur128 {integrated:+.1f} LUFS {peak:+.1f} dBTP  "
                    f"cached {results[-1]['cached_sentences']}/{results[-1]['sentences']}")
            if "tracemalloc_peak_mb" in results[-1]:
                line += f"  tracemalloc peak {results[-1]['tracemalloc_peak_mb']:.0f} MB"
            print(line)
            print(f"        floor ({floor_name}) {floor:6.2f} s = {audio_s / floor:6.1f}x;  "
                  f"{name} / floor = {wall / floor:4.2f}")
        estimates = colds[-1]["estimates"]
        errors = [(est - real) / real for est, exact, real in estimates.values() if not exact]
        if errors:
            print(f"  estimate before synthesis (syllable rate): mean |error| "
                  f"{sum(abs(e) for e in errors) / len(errors):.1%}, range {min(errors):+.1%} .. "
                  f"{max(errors):+.1%} over {len(errors)} items")
        exact = [abs(est - real) for est, ok, real in warms[-1]["estimates"].values() if ok]
        print(f"  estimate from the cache: {len(exact)}/{len(ids)} items exact, max |error| "
              f"{max(exact) if exact else float('nan'):.3f} s")
        if minutes == 10:
            announces = [run_phase(root, f"announce-{n}", False) for n in range(runs)]
            integrated, peak = ebur128(Path(announces[-1]["path"]))
            print(f"  announcement ({announces[-1]['audio_s']:.0f} s clip, new text, read twice, local voices, "
                  f"check=False): "
                  f"render {statistics.median(a['wall_s'] for a in announces):.2f} s, import of the renderer "
                  f"{statistics.median(a['import_s'] for a in announces):.2f} s, ffmpeg runs "
                  f"{max(a['ffmpeg_runs'] for a in announces)}, ffmpeg ebur128 {integrated:+.1f} LUFS {peak:+.1f} dBTP")
        if keep:
            print(f"  workspace kept: {root}")
    finally:
        if not keep:
            shutil.rmtree(root, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=int, nargs="+", default=[1, 5, 10, 30])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--tracemalloc", action="store_true", help="also measure Python allocation peaks (slower)")
    parser.add_argument("--keep", action="store_true", help="keep the temporary workspaces")
    parser.add_argument("--phase", help=argparse.SUPPRESS)
    parser.add_argument("--workspace", help=argparse.SUPPRESS)
    args = parser.parse_args()

    if args.phase:  # child process
        spec = json.loads(Path(args.workspace, "bench.json").read_text())
        if args.phase.startswith("announce"):
            print(json.dumps(announce_phase(Path(spec["config"]), int(args.phase.split("-")[1]))))
        else:
            print(json.dumps(phase(Path(spec["config"]), spec["ids"], args.phase, args.tracemalloc)))
        return

    if not shutil.which("espeak-ng") or not shutil.which("ffmpeg"):
        sys.exit("needs espeak-ng and ffmpeg")
    print(f"espeak-ng, mp3; python {sys.version.split()[0]}, {os.cpu_count()} CPUs; {TARGETS}")
    for minutes in args.minutes:
        bench_size(minutes, args.runs, args.tracemalloc, args.keep)


if __name__ == "__main__":
    main()
