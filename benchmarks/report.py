"""Run the benchmarks and write BENCHMARKS.md: one table per case, every
time as a ratio to coreseg's in the same run.

    python benchmarks/report.py            # runs pytest-benchmark, writes BENCHMARKS.md
    python benchmarks/report.py RESULT.json  # formats an earlier --benchmark-json
    python benchmarks/report.py RESULT.json --print  # ... on stdout, BENCHMARKS.md left as it is
"""

from __future__ import annotations

import json
import platform
import subprocess
import sys
import tempfile
from collections import defaultdict
from pathlib import Path

HERE = Path(__file__).resolve().parent
NAMES = {
    "coreseg": "coreseg",
    "coreseg_outline": "coreseg, with outline",
    "reference": "coreseg.reference (numpy)",
    "opencv": "OpenCV pipeline",
    "opencv_area": "OpenCV INTER_AREA + cvtColor",
    "pillow": "Pillow pipeline",
    "pillow_bilinear": "Pillow resize(BILINEAR)",
    "opencv_nearest_exact": "OpenCV resize(INTER_NEAREST_EXACT)",
    "pillow_nearest": "Pillow resize(NEAREST)",
    "numpy": "numpy idiom",
    "torch": "torch interpolate(bilinear) + argmax",
    "numpy_bincount": "numpy: np.bincount(gt * C + pred)",
    "opencv_mask_to_boundary": "OpenCV: boundary-iou-api's mask_to_boundary per class (+ cv2.dilate for F)",
    "memcpy_floor": "memcpy of the same bytes (floor)",
    "coreseg_one_thread": "coreseg, one thread",
    "memcpy_two_threads": "memcpy on two threads (floor)",
    "coreseg_reduced": "coreseg.read_image(min_size=(448, 448))",
    "pillow_decode": "Pillow open + load (the bare decode)",
    "pillow_asarray": "Pillow: np.asarray(Image.open(f).convert('RGB'))",
    "opencv_imread": "OpenCV: imread + cvtColor(BGR2RGB)",
    "coreseg_cli": "coreseg segment (the CLI)",
    "floor_process": "floor: Pillow decode + predict + Pillow JPEG encode",
    "sequential": "sequential loop: predict + overlay per frame",
    "stream": "stream (2 frames in flight per stage)",
    "stream_workers1": "stream(workers=1) (stages overlap only)",
    "stream_ema": "stream, smoothing='ema'",
    "stream_hysteresis": "stream, smoothing='hysteresis'",
    "ema": "EMA smoother (with its scene-cut thumbnail)",
    "hysteresis": "Hysteresis smoother (with its scene-cut thumbnail)",
    "raw_inference": "raw inference: session.run on an input made once (floor)",
    "eval_jobs1": "coreseg eval --jobs 1 (one process)",
    "eval_jobs1_one_core": "coreseg eval --jobs 1, pinned to one core",
    "eval_jobs2": "coreseg eval --jobs 2 (two worker processes)",
    "eval_ray": "coreseg eval --ray auto (Ray Data, local 2-CPU cluster)",
    "eval_default": "coreseg eval, default (every core; worst/ drawn)",
    "eval_default_worst0": "coreseg eval --worst 0, default (every core)",
    "segment_default": "coreseg segment, default (every core)",
    "segment_jobs1": "coreseg segment --jobs 1 (one process)",
    "segment_jobs2": "coreseg segment --jobs 2 (two worker processes)",
    "opencv_fast": "OpenCV fast guided filter (cv2.boxFilter on a reduction)",
    "coreseg_colour_background": "coreseg, a colour background",
    "coreseg_in_place": "coreseg, in place",
    "coreseg_random_alpha": "coreseg, random alpha (no run of 0 or 255)",
    "coreseg_max_of_three": "coreseg, max of three planes",
    "numpy_where": "numpy: np.where(mask, fg, bg) (a hard edge)",
    "opencv_stack_blur": "OpenCV stackBlur (same variance)",
    "three_streams_two_threads": "np.maximum(fg, bg) on two threads: the same bytes (floor)",
    "hand_written_loop": "by hand: predict + full_labels + cv2.GaussianBlur 55x55 + np.where",
    "predict": "predict alone (floor)",
    "predict_plus_memcpy": "predict + memcpy of the frame (floor)",
}


