"""Phonetic semantic tokens: a frame-level phone classifier on content features, as SoVITS's quantizer.

Unsupervised k-means codes of Whisper-tiny states lose most of the words (a cheap probe decoder heard
25% of held-out words through 512 codes against 69% through the continuous states), so a
from-scratch model can use supervised tokens instead: each content frame is labelled with the phone
being spoken, and a linear classifier learns that label. Three steps, all on a feature cache:

1. `align_corpus`: the labels. A flat-start Viterbi aligner (the classic HMM-free recipe): split each
   clip's frames evenly over its known phone sequence, fit a classifier, re-align every clip to its
   phone sequence with the classifier's scores, and repeat. Silence may appear at the ends and at
   punctuation, and may be skipped there.
2. `fit_classifier`: a linear classifier (logits = W x + b) on one 50 Hz frame, or on the two frames a
   25 Hz token spans (the layout of SoVITS's stride-2 `ssl_proj`).
3. `install_tokenizer`: writes the classifier into the model's `ssl_proj` and codebook, so that
   `extract_latent` returns its argmax and checkpoints keep upstream's layout. The projection maps x
   to x' = [Q^T x, a] (an orthonormal basis Q of the classifier's row space, plus one constant channel
   a), and entry k of the codebook is c_k = [r_k / 2, beta_k] with r_k = Q^T w_k. Then
   ||x' - c_k||^2 = ||x'||^2 - w_k.x + ||r_k||^2 / 4 + beta_k^2 - 2 a beta_k, and choosing
   beta_k = a - sqrt(a^2 - ||r_k||^2 / 4 - b_k) (real for a large enough a) makes the last three
   terms equal -b_k: the nearest entry is the class of largest logit.

Classes are English phones: the vowels split into unstressed (0) and stressed (1, 2), the consonants,
and one silence class for pauses and punctuation (`PHONE_CLASSES`).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch.nn import functional as F

from myna.errors import InputError
from myna.text.symbols import PUNCTUATION, symbols

_VOWELS = ("AA", "AE", "AH", "AO", "AW", "AY", "EH", "ER", "EY", "IH", "IY", "OW", "OY", "UH", "UW")
_CONSONANTS = ("B", "CH", "D", "DH", "F", "G", "HH", "JH", "K", "L", "M", "N", "NG", "P", "R", "S", "SH", "T",
               "TH", "V", "W", "Y", "Z", "ZH")
SILENCE = 0
PHONE_CLASSES: tuple[str, ...] = ("SIL", *_CONSONANTS, *(f"{v}{s}" for v in _VOWELS for s in ("0", "1")))
_PAUSES = (*PUNCTUATION, "SP", "SP2", "SP3", "_")


def symbol_classes(version: str = "v2") -> np.ndarray:
    """Phone class of every symbol id of `version`'s table; -1 for symbols outside English (no label)."""
    index = {name: k for k, name in enumerate(PHONE_CLASSES)}
    out = np.full(len(symbols(version)), -1, dtype=np.int64)
    for sid, name in enumerate(symbols(version)):
        if name in _PAUSES:
            out[sid] = SILENCE
        elif name in index:
            out[sid] = index[name]
        elif name[:-1] in _VOWELS and name[-1] in "012":
            out[sid] = index[f"{name[:-1]}{'0' if name[-1] == '0' else '1'}"]
    return out


@dataclass(frozen=True)
class PhoneStates:
    """The states a clip passes through: phone classes in order, which of them may be skipped, and the phoneme
    (index into the clip's phone ids) each one comes from: a pause's first symbol, -1 for the clip's end silences."""

    classes: np.ndarray  # (S,) int64
    optional: np.ndarray  # (S,) bool: silences (clip ends, punctuation)
    phones: np.ndarray  # (S,) int64


