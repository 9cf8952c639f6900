"""Two-process training with torchrun (gloo on the CPU): DDP and FSDP (ZeRO-2).

Run as a script, this file is the worker torchrun starts on every rank.
"""

import json
import os
import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file
from test_train import ToyData, ToyModel, collate, toy_config

STEPS = 4


def worker(out: Path) -> None:
    from mimo_edu.train.distributed import cleanup, init_distributed
    from mimo_edu.train.trainer import Trainer

    rank = init_distributed().rank
    result = {}
    for strategy in ("ddp", "fsdp"):
        cfg = toy_config(max_steps=STEPS, batch_size=4, strategy=strategy)
        trainer = Trainer(ToyModel(dropout=0.0), ToyData(), cfg, out / strategy, collate)
        result[strategy] = [r["loss"] for r in trainer.train()]
        if strategy == "ddp":
            torch.save(trainer.raw_model.state_dict(), out / f"ddp_params_rank{rank}.pt")
    (out / f"losses_rank{rank}.json").write_text(json.dumps(result))
    cleanup()


def test_two_processes_keep_identical_weights_and_match_one_process(tmp_path):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(Path(__file__).parent)}
    torchrun = Path(sys.executable).with_name("torchrun")
    cmd = [str(torchrun), "--standalone", "--nproc_per_node=2", __file__, str(tmp_path)]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-3000:]

    ranks = [torch.load(tmp_path / f"ddp_params_rank{r}.pt", weights_only=True) for r in range(2)]
    assert all(torch.equal(ranks[0][k], ranks[1][k]) for k in ranks[0])
    losses = [json.loads((tmp_path / f"losses_rank{r}.json").read_text()) for r in range(2)]
    assert losses[0] == losses[1]  # both ranks log the loss averaged over ranks

    # 2 ranks x batch 4 read the same samples per step as 1 process x batch 8: same training.
    from mimo_edu.train.trainer import Trainer

    single = Trainer(ToyModel(dropout=0.0), ToyData(), toy_config(max_steps=STEPS, batch_size=8), None, collate)
    single_losses = [r["loss"] for r in single.train()]
    torch.testing.assert_close(losses[0]["ddp"], single_losses, rtol=1e-5, atol=1e-6)
    torch.testing.assert_close(losses[0]["fsdp"], single_losses, rtol=1e-5, atol=1e-6)
    final = {k: v for k, v in single.raw_model.state_dict().items() if k.startswith("head")}
    torch.testing.assert_close({k: ranks[0][k] for k in final}, final, rtol=1e-5, atol=1e-6)
    fsdp_ckpt = load_file(tmp_path / "fsdp" / "step-0000004" / "trainable.safetensors")  # gathered from shards
    torch.testing.assert_close({k: fsdp_ckpt[k] for k in final}, final, rtol=1e-5, atol=1e-6)


if __name__ == "__main__":
    worker(Path(sys.argv[1]))
