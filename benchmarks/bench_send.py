"""`dreamchat send` against llama-cpp-python's own chat completion, side by side in one run.

    python benchmarks/bench_send.py [--model PATH] [--tokens 128] [--threads 2] [--repeats 3]

Prints, on the same prompt and greedy settings:
  - generation tokens/s of Assistant.send (memory tower on, when the model has one) and of
    llama_cpp.Llama.create_chat_completion(stream=True), and their ratio (the issue aims at >= 0.95);
  - time to first token of both (warm, in process);
  - cold start of `dreamchat send` to its first byte on stdout (a fresh process, as a user runs it).
Repeats alternate the two so that machine noise hits both alike; the median is reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

PROMPT = "Write a short paragraph about why cats like to sleep in the sun."


def bench_dreamchat(home: Path, model: str, tokens: int, threads: int) -> tuple[float, float, int]:
    import dataclasses

    from dreamchat.assistant import Assistant
    from dreamchat.config import Config
    from dreamchat.events import ReplyDone

    base = Config()
    config = dataclasses.replace(
        base,
        sampling=dataclasses.replace(base.sampling, temperature=0.0, max_tokens=tokens, repeat_penalty=1.0,
                                     top_k=0, top_p=1.0, min_p=0.0),
        model=dataclasses.replace(base.model, n_ctx=2048, threads=threads),
    )
    # A fresh home each time, so both sides decode the same prompt from an empty cache.
    with Assistant.open(home=str(home), model=model, config=config) as assistant:
        done = [e for e in assistant.send(PROMPT) if isinstance(e, ReplyDone)][0]
        return done.tokens_per_s, done.first_token_s, done.tokens


def bench_llama(model: str, tokens: int, threads: int, system_prompt: str) -> tuple[float, float, int]:
    from dreamchat.models.backbone import reference_llama

    llm = reference_llama(model, n_ctx=2048, n_threads=threads, n_threads_batch=threads, verbose=False)
    started = time.perf_counter()
    first = None
    n = 0
    for chunk in llm.create_chat_completion(
        messages=[{"role": "system", "content": system_prompt}, {"role": "user", "content": PROMPT}],
        temperature=0.0, max_tokens=tokens, repeat_penalty=1.0, top_k=0, top_p=1.0, min_p=0.0, stream=True,
    ):
        if chunk["choices"][0]["delta"].get("content"):
            n += 1  # one streamed chunk per generated token
            if first is None:
                first = time.perf_counter()
    end = time.perf_counter()
    llm.close()
    return (n - 1) / (end - first), first - started, n


def cold_start(home: Path, model: str) -> float:
    env = {**os.environ, "DREAMCHAT_HOME": str(home)}
    started = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "dreamchat", "send", "Hello!", "--model", model],
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, env=env)
    proc.stdout.read(1)
    first_byte = time.perf_counter() - started
    proc.communicate()
    return first_byte


def main() -> None:
    from dreamchat.config import Config
    from dreamchat.default_model import ensure_default_model

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default=None)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    model = args.model or str(ensure_default_model())

    ours, theirs = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for i in range(args.repeats):
            ours.append(bench_dreamchat(Path(tmp) / f"home{i}", model, args.tokens, args.threads))
            theirs.append(bench_llama(model, args.tokens, args.threads, Config().system_prompt))
        colds = [cold_start(Path(tmp) / f"cold{i}", model) for i in range(args.repeats)]

    def med(rows, i):
        return statistics.median(r[i] for r in rows)

    print(f"model: {model}, threads {args.threads}, greedy, up to {args.tokens} tokens, {args.repeats} repeats (median)")
    print(f"dreamchat send        : {med(ours, 0):7.1f} tok/s, first token {med(ours, 1) * 1000:6.0f} ms, {med(ours, 2):.0f} tokens")
    print(f"create_chat_completion: {med(theirs, 0):7.1f} tok/s, first token {med(theirs, 1) * 1000:6.0f} ms, {med(theirs, 2):.0f} tokens")
    print(f"generation speed ratio dreamchat / llama-cpp-python: {med(ours, 0) / med(theirs, 0):.3f}")
    print(f"cold start of `dreamchat send` to first byte of the reply: {statistics.median(colds):.2f} s")


if __name__ == "__main__":
    main()
