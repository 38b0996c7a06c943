"""FID and KID on pytorch-fid's TF-ported InceptionV3 pool3 features, pooled over all frames.

The network is pytorch-fid's (its patched Inception blocks, the 2015-12-05 TF weights), rebuilt layer
for layer in `inception_net` without torchvision (whose import is ~3 s of start-up), so that its state
dict comes through vcbench's resolver instead of pytorch-fid's silent download.
Inputs follow pytorch-fid: RGB / 255, bilinear resize to 299x299 (align_corners=False), then 2x - 1.

FID keeps float64 running sums (sum of features and sum of outer products) so memory stays flat in
the number of frames; the covariance uses ddof 1. The Frechet distance's trace term is the same
quantity as pytorch-fid's `Tr sqrtm(S1 S2)`, computed faster: below 2048 frames per side from the
singular values of an n1 x n2 product of centred features (`trace_sqrt_product_from_factors`, the
features are kept until a side passes 2048 frames: 16 MiB at most), else from two symmetric
eigendecompositions (`trace_sqrt_product`); pytorch-fid's own steps (scipy `sqrtm` without the `disp=` argument that
scipy 1.18 removes, the 1e-6 retry, the imaginary-part check) remain as `method="sqrtm"`. Below 2048 frames the covariance is
rank-deficient and FID is biased: KID (unbiased MMD, cubic polynomial kernel, torch-fidelity's subset
scheme) is the number to compare there. KID keeps the features (8 KiB per frame, on the CPU).
"""

from __future__ import annotations

from abc import abstractmethod
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from vcbench.errors import InputError
from vcbench.metrics.base import Metric
from vcbench.metrics.context import FrameContext
from vcbench.metrics.inception_net import FIDInceptionV3
from vcbench.metrics.network import SharedNetwork, forward_in_chunks, load_network, shared_network
from vcbench.weights import WeightFile, build_loaded

FEATURE_DIM = 2048
FID_EPS = 1e-6
#: torch-fidelity's defaults: 100 subsets of 1000 frames (fewer when there are fewer), seed 2020.
KID_SUBSETS = 100
KID_SUBSET_SIZE = 1000
KID_SEED = 2020
#: Key of the per-frame GT features in FrameContext.gt_cache (and in the scorer's disk cache).
GT_FEATURES_KEY = "inception_pool3"


def build_fid_inception(state_dict: dict[str, torch.Tensor]) -> torch.nn.Module:
    """pytorch-fid's FID InceptionV3 up to pool3 (`inception_net`), loaded strictly from `state_dict`."""
    net = build_loaded(FIDInceptionV3, state_dict)
    trunk = net.trunk()
    trunk.requires_grad_(False)
    return trunk.eval()


def _fid_input(frames: torch.Tensor) -> torch.Tensor:
    """pytorch-fid's input: uint8 RGB / 255, bilinear to 299x299 (align_corners=False), then 2x - 1.

    The same float32 operations as `x.float() / 255` and `2 * x - 1`, in fewer passes (the division
    converts uint8 frames itself; the affine map runs in place on the small 299x299 result), so
    bit-equal to them.
    """
    x = torch.div(frames, 255.0) if frames.dtype == torch.uint8 else frames.to(torch.float32) / 255.0
    x = F.interpolate(x, size=(299, 299), mode="bilinear", align_corners=False)
    return x.mul_(2.0).sub_(1.0)


class InceptionFeatures(SharedNetwork):
    """The FID Inception on a device; `features(uint8 frames)` -> (N, 2048) float32.

    FID and KID can share one instance (pass it as `extractor=`); it remembers the last batch it saw,
    so the prediction's features are computed once per batch for both metrics.
    """

    def __init__(self, device: str | torch.device = "cpu", *, weights_path: str | Path | None = None,
                 allow_unverified: bool = False, batch_size: int = 32) -> None:
        super().__init__()
        self.device = torch.device(device)
        self.batch_size = batch_size
        self.resolved, self.net = load_network("inception_fid", build_fid_inception, self.device,
                                               what="the FID InceptionV3", weights_path=weights_path,
                                               allow_unverified=allow_unverified)

    @torch.inference_mode()
    def features(self, frames: torch.Tensor) -> torch.Tensor:
        return self.remembered(frames, lambda f: forward_in_chunks(self.net, f, self.device, self.batch_size,
                                                                   _fid_input, FEATURE_DIM))


