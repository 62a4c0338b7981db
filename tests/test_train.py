"""Training of the memory model: the objective, a toy recall task that must be learned, checkpoints,
resume, and two DistributedDataParallel processes on CPU (gloo).

The feature sets here are synthetic (no backbone): a 300-token vocabulary with random embeddings, the
"hidden state" of a token is its embedding plus noise, day 1 states key -> value pairs among filler
tokens, and a probe asks the key again; the target is the value. Keys and values are drawn fresh per
episode, so only a memory that copies can score.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from dreamchat.models import train as T
from dreamchat.models.episodes import make_episodes
from dreamchat.models.features import FeatureCache, CachedSequence
from dreamchat.models.train_data import (EpisodeRef, FeatureSet, ProbeRef, make_batch, with_extra_nights,
                                         with_history_nights,
                                         wording_vocabulary, write_index)

V, D = 300, 32
TINY = {"d_model": 32, "n_heads": 2, "head_dim": 16, "copy_heads": 2, "copy_key_dim": 16,
        "key_window": 1, "query_window": 1, "n_wording": 8}


def write_toy_set(folder: Path, n_episodes: int, seed: int, emb: np.ndarray, filler_day: bool = False) -> Path:
    """Episodes: day 0 = filler with 2 (marker, key, value) triples; probe = marker key -> value.
    With filler_day, a day of ordinary text (recorded as a filler) lies between them."""
    rng = np.random.default_rng(seed)
    marker, end = 5, 6
    hid = lambda toks: (emb[toks] * 3 + rng.normal(0, 0.1, (len(toks), D))).astype(np.float16)
    seqs, refs = {}, []
    for e in range(n_episodes):
        filler = list(rng.integers(20, V, 12))
        pairs = [(int(k), int(v)) for k, v in rng.integers(20, V, (2, 2))]
        day = filler[:4] + [marker, *pairs[0]] + filler[4:8] + [marker, *pairs[1]] + filler[8:]
        day = np.asarray(day, np.int64)
        seqs[f"e{e}/d0"] = CachedSequence(day, hid(day), np.zeros(len(day), np.float32), np.zeros(len(day), np.float32))
        small = np.asarray(list(rng.integers(20, V, 8)), np.int64)           # day 1: ordinary text
        w = np.zeros(len(small), np.float32)
        w[2:6] = 0.3
        seqs[f"e{e}/d1"] = CachedSequence(small, hid(small), w, np.zeros(len(small), np.float32))
        ref = EpisodeRef(days=[f"e{e}/d0", f"e{e}/d1"])
        if filler_day:
            other = np.asarray(list(rng.integers(20, V, 10)), np.int64)
            seqs[f"e{e}/d2"], seqs[f"e{e}/d1"] = seqs[f"e{e}/d1"], CachedSequence(
                other, hid(other), np.where(np.arange(10) % 2, 0.3, 0).astype(np.float32), np.zeros(10, np.float32))
            ref = EpisodeRef(days=[f"e{e}/d0", f"e{e}/d1", f"e{e}/d2"], fillers=[f"e{e}/d1"])
        for j, (k, v) in enumerate(pairs):
            toks = np.asarray([7, 8, marker, k, v, end], np.int64)
            w = np.zeros(len(toks), np.float32)
            w[3] = 3.0                                                        # predict v from k
            w[4] = 1.0                                                        # then the end token
            seqs[f"e{e}/p{j}"] = CachedSequence(toks, hid(toks), w, np.zeros(len(toks), np.float32))
            ref.probes.append(ProbeRef(f"e{e}/p{j}", day=len(ref.days) - 1, kind="fact", answer=str(v)))
        refs.append(ref)
    # exact log-sum-exp of the "backbone" logits h E^T where a loss is taken
    for s in seqs.values():
        at = np.nonzero(s.weight)[0]
        z = s.hidden[at].astype(np.float32) @ emb.T
        s.lse[at] = np.log(np.exp(z - z.max(1, keepdims=True)).sum(1)) + z.max(1)
    cache = FeatureCache(folder.parent, folder.name)
    cache.write_shard(0, seqs)
    write_index(cache.dir, refs, emb, backbone_fingerprint="toy")
    return cache.dir


@pytest.fixture(scope="module")
def toy(tmp_path_factory):
    emb = np.random.default_rng(0).normal(0, 1, (V, D)).astype(np.float32)
    root = tmp_path_factory.mktemp("features")
    return write_toy_set(root / "train", 64, 1, emb), write_toy_set(root / "test", 24, 2, emb)


def args_for(train_dir, eval_dir, out, **kw) -> argparse.Namespace:
    parser = argparse.ArgumentParser()
    parser.add_argument("--model", default=None)
    T.add_arguments(parser)
    argv = ["--data", str(train_dir), "--eval-data", str(eval_dir), "--out", str(out), "--no-progress",
            "--config", json.dumps(TINY), "--threads", "1", "--device", "cpu"]
    for k, v in kw.items():   # a trailing _2, _3 repeats an option ("train_only_2")
        argv += [f"--{k.rstrip('_0123456789').replace('_', '-')}"] + ([] if v is True else [str(v)])
    return parser.parse_args(argv)


def test_position_loss_equals_full_softmax(toy):
    """The restricted-column CE equals the plain full-vocabulary CE of z + dense bias."""
    from dreamchat.models.memory import MemoryConfig, MemoryModel
    fs = FeatureSet(toy[0])
    torch.manual_seed(0)
    words = wording_vocabulary(fs, TINY["n_wording"])
    model = MemoryModel(MemoryConfig(n_embd=D, n_vocab=V, **{**TINY, "n_wording": len(words)}),
                        fs.embeddings, wording_ids=words)
    with torch.no_grad():
        model.copy_log_scale.fill_(3.0)
        model.gate.bias.fill_(0.0)
    obj = T._objective_class()(model, fs.embeddings)
    batch = make_batch(fs, [0, 1, 2], torch.device("cpu"))
    states = obj.nights(batch, passes=2)
    st = {k: torch.stack([s[k] for s in states])[batch["probe_day"], batch["probe_episode"]] for k in states[0]}
    gate, read, wording = model.wake_features(batch["p_hidden"].float(), batch["p_tokens"], st)
    at = batch["p_weight"][:, :-1].nonzero(as_tuple=True)
    h, tgt, w = batch["p_hidden"][at].float(), batch["p_tokens"][:, 1:][at], batch["p_weight"][at]
    written = st["copy.written"][at[0]]
    got = obj.position_loss(h, batch["p_lse"][at], tgt, w, gate[at], read[at], wording[at], written)
    logits = h @ obj.E_raw.t() + model.dense_bias(gate[at], read[at], wording[at], written)
    want = -(torch.log_softmax(logits, -1).gather(1, tgt[:, None]).squeeze(1) * w).sum()
    assert float(written.sum()) > 0 and float((logits - h @ obj.E_raw.t()).detach().abs().max()) > 0.1
    assert torch.allclose(got, want, rtol=1e-4, atol=1e-3)

    # The KL term, also from the restricted columns, equals the dense KL(backbone || fused).
    # (The toy backbone is nearly one-hot; a softened copy of its hidden states makes the KL visible.)
    hs = 0.02 * h
    z = hs @ obj.E_raw.t()
    lse = torch.logsumexp(z, -1)
    args = (tgt, w, gate[at], read[at], wording[at], written)
    got_kl = obj.position_loss(hs, lse, *args, kl_weight=0.5) - obj.position_loss(hs, lse, *args)
    fused = z + model.dense_bias(gate[at], read[at], wording[at], written)
    dense_kl = (torch.softmax(z, -1) * (torch.log_softmax(z, -1) - torch.log_softmax(fused, -1))).sum(-1).detach()
    assert float(dense_kl.min()) >= -1e-5 and float(dense_kl.max()) > 1e-3
    assert torch.allclose(got_kl, 0.5 * (dense_kl * w).sum(), rtol=1e-3, atol=1e-3)


def test_training_learns_to_copy_and_resumes(toy, tmp_path):
    out = tmp_path / "toy.safetensors"
    assert T.run(args_for(*toy, out, steps=150, batch=16, lr=1e-2, passes="1,2", eval_passes=2,
                          ckpt_every=100)) == 0
    summary = json.loads(out.with_name(out.name + ".json").read_text())
    ev = summary["eval_passes_2"]
    # held-out keys and values: chance is ~1/300; the backbone alone cannot know the value
    assert ev["backbone_recall"] < 0.1
    assert ev["recall"] >= 0.2, ev                    # ~0.3 after 150 steps; chance is 1/300
    assert ev["wiped_recall"] < 0.1
    from dreamchat.models.memory import MemoryModel
    fs = FeatureSet(toy[0])
    model = MemoryModel.load(out, fs.embeddings)
    assert model.fingerprint == summary["fingerprint"]
    # the benchmark script reports the same held-out recall, from the weights or the checkpoint
    script = Path(__file__).parents[1] / "benchmarks" / "eval_teacher_forced.py"
    for weights in (out, out.with_name(out.name + ".ckpt")):
        lines = subprocess.run([sys.executable, str(script), str(weights), str(toy[1]), "--passes", "2"],
                               capture_output=True, text=True, check=True).stdout.splitlines()
        printed = json.loads(lines[-1])
        assert printed["passes"] == 2 and printed["recall"] == pytest.approx(ev["recall"]), printed
    # resume: the checkpoint holds step 150; asking for 160 steps trains 10 more
    assert T.run(args_for(*toy, out, steps=160, batch=16, resume=True)) == 0
    assert json.loads(out.with_name(out.name + ".json").read_text())["steps"] == 160


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


DDP_SCRIPT = """
import sys
sys.path.insert(0, {tests!r})
from test_train import args_for
from dreamchat.models import train as T
args = args_for({train!r}, {test!r}, {out!r}, steps=4, batch=8, passes="1,2")
args.eval_data = None
sys.exit(T.run(args))
"""


def _run_as_two_ranks(script: Path) -> None:
    """Run `script` as torchrun would with --nproc_per_node 2 (gloo on the loopback) and wait."""
    env = dict(os.environ, MASTER_ADDR="127.0.0.1", MASTER_PORT=str(_free_port()), WORLD_SIZE="2",
               OMP_NUM_THREADS="1")
    procs = [subprocess.Popen([sys.executable, str(script)], env=dict(env, RANK=str(r), LOCAL_RANK=str(r)),
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT) for r in range(2)]
    outputs = [p.communicate(timeout=240)[0].decode() for p in procs]
    assert [p.returncode for p in procs] == [0, 0], outputs


def test_two_ddp_processes_on_cpu(toy, tmp_path):
    """torchrun-style: two gloo processes train 4 steps; the weights of both ranks stay identical."""
    out = tmp_path / "ddp.safetensors"
    script = tmp_path / "ddp_run.py"
    script.write_text(DDP_SCRIPT.format(tests=str(Path(__file__).parent), train=str(toy[0]),
                                        test=str(toy[1]), out=str(out)))
    _run_as_two_ranks(script)
    summary = json.loads(out.with_name(out.name + ".json").read_text())
    assert summary["world"] == 2 and summary["steps"] == 4
    assert summary["ranks_in_sync"] is True


BUILD_SCRIPT = """
import sys
from dreamchat.models import train as T
sys.exit(T.main(["--model", {model!r}, "--build-only", "train", "--episodes", "5", "--long-episodes", "0",
                 "--shard-size", "1", "--cache", {cache!r}, "--threads", "1", "--no-progress"]))
