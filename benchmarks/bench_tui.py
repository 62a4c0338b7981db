"""TUI numbers with the real default model (SmolLM2-135M-Instruct Q4_1), headless:

1. cold start: from launching a fresh Python process to an interactive (focused, mounted) prompt,
   and on to the model being loaded in the background;
2. keystroke latency while a reply streams: keys are posted to the app the way the terminal
   driver posts them, and timed until the prompt shows them;
3. memory: resident set size of the app process with the model loaded, after a reply.

    python benchmarks/bench_tui.py                         # all three, printed
    python benchmarks/bench_tui.py --screenshot docs/screenshot.svg   # also save a real conversation

Nothing is downloaded: the default model must already be in the models cache.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

STREAM_PROMPT = "Write a short story about a lighthouse keeper and a cat."
# A day, its night, and a question the memory answers (with the line that says where from).
SCREENSHOT_TURNS = ("What is the capital of France? Answer in one sentence.",
                    "My sister Maya just moved to Lisbon, and my dog is called Biscuit.",
                    "/sleep",
                    "What is my dog called?")


def rss_mib() -> tuple[float, float]:
    """(current, peak) resident set size of this process in MiB, from /proc (Linux)."""
    fields = dict(line.split(":", 1) for line in Path("/proc/self/status").read_text().splitlines())
    return int(fields["VmRSS"].split()[0]) / 1024, int(fields["VmHWM"].split()[0]) / 1024


def bench_config(max_tokens: int):
    from dreamchat.config import Config

    config = Config()
    return dataclasses.replace(config, sampling=dataclasses.replace(
        config.sampling, temperature=0.0, max_tokens=max_tokens, seed=1))


def make_app(home: str, max_tokens: int):
    from dreamchat.tui.app import create_app

    config = bench_config(max_tokens)

    def open_assistant():
        from dreamchat.assistant import Assistant

        return Assistant.open(home=home, config=config)

    return create_app(open_assistant, config)


async def wait_until(pilot, predicate, timeout=600.0, poll=0.05):
    """Poll gently: a busy UI loop would steal the GIL from the generation thread."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise TimeoutError("benchmark step timed out")
        await pilot.pause(poll)


# -- 1. cold start (runs in a child process) -----------------------------------------------------


def child_cold_start(t_launch: float) -> None:
    """Import, build and start the app; report when the prompt is interactive and the model loaded."""
    home = tempfile.mkdtemp(prefix="bench-tui-")

    async def run() -> dict:
        app = make_app(home, max_tokens=16)
        async with app.run_test(size=(100, 30)) as pilot:
            await wait_until(pilot, lambda: app.focused is not None and app.focused.id == "prompt",
                             poll=0.002)
            interactive, cpu = time.time(), time.process_time()  # CPU: all threads, this process
            await wait_until(pilot, lambda: app.ready)
            loaded = time.time()
        return {"interactive_s": interactive - t_launch, "interactive_cpu_s": cpu,
                "model_loaded_s": loaded - t_launch}

    print(json.dumps(asyncio.run(run())))


def cold_start(runs: int) -> list[dict]:
    results = []
    for _ in range(runs):
        t_launch = time.time()
        out = subprocess.run([sys.executable, __file__, "--child-cold-start", repr(t_launch)],
                             capture_output=True, text=True, check=True)
        results.append(json.loads(out.stdout.strip().splitlines()[-1]))
    return results


# -- 2. keystroke latency while streaming, 3. RSS -------------------------------------------------