class RunningStats:
    """Mean and covariance (ddof 1) from float64 running sums: O(d^2) memory for any number of rows.

    While at most `dim` rows have been added they are also kept (float32, as they came), so that a
    rank-deficient covariance can be handed on as its factor (`centred_factor`).
    """

    def __init__(self, dim: int = FEATURE_DIM, device: str | torch.device = "cpu") -> None:
        self.n = 0
        self.dim = dim
        self.sum = torch.zeros(dim, dtype=torch.float64, device=device)
        self.outer = torch.zeros(dim, dim, dtype=torch.float64, device=device)
        self._rows: list[torch.Tensor] | None = []

    def add(self, x: torch.Tensor) -> None:
        self.n += int(x.shape[0])
        if self._rows is not None and self.n <= self.dim:
            self._rows.append(x.detach().to("cpu", torch.float32))
        else:
            self._rows = None
        x = x.to(self.sum.device, torch.float64)
        self.sum += x.sum(dim=0)
        self.outer += x.T @ x

    def mean_cov(self) -> tuple[np.ndarray, np.ndarray]:
        if self.n < 2:
            raise InputError(f"FID needs at least 2 frames, got {self.n}")
        mu = self.sum / self.n
        cov = (self.outer - self.n * torch.outer(mu, mu)) / (self.n - 1)
        return mu.cpu().numpy(), cov.cpu().numpy()

    def centred_factor(self) -> np.ndarray | None:
        """F (n, dim) float64 with F^T F equal to the covariance, while the rows are kept; else None."""
        if self._rows is None or self.n < 2:
            return None
        x = torch.cat(self._rows).to(torch.float64).numpy()
        return (x - x.mean(axis=0)) / np.sqrt(self.n - 1)

    def state(self) -> dict[str, np.ndarray]:
        state = {"n": np.array(self.n, dtype=np.int64), "sum": self.sum.cpu().numpy(),
                 "outer": self.outer.cpu().numpy()}
        if self._rows is not None:
            state["rows"] = (torch.cat(self._rows) if self._rows else torch.zeros((0, self.dim))).numpy()
        return state

    def load(self, state: dict[str, Any]) -> None:
        self.n = int(np.asarray(state["n"]))
        self.sum = torch.as_tensor(np.asarray(state["sum"]), dtype=torch.float64, device=self.sum.device).clone()
        self.outer = torch.as_tensor(np.asarray(state["outer"]), dtype=torch.float64,
                                     device=self.outer.device).clone()
        rows = state.get("rows")
        self._rows = [torch.as_tensor(np.asarray(rows), dtype=torch.float32).clone()] if rows is not None else None


def trace_sqrt_product_from_factors(f1: np.ndarray, f2: np.ndarray) -> float:
    """Tr(sqrt(S1 S2)) for S1 = F1^T F1 and S2 = F2^T F2, as the sum of the singular values of F1 F2^T.

    S1 S2 = F1^T (F1 F2^T F2) has the nonzero eigenvalues of F1 F2^T F2 F1^T = M M^T (M = F1 F2^T), so
    the trace of its square root is the nuclear norm of M. With n1, n2 frames below the feature
    dimension M is only n1 x n2: exact, and milliseconds instead of seconds.
    """
    from scipy import linalg

    return float(linalg.svdvals(f1 @ f2.T).sum())