"""


def test_processes_split_a_feature_build_into_the_same_set(tiny_gguf, tmp_path):
    """torchrun-style, two processes each decode their share of the shards and rank 0 indexes them:
    the set equals the one a single process builds (on a GPU machine too: building uses no GPU)."""
    script = tmp_path / "build.py"
    script.write_text(BUILD_SCRIPT.format(model=str(tiny_gguf), cache=str(tmp_path / "two")))
    _run_as_two_ranks(script)
    script.write_text(BUILD_SCRIPT.format(model=str(tiny_gguf), cache=str(tmp_path / "one")))
    solo = subprocess.run([sys.executable, str(script)], env=dict(os.environ, OMP_NUM_THREADS="1"),
                          capture_output=True, text=True, timeout=240)
    assert solo.returncode == 0, solo.stderr
    (one,), (two,) = (tmp_path / "one").iterdir(), (tmp_path / "two").iterdir()
    assert one.name == two.name and len(list(two.glob("shard-*.safetensors"))) == 5
    index = json.loads((one / "index.json").read_text())
    assert json.loads((two / "index.json").read_text()) == index and index["settings"]["complete"]
    a, b = FeatureSet(one), FeatureSet(two)
    assert list(a.seqs) == list(b.seqs) and np.array_equal(a.embeddings, b.embeddings)
    for name, s in a.seqs.items():
        t = b.seqs[name]
        assert np.array_equal(s.tokens, t.tokens) and np.array_equal(s.weight, t.weight), name
        assert np.allclose(s.hidden, t.hidden, atol=1e-3) and np.allclose(s.lse, t.lse, atol=1e-3), name


def test_facts_per_day_makes_denser_training_days(tiny_gguf, tmp_path):
    """`--facts-per-day 4,4`: every fact day tells four facts (the default 1,3 tells one to three)."""
    parser = argparse.ArgumentParser()
    T.add_arguments(parser)
    assert parser.parse_args([]).facts_per_day == (1, 3)
    assert parser.parse_args(["--facts-per-day", "3,6"]).facts_per_day == (3, 6)
    for bad in ("0,2", "4,3", "five"):
        with pytest.raises(SystemExit):
            parser.parse_args(["--facts-per-day", bad])

    script = tmp_path / "build.py"
    script.write_text(BUILD_SCRIPT.replace('"--no-progress"', '"--no-progress", "--facts-per-day", "4,4"')
                      .format(model=str(tiny_gguf), cache=str(tmp_path / "dense")))
    run = subprocess.run([sys.executable, str(script)], env=dict(os.environ, OMP_NUM_THREADS="1"),
                         capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr
    (folder,) = (tmp_path / "dense").iterdir()
    episodes = FeatureSet(folder).episodes
    assert len(episodes) == 5
    dense = make_episodes(5, split="train", seed=1, facts_per_day=(4, 4))
    assert [len(ep.probes) for ep in episodes] == [len(ep.probes) for ep in dense]
    assert sum(len(ep.probes) for ep in dense) > sum(len(ep.probes) for ep in make_episodes(5, split="train", seed=1))


def test_binding_adds_episodes_that_need_two_facts_joined(tiny_gguf, tmp_path):
    """`--binding 2`: two binding episodes (make_binding_episodes) spread through the training set;
    `--by-name 1` makes every one of their probes ask by the person's name."""
    from dreamchat.models.episodes import make_binding_episodes

    script = tmp_path / "build.py"
    script.write_text(BUILD_SCRIPT.replace('"--no-progress"', '"--no-progress", "--binding", "2", "--by-name", "1"')
                      .format(model=str(tiny_gguf), cache=str(tmp_path / "bind")))
    run = subprocess.run([sys.executable, str(script)], env=dict(os.environ, OMP_NUM_THREADS="1"),
                         capture_output=True, text=True, timeout=240)
    assert run.returncode == 0, run.stderr
    (folder,) = (tmp_path / "bind").iterdir()
    built = FeatureSet(folder).episodes
    answers = [[p.answer for p in ep.probes] for ep in built]
    plain = [[p.answer for p in ep.probes] for ep in make_episodes(5, split="train", seed=1)]
    binding = [[p.answer for p in ep.probes] for ep in make_binding_episodes(2, split="train", seed=1)]
    assert answers == plain[:2] + binding[:1] + plain[2:4] + binding[1:] + plain[4:]
    by_name = [ep for ep in make_binding_episodes(2, split="train", seed=1, by_name=1.0)]
    assert [[(p.kind, p.combined) for p in built[i].probes] for i in (2, 5)] == \
        [[(p.kind, False) for p in ep.probes] for ep in by_name]
    assert all(p.kind != "combined" for ep in by_name for p in ep.probes)
    assert T.interleaved([1, 2, 3], []) == [1, 2, 3] and T.interleaved([], ["a"]) == ["a"]


