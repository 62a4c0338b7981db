"""The research model (Algorithm 1 on the tower), the experiment runner and `dreamchat research`."""

import argparse
import json
import random

import pytest
import torch

from dreamchat.errors import DreamchatError
from dreamchat.models import research_cli
from dreamchat.models.research import (ExperimentConfig, ResearchConfig, ResearchModel, build_model,
                                       evaluate, fingerprints, make_episodes)
from dreamchat.models.tasks import get_task
from dreamchat.models.tasks.rule110 import Rule110

TASK = Rule110(n_strings=2, n_bits=4, max_depth=2)  # window 7, 3 windows: sleep, sleep, predict


def tiny_model(checkpoint: bool = False) -> ResearchModel:
    torch.manual_seed(0)
    return ResearchModel(ResearchConfig(vocab_size=len(TASK.vocab), window=TASK.window, d_model=16,
                                        n_heads=2, head_dim=8, mlp_ratio=2.0, checkpoint=checkpoint))


def batch(n: int = 4, seed: int = 0, depth: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    rng = random.Random(seed)
    exs = [TASK.example(rng, depth) for _ in range(n)]
    return (torch.tensor([e.tokens for e in exs]), torch.tensor([e.loss_mask for e in exs], dtype=torch.bool))


@pytest.mark.parametrize("passes", [1, 2, 4])
def test_forward_episode_is_algorithm_1(passes):
    """Sleep windows run N tower passes from the previous S, prediction windows one pass; only S
    crosses a window boundary. Checked against the tower API called by hand."""
    model = tiny_model().eval()
    tokens, mask = batch()
    L = TASK.window
    with torch.no_grad():
        out = model.forward_episode(tokens, mask, L, passes)
        S = model.tower.initial_state(tokens.shape[0])
        for n in range(2):  # two consolidation windows
            h = model.embed(tokens[:, n * L:(n + 1) * L])
            for _ in range(passes):
                h, state = model.tower(h, S)  # no attention cache carried in: hard eviction
                S = model.tower.long_term(state)
        h, _ = model.tower(model.embed(tokens[:, 2 * L:]), S)
        logits = model.head(model.norm(h))  # (B, L, vocab)
    answer_at = mask[:, 2 * L + 1:]  # answers at t, predicted from t - 1
    torch.testing.assert_close(out.logits, logits[:, :-1][answer_at])
    torch.testing.assert_close(out.targets, tokens[:, 2 * L + 1:][answer_at])
    assert out.rows.tolist() == answer_at.nonzero()[:, 0].tolist()
    assert out.logits.shape[0] == tokens.shape[0] * TASK.n_strings


def test_sleep_runs_n_passes_per_consolidation_window(monkeypatch):
    model = tiny_model()
    tokens, mask = batch()
    calls = []
    original = type(model.tower).forward

    def counting(self, x, state=None):
        calls.append(x.shape[1])
        return original(self, x, state)

    monkeypatch.setattr(type(model.tower), "forward", counting)
    model.forward_episode(tokens, mask, TASK.window, passes=3)
    assert len(calls) == 2 * 3 + 1 and set(calls) == {TASK.window}


def test_prediction_depends_on_evicted_windows_only_through_S():
    """Change a bit of the first string: the answers' logits change (S carries it); zero S after each
    consolidation window and they no longer do (no attention cache crosses a window)."""
    model = tiny_model().eval()
    tokens, mask = batch(n=1, depth=0)
    flipped = tokens.clone()
    flipped[0, 1] = 3 - flipped[0, 1]  # first cell of string 1: "0" (1) <-> "1" (2)
    with torch.no_grad():
        a = model.forward_episode(tokens, mask, TASK.window, 2).logits
        b = model.forward_episode(flipped, mask, TASK.window, 2).logits
        assert not torch.allclose(a, b)
        sleep = model._sleep_window
        model._sleep_window = lambda chunk, S, passes: {k: torch.zeros_like(v)
                                                        for k, v in sleep(chunk, S, passes).items()}
        c = model.forward_episode(tokens, mask, TASK.window, 2).logits
        d = model.forward_episode(flipped, mask, TASK.window, 2).logits
    torch.testing.assert_close(c, d)


def test_gradients_reach_every_parameter_through_all_passes():
    model = tiny_model()
    tokens, mask = batch()
    model.forward_episode(tokens, mask, TASK.window, passes=3).loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not p.grad.abs().sum() > 0]
    assert not missing
    # The step token "s" occurs only in the (evicted) consolidation windows: its embedding learns
    # only through the fast weights.
    assert model.embed.weight.grad[TASK.vocab.index("s")].abs().sum() > 0