def trace_sqrt_product(sigma1: np.ndarray, sigma2: np.ndarray) -> float:
    """Tr(sqrt(S1 S2)) for covariance matrices, from two symmetric eigendecompositions.

    S1 S2 is similar to S1^1/2 S2 S1^1/2, which is symmetric positive semi-definite, so the trace of
    the square root is the sum of the square roots of that matrix's eigenvalues: the same quantity
    pytorch-fid takes from `sqrtm(S1 S2)`, without the general Schur decomposition that makes `sqrtm`
    cost ~10-20 s at 2048-d on 2 cores (this takes ~2 s; measured 3e-8 relative apart on rank-deficient
    statistics, 6e-15 on full-rank ones). Rounding leaves tiny negative eigenvalues, clipped to 0; a
    clearly negative one means an input is not a covariance, which is an error, as in pytorch-fid.
    """
    from scipy import linalg

    w, v = linalg.eigh(sigma1)
    _check_psd(w, "S1")
    root = (v * np.sqrt(np.clip(w, 0, None))) @ v.T
    m = root @ sigma2 @ root
    ev = linalg.eigh((m + m.T) / 2, eigvals_only=True)
    _check_psd(ev, "S1^1/2 S2 S1^1/2")
    return float(np.sqrt(np.clip(ev, 0, None)).sum())


def _check_psd(eigenvalues: np.ndarray, what: str) -> None:
    scale = max(1.0, float(np.abs(eigenvalues).max(initial=0.0)))
    if eigenvalues.size and eigenvalues.min() < -1e-6 * scale:
        raise ValueError(f"imaginary component: {what} has eigenvalue {eigenvalues.min():.3g} < 0 "
                         "(not a covariance)")


def frechet_distance(mu1: np.ndarray, sigma1: np.ndarray, mu2: np.ndarray, sigma2: np.ndarray,
                     eps: float = FID_EPS, *, method: str = "eigh",
                     factors: tuple[np.ndarray, np.ndarray] | None = None) -> float:
    """||mu1 - mu2||^2 + Tr(S1 + S2 - 2 sqrt(S1 S2)).

    `method="eigh"` (default) takes the trace term from `trace_sqrt_product_from_factors` when
    `factors` (F1, F2 with Si = Fi^T Fi, see `RunningStats.centred_factor`) are given, else from
    `trace_sqrt_product`; `method="sqrtm"` follows pytorch-fid step by step (scipy `sqrtm`, the eps
    retry when the product is singular, the imaginary-part check) and is kept to cross-check.
    """
    mu1, mu2 = np.atleast_1d(mu1).astype(np.float64), np.atleast_1d(mu2).astype(np.float64)
    sigma1, sigma2 = np.atleast_2d(sigma1).astype(np.float64), np.atleast_2d(sigma2).astype(np.float64)
    diff = mu1 - mu2
    if method == "eigh" and factors is not None:
        tr_covmean = trace_sqrt_product_from_factors(*factors)
    elif method == "eigh":
        tr_covmean = trace_sqrt_product(sigma1, sigma2)
    elif method == "sqrtm":
        from scipy import linalg

        covmean = linalg.sqrtm(sigma1.dot(sigma2))
        if not np.isfinite(covmean).all():
            offset = np.eye(sigma1.shape[0]) * eps
            covmean = linalg.sqrtm((sigma1 + offset).dot(sigma2 + offset))
        if np.iscomplexobj(covmean):
            if not np.allclose(np.diagonal(covmean).imag, 0, atol=1e-3):
                raise ValueError(f"FID: imaginary component {np.max(np.abs(covmean.imag))} in sqrtm(S1 S2)")
            covmean = covmean.real
        tr_covmean = float(np.trace(covmean))
    else:
        raise ValueError(f"unknown Frechet distance method {method!r} (eigh or sqrtm)")
    return float(diff.dot(diff) + np.trace(sigma1) + np.trace(sigma2) - 2 * tr_covmean)