def test_several_feature_sets_train_as_one(toy, tmp_path):
    """`--data A --data B`: one set of both folders' episodes, names kept apart, a second backbone refused."""
    from dreamchat.errors import DreamchatError
    one, both = FeatureSet(toy[0]), FeatureSet(toy[0], toy[1])
    assert len(both.episodes) == len(one.episodes) + len(FeatureSet(toy[1]).episodes)
    assert both.episodes[0].days[0] == "0:e0/d0" and both.episodes[-1].days[0].startswith("1:e")
    for ep in both.episodes:
        assert all(n in both.seqs for n in ep.days + [p.name for p in ep.probes])
    # e0 of the two folders are different episodes, both kept
    assert not np.array_equal(both.seqs["0:e0/d0"].tokens, both.seqs["1:e0/d0"].tokens)
    batch = make_batch(both, [0, len(both.episodes) - 1], torch.device("cpu"))
    assert batch["p_tokens"].shape[0] == 4
    # refresh reads again only a folder whose index was rewritten
    assert both.refresh() is False
    kept = both.seqs["0:e0/d0"]
    index_1 = toy[1] / "index.json"
    os.utime(index_1, (index_1.stat().st_atime, index_1.stat().st_mtime + 5))
    assert both.refresh() is True
    assert both.seqs["0:e0/d0"] is kept and len(both.episodes) == len(one.episodes) + 24
    other = write_toy_set(tmp_path / "other", 2, 3, both.embeddings)
    index = json.loads((other / "index.json").read_text())
    (other / "index.json").write_text(json.dumps({**index, "backbone_fingerprint": "another"}))
    with pytest.raises(DreamchatError, match="another backbone"):
        FeatureSet(toy[0], other)
    args = args_for(toy[0], toy[1], tmp_path / "m.safetensors")
    assert args.data == [str(toy[0])]


