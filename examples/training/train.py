"""A small distributed training script for TrainingJob: DDP over gloo (CPU) or nccl (GPU).

It fits a two-layer network to synthetic data (generated from a seed, so nothing is
downloaded), and uses `dataworks.training` for what a TrainingJob needs from a script:
- resume from the latest valid checkpoint (model, optimizer and RNG state), so a gang
  restart continues where the last checkpoint left off and reaches the same loss;
- an atomic checkpoint every `HYPERPARAM_CHECKPOINT_EVERY` epochs (rank 0 writes);
- a checkpoint on SIGTERM (suspend, preemption) within the grace period;
- one progress line per epoch from rank 0, which the operator reads into status;
- with `spec.tracking.mlflow`, one MLflow run that every attempt continues, each epoch's
  loss logged once.

Run it with torchrun; a TrainingJob's workers get torchrun's PET_* variables:
    torchrun examples/training/train.py
"""

from __future__ import annotations

import io
import os

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from dataworks import training

EPOCHS = int(os.environ.get("HYPERPARAM_EPOCHS", "6"))
BATCHES = int(os.environ.get("HYPERPARAM_BATCHES", "20"))
BATCH_SIZE = int(os.environ.get("HYPERPARAM_BATCH_SIZE", "32"))
LEARNING_RATE = float(os.environ.get("HYPERPARAM_LEARNING_RATE", "0.05"))
CHECKPOINT_EVERY = int(os.environ.get("HYPERPARAM_CHECKPOINT_EVERY", "1"))
SEED = 1234


def batches(epoch: int, rank: int) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """This rank's shard of one epoch's data: the same tensors whenever the epoch runs."""
    g = torch.Generator().manual_seed(SEED + 1000 * epoch + rank)
    out = []
    for _ in range(BATCHES):
        x = torch.randn(BATCH_SIZE, 8, generator=g)
        y = (x[:, :4].sum(dim=1, keepdim=True) - x[:, 4:].prod(dim=1, keepdim=True)).tanh()
        out.append((x, y))
    return out


def state_bytes(model: nn.Module, optimizer: torch.optim.Optimizer, epoch: int) -> bytes:
    buf = io.BytesIO()
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(), "epoch": epoch}, buf)
    return buf.getvalue()


def main() -> None:
    backend = os.environ.get("DATAWORKS_BACKEND", "gloo")
    dist.init_process_group(backend)
    rank, world = dist.get_rank(), dist.get_world_size()
    torch.manual_seed(SEED)
    model = nn.Sequential(nn.Linear(8, 32), nn.Tanh(), nn.Linear(32, 1))
    optimizer = torch.optim.SGD(model.parameters(), lr=LEARNING_RATE, momentum=0.9)
    directory = training.checkpoint_dir()
    start = 0
    found = training.latest(directory)
    if found is not None:
        saved = torch.load(io.BytesIO(found.read()), weights_only=True)
        model.load_state_dict(saved["model"])
        optimizer.load_state_dict(saved["optimizer"])
        start = int(saved["epoch"]) + 1
    print(f"rank {rank}/{world} attempt {training.attempt()} starts at epoch {start}", flush=True)
    params = {"epochs": EPOCHS, "batches": BATCHES, "batch_size": BATCH_SIZE, "learning_rate": LEARNING_RATE}
    tracker = training.Tracker.start(rank, params=params)  # does nothing unless MLflow is configured
    ddp = DistributedDataParallel(model)
    loss_fn = nn.MSELoss()
    mean = float("nan")
    # The state at the last epoch boundary, kept until it is on disk: a SIGTERM mid-epoch saves
    # that (never a half-trained epoch), so a resumed run computes exactly what an uninterrupted one would.
    boundary: tuple[int, bytes] | None = None

    def save_now() -> None:
        if rank == 0 and boundary is not None:
            training.save(directory, boundary[0], 0, boundary[1])

    with training.save_on_sigterm(save_now):
        for epoch in range(start, EPOCHS):
            total = torch.zeros(1)
            for x, y in batches(epoch, rank):
                optimizer.zero_grad()
                loss = loss_fn(ddp(x), y)
                loss.backward()
                optimizer.step()
                total += loss.detach()
            dist.all_reduce(total)
            mean = total.item() / (BATCHES * world)
            if rank == 0:
                boundary = (epoch, state_bytes(model, optimizer, epoch))
                saved = None
                if (epoch + 1) % CHECKPOINT_EVERY == 0 or epoch + 1 == EPOCHS:
                    saved = training.save(directory, epoch, 0, boundary[1], metadata={"loss": mean})
                    boundary = None
                tracker.log_epoch(epoch + 1, loss=mean)
                if saved is not None:
                    tracker.log_checkpoint(saved.path)
                training.report(epoch + 1, EPOCHS, loss=mean, checkpoint=saved, tracking=tracker)
            dist.barrier()
    if rank == 0:
        tracker.finish()
        print(f"final loss {mean!r}", flush=True)
    dist.destroy_process_group()


if __name__ == "__main__":
    main()
