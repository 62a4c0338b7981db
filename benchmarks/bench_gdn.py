"""Gated DeltaNet speed: recurrent reference vs chunked form, and the per-token wake step.

    .venv/bin/python benchmarks/bench_gdn.py                      # T=4096, B=1, H=4, K=V=64, CPU
    .venv/bin/python benchmarks/bench_gdn.py --T 1024 --threads 2 --device cuda

Everything is measured side by side in one run (same process, same threads): the rule's forward and
forward+backward on both paths with their ratio, then one-token steps of the bare rule, of one
GatedDeltaNet layer and of whole towers (the default TowerConfig and a small memory-model tower).
"""

import argparse
import statistics
import time

import torch
import torch.nn.functional as F

from dreamchat.models.gdn import (
    GatedDeltaNet, GDNConfig, gated_delta_rule_chunked, gated_delta_rule_recurrent, gated_delta_rule_step,
)
from dreamchat.models.tower import Tower, TowerConfig


def sync(device: str) -> None:
    if device == "cuda":
        torch.cuda.synchronize()


def timed(fn, device: str, repeats: int, warmup: int = 1) -> tuple[float, float]:
    """Median wall time and median process CPU time of fn(), in seconds. On a busy shared machine the
    CPU time (what this process actually computed) is the steadier of the two."""
    for _ in range(warmup):
        fn()
    sync(device)
    walls, cpus = [], []
    for _ in range(repeats):
        wall, cpu = time.perf_counter(), time.process_time()
        fn()
        sync(device)
        walls.append(time.perf_counter() - wall)
        cpus.append(time.process_time() - cpu)
    return statistics.median(walls), statistics.median(cpus)


def row(name: str, rec: tuple[float, float], chk: tuple[float, float]) -> None:
    for label, i in (("wall", 0), ("cpu", 1)):
        print(f"{name + ' (' + label + ')':28}{rec[i] * 1e3:10.1f}ms{chk[i] * 1e3:10.1f}ms{rec[i] / chk[i]:8.1f}x")


def rule_inputs(B, T, H, K, V, device, requires_grad):
    q = F.normalize(torch.randn(B, T, H, K, device=device), dim=-1)
    k = F.normalize(torch.randn(B, T, H, K, device=device), dim=-1)
    v = torch.randn(B, T, H, V, device=device)
    g = F.logsigmoid(torch.randn(B, T, H, device=device) + 3)
    beta = torch.sigmoid(torch.randn(B, T, H, device=device))
    S0 = torch.randn(B, H, K, V, device=device) * 0.1
    return [t.requires_grad_(requires_grad) for t in (q, k, v, g, beta, S0)]


def bench_rule(args) -> None:
    B, T, H, K, V, dev = args.B, args.T, args.H, args.K, args.V, args.device
    print(f"gated delta rule, B={B} T={T} H={H} K={K} V={V} chunk={args.chunk} on {dev}, "
          f"{torch.get_num_threads()} thread(s), float32")
    print(f"{'':28}{'recurrent':>12}{'chunked':>12}{'ratio':>9}")
    with torch.no_grad():
        x = rule_inputs(B, T, H, K, V, dev, False)
        rec = timed(lambda: gated_delta_rule_recurrent(*x), dev, args.repeats)
        chk = timed(lambda: gated_delta_rule_chunked(*x, chunk_size=args.chunk), dev, args.repeats)
    row("forward", rec, chk)

    x = rule_inputs(B, T, H, K, V, dev, True)

    def fwd_bwd(rule, **kw):
        o, S = rule(*x, **kw)
        (o.square().sum() + S.square().sum()).backward()
    # The recurrent backward takes tens of seconds at T = 4096: time it once, without warm-up.
    rec = timed(lambda: fwd_bwd(gated_delta_rule_recurrent), dev, 1, warmup=0)
    chk = timed(lambda: fwd_bwd(gated_delta_rule_chunked, chunk_size=args.chunk), dev, args.repeats)
    row("forward + backward", rec, chk)


def bench_steps(args) -> None:
    dev, steps = args.device, args.steps
    print(f"\nper-token wake step (inference mode, median of {args.repeats} runs of {steps} tokens)")
    print(f"  {'':44}{'wall':>9}{'cpu':>12}")

    def per_token(step) -> str:
        def run():
            for _ in range(steps):
                step()
        wall, cpu = timed(run, dev, args.repeats)
        return f"{wall / steps * 1e6:9.1f} us{cpu / steps * 1e6:9.1f} us"

    with torch.inference_mode():
        # Yardstick for this machine's per-kernel overhead: a step is dozens of tiny kernels, so its
        # time scales with this number (about 1-3 us on an idle desktop CPU).
        a, b = torch.randn(256, device=dev), torch.randn(256, device=dev)
        print(f"  {'one tiny add (256 floats), the yardstick':44}{per_token(lambda: torch.add(a, b))}")
        H, K, V = args.H, args.K, args.V
        q, k, v, g, beta, S = (t[:, 0] if t.dim() > 3 else t for t in rule_inputs(1, 1, H, K, V, dev, False))
        g, beta = g[:, 0], beta[:, 0]
        t_rule = per_token(lambda: gated_delta_rule_step(q, k, v, g, beta, S))
        print(f"  {f'gated_delta_rule_step (H={H}, K={K}, V={V})':44}{t_rule}")

        layer = GatedDeltaNet(GDNConfig()).to(dev).eval()
        x = torch.randn(1, 1, layer.config.d_model, device=dev)
        state = layer.empty_state(1, dev)
        t_layer = per_token(lambda: layer(x, state))
        print(f"  {'GatedDeltaNet layer, default GDNConfig':44}{t_layer}")

        towers = {"Tower, default TowerConfig (AGAG, d=256)": TowerConfig(),
                  "Tower, memory-sized (GG, d=128, 2x32)": TowerConfig(d_model=128, layout="GG", n_heads=2,
                                                                       head_k_dim=32, head_v_dim=32)}
        for name, cfg in towers.items():
            tower = Tower(cfg).to(dev).eval()
            x = torch.randn(1, 1, cfg.d_model, device=dev)
            _, state = tower(torch.randn(1, 100, cfg.d_model, device=dev))  # a warm day: caches filled
            t_tower = per_token(lambda: tower(x, state))
            print(f"  {name:44}{t_tower}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--T", type=int, default=4096, help="sequence length")
    parser.add_argument("--B", type=int, default=1, help="batch size")
    parser.add_argument("--H", type=int, default=4, help="heads")
    parser.add_argument("--K", type=int, default=64, help="key width per head")
    parser.add_argument("--V", type=int, default=64, help="value width per head")
    parser.add_argument("--chunk", type=int, default=64, help="chunk size of the chunked path")
    parser.add_argument("--repeats", type=int, default=3, help="timed repeats (median reported)")
    parser.add_argument("--steps", type=int, default=200, help="tokens per step timing run")
    parser.add_argument("--threads", type=int, default=1, help="torch CPU threads")
    parser.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    bench_rule(args)
    bench_steps(args)


if __name__ == "__main__":
    main()
