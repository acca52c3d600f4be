"""Run by test_trainers under `torchrun --nproc_per_node 2`: tiny GPT training with gloo DDP on the CPU."""

import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).parent))
from test_trainers import TINY_GPT, gpt_items  # noqa: E402

from myna.train import loop  # noqa: E402
from myna.train.config import GPTTrainConfig  # noqa: E402
from myna.train.gpt_trainer import GPTTrainer  # noqa: E402

torch.set_num_threads(1)
ctx = loop.setup_distributed("cpu")
settings = GPTTrainConfig(epochs=2, batch_size=1, learning_rate=1e-3)
trainer = GPTTrainer(TINY_GPT, settings, ctx=ctx)
steps = loop.run(trainer, gpt_items(4), settings, Path(sys.argv[1]), "gpt", progress=None, ctx=ctx)
weights = trainer.model.ar_predict_layer.weight.detach().clone()
gathered = [torch.zeros_like(weights) for _ in range(ctx.world)]
torch.distributed.all_gather(gathered, weights)
same = all(torch.equal(gathered[0], w) for w in gathered)
(Path(sys.argv[1]) / f"rank{ctx.rank}.txt").write_text(f"world {ctx.world} steps {steps} same {same}")
loop.finish_distributed(ctx)