def phone_states(phone_ids: Sequence[int], classes_of: np.ndarray) -> PhoneStates:
    """A clip's states: optional silence, its phones (pauses become optional silences), optional silence."""
    states, optional, source = [SILENCE], [True], [-1]
    for position, sid in enumerate(phone_ids):
        cls = int(classes_of[int(sid)])
        if cls < 0:
            raise InputError(f"symbol id {int(sid)} is not an English phone; phonetic tokens need English clips")
        if cls == SILENCE:
            if states[-1] != SILENCE:
                states.append(SILENCE)
                optional.append(True)
                source.append(position)
            elif source[-1] < 0:  # a pause right after the opening silence: that silence is the pause
                source[-1] = position
        else:
            states.append(cls)
            optional.append(False)
            source.append(position)
    if states[-1] != SILENCE:
        states.append(SILENCE)
        optional.append(True)
        source.append(-1)
    return PhoneStates(np.asarray(states, np.int64), np.asarray(optional, bool), np.asarray(source, np.int64))


def even_split(frames: int, states: PhoneStates) -> np.ndarray:
    """Flat start: frames split evenly over the required states (silences only at the clip's ends); labels (T,)."""
    return states.classes[even_split_states(frames, states)]


def even_split_states(frames: int, states: PhoneStates) -> np.ndarray:
    """`even_split` as state indices (T,)."""
    keep = ~states.optional
    keep[0] = keep[-1] = True
    chosen = np.flatnonzero(keep)
    bounds = np.linspace(0, frames, len(chosen) + 1).round().astype(np.int64)
    return np.repeat(chosen, np.diff(bounds))


def viterbi(scores: np.ndarray, states: PhoneStates) -> np.ndarray:
    """Frame labels (T,) of the best monotonic path through `states` under log-scores (T, classes)."""
    return states.classes[viterbi_states(scores, states)]


def viterbi_states(scores: np.ndarray, states: PhoneStates) -> np.ndarray:
    """The best monotonic path through `states` under log-scores (T, classes), as state indices (T,).

    Every required state lasts one frame or more; an optional state may be skipped. Falls back to
    `even_split_states` when the clip has fewer frames than required states."""
    frames, count = scores.shape[0], len(states.classes)
    if frames < int((~states.optional).sum()):
        return even_split_states(frames, states)
    emit = scores[:, states.classes]  # (T, S)
    minus = -np.inf
    skip_ok = np.zeros(count, bool)
    skip_ok[2:] = states.optional[1:-1]
    dp = np.full(count, minus)
    dp[0] = emit[0, 0]
    if states.optional[0] and count > 1:
        dp[1] = emit[0, 1]
    back = np.zeros((frames, count), np.int8)
    for t in range(1, frames):
        stay = dp
        advance = np.concatenate(([minus], dp[:-1]))
        jump = np.where(skip_ok, np.concatenate(([minus, minus], dp[:-2])), minus)
        best = np.maximum(np.maximum(stay, advance), jump)
        back[t] = np.where(best == stay, 0, np.where(best == advance, 1, 2))
        dp = best + emit[t]
    end = count - 1
    if states.optional[-1] and count > 1 and dp[count - 2] > dp[end]:
        end = count - 2
    if not np.isfinite(dp[end]):
        return even_split_states(frames, states)
    path = np.empty(frames, np.int64)
    for t in range(frames - 1, -1, -1):
        path[t] = end
        end -= int(back[t, end])
    return path


class FrameBank:
    """Every clip's content frames in one (N, D) fp16 tensor, normalised per channel, with clip bounds."""

    def __init__(self, clips: Sequence[torch.Tensor]) -> None:
        lengths = torch.tensor([c.shape[0] for c in clips])
        self.ends = torch.cumsum(lengths, 0)
        self.starts = self.ends - lengths
        flat = torch.cat([c.float() for c in clips])
        self.mean, self.std = flat.mean(0), flat.std(0).clamp(min=1e-5)
        self.frames = ((flat - self.mean) / self.std).half()
        self.clip_of = torch.repeat_interleave(torch.arange(len(clips)), lengths)

    def __len__(self) -> int:
        return self.frames.shape[0]

    def inputs(self, index: torch.Tensor, offsets: Sequence[int]) -> torch.Tensor:
        """(B, len(offsets) D) float: frames `index + o` for each offset, clamped to each frame's clip."""
        clip = self.clip_of[index]
        lo, hi = self.starts[clip], self.ends[clip] - 1
        parts = [self.frames[torch.minimum(torch.maximum(index + o, lo), hi)] for o in offsets]
        return torch.cat(parts, dim=1).float()