def test_extra_nights_sleep_other_episodes_filler_days_before_the_questions(toy, tmp_path):
    """with_extra_nights puts cached days of unrelated talk between the facts and the questions:
    the probes then wake from the state after those nights too."""
    fs = FeatureSet(write_toy_set(tmp_path / "f", 6, 4, FeatureSet(toy[0]).embeddings, filler_day=True))
    assert fs.filler_days == [f"e{e}/d1" for e in range(6)]
    ep = fs.episodes[0]
    longer = with_extra_nights(ep, ["e3/d1", "e5/d1"])
    assert longer.days == ["e0/d0", "e0/d1", "e3/d1", "e5/d1", "e0/d2"]
    assert [p.day for p in longer.probes] == [4, 4] and [p.day for p in ep.probes] == [2, 2]  # ep untouched
    assert longer.fillers == ["e0/d1", "e3/d1", "e5/d1"]
    assert with_extra_nights(ep, []) is ep
    batch = make_batch(fs, [longer, 1], torch.device("cpu"))
    assert len(batch["days"]) == 5 and batch["probe_day"].tolist() == [4, 4, 2, 2]
    assert batch["days"][3]["tokens"][0, :10].tolist() == fs.seqs["e5/d1"].tokens.tolist()
    assert batch["days"][3]["present"].tolist() == [True, False]     # episode 1 has only 3 days