def kid_from_features(f1: torch.Tensor, f2: torch.Tensor, *, subsets: int = KID_SUBSETS,
                      subset_size: int = KID_SUBSET_SIZE, seed: int = KID_SEED) -> tuple[float, float]:
    """(mean, std) of the unbiased MMD^2 with k(x, y) = (x.y / d + 1)^3 over random subsets.

    The subsets are drawn exactly as torch-fidelity draws them (numpy RandomState(seed), per subset
    `choice(n1, m)` then `choice(n2, m)` without replacement, m = min(subset_size, n1, n2)). Where it
    is cheaper, each kernel matrix is computed once over all frames and the subsets index into it
    (the kernel is elementwise, so the subset sums are the same); float64 throughout.
    """
    n1, n2 = int(f1.shape[0]), int(f2.shape[0])
    m = min(subset_size, n1, n2)
    if m < 2:
        raise InputError(f"KID needs at least 2 frames on each side, got {n1} and {n2}")
    d = f1.shape[1]
    rng = np.random.RandomState(seed)
    draws = [(rng.choice(n1, m, replace=False), rng.choice(n2, m, replace=False)) for _ in range(subsets)]
    f1 = f1.to(torch.float64)
    f2 = f2.to(f1.device, torch.float64)

    def kern(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        return (a @ b.T / d + 1.0) ** 3

    full = max(n1, n2) <= 4096 and n1 * n2 <= subsets * m * m
    sums = np.zeros((subsets, 3))  # off-diagonal sum XX, off-diagonal sum YY, full sum XY
    for j, (a, b, ia_is_1, ib_is_1) in enumerate([(f1, f1, True, True), (f2, f2, False, False),
                                                  (f1, f2, True, False)]):
        big = kern(a, b) if full else None
        for s, (i1, i2) in enumerate(draws):
            ia = torch.from_numpy(i1 if ia_is_1 else i2).to(f1.device)
            ib = torch.from_numpy(i1 if ib_is_1 else i2).to(f1.device)
            k = big[ia][:, ib] if big is not None else kern(a[ia], b[ib])
            total = k.sum()
            sums[s, j] = float(total - k.diagonal().sum()) if j < 2 else float(total)
        del big
    mmd = (sums[:, 0] + sums[:, 1]) / (m * (m - 1)) - 2 * sums[:, 2] / (m * m)
    return float(np.mean(mmd)), float(np.std(mmd))


class _InceptionMetric(Metric):
    """Shared plumbing of FID and KID: the extractor, GT features from the cache, pooled values."""

    gt_side_key = GT_FEATURES_KEY

    def __init__(self, device: str | torch.device = "cpu", *, weights_path: str | Path | None = None,
                 allow_unverified: bool = False, extractor: InceptionFeatures | None = None,
                 shared: dict | None = None) -> None:
        super().__init__()
        self.device = torch.device(device)
        self.extractor = extractor or shared_network(shared, InceptionFeatures, self.device, weights_path=weights_path,
                                                     allow_unverified=allow_unverified)
        self.n_frames = 0
        self._gt_fixed = False

    def weights_used(self) -> dict[str, WeightFile]:
        return self.extractor.weights_used()

    def gt_side(self, gt: torch.Tensor) -> torch.Tensor:
        """Per-frame GT features (N, 2048) float32, what the scorer caches under `gt_side_key`."""
        return self.extractor.features(gt)

    def _gt_features(self, gt: torch.Tensor, ctx: FrameContext | None) -> torch.Tensor:
        cached = ctx.gt_cache.get(self.gt_side_key) if ctx is not None else None
        if cached is not None:
            if tuple(cached.shape) != (gt.shape[0], FEATURE_DIM):
                raise InputError(f"cached GT Inception features have shape {tuple(cached.shape)}, "
                                 f"expected ({gt.shape[0]}, {FEATURE_DIM})", hint="clear the GT cache")
            return cached
        return self.gt_side(gt)

    @abstractmethod
    def _add(self, pred_feats: torch.Tensor, gt_feats: torch.Tensor | None) -> None:
        """Accumulate one batch of prediction features and (unless preloaded) GT features."""

    def accumulate(self, pred: torch.Tensor, gt: torch.Tensor, ctx: FrameContext) -> None:
        pred_feats = self.extractor.features(pred)
        gt_feats = None if self._gt_fixed else self._gt_features(gt, ctx)
        self._add(pred_feats, gt_feats)
        self.n_frames += int(pred.shape[0])

    def _clip_value(self, values: list[float]) -> float | None:
        return None  # pooled: no per-clip value (a handful of frames gives no covariance)


class FID(_InceptionMetric):
    """Frechet Inception Distance (pytorch-fid), pooled over every frame of every clip."""

    name = "fid"

    def __init__(self, device: str | torch.device = "cpu", **kwargs: Any) -> None:
        super().__init__(device, **kwargs)
        self._pred = RunningStats(device=self.device)
        self._gt = RunningStats(device=self.device)
        self._failure: str | None = None

    def _reset_state(self) -> None:
        self._pred = RunningStats(device=self.device)
        if not self._gt_fixed:
            self._gt = RunningStats(device=self.device)
        self.n_frames = 0

    def _add(self, pred_feats: torch.Tensor, gt_feats: torch.Tensor | None) -> None:
        self._pred.add(pred_feats)
        if gt_feats is not None:
            self._gt.add(gt_feats)

    def gt_state(self) -> dict[str, np.ndarray]:
        """The GT side's running sums ({"n", "sum", "outer"}, float64, and "rows" up to 2048 frames)
        for caching a whole benchmark set."""
        return self._gt.state()

    def load_gt_state(self, state: dict[str, Any]) -> None:
        """Use precomputed GT sums (from `gt_state`); later updates then add only prediction frames."""
        self._gt.load(state)
        self._gt_fixed = True

    def statistics(self) -> tuple[tuple[np.ndarray, np.ndarray], tuple[np.ndarray, np.ndarray]]:
        """((mu, sigma) of the prediction, (mu, sigma) of the GT), float64."""
        return self._pred.mean_cov(), self._gt.mean_cov()

    def notes(self) -> list[str]:
        """FID's failure, else a value pooled over fewer frames than the spec's floor (biased)."""
        if self._failure:
            return [self._failure]
        floor = self.spec.frame_floor
        if floor is not None and self.n_frames < floor:
            return [f"FID pools {self.n_frames} frames; below {floor} the 2048-d covariance is "
                    "rank-deficient and FID is biased: compare KID"]
        return []

    def compute(self) -> float | None:
        if self._pred.n < 2 or self._gt.n < 2:
            return None
        (mu1, s1), (mu2, s2) = self.statistics()
        f1, f2 = self._pred.centred_factor(), self._gt.centred_factor()
        try:
            self._failure = None
            factors = (f1, f2) if f1 is not None and f2 is not None else None
            return frechet_distance(mu1, s1, mu2, s2, factors=factors)
        except ValueError as exc:  # sqrtm left a large imaginary part: FID is undefined here, not a crash
            self._failure = f"FID undefined over {self.n_frames} frames ({exc}); compare KID"
            return None


class KID(_InceptionMetric):
    """Kernel Inception Distance (unbiased MMD^2, cubic kernel; torch-fidelity's subsets), pooled.

    `std` holds the standard deviation over subsets after `compute()`.
    """

    name = "kid"

    def __init__(self, device: str | torch.device = "cpu", *, subsets: int = KID_SUBSETS,
                 subset_size: int = KID_SUBSET_SIZE, seed: int = KID_SEED, **kwargs: Any) -> None:
        super().__init__(device, **kwargs)
        self.subsets, self.subset_size, self.seed = subsets, subset_size, seed
        self._pred: list[torch.Tensor] = []
        self._gt: list[torch.Tensor] = []
        self.std: float | None = None

    def _reset_state(self) -> None:
        self._pred = []
        if not self._gt_fixed:
            self._gt = []
        self.n_frames = 0
        self.std = None

    def _add(self, pred_feats: torch.Tensor, gt_feats: torch.Tensor | None) -> None:
        self._pred.append(pred_feats.detach().to("cpu", torch.float32))
        if gt_feats is not None:
            self._gt.append(gt_feats.detach().to("cpu", torch.float32))

    def gt_state(self) -> dict[str, np.ndarray]:
        """The GT features ({"features": (N, 2048) float32}) for caching a whole benchmark set."""
        feats = torch.cat(self._gt) if self._gt else torch.zeros((0, FEATURE_DIM))
        return {"features": feats.numpy()}

    def load_gt_state(self, state: dict[str, Any]) -> None:
        self._gt = [torch.as_tensor(np.asarray(state["features"]), dtype=torch.float32)]
        self._gt_fixed = True

    def compute(self) -> float | None:
        n_pred, n_gt = sum(len(f) for f in self._pred), sum(len(f) for f in self._gt)
        if n_pred < 2 or n_gt < 2:
            return None
        mean, std = kid_from_features(torch.cat(self._pred).to(self.device), torch.cat(self._gt).to(self.device),
                                      subsets=self.subsets, subset_size=self.subset_size, seed=self.seed)
        self.std = std
        return mean