def test_checkpointing_changes_nothing_but_memory():
    tokens, mask = batch()
    grads = []
    for ckpt in (False, True):
        model = tiny_model(checkpoint=ckpt)
        out = model.forward_episode(tokens, mask, TASK.window, passes=2)
        out.loss.backward()
        grads.append((out.loss.detach(), [p.grad.clone() for p in model.parameters()]))
    torch.testing.assert_close(grads[0][0], grads[1][0])
    for g0, g1 in zip(grads[0][1], grads[1][1]):
        torch.testing.assert_close(g0, g1, rtol=1e-4, atol=1e-6)


def test_forward_episode_rejects_bad_inputs():
    model = tiny_model()
    tokens, mask = batch()
    with pytest.raises(ValueError, match="multiple of the window"):
        model.forward_episode(tokens[:, :-1], mask[:, :-1], TASK.window, 1)
    with pytest.raises(ValueError, match="passes"):
        model.forward_episode(tokens, mask, TASK.window, 0)
    with pytest.raises(ValueError, match="no answer"):
        model.forward_episode(tokens, torch.zeros_like(mask), TASK.window, 1)


def test_every_n_starts_from_the_same_weights_and_data():
    cfg = ExperimentConfig(d_model=16, n_heads=2, head_dim=8)
    a, b = build_model(cfg, TASK), build_model(cfg, TASK)
    for (name, p), q in zip(a.state_dict().items(), b.state_dict().values()):
        assert torch.equal(p, q), name
    d1 = make_episodes(TASK, [0, 1], 50, seed=3)
    d2 = make_episodes(TASK, [0, 1], 50, seed=3)
    assert torch.equal(d1.tokens, d2.tokens) and torch.equal(d1.depth, d2.depth)


def test_evaluation_episodes_are_held_out_and_balanced():
    task = get_task("rule110", n_strings=1, n_bits=4, max_depth=2)  # only 16 strings per depth
    train = make_episodes(task, [0, 1, 2], 30, seed=1)
    held_out = make_episodes(task, [0, 1, 2], 15, seed=2, exclude=fingerprints(train))
    assert not fingerprints(train) & fingerprints(held_out)
    assert sorted(held_out.depth.tolist()) == [0] * 5 + [1] * 5 + [2] * 5
    every_depth0 = fingerprints(make_episodes(task, [0], 400, seed=5))
    assert len(every_depth0) == 16  # all strings of 4 bits
    with pytest.raises(ValueError, match="held-out"):
        make_episodes(task, [0], 1, seed=2, exclude=every_depth0)


def test_evaluate_reports_accuracy_and_exact_match_by_depth():
    model = tiny_model()
    data = make_episodes(TASK, [0, 1, 2], 12, seed=4, exclude=set())
    result = evaluate(model, data, passes=2, device="cpu", batch_size=5)
    assert sorted(result) == [0, 1, 2]
    for r in result.values():
        assert r["episodes"] == 4 and 0 <= r["exact"] <= r["accuracy"] <= 1


def test_cli_rejects_cuda_without_a_gpu(tmp_path, capsys):
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert research_cli.main(["rule110", "--quick", "--device", "cuda", "--out", str(tmp_path)]) == 2
    assert "--device cpu" in capsys.readouterr().err


def test_cli_rejects_bad_task_args_and_depths(tmp_path):
    parser = argparse.ArgumentParser()
    research_cli.add_arguments(parser)
    args = parser.parse_args(["rule110", "--quick", "--task-arg", "n_bits", "--out", str(tmp_path)])
    with pytest.raises(DreamchatError, match="KEY=INT"):
        research_cli.run(args)
    args = parser.parse_args(["rule110", "--quick", "--train-depths", "9", "--out", str(tmp_path)])
    with pytest.raises(DreamchatError, match="outside"):
        research_cli.run(args)


