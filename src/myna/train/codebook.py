"""Learning the SoVITS codebook from scratch (fine-tuning keeps it frozen, as upstream does).

The scheme is the usual one for EMA vector quantizers (VQ-VAE-2 / SoundStream / EnCodec, which
upstream's quantizer comes from): the first batch initialises the entries with k-means (k-means++
seeds; the running sums start as centroid x count, so the first EMA step keeps them); after each
step every entry moves to the exponential moving average (decay 0.99) of the vectors assigned to
it, with Laplace-smoothed counts; entries whose average count falls below 2 are re-seeded with
random vectors of the batch, so none stays dead. "Below 2" (upstream's threshold) presumes large GPU
batches; with a CPU batch of a few hundred frames for 1024 entries every count would sit below 2, so
here an entry is dead when its average count falls under 5% of the mean count. The encoder side learns through the commitment
loss and the straight-through gradient `SoVITS.forward_train` already provides.

Batches are masked to their clips' true lengths (padding frames would pull entries towards the
projection of silence). In a multi-process run the counts and sums are summed over processes and
the k-means/re-seeding draws are made on rank 0 and broadcast, so every copy stays identical.
"""

from __future__ import annotations

import torch
from torch import distributed as dist

from myna.models.quantizer import Codebook, ResidualVectorQuantizer

DECAY = 0.99
EPSILON = 1e-5
DEAD_FRACTION = 0.05
KMEANS_ITERS = 10


def valid_vectors(projected: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
    """(B, dim, T) quantizer inputs -> (N, dim) rows within each clip's `lengths` frames."""
    frames = torch.arange(projected.shape[2], device=projected.device)
    mask = frames[None, :] < lengths.to(projected.device)[:, None]
    return projected.transpose(1, 2)[mask].float()


def _synced(tensor: torch.Tensor, op: str) -> torch.Tensor:
    if dist.is_available() and dist.is_initialized() and dist.get_world_size() > 1:
        if op == "sum":
            dist.all_reduce(tensor)
        else:
            dist.broadcast(tensor, src=0)
    return tensor


def kmeans_init(book: Codebook, vectors: torch.Tensor, generator: torch.Generator,
                iters: int = KMEANS_ITERS) -> None:
    """Set the entries to k-means centroids of `vectors` (N, dim); sampled with replacement if N < size."""
    size = book.embed.shape[0]
    centroids = _plus_plus_seeds(vectors, size, generator)
    for _ in range(iters):
        codes = torch.cdist(vectors, centroids).argmin(1)
        counts = torch.bincount(codes, minlength=size).to(vectors.dtype)
        sums = torch.zeros_like(centroids).index_add_(0, codes, vectors)
        used = counts > 0
        centroids[used] = sums[used] / counts[used, None]
    counts = torch.bincount(torch.cdist(vectors, centroids).argmin(1), minlength=size).to(vectors.dtype)
    with torch.no_grad():
        book.embed.copy_(_synced(centroids, "broadcast"))
        book.cluster_size.copy_(_synced(counts, "broadcast"))
        book.embed_avg.copy_(book.embed * book.cluster_size[:, None])  # sums, so avg / size = entry
        book.inited.fill_(1)


def _plus_plus_seeds(vectors: torch.Tensor, size: int, generator: torch.Generator) -> torch.Tensor:
    """k-means++ starting points: each next seed drawn with probability proportional to its squared
    distance from the seeds so far (duplicates once every vector is a seed: they die and are re-seeded)."""
    n = vectors.shape[0]
    if n <= size:  # every vector is a seed; the rest are repeats
        extra = torch.randint(n, (size - n,), generator=generator).to(vectors.device)
        return torch.cat([vectors, vectors[extra]]).clone()
    seeds = [int(torch.randint(n, (1,), generator=generator))]
    nearest = (vectors - vectors[seeds[0]]).pow(2).sum(1).cpu().double()
    for _ in range(size - 1):
        total = float(nearest.sum())
        index = (int(torch.multinomial(nearest / total, 1, generator=generator)) if total > 0
                 else int(torch.randint(n, (1,), generator=generator)))
        seeds.append(index)
        nearest = torch.minimum(nearest, (vectors - vectors[index]).pow(2).sum(1).cpu().double())
    return vectors[torch.tensor(seeds, device=vectors.device)].clone()


def ema_update(book: Codebook, vectors: torch.Tensor, codes: torch.Tensor, generator: torch.Generator,
               decay: float = DECAY, dead_fraction: float = DEAD_FRACTION) -> int:
    """Move entries to the running mean of their vectors; re-seed dead ones. Returns how many were re-seeded."""
    size = book.embed.shape[0]
    with torch.no_grad():
        counts = _synced(torch.bincount(codes, minlength=size).to(book.cluster_size.dtype), "sum")
        sums = _synced(torch.zeros_like(book.embed_avg).index_add_(0, codes, vectors.to(book.embed_avg)), "sum")
        book.cluster_size.mul_(decay).add_(counts, alpha=1 - decay)
        book.embed_avg.mul_(decay).add_(sums, alpha=1 - decay)
        total = book.cluster_size.sum()
        smoothed = (book.cluster_size + EPSILON) / (total + size * EPSILON) * total
        book.embed.copy_(book.embed_avg / smoothed[:, None])
        mean_count = float(total) / size
        dead = book.cluster_size < dead_fraction * mean_count
        count = int(dead.sum())
        if count and vectors.shape[0]:
            pick = torch.randint(vectors.shape[0], (count,), generator=generator)
            seeds = _synced(vectors[pick.to(vectors.device)].to(book.embed).clone(), "broadcast")
            book.embed[dead] = seeds
            book.embed_avg[dead] = seeds * mean_count  # a re-seeded entry starts as an average one
            book.cluster_size[dead] = mean_count
    return count


def train_codebook(quantizer: ResidualVectorQuantizer, projected: torch.Tensor, codes: torch.Tensor,
                   lengths: torch.Tensor, generator: torch.Generator) -> dict[str, float]:
    """One codebook update from a training step's quantizer input (B, dim, T) and codes (1, B, T)."""
    book = quantizer.vq.layers[0]._codebook
    vectors = valid_vectors(projected, lengths)
    chosen = codes[0][torch.arange(codes.shape[2], device=codes.device)[None, :]
                      < lengths.to(codes.device)[:, None]]
    return {"vq_dead": float(ema_update(book, vectors, chosen, generator))}


def ensure_initialised(quantizer: ResidualVectorQuantizer, projected: torch.Tensor, lengths: torch.Tensor,
                       generator: torch.Generator) -> bool:
    """k-means-initialise an untouched codebook from this batch; True if it did."""
    book = quantizer.vq.layers[0]._codebook
    if bool(book.inited.item()):
        return False
    kmeans_init(book, valid_vectors(projected, lengths), generator)
    return True
