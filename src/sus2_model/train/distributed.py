"""Data-parallel training under ``torchrun``: one process per device, gradients averaged with all-reduce.

The model's forces come from an inner ``autograd.grad`` with ``create_graph=True``; the gradients of the parameters
are averaged explicitly after each backward pass (the same collective DistributedDataParallel uses), which also works
inside L-BFGS closures that run several passes per step.

The full-batch (L-BFGS) objective is a sum over minibatches that every rank splits the same way.  An all-reduce of
each rank's partial sum adds those terms in another order than a single process does, so float64 rounding differs in
the last bits (measured: 1e-16 to 1e-13 relative in the first gradient); L-BFGS and the closed-form refit (normal
equations with a condition number near 1e9) amplified that to up to 9e-6 relative in the exported coefficients.
:func:`take_batch` and :func:`sum_batches` keep each minibatch's contribution apart and add them in global batch order
on every rank, as one process does: same partition, same bits, whatever the number of processes (on CPUs; CUDA's
atomic ``index_add_`` in each backward pass is not bitwise reproducible by itself).
"""

from __future__ import annotations

import os

import torch
import torch.distributed as dist


def setup(device: str) -> tuple[int, int]:
    """Join the process group when started by ``torchrun`` (``WORLD_SIZE`` > 1); returns (rank, world size)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return 0, 1
    if not dist.is_initialized():
        backend = "nccl" if str(device).startswith("cuda") else "gloo"
        dist.init_process_group(backend=backend)
        if str(device).startswith("cuda"):
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", "0")))
    return dist.get_rank(), dist.get_world_size()


def average_gradients(model: torch.nn.Module) -> None:
    """Sum the parameter gradients over all processes (each rank pre-scales its share)."""
    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    params = [p for p in model.parameters() if p.requires_grad]
    for p in params:
        if p.grad is None:  # a rank whose share left this parameter untouched still takes part
            p.grad = torch.zeros_like(p)
    grads = [p.grad for p in params]
    flat = torch.cat([g.reshape(-1) for g in grads])
    dist.all_reduce(flat)
    offset = 0
    for g in grads:
        g.copy_(flat[offset:offset + g.numel()].view_as(g))
        offset += g.numel()


def take_batch(params: list[torch.Tensor], value: torch.Tensor) -> torch.Tensor:
    """One minibatch's contribution for :func:`sum_batches`: the flat gradient that its backward pass left in
    ``params``' ``.grad`` (then reset to ``None``, so the next pass starts from nothing), followed by ``value``, its
    loss; in float64 whatever the parameters' dtype."""
    flat = torch.cat([(p.grad if p.grad is not None else torch.zeros_like(p)).reshape(-1).to(torch.float64)
                      for p in params] + [value.detach().reshape(1).to(device=params[0].device, dtype=torch.float64)])
    for p in params:
        p.grad = None
    return flat


def sum_batches(params: list[torch.Tensor], rows: list[torch.Tensor], n_batches: int) -> float:
    """Sum the contributions of all ``n_batches`` minibatches into ``params``' ``.grad``; returns the summed value.

    ``rows`` are this rank's, from :func:`take_batch`, for the global batches ``rank, rank + world, ...`` in order.  An
    all-reduce gathers them into one (n_batches, width) table, exactly: each row has one non-zero contributor and
    x + 0 == x.  Every rank then adds the rows in batch order 0, 1, 2, ...: the same additions as a single process
    makes, so the result is bitwise the same on every rank and for any number of processes."""
    world = dist.get_world_size() if dist.is_available() and dist.is_initialized() else 1
    rank = dist.get_rank() if world > 1 else 0
    table = torch.zeros(n_batches, sum(p.numel() for p in params) + 1, dtype=torch.float64, device=params[0].device)
    if rows:  # a rank may hold no batch when there are fewer batches than ranks
        table[rank::world] = torch.stack(rows)
    if world > 1:
        dist.all_reduce(table)
    total = table.new_zeros(table.shape[1])
    for row in table:  # 0 + x == x: the first addition is exact
        total += row
    offset = 0
    for p in params:
        p.grad = total[offset:offset + p.numel()].view_as(p).to(p.dtype).clone()
        offset += p.numel()
    return float(total[-1])