def test_quick_run_learns_the_easiest_depth(tmp_path):
    """`dreamchat research rule110 --quick --passes 1 2`: the pipeline runs end to end, writes its
    three outputs, and both models retrieve the first bit of each evicted string (depth 0)."""
    parser = argparse.ArgumentParser()
    research_cli.add_arguments(parser)
    args = parser.parse_args(["rule110", "--quick", "--passes", "1", "2", "--device", "cpu",
                              "--out", str(tmp_path)])
    assert research_cli.run(args) == 0
    results = json.loads((tmp_path / "results.json").read_text())
    assert [r["passes"] for r in results["runs"]] == [1, 2]
    assert results["out_of_range_depths"] == [3]
    for run in results["runs"]:
        assert run["accuracy"]["0"]["accuracy"] >= 0.9, run["accuracy"]
        assert run["wake_ms_per_token"] > 0 and run["sleep_ms_per_window"] > 0
    markdown = (tmp_path / "results.md").read_text()
    assert "dreamchat research rule110 --passes 1 2 --quick" in markdown and "| 3* |" in markdown
    assert (tmp_path / "accuracy.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def result_of(passes: int, steps: int = 10) -> dict:
    """A results.json as `run_experiment` writes it, for one N (accuracies made up for the merge)."""
    run = {"passes": passes, "parameters": 100, "train_seconds": 1.0, "train_ms_per_step": 100.0,
           "train_cpu_ms_per_step": 90.0, "eval_seconds": 0.1, "curve": [],
           "accuracy": {"0": {"accuracy": 1.0, "exact": 1.0, "episodes": 4},
                        "1": {"accuracy": 0.5 + 0.1 * passes, "exact": 0.5, "episodes": 4}},
           "sleep_ms_per_window": 1.0 * passes, "sleep_ms_per_window_median": 1.1 * passes,
           "wake_ms_per_token": 0.5, "wake_ms_per_token_median": 0.6}
    return {"task": "rule110", "task_config": {"n_bits": 4}, "vocab_size": 6, "window": 7, "seq_len": 21,
            "depths": [0, 1], "chance": 0.5, "train_depths": [0, 1], "out_of_range_depths": [],
            "experiment": {**vars(ExperimentConfig(steps=steps)), "passes": [passes]}, "device": "cpu",
            "torch_threads": 1, "train_episodes": 10, "eval_episodes": 8, "data_seconds": 0.1,
            "wall_seconds": 2.0 * passes, "runs": [run], "command": f"dreamchat research rule110 --passes {passes}"}


def test_merge_combines_runs_of_one_experiment(tmp_path):
    for n in (4, 1):
        (tmp_path / f"N{n}").mkdir()
        (tmp_path / f"N{n}" / "results.json").write_text(json.dumps(result_of(n)))
    assert research_cli.main(["rule110", "--merge", str(tmp_path / "N4"), str(tmp_path / "N1"),
                              "--out", str(tmp_path / "all")]) == 0
    merged = json.loads((tmp_path / "all" / "results.json").read_text())
    assert [r["passes"] for r in merged["runs"]] == [1, 4] and merged["experiment"]["passes"] == [1, 4]
    assert merged["wall_seconds"] == 8.0 and len(merged["parts"]) == 2
    markdown = (tmp_path / "all" / "results.md").read_text()
    assert "| 1 | 0.600 (exact 0.500) | 0.900 (exact 0.500) |" in markdown
    assert "N = 1: 0.600, N = 4: 0.900 (+30.0 points" in markdown


def test_merge_refuses_different_experiments_and_repeated_n():
    with pytest.raises(DreamchatError, match="more than --passes"):
        research_cli.merge_results([result_of(1), result_of(4, steps=20)])
    with pytest.raises(DreamchatError, match="twice"):
        research_cli.merge_results([result_of(1), result_of(1)])


def test_costs_only_times_every_n_without_training(tmp_path):
    assert research_cli.main(["rule110", "--quick", "--passes", "1", "2", "--costs-only", "3",
                              "--out", str(tmp_path)]) == 0
    costs = json.loads((tmp_path / "costs.json").read_text())
    assert sorted(costs["costs"]) == ["1", "2"] and costs["repeats"] == 3
    for c in costs["costs"].values():
        assert 0 < c["sleep_ms_per_window"] <= c["sleep_ms_per_window_median"]
        assert 0 < c["wake_ms_per_token"] <= c["wake_ms_per_token_median"]
    assert "| 2 |" in (tmp_path / "costs.md").read_text()
    assert not (tmp_path / "results.json").exists()


def test_a_time_budget_gives_every_n_the_same_number_of_steps(monkeypatch):
    """--minutes: the step count is fixed from the first timed steps, the same for every N, and the
    lr schedule runs to its end at that count."""
    from dreamchat.models import research

    clock = iter(range(0, 10_000))  # each perf_counter call advances one "second"
    monkeypatch.setattr(research.time, "perf_counter", lambda: float(next(clock)))
    cfg = ExperimentConfig(task="rule110", steps=1000, batch_size=2, warmup=5, minutes=5.0, lr=1e-3)
    data = make_episodes(TASK, [0, 1], 64, seed=3)
    trainers = [research._Trainer(tiny_model(), cfg, n) for n in (1, 2)]
    lrs = []
    monkeypatch.setattr(research, "_lr_at", lambda step, c: lrs.append((step, c.steps)) or 1e-3)
    steps = research.train_lockstep(trainers, data, cfg, "cpu")
    assert research.SIZING_STEPS < steps < 1000  # sized by the budget, not the cap
    assert all(len(t.curve) == len(trainers[0].curve) for t in trainers)
    assert lrs[-1] == (steps - 1, steps)  # the schedule was planned for the steps actually run
    assert trainers[0].curve[-1]["step"] == trainers[1].curve[-1]["step"] == steps - 1