def _label(name: str) -> str:
    base = name.split("[")[0].removeprefix("test_")
    if base == "frame_time_spread":  # [model-options]
        options = name.split("[")[1].rstrip("]").split("-")[-1]
        return {"coreseg": "coreseg's session options", "ort_defaults": "ONNX Runtime's default session options"}[
            options] + " (spread: 10th to 90th percentile of rounds, over the median)"
    if base in ("frame_loop", "smoothing_cost"):  # test_frame_loop[model-source-loop]: the loop names the row
        base = name.split("[")[1].rstrip("]").split("-")[-1]
    if base == "background_blur_frame":  # test_background_blur_frame[size-loop]
        base = name.split("[")[1].rstrip("]").split("-")[-1]
    for prefix in ("render_mask_", "colorize_", "resize_labels_", "decode_", "confusion_", "upsample_",
                   "full_labels_", "1080_"):
        base = base.removeprefix(prefix)
    return NAMES.get(base, base)


def _row_label(b: dict) -> str:
    """A row's name: an older revision's row carries it in its params
    (test_bench_cores: "coreseg at REV, --jobs 1"), the others in the test's name."""
    return (b.get("params") or {}).get("baseline_row") or _label(b["name"])


def _cores_base(group: str, names) -> str | None:
    """The row test_bench_cores' tables compare with: the older revision's
    --jobs 1 when it ran, else today's --jobs 1."""
    older = [n for n in names if n.startswith("coreseg at ") and n.endswith(", --jobs 1")]
    today = NAMES["segment_jobs1"] if "coreseg segment" in group else NAMES["eval_jobs1"]
    return older[0] if older else today if today in names else None


def _cores_against(base: str | None) -> str:
    """"vs ..." of test_bench_cores' tables: '083b6ed --jobs 1' or '--jobs 1'."""
    if base and base.startswith("coreseg at "):
        return base.removeprefix("coreseg at ").replace(", ", " ")
    return "--jobs 1"


def once_started_tables(data: dict) -> dict[str, list[str]]:
    """test_bench_cores' 40- and 2-image runs of one command, subtracted: per
    image once started, wall = (wall40 - wall2) / (40 - 2), CPU likewise, and
    the cores busy then (CPU over wall, over the cores the command may use).
    {the 40-image group: its table's lines}."""
    runs = defaultdict(dict)  # (command, label) -> {images: (wall s, CPU s, cores, group)}
    for b in data["benchmarks"]:
        info = b.get("extra_info", {})
        if "once_started" in info:
            runs[(info["once_started"], _row_label(b))][info["images"]] = (
                b["stats"]["median"], info["cpu_s"], info["cores"], b["group"])
    rows = defaultdict(list)  # the large group -> [(label, wall, cpu, cores, n_large, n_small)]
    for (command, label), by_size in runs.items():
        if len(by_size) < 2:
            continue
        small, large = min(by_size), max(by_size)
        (w_small, c_small, _, _), (w_large, c_large, cores, group) = by_size[small], by_size[large]
        n = large - small
        rows[group].append((label, (w_large - w_small) / n, (c_large - c_small) / n, cores, large, small))
    tables = {}
    for group, found in rows.items():
        found.sort(key=lambda r: r[1])
        base = _cores_base(group, [r[0] for r in found])
        ours = next((r[1] for r in found if r[0] == base), None)
        against = _cores_against(base)
        large, small = found[0][4], found[0][5]
        lines = [f"## {group}: per image once started", "",
                 f"Per image, from the runs above: ({large} images - {small} images) / {large - small}; busy is the "
                 "CPU time of the command's processes over the wall time, over the cores it may use.", "",
                 "| implementation | wall per image | images/s | CPU per image | busy once started |"
                 + (f" vs {against} |" if ours else ""),
                 "|---|---:|---:|---:|---:|" + ("---:|" if ours else "")]
        for label, wall, cpu, cores, _, _ in found:
            ratio = f" {wall / ours:.2f}x |" if ours else ""
            lines.append(f"| {label} | {wall * 1e3:.1f} ms | {1 / wall:.1f} | {cpu * 1e3:.1f} ms | "
                         f"{cpu / wall / cores * 100:.0f}% of {cores} |" + ratio)
        if any(cpu > wall * cores * 1.02 for _, wall, cpu, cores, _, _ in found):
            lines += ["", "Over 100% busy cannot be: that row's two runs met different loads on the machine, "
                      "and its numbers here are off."]
        tables[group] = lines + [""]
    return tables