def test_history_nights_sleep_other_episodes_filler_days_before_the_facts(toy, tmp_path):
    """with_history_nights puts cached days of unrelated talk before the episode's first day: the
    facts are written into a memory that already holds them."""
    fs = FeatureSet(write_toy_set(tmp_path / "f", 6, 4, FeatureSet(toy[0]).embeddings, filler_day=True))
    ep = fs.episodes[0]
    longer = with_history_nights(ep, ["e3/d1", "e5/d1"])
    assert longer.days == ["e3/d1", "e5/d1", "e0/d0", "e0/d1", "e0/d2"]
    assert [p.day for p in longer.probes] == [4, 4] and [p.day for p in ep.probes] == [2, 2]  # ep untouched
    assert longer.fillers == ["e3/d1", "e5/d1", "e0/d1"]
    assert with_history_nights(ep, []) is ep
    both = with_history_nights(with_extra_nights(ep, ["e4/d1"]), ["e2/d1"])
    assert both.days == ["e2/d1", "e0/d0", "e0/d1", "e4/d1", "e0/d2"] and both.probes[0].day == 4
    batch = make_batch(fs, [longer, 1], torch.device("cpu"))
    assert len(batch["days"]) == 5 and batch["probe_day"].tolist() == [4, 4, 2, 2]
    assert batch["days"][0]["tokens"][0, :10].tolist() == fs.seqs["e3/d1"].tokens.tolist()


def test_training_with_extra_nights(toy, tmp_path, monkeypatch, capsys):
    """--extra-nights lengthens the drawn episodes with filler days of the set; a set that records
    none is a one-line error saying how to add them."""
    fillers = write_toy_set(tmp_path / "f", 16, 5, FeatureSet(toy[0]).embeddings, filler_day=True)
    seen = []
    real = T.make_batch
    monkeypatch.setattr(T, "make_batch", lambda fs, eps, device, turns=None: seen.append(
        [len(e.days) if isinstance(e, EpisodeRef) else len(fs.episodes[e].days) for e in eps])
        or real(fs, eps, device, turns))
    out = tmp_path / "m.safetensors"
    assert T.run(args_for(fillers, toy[1], out, steps=3, batch=4, extra_nights=3, extra_chance=1.0)) == 0
    lengths = [n for step in seen[:3] for n in step]
    assert len(lengths) == 12 and all(4 <= n <= 6 for n in lengths) and len(set(lengths)) > 1
    assert T.main(["--data", str(toy[0]), "--out", str(out), "--extra-nights", "2", "--device", "cpu"]) == 1
    assert "run each set's build command again" in capsys.readouterr().err
    seen.clear()
    assert T.run(args_for(fillers, toy[1], out, steps=3, batch=4, history_nights=2, history_chance=1.0)) == 0
    lengths = [n for step in seen[:3] for n in step]
    assert len(lengths) == 12 and all(4 <= n <= 5 for n in lengths) and len(set(lengths)) > 1
    assert T.main(["--data", str(toy[0]), "--out", str(out), "--history-nights", "2", "--device", "cpu"]) == 1
    assert "--history-nights needs feature sets" in capsys.readouterr().err