def train_frame_classifier(bank: FrameBank, targets: torch.Tensor, offsets: Sequence[int], classes: int,
                           hidden: int = 0, epochs: int = 3, batch: int = 2048, rate: float = 2e-3,
                           seed: int = 0, index: torch.Tensor | None = None) -> torch.nn.Module:
    """A softmax classifier (linear, or one hidden layer) of frames (with neighbours at `offsets`).

    Trained on the frames at `index` (default: all), `targets` giving each one's label (N,) or label
    weights (N, classes)."""
    gen = torch.Generator().manual_seed(seed)
    torch.manual_seed(seed)
    dim = bank.frames.shape[1] * len(offsets)
    model = (torch.nn.Sequential(torch.nn.Linear(dim, hidden), torch.nn.GELU(), torch.nn.Linear(hidden, classes))
             if hidden else torch.nn.Linear(dim, classes))
    optim = torch.optim.AdamW(model.parameters(), rate, weight_decay=1e-4)
    index = torch.arange(len(bank)) if index is None else index
    steps = epochs * (-(-len(index) // batch))
    sched = torch.optim.lr_scheduler.OneCycleLR(optim, rate, total_steps=steps, pct_start=0.1)
    for _ in range(epochs):
        order = torch.randperm(len(index), generator=gen)
        for start in range(0, len(order), batch):
            pick = order[start : start + batch]
            loss = F.cross_entropy(model(bank.inputs(index[pick], offsets)), targets[pick])
            optim.zero_grad(set_to_none=True)
            loss.backward()
            optim.step()
            sched.step()
    return model.eval()


@torch.no_grad()
def frame_log_probs(model: torch.nn.Module, bank: FrameBank, offsets: Sequence[int], batch: int = 8192) -> torch.Tensor:
    """(N, classes) log-softmax of `model` over every frame of `bank`."""
    out = [F.log_softmax(model(bank.inputs(torch.arange(s, min(s + batch, len(bank))), offsets)), -1)
           for s in range(0, len(bank), batch)]
    return torch.cat(out)


def align_corpus(clips: Sequence[torch.Tensor], phone_ids: Sequence[Sequence[int]], iterations: int = 4,
                 context: int = 2, hidden: int = 512, epochs: int = 2, batch: int = 2048,
                 progress=None, positions: bool = False) -> list[np.ndarray] | tuple[list[np.ndarray], list[np.ndarray]]:
    """Flat-start alignment: per clip, one phone class per content frame (clips: (T, D) features at 50 Hz).

    Each round fits a classifier (one hidden layer, +-`context` frames) to the current labels and
    re-aligns every clip to its phone sequence with its scores (log posterior over class prior). With
    `positions`, also returns each frame's phoneme: its index in the clip's phone ids, -1 in the silence
    before the first phoneme or after the last (`PhoneStates.phones`)."""
    classes_of = symbol_classes()
    states = [phone_states(p, classes_of) for p in phone_ids]
    paths = [even_split_states(c.shape[0], s) for c, s in zip(clips, states, strict=True)]
    labels = [s.classes[path] for s, path in zip(states, paths, strict=True)]
    bank = FrameBank(clips)
    offsets = tuple(range(-context, context + 1))
    for round_ in range(iterations):
        flat = torch.from_numpy(np.concatenate(labels))
        model = train_frame_classifier(bank, flat, offsets, len(PHONE_CLASSES), hidden, epochs, batch, seed=round_)
        logp = frame_log_probs(model, bank, offsets)
        prior = torch.bincount(flat, minlength=len(PHONE_CLASSES)).float().add(1.0)
        scores = (logp - (prior / prior.sum()).log()).numpy()
        accuracy = float((logp.argmax(-1) == flat).float().mean())
        paths = [viterbi_states(scores[int(a) : int(b)], s)
                 for a, b, s in zip(bank.starts, bank.ends, states, strict=True)]
        new = [s.classes[path] for s, path in zip(states, paths, strict=True)]
        changed = float(np.mean(np.concatenate(new) != np.concatenate(labels)))
        labels = new
        if progress is not None:
            print(f"alignment round {round_ + 1}: frame accuracy {accuracy:.3f}, {changed:.1%} of labels moved",
                  file=progress, flush=True)
    if positions:
        return labels, [s.phones[path] for s, path in zip(states, paths, strict=True)]
    return labels


def fold_normalisation(linear: torch.nn.Linear, bank: FrameBank, span: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(W, b) of `linear` acting on raw frames: the bank's per-channel normalisation folded in (span frames)."""
    mean, std = bank.mean.repeat(span), bank.std.repeat(span)
    weight = linear.weight.detach().double() / std.double()
    bias = linear.bias.detach().double() - weight @ mean.double()
    return weight, bias


@torch.no_grad()
def install_tokenizer(model, weight: torch.Tensor, bias: torch.Tensor, norm: float = 8.0,
                      sub: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None, weight_scale: float = 1.0) -> None:
    """Make `model.extract_latent` return argmax(weight @ x + bias) per token (see the module doc).

    weight (K, span * ssl_dim) acts on the `span` consecutive frames one token covers (span 2 for
    25 Hz tokens, frame 2t first). Codebook entries that no class uses are placed so that they never
    win. `norm`: the largest phone entry's length, a scale that leaves the argmax unchanged.

    `sub` = (projection (D', span * ssl_dim), offset (D',), centroids (K, S, D')) makes product codes:
    token k * S + j is class k's argmax and then, within class k, the centroid j nearest to
    projection @ x + offset. The class block is multiplied by `weight_scale` (its squared distances by
    its square), which must dwarf the centroid distances for the class to be decided first; a class's
    centroids all share its class block, so rounding there never reorders them. K + D' <= ssl_dim - 1."""
    c = model.config
    span = 2 if c.semantic_frame_rate == "25hz" else 1
    classes, dim = weight.shape[0], c.ssl_dim
    extra = 0 if sub is None else sub[0].shape[0]
    per_class = 1 if sub is None else sub[2].shape[1]
    book = model.quantizer.vq.layers[0]._codebook
    if weight.shape[1] != span * dim or classes + extra > dim - 1 or classes * per_class > book.embed.shape[0]:
        raise InputError(f"a {c.semantic_frame_rate} tokenizer takes a (K <= {dim - 1 - extra}, {span * dim}) weight "
                         f"and at most {book.embed.shape[0]} codes, got {tuple(weight.shape)} x {per_class}")
    q, r = torch.linalg.qr(weight.double().t())  # weight^T = Q R, so logits = R^T (Q^T x) + b
    rows = r.t()  # (K, K): class k's weight in the Q basis
    scale = norm / float(torch.sqrt((rows.pow(2).sum(1) / 4 + bias.double().abs()).max() * 4 + 1e-12))
    rows, bias = rows * scale * weight_scale, bias.double() * scale * weight_scale**2
    need = rows.pow(2).sum(1) / 4 + bias
    anchor = float(torch.sqrt(need.clamp(min=0).max() + (norm * weight_scale / 4) ** 2))  # the constant channel a
    beta = anchor - torch.sqrt(anchor**2 - need)
    proj = torch.zeros(dim, span * dim, dtype=torch.float64)
    proj[:classes] = q.t() * weight_scale
    proj_bias = torch.zeros(dim, dtype=torch.float64)
    proj_bias[-1] = anchor
    embed = torch.zeros_like(book.embed, dtype=torch.float64)
    embed[:, -1] = -4 * anchor  # unused entries: far from every x' (whose last channel is +a)
    for k in range(classes):
        codes = slice(k * per_class, (k + 1) * per_class)
        embed[codes, :classes] = rows[k] / 2
        embed[codes, -1] = beta[k]
    if sub is not None:
        sub_proj, sub_offset, centroids = (t.double() for t in sub)
        proj[classes : classes + extra] = sub_proj
        proj_bias[classes : classes + extra] = sub_offset
        embed[: classes * per_class, classes : classes + extra] = centroids.reshape(classes * per_class, extra)
    model.ssl_proj.weight.copy_(proj.view(dim, span, dim).transpose(1, 2).float())
    model.ssl_proj.bias.copy_(proj_bias.float())
    book.embed.copy_(embed.float())
    book.embed_avg.copy_(embed.float())
    book.cluster_size.fill_(1.0)
    book.inited.fill_(1.0)


def token_starts(bank: FrameBank, span: int) -> torch.Tensor:
    """The first frame of every whole token of `span` frames, clip by clip (as a stride-`span` conv sees them)."""
    return torch.cat([torch.arange(int(a), int(a) + (int(b) - int(a)) // span * span, span)
                      for a, b in zip(bank.starts, bank.ends, strict=True)])


def fit_phone_classifier(clips: Sequence[torch.Tensor], phone_ids: Sequence[Sequence[int]], span: int,
                         progress=None, iterations: int = 4, aligned: list[np.ndarray] | None = None,
                         ) -> tuple[torch.Tensor, torch.Tensor, list[np.ndarray]]:
    """Align `clips` ((T, D) content frames) to their phonemes (unless `aligned` is given) and fit the token
    classifier.

    Returns its (weight, bias) on raw frames (`span` of them per token) and the alignment (one
    label per frame, clip by clip). A token spanning several frames learns the mean of their labels."""
    if aligned is None:
        aligned = align_corpus(clips, phone_ids, iterations, context=1, hidden=256, progress=progress)
    labels = torch.from_numpy(np.concatenate(aligned))
    bank = FrameBank(clips)
    index = token_starts(bank, span)
    classes = len(PHONE_CLASSES)
    target = sum(F.one_hot(labels[index + j], classes).float() for j in range(span)) / span
    linear = train_frame_classifier(bank, target, tuple(range(span)), classes, epochs=3, index=index)
    weight, bias = fold_normalisation(linear, bank, span)
    return weight, bias, aligned


def _kmeans(points: torch.Tensor, count: int, gen: torch.Generator, rounds: int = 10) -> torch.Tensor:
    """`count` centroids of `points` (Lloyd's iterations from random points; empty ones stay put)."""
    centroids = points[torch.randperm(len(points), generator=gen)[:count]].clone()
    if len(centroids) < count:  # fewer points than centroids: repeat them
        centroids = centroids[torch.arange(count) % max(len(centroids), 1)]
    for _ in range(rounds):
        nearest = torch.cdist(points, centroids).argmin(1)
        for j in range(count):
            if bool((nearest == j).any()):
                centroids[j] = points[nearest == j].mean(0)
    return centroids


def product_centroids(clips: Sequence[torch.Tensor], weight: torch.Tensor, bias: torch.Tensor, span: int,
                      per_class: int, dims: int = 256, seed: int = 0):
    """(projection, offset, centroids) for `install_tokenizer`'s product codes: `per_class` k-means centroids
    of each phone's tokens in a `dims`-dimensional PCA space of the normalised frames, scaled so that its
    squared distances are about 1 (far below the phone block's, see `install_tokenizer`'s weight_scale)."""
    bank = FrameBank(clips)
    index = token_starts(bank, span)
    inputs = bank.inputs(index, tuple(range(span)))  # normalised
    mean, std = bank.mean.repeat(span), bank.std.repeat(span)
    phones = ((inputs.double() * std + mean) @ weight.t() + bias).argmax(1)
    gen = torch.Generator().manual_seed(seed)
    sample = inputs[torch.randperm(len(inputs), generator=gen)[:50_000]]
    center = sample.mean(0)
    _, spread, basis = torch.linalg.svd(sample - center, full_matrices=False)
    variance = float((spread[:dims] ** 2).sum()) / len(sample)
    basis = basis[:dims] / math.sqrt(variance)
    projected = (inputs - center) @ basis.t()
    centroids = torch.full((weight.shape[0], per_class, dims), 1e3)  # a class never seen keeps far-away entries
    for k in range(weight.shape[0]):
        own = projected[phones == k]
        if len(own):
            centroids[k] = _kmeans(own[torch.randperm(len(own), generator=gen)[:20_000]], per_class, gen)
    # basis @ ((x - mean) / std - center) as one affine map of raw frames
    return basis / std, -(basis @ (mean / std + center)), centroids


def fit_phone_tokenizer(model, clips: Sequence[torch.Tensor], phone_ids: Sequence[Sequence[int]],
                        progress=None, iterations: int = 4, per_class: int = 1,
                        aligned: list[np.ndarray] | None = None) -> tuple[float, list[np.ndarray]]:
    """Fit the phone tokenizer (`per_class` > 1: product codes, phone x acoustic sub-code) and install it in `model`.

    The installed weights are rounded to fp16, the precision of exported files, so training, token
    extraction and the engine all pick the same tokens. Returns the share of tokens whose phone is
    one of their frames' aligned labels, and the alignment (`aligned`, when given, is used as it is)."""
    span = 2 if model.config.semantic_frame_rate == "25hz" else 1
    weight, bias, aligned = fit_phone_classifier(clips, phone_ids, span, progress, iterations, aligned)
    if per_class > 1:
        sub = product_centroids(clips, weight, bias, span, per_class)
        install_tokenizer(model, weight, bias, sub=sub, weight_scale=10.0)
    else:
        install_tokenizer(model, weight, bias)
    with torch.no_grad():
        for tensor in (model.ssl_proj.weight, model.ssl_proj.bias, model.quantizer.vq.layers[0]._codebook.embed):
            tensor.copy_(tensor.half().float())
    labels = torch.from_numpy(np.concatenate(aligned))
    hits = total = 0
    start = 0
    with torch.no_grad():
        for clip in clips:
            phones = model.extract_latent(clip.t().float().unsqueeze(0))[0, 0] // per_class
            frames = labels[start : start + len(phones) * span].view(-1, span)
            hits += int((frames == phones[:, None]).any(1).sum())
            total += len(phones)
            start += clip.shape[0]
    if progress is not None:
        print(f"phone tokenizer: {hits / max(total, 1):.1%} of tokens match a label of their frames",
              file=progress, flush=True)
    return hits / max(total, 1), aligned


def code_phone_scores(tokens: Sequence[np.ndarray], labels: Sequence[np.ndarray], codes: int,
                      span: int = 2) -> np.ndarray:
    """(codes, classes) log P(class | code) - log P(class): what each semantic code says of the phone being
    spoken, counted over aligned clips (token t covers content frames span * t ...; add-half smoothing)."""
    counts = np.full((codes, len(PHONE_CLASSES)), 0.5)
    for token, label in zip(tokens, labels, strict=True):
        n = min(len(token), len(label) // span)
        np.add.at(counts, (np.asarray(token[:n]), np.asarray(label[: span * n : span])), 1.0)
    return np.log(counts / counts.sum(1, keepdims=True)) - np.log(counts.sum(0) / counts.sum())


def alignment_score(scores: np.ndarray, tokens: Sequence[int], phone_ids: Sequence[int],
                    classes_of: np.ndarray | None = None) -> float:
    """Mean per-token score of the best monotonic alignment of `tokens` to the phones of `phone_ids`
    under `code_phone_scores`: high when the tokens say those phones in that order."""
    emit = scores[np.asarray(tokens, dtype=np.int64)]
    path = viterbi(emit, phone_states(phone_ids, symbol_classes() if classes_of is None else classes_of))
    return float(emit[np.arange(len(path)), path].mean())


def text_following(scores: np.ndarray, tokens: Sequence[int], phone_ids: Sequence[int],
                   other_ids: Sequence[int]) -> float:
    """How much better `tokens` align to their own text's phones than to another text's (`other_ids`): about 0
    when the tokens do not follow the text; a clip's own tokens set the ceiling."""
    classes_of = symbol_classes()
    return (alignment_score(scores, tokens, phone_ids, classes_of)
            - alignment_score(scores, tokens, other_ids, classes_of))