def format_report(data: dict) -> str:
    groups = defaultdict(list)
    peaks = {}
    for b in data["benchmarks"]:
        groups[b["group"]].append((_row_label(b), b["stats"]["median"]))
        if "peak_mib" in b.get("extra_info", {}):
            peaks[(b["group"], _label(b["name"]))] = f"{b['extra_info']['peak_mib']} MiB"
        if "images_per_s" in b.get("extra_info", {}):
            peaks[(b["group"], _row_label(b))] = f"{b['extra_info']['images_per_s']} images/s"
        if "cpu_s_per_image" in b.get("extra_info", {}):  # test_bench_cores: the process tree's CPU time
            peaks[(b["group"], _row_label(b))] += (f", {b['extra_info']['cpu_s_per_image'] * 1e3:.1f} ms CPU/image, "
                                                   f"{b['extra_info']['cores_busy']:.2f} cores busy")
        if "frames_per_s" in b.get("extra_info", {}):
            peaks[(b["group"], _label(b["name"]))] = f"{b['extra_info']['frames_per_s']} frames/s"
        if "spread" in b.get("extra_info", {}):
            peaks[(b["group"], _label(b["name"]))] = f"spread {b['extra_info']['spread'] * 100:.0f}%"
    info = data.get("machine_info", {})
    once_started = once_started_tables(data)
    lines = [
        "# Benchmarks",
        "",
        "Made by `python benchmarks/report.py` (pytest-benchmark) on "
        f"{info.get('cpu', {}).get('brand_raw', platform.processor() or 'unknown CPU')}, "
        f"{info.get('system', platform.system())} {info.get('machine', platform.machine())}, "
        f"Python {info.get('python_version', platform.python_version())}, "
        f"SIMD backend `{data.get('coreseg_simd', '?')}`, {data.get('coreseg_threads', '?')} threads.",
        "Times are medians. This is a shared 2-core machine, so compare within a table",
        "(ratios to coreseg in the same run), not absolute numbers across runs.",
        "The memcpy row copies the kernel's output (for resize_image: its input,",
        "which must be read once) with `np.copyto`: the memory-speed floor.",
        "",
    ]
    for group in sorted(groups):
        rows = sorted(groups[group], key=lambda r: r[1])
        times = dict(rows)
        if group.startswith("cores: "):  # test_bench_cores
            base = _cores_base(group, times)
        else:
            base = next((n for n in times if n in ("coreseg", NAMES["coreseg_cli"], NAMES["sequential"],
                                                   NAMES["eval_jobs1"])
                         or n.startswith("coreseg's session options")), None)
        ours = times.get(base)
        against = (_cores_against(base) if group.startswith("cores: ") else
                   "the sequential loop" if base == NAMES["sequential"] else
                   "--jobs 1" if base == NAMES["eval_jobs1"] else
                   "coreseg's options" if base and base.startswith("coreseg's session") else "coreseg")
        peak = any((group, name) in peaks for name, _ in rows)
        lines += [f"## {group}", "", f"| implementation | median | vs {against} |" + (" note |" if peak else ""),
                  "|---|---:|---:|" + ("---:|" if peak else "")]
        for name, t in rows:
            unit = f"{t * 1e3:.2f} ms" if t >= 1e-3 else f"{t * 1e6:.1f} µs"
            ratio = f"{t / ours:.2f}x" if ours else ""
            extra = f" {peaks[(group, name)]} |" if (group, name) in peaks else (" |" if peak else "")
            lines.append(f"| {name} | {unit} | {ratio} |" + extra)
        lines.append("")
        lines += once_started.get(group, [])
    lines += instructions_table()
    return "\n".join(lines)


def instructions_table() -> list[str]:
    """The callgrind counts of benchmarks/instructions.py, when it has run."""
    path = HERE / "instructions.json"
    if not path.is_file():
        return []
    doc = json.loads(path.read_text())
    lines = ["## Instructions per call at 1920x1080 (callgrind)", "",
             f"Counted by `python benchmarks/instructions.py` ({doc['machine']}): they do not drift",
             "with the machine's load, so compare them across commits.", "",
             "| kernel | instructions per call |", "|---|---:|"]
    lines += [f"| {name} | {n / 1e6:.2f} M |" for name, n in doc["instructions"].items()]
    return lines + [""]


def main(argv: list[str]) -> int:
    show = "--print" in argv  # a partial run's tables, without replacing BENCHMARKS.md
    argv = [a for a in argv if a != "--print"]
    if argv:
        data = json.loads(Path(argv[0]).read_text())
    else:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "bench.json"
            subprocess.run([sys.executable, "-m", "pytest", str(HERE), "-q", "-p", "no:cacheprovider",
                            f"--benchmark-json={out}"], check=True)
            data = json.loads(out.read_text())
    import coreseg

    data.setdefault("coreseg_simd", coreseg.simd_backend())
    data.setdefault("coreseg_threads", coreseg.get_num_threads())
    if show:
        print(format_report(data))
        return 0
    (HERE.parent / "BENCHMARKS.md").write_text(format_report(data))
    print(f"wrote {HERE.parent / 'BENCHMARKS.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