def test_app_writes_leave_the_replies_and_the_system_prompts_own_words_unwritten(toy, tmp_path, tiny_gguf, capsys):
    """With the backbone's turn markers, a training sleep writes no value where the app's sleep
    writes none: the tower still reads every position, only their "next" token is withheld."""
    from dreamchat.models.features import ChatTurns
    from dreamchat.models.memory import MemoryConfig, MemoryModel
    fs = FeatureSet(toy[0])
    turns = ChatTurns(start=1, end=2, roles=(("system", (3,)), ("user", (4,)), ("assistant", (9,))))
    #                 system: "be kind"    user: "cat Pickle"     reply: "Pickle nice"
    day = np.asarray([1, 3, 40, 41, 2, 10, 1, 4, 50, 51, 2, 10, 1, 9, 51, 60, 2, 10], np.int64)
    hid = fs.embeddings[day].astype(np.float16)
    fs.seqs["chat/d0"] = CachedSequence(day, hid, np.zeros(len(day), np.float32), np.zeros(len(day), np.float32))
    ref = EpisodeRef(days=["chat/d0"])
    plain = make_batch(fs, [ref], torch.device("cpu"))["days"][0]
    quiet = make_batch(fs, [ref], torch.device("cpu"), turns)["days"][0]
    unwritten = turns.unwritten(day)
    assert unwritten[12:16].all() and not unwritten[5:12].any()        # the reply's turn; the user's is written
    assert unwritten[:5].tolist() == [True, True, True, False, False]   # the system turn's words; its end is said elsewhere
    assert torch.equal(quiet["valid"], plain["valid"]) and torch.equal(quiet["tokens"], plain["tokens"])
    assert quiet["next"][0, torch.from_numpy(unwritten)].eq(-1).all()
    assert torch.equal(quiet["next"][0, torch.from_numpy(~unwritten)], plain["next"][0, torch.from_numpy(~unwritten)])
    # the night's written-token set: the reply's own word (60) only without the markers
    torch.manual_seed(0)
    words = wording_vocabulary(fs, TINY["n_wording"])
    model = MemoryModel(MemoryConfig(n_embd=D, n_vocab=V, **{**TINY, "n_wording": len(words)}), fs.embeddings,
                        wording_ids=words)
    obj = T._objective_class()(model, fs.embeddings)
    written = lambda b: obj.nights(b, passes=1)[1]["copy.written"][0]
    assert written(make_batch(fs, [ref], torch.device("cpu")))[60] > 0
    with_turns = written(make_batch(fs, [ref], torch.device("cpu"), turns))
    assert with_turns[60] == 0 and with_turns[51] > 0                  # "Pickle", as the user said it
    # features of another backbone: one line that names --model
    out = tmp_path / "w.safetensors"
    assert T.main(["--model", str(tiny_gguf), "--data", str(toy[0]), "--out", str(out), "--app-writes",
                   "--steps", "1", "--device", "cpu", "--no-progress"]) == 1
    assert "is not the backbone these features were built from; give that one with --model" in capsys.readouterr().err


def test_an_index_built_before_fillers_were_recorded_gets_them(toy, tmp_path):
    """Building a set that is already on disk records its filler days in the index (sets built by
    earlier versions), and only when the episodes match the index day for day."""
    from types import SimpleNamespace
    from dreamchat.models.train_data import _record_fillers
    folder = write_toy_set(tmp_path / "old", 3, 6, FeatureSet(toy[0]).embeddings, filler_day=True)
    path = folder / "index.json"
    index = json.loads(path.read_text())
    for e in index["episodes"]:
        del e["fillers"]
    path.write_text(json.dumps(index))
    assert FeatureSet(folder).filler_days == []
    mismatched = [SimpleNamespace(days=[[], []], fillers=[]) for _ in range(3)]
    _record_fillers(path, json.loads(path.read_text()), mismatched)
    assert "fillers" not in json.loads(path.read_text())["episodes"][0]
    _record_fillers(path, json.loads(path.read_text()),
                    [SimpleNamespace(days=[[], [], []], fillers=[1]) for _ in range(3)])
    assert FeatureSet(folder).filler_days == ["e0/d1", "e1/d1", "e2/d1"]


