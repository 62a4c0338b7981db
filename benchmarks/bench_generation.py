"""Generation speed of dreamchat's `generate()` against llama-cpp-python's own chat loop.

    python benchmarks/bench_generation.py [--model PATH] [--threads 2] [--tokens 128] [--rounds 5]

Same model, same process, same thread count, same chat-formatted prompt, greedy decoding, the
same number of generated tokens (the texts are checked to be identical). Both are streamed; for
each we time the first text piece (time to first token, prompt decode included) and the rate
between the first and the last piece (generation tokens/s). Runs are interleaved round by round
and the median of each is reported, which keeps the comparison fair on a busy machine.
"""

from __future__ import annotations

import argparse
import statistics
import time
from pathlib import Path

from llama_cpp import Llama

from dreamchat.default_model import ensure_default_model
from dreamchat.models.backbone import Backbone, reference_llama
from dreamchat.models.generation import Done, Piece, generate
from dreamchat.models.sampler import Sampler

MESSAGES = [{"role": "user", "content": "Write a long poem about the sea, the wind and the boats."}]


def run_ours(backbone: Backbone, prompt: list[int], n_tokens: int, want_hidden: bool) -> tuple[float, float, float, str]:
    backbone.clear()
    start = time.perf_counter()
    first = last = None
    for event in generate(backbone, prompt, Sampler.greedy(), max_tokens=n_tokens, want_hidden=want_hidden):
        if isinstance(event, Piece):
            last, last_cpu = time.perf_counter(), time.process_time()
            if first is None:
                first, first_cpu = last, last_cpu
        elif isinstance(event, Done):
            assert event.n_tokens == n_tokens, f"stopped after {event.n_tokens} tokens; pick another prompt"
            return first - start, (n_tokens - 1) / (last - first), (last_cpu - first_cpu) / (n_tokens - 1), event.text
    raise AssertionError("no Done event")


def run_llama(llm: Llama, n_tokens: int) -> tuple[float, float, float, str]:
    llm.reset()  # no prompt reuse from the previous round: the same work as ours
    start = time.perf_counter()
    first = last = None
    pieces = []
    for chunk in llm.create_chat_completion(messages=MESSAGES, temperature=0.0, max_tokens=n_tokens,
                                            repeat_penalty=1.0, stream=True):
        text = chunk["choices"][0]["delta"].get("content")
        if text:
            last, last_cpu = time.perf_counter(), time.process_time()
            if first is None:
                first, first_cpu = last, last_cpu
            pieces.append(text)
    return first - start, (n_tokens - 1) / (last - first), (last_cpu - first_cpu) / (n_tokens - 1), "".join(pieces)


def decode_costs(backbone: Backbone, rounds: int) -> None:
    """What hidden states cost llama.cpp: a 256-token prompt and single-token steps, with and
    without embeddings, and with embeddings switched on and off between steps."""
    prompt = (backbone.tokenize(" ".join(MESSAGES[0]["content"] for _ in range(40))))[:256]
    step = prompt[:64]

    def prompt_rate(hidden: bool) -> float:
        backbone.clear()
        start = time.perf_counter()
        backbone.decode(prompt, hidden=hidden)
        return len(prompt) / (time.perf_counter() - start)

    def step_ms(mode: str) -> float:
        backbone.clear()
        backbone.decode(prompt[:8])
        start = time.perf_counter()
        for i, token in enumerate(step):
            backbone.decode([token], hidden=mode == "hidden" or (mode == "switching" and i % 2 == 0))
        return (time.perf_counter() - start) / len(step) * 1000

    rows: dict[str, list[float]] = {}
    for _ in range(rounds):
        for name, fn in ((f"prompt {len(prompt)} tok, logits only (tok/s)", lambda: prompt_rate(False)),
                         (f"prompt {len(prompt)} tok, + hidden (tok/s)", lambda: prompt_rate(True)),
                         ("1-token step, logits only (ms)", lambda: step_ms("plain")),
                         ("1-token step, + hidden (ms)", lambda: step_ms("hidden")),
                         ("1-token step, hidden every other (ms)", lambda: step_ms("switching"))):
            rows.setdefault(name, []).append(fn())
    for name, values in rows.items():
        print(f"{name:40}{statistics.median(values):>10.2f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, help="GGUF chat model (default: the default model)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--tokens", type=int, default=128)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--n-ctx", type=int, default=2048)
    args = parser.parse_args()
    model = args.model or ensure_default_model()

    backbone = Backbone(model, n_ctx=args.n_ctx, n_threads=args.threads)
    llm = reference_llama(model, n_ctx=args.n_ctx, n_threads=args.threads, n_threads_batch=args.threads,
                          verbose=False)
    prompt = backbone.tokenize(backbone.render_chat(MESSAGES, add_generation_prompt=True))
    print(f"model {model.name}, {args.threads} threads, prompt {len(prompt)} tokens, "
          f"{args.tokens} generated tokens, greedy, {args.rounds} interleaved rounds (medians)", flush=True)

    results: dict[str, list[tuple[float, float, float]]] = {"llama-cpp-python": [], "generate()": [],
                                                     "generate(want_hidden)": []}
    run_llama(llm, 8)  # warm up both (page-in, first-call allocations)
    backbone.clear()
    list(generate(backbone, prompt, Sampler.greedy(), max_tokens=8))
    for i in range(args.rounds):
        *timing, theirs = run_llama(llm, args.tokens)
        results["llama-cpp-python"].append(tuple(timing))
        for name, hidden in (("generate()", False), ("generate(want_hidden)", True)):
            *timing, ours = run_ours(backbone, prompt, args.tokens, hidden)
            assert ours == theirs, "greedy outputs differ: the comparison would not be fair"
            results[name].append(tuple(timing))
        print(f"round {i + 1}: " + ", ".join(f"{name} {runs[-1][1]:.1f} tok/s" for name, runs in results.items()),
              flush=True)

    print()
    # CPU time per token is the steadier number on a shared machine (with 1 thread: OpenMP's
    # spinning workers inflate it when there are more).
    base = statistics.median(r for _, r, _ in results["llama-cpp-python"])
    print(f"{'':24}{'first token':>12}{'tokens/s':>10}{'ratio':>8}{'CPU ms/token':>14}")
    for name, runs in results.items():
        ttft, rate, cpu = (statistics.median(column) for column in zip(*runs))
        print(f"{name:24}{ttft * 1000:>10.1f}ms{rate:>10.1f}{rate / base:>8.3f}{cpu * 1000:>14.2f}")
    print()
    decode_costs(backbone, args.rounds)
    backbone.close()
    llm.close()


if __name__ == "__main__":
    main()