async def streaming_latency(keys: int) -> dict:
    from textual import events
    from textual.widgets import TextArea

    home = tempfile.mkdtemp(prefix="bench-tui-")
    app = make_app(home, max_tokens=128)
    latencies: list[float] = []
    shown = asyncio.Event()  # set when the prompt has processed a key (no polling while timing)
    shown_at = [0.0]

    def hook(message) -> None:
        if isinstance(message, TextArea.Changed):
            shown_at[0] = time.perf_counter()
            shown.set()

    async with app.run_test(size=(100, 30), message_hook=hook) as pilot:
        await wait_until(pilot, lambda: app.ready)
        rss_loaded = rss_mib()[0]
        pieces = []
        original = app._piece

        def counting(bubble, text):
            pieces.append(time.perf_counter())
            return original(bubble, text)

        app._piece = counting
        app.prompt.set_text(STREAM_PROMPT)
        await pilot.press("enter")
        await wait_until(pilot, lambda: len(pieces) >= 3)
        first_key = time.perf_counter()
        for i in range(keys):
            if app.busy is None:
                break  # the reply ended: only keys typed during streaming count
            char = "abcdefghij"[i % 10]
            shown.clear()
            start = time.perf_counter()
            app.post_message(events.Key(char, char))  # what the terminal driver does
            await asyncio.wait_for(shown.wait(), timeout=30)
            latencies.append((shown_at[0] - start) * 1000)
            await asyncio.sleep(0.05)  # a fast typist: 20 keys/s
        last_key = time.perf_counter()
        streamed_during = sum(1 for t in pieces if first_key <= t <= last_key)
        await wait_until(pilot, lambda: app.busy is None)
        rss_after, peak = rss_mib()
        done = app.last_reply
    latencies.sort()
    return {
        "keys_timed": len(latencies),
        "latency_ms_median": statistics.median(latencies) if latencies else None,
        "latency_ms_p95": latencies[int(0.95 * (len(latencies) - 1))] if latencies else None,
        "latency_ms_max": latencies[-1] if latencies else None,
        "reply_tokens": done.tokens if done else None,
        "reply_tokens_per_s": done.tokens_per_s if done else None,
        "pieces_streamed": streamed_during,
        "rss_mib_model_loaded": rss_loaded,
        "rss_mib_after_reply": rss_after,
        "rss_mib_peak": peak,
    }


async def screenshot(path: Path) -> None:
    """A short real conversation with the default model and a night's sleep, saved as SVG (for the
    README)."""
    home = tempfile.mkdtemp(prefix="bench-tui-")
    app = make_app(home, max_tokens=64)
    async with app.run_test(size=(100, 32)) as pilot:
        await wait_until(pilot, lambda: app.ready)
        from dreamchat.tui.screens.sleep import SleepScreen

        for turn in SCREENSHOT_TURNS:
            app.prompt.set_text(turn)
            await pilot.press("enter")
            await wait_until(pilot, lambda: app.busy is None)
            if isinstance(app.screen, SleepScreen):  # the night's report: close it, as a user would
                await wait_until(pilot, lambda: app.screen.finished)
                await pilot.press("escape")
        await pilot.pause(0.3)
        app.save_screenshot(filename=path.name, path=str(path.parent))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="cold starts to time")
    parser.add_argument("--keys", type=int, default=40, help="keys to time while a reply streams")
    parser.add_argument("--screenshot", type=Path, help="also save a real conversation as SVG here")
    parser.add_argument("--child-cold-start", type=float, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_cold_start is not None:
        child_cold_start(args.child_cold_start)
        return

    starts = cold_start(args.runs)
    interactive = sorted(r["interactive_s"] for r in starts)
    loaded = sorted(r["model_loaded_s"] for r in starts)
    cpu = sorted(r["interactive_cpu_s"] for r in starts)
    print(f"cold start to interactive prompt: median {statistics.median(interactive):.2f} s "
          f"(runs: {', '.join(f'{x:.2f}' for x in interactive)}; {statistics.median(cpu):.2f} CPU-s); "
          f"model loaded in the background by {statistics.median(loaded):.2f} s; load average "
          f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs")
    stream = asyncio.run(streaming_latency(args.keys))
    print(f"keystroke latency while streaming ({stream['keys_timed']} keys): median "
          f"{stream['latency_ms_median']:.1f} ms, p95 {stream['latency_ms_p95']:.1f} ms, "
          f"max {stream['latency_ms_max']:.1f} ms; reply {stream['reply_tokens']} tokens at "
          f"{stream['reply_tokens_per_s']:.1f} tok/s, {stream['pieces_streamed']} pieces rendered "
          "while the keys were typed")
    print(f"memory (RSS): {stream['rss_mib_model_loaded']:.0f} MiB with the model loaded, "
          f"{stream['rss_mib_after_reply']:.0f} MiB after a reply, peak {stream['rss_mib_peak']:.0f} MiB")
    print(json.dumps({"cold_start": starts, "streaming": stream}, indent=1))
    if args.screenshot:
        asyncio.run(screenshot(args.screenshot))
        print(f"screenshot written to {args.screenshot}")


if __name__ == "__main__":
    main()