def test_training_device_is_the_gpu_when_there_and_mistakes_are_one_line(toy, tmp_path, monkeypatch, capsys):
    """auto = this process's own GPU when CUDA is there, else the CPU; --device cuda without CUDA, or
    more processes than GPUs, is a one-line error that says what to do, not a crash in NCCL."""
    from dreamchat.errors import DreamchatError
    assert T._device("cpu", 0) == torch.device("cpu")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    assert T._device("auto", 0) == torch.device("cpu")
    # as torchrun runs it (python -m dreamchat.models.train): one line on stderr, exit status 1
    assert T.main(["--data", str(toy[0]), "--out", str(tmp_path / "w.safetensors"), "--device", "cuda"]) == 1
    assert capsys.readouterr().err == ("dreamchat train: --device cuda, but torch sees no CUDA device; "
                                       "train with --device cpu (or auto)\n")
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 1)
    assert T._device("auto", 0) == torch.device("cuda", 0)
    assert T._device("cpu", 1) == torch.device("cpu")      # CPU processes on a GPU machine (gloo)
    with pytest.raises(DreamchatError, match=r"process 1 has no GPU.*--nproc_per_node 1\) or train with --device cpu"):
        T._device("auto", 1)


def test_chat_option_takes_a_probability(tmp_path, capsys):
    args = args_for("A", "B", tmp_path / "m.safetensors", chat=0.8)
    assert args.chat == 0.8
    for bad in ("1.5", "-0.1", "often"):
        with pytest.raises(SystemExit):
            args_for("A", "B", tmp_path / "m.safetensors", chat=bad)
        assert "must be a probability between 0 and 1" in capsys.readouterr().err


def test_init_grows_copy_keys_and_windows_without_changing_outputs(toy, tmp_path):
    """--init with wider copy keys and windows and a hidden-state path starts from the old model's
    predictions (to 1e-4), and then trains (the new query rows and the hidden-state projection, zero
    at first, receive a gradient)."""
    from dreamchat.models.memory import MemoryConfig, MemoryModel, grow_into
    out = tmp_path / "small.safetensors"
    assert T.run(args_for(*toy, out, steps=40, batch=8, lr=1e-2, passes="1,2", eval_passes=2)) == 0
    fs = FeatureSet(toy[0])
    small = MemoryModel.load(out, fs.embeddings)
    wide_cfg = MemoryConfig(**{**vars(small.config), "copy_key_dim": 24, "key_window": 2, "query_window": 3,
                               "copy_hidden": True})
    wide = MemoryModel(wide_cfg, fs.embeddings, wording_ids=small.wording_ids.tolist())
    grow_into(wide, small.state_dict(), small.config)
    obj_small, obj_wide = T._objective_class()(small, fs.embeddings), T._objective_class()(wide, fs.embeddings)
    batch = make_batch(fs, [0, 1, 2, 3], torch.device("cpu"))
    with torch.no_grad():
        for m, obj in ((small, obj_small), (wide, obj_wide)):
            states = obj.nights(batch, passes=2)
            st = {k: torch.stack([s[k] for s in states])[batch["probe_day"], batch["probe_episode"]]
                  for k in states[0]}
            m.result = m.wake_features(batch["p_hidden"].float(), batch["p_tokens"], st)
    for a, b in zip(small.result, wide.result):
        assert torch.allclose(a, b, atol=1e-4), float((a - b).abs().max())
    with pytest.raises(ValueError, match="n_heads differs"):
        grow_into(MemoryModel(MemoryConfig(**{**vars(small.config), "n_heads": 4, "head_dim": 8}), fs.embeddings,
                              wording_ids=small.wording_ids.tolist()), small.state_dict(), small.config)

    # the CLI path: train on from the small weights with wider keys
    grown = tmp_path / "grown.safetensors"
    assert T.run(args_for(*toy, grown, steps=5, batch=8, passes="1", eval_passes=1, init=out,
                          config=json.dumps({**TINY, "copy_key_dim": 24, "key_window": 2,
                                             "copy_hidden": True}))) == 0
    model = MemoryModel.load(grown, fs.embeddings)
    assert (model.config.copy_key_dim, model.config.key_window, model.config.query_window) == (24, 2, 1)
    assert model.config.copy_hidden and float(model.copy.hidden_proj.weight.detach().abs().max()) > 0

    # a new copy_key_power keeps every weight and is what the run trains with
    squared = tmp_path / "squared.safetensors"
    assert T.run(args_for(*toy, squared, steps=3, batch=8, passes="1", eval_passes=1, init=out,
                          config=json.dumps({**TINY, "copy_key_power": 2}))) == 0
    assert MemoryModel.load(squared, fs.embeddings).config.copy_key_power == 2
    # ... and stays what the weights have when --config does not name it (fine-tuning squared keys
    # once went on with linear ones); naming it changes it back
    kept, back = tmp_path / "kept.safetensors", tmp_path / "back.safetensors"
    assert T.run(args_for(*toy, kept, steps=2, batch=8, passes="1", eval_passes=1, init=squared,
                          config=json.dumps(TINY))) == 0
    assert MemoryModel.load(kept, fs.embeddings).config.copy_key_power == 2
    assert T.run(args_for(*toy, back, steps=2, batch=8, passes="1", eval_passes=1, init=squared,
                          config=json.dumps({**TINY, "copy_key_power": 1}))) == 0
    assert MemoryModel.load(back, fs.embeddings).config.copy_key_power == 1

    # --train-only: the new projection learns, every other slow weight stays as loaded
    only = tmp_path / "only.safetensors"
    assert T.run(args_for(*toy, only, steps=5, batch=8, passes="1", eval_passes=1, init=out,
                          config=json.dumps({**TINY, "copy_hidden": True}), train_only="copy.hidden_proj")) == 0
    tuned = MemoryModel.load(only, fs.embeddings)
    assert float(tuned.copy.hidden_proj.weight.detach().abs().max()) > 0
    before = small.state_dict()
    assert all(torch.equal(t, before[k]) for k, t in tuned.state_dict().items() if k in before)
    with pytest.raises(Exception, match="matches no slow weight"):
        T.run(args_for(*toy, tmp_path / "x.safetensors", steps=1, init=out, train_only="no.such.weight"))
    # ... which, when only wake-time weights train, still reads the memories its start made; a
    # fine-tune of anything a sleep uses does not (the grown one above neither: its config changed)
    assert tuned.reads_memories_of == ()
    gated = tmp_path / "gated.safetensors"
    assert T.run(args_for(*toy, gated, steps=3, batch=8, passes="1", eval_passes=1, init=out,
                          train_only="gate.", train_only_2="copy.query")) == 0
    assert MemoryModel.load(gated, fs.embeddings).reads_memories_of == (small.fingerprint,)
    again = tmp_path / "again.safetensors"   # the list carries on through a second fine-tune
    assert T.run(args_for(*toy, again, steps=2, batch=8, passes="1", eval_passes=1, init=gated,
                          train_only="wording.")) == 0
    gated_fp = MemoryModel.load(gated, fs.embeddings).fingerprint
    assert MemoryModel.load(again, fs.embeddings).reads_memories_of == (gated_fp, small.fingerprint)
    towered = tmp_path / "towered.safetensors"
    assert T.run(args_for(*toy, towered, steps=2, batch=8, passes="1", eval_passes=1, init=out,
                          train_only="gate.", train_only_2="tower.")) == 0
    assert MemoryModel.load(towered, fs.embeddings).reads_memories_of == ()
    new_rows = model.copy.query_proj.weight.detach().view(model.config.copy_heads, 24, -1)[:, TINY["copy_key_dim"]:]
    assert float(new_rows.abs().max()) > 0                     # the zero-initialised query rows learned
    assert torch.equal(model.wording_ids, small.wording_ids)
    with pytest.raises(Exception, match="no memory weights"):
        T.run(args_for(*toy, tmp_path / "x.safetensors", steps=1, init=tmp_path / "missing.safetensors"))
    (tmp_path / "junk.safetensors").write_bytes(b"not weights")
    with pytest.raises(Exception, match="not readable memory weights"):
        T.run(args_for(*toy, tmp_path / "x.safetensors", steps=1, init=tmp_path / "junk.safetensors"))


def test_dropout_acts_only_while_training_and_leaves_the_fingerprint(toy):
    from dreamchat.models.memory import MemoryConfig, MemoryModel
    fs = FeatureSet(toy[0])
    torch.manual_seed(0)
    model = MemoryModel(MemoryConfig(n_embd=D, n_vocab=V, **{**TINY, "n_wording": 1}), fs.embeddings,
                        wording_ids=[0])
    before = model.fingerprint
    h, tok = torch.randn(1, 6, D), torch.randint(0, V, (1, 6))
    model.input_dropout = 0.5
    model.train()
    assert not torch.allclose(model.inputs(h, tok), model.inputs(h, tok))
    model.eval()
    assert torch.equal(model.inputs(h, tok), model.inputs(h, tok))
    model.input_dropout = 0.0
    assert torch.equal(model.inputs(h, tok), model.eval().inputs(h, tok)) and model.fingerprint == before
