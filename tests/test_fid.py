"""FID against pytorch-fid end to end, KID against torch-fidelity, the float64 running statistics.

The Inception state dict is random (the real file's keys and shapes, conv weights He-scaled so the
features are not degenerate) and lives in the temporary TORCH_HOME, where pytorch-fid's own loader
finds it too. One end-to-end test runs the network and two 2048x2048 `sqrtm`s: it dominates this
file's time.
"""

from __future__ import annotations

import math
import os

import numpy as np
import pytest
import torch
from conftest import degrade, pytorch_fid_inception3, requires_gpu

from vcbench.errors import InputError
from vcbench.metrics.context import FrameContext

INCEPTION_FILE = "pt_inception-2015-12-05-6726825d.pth"


def _random_fid_inception_state(seed: int = 0) -> dict[str, torch.Tensor]:
    """Keys and shapes of pytorch-fid's FID InceptionV3, random values."""
    net = pytorch_fid_inception3()
    g = torch.Generator().manual_seed(seed)
    state = {}
    for k, v in net.state_dict().items():
        if v.ndim == 4:
            v = torch.randn(v.shape, generator=g) * math.sqrt(2.0 / v[0].numel())
        elif v.dtype.is_floating_point and k.endswith("bias"):
            v = torch.randn(v.shape, generator=g) * 0.1
        state[k] = v
    return state


@pytest.fixture(scope="module")
def inception_file(tmp_path_factory):
    path = tmp_path_factory.mktemp("inception") / INCEPTION_FILE
    torch.save(_random_fid_inception_state(), path)
    return path


@pytest.fixture
def inception_home(torch_home, inception_file):
    os.symlink(inception_file, torch_home / "hub" / "checkpoints" / INCEPTION_FILE)
    return torch_home


def _t(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).contiguous()


def _frames(sample_frames, n_per_clip: int = 4):
    gt, pred = [], []
    for i, (name, f) in enumerate(sample_frames.items()):
        gt.append(f[:n_per_clip])
        pred.append(degrade(f[:n_per_clip], "jpeg+chroma" if i == 0 else "blur+hue", seed=i))
    return gt, pred


@pytest.mark.slow
def test_fid_and_kid_match_pytorch_fid_and_torch_fidelity(inception_home, sample_frames, tmp_path):
    from PIL import Image
    from pytorch_fid.fid_score import calculate_fid_given_paths
    from torch_fidelity.metric_kid import kid_features_to_metric

    from vcbench.metrics.inception import FID, KID

    gt_clips, pred_clips = _frames(sample_frames)
    for side, clips in (("gt", gt_clips), ("pred", pred_clips)):
        (tmp_path / side).mkdir()
        for c, frames in enumerate(clips):
            for k, f in enumerate(frames):
                Image.fromarray(f).save(tmp_path / side / f"{c}_{k:03d}.png")
    fid = FID(allow_unverified=True)
    kid = KID(allow_unverified=True, extractor=fid.extractor, subset_size=5)
    for c, (gt, pred) in enumerate(zip(gt_clips, pred_clips)):
        for lo in (0, 3):  # two batches per clip: the running sums must pool them exactly
            ctx = FrameContext(clip=str(c), start=lo)
            p, g = _t(pred[lo:lo + 3]), _t(gt[lo:lo + 3])  # one tensor per batch, as the scorer feeds
            fid.update(p, g, ctx)
            kid.update(p, g, ctx)
        fid.end_clip(str(c))
        kid.end_clip(str(c))
    ours = fid.compute()
    ref = calculate_fid_given_paths([str(tmp_path / "pred"), str(tmp_path / "gt")], batch_size=4, device="cpu",
                                    dims=2048, num_workers=0)
    assert ours == pytest.approx(ref, abs=1e-3)
    assert ours > 0.05  # the degradations move the features; a vacuous 0 would not pass
    assert fid.n_frames == 8 and len(fid.notes()) == 1 and "rank-deficient" in fid.notes()[0]
    assert fid.per_clip == {"0": None, "1": None}  # pooled: no per-clip value

    f1, f2 = torch.cat(kid._pred).double(), torch.cat(kid._gt).double()
    want = kid_features_to_metric(f1, f2, kid_subsets=100, kid_subset_size=5, rng_seed=2020, verbose=False)
    assert kid.compute() == pytest.approx(want["kernel_inception_distance_mean"], rel=1e-9, abs=1e-12)
    assert kid.std == pytest.approx(want["kernel_inception_distance_std"], rel=1e-9, abs=1e-12)
    assert kid.std > 0  # subsets of 5 out of 8 differ


def _kid_reference(f1, f2, subsets, m):
    from torch_fidelity.metric_kid import kid_features_to_metric

    out = kid_features_to_metric(torch.as_tensor(f1), torch.as_tensor(f2), kid_subsets=subsets,
                                 kid_subset_size=m, rng_seed=2020, verbose=False)
    return out["kernel_inception_distance_mean"], out["kernel_inception_distance_std"]


@pytest.mark.parametrize("n1,n2,subsets,m", [(300, 300, 20, 100), (40, 60, 7, 1000), (1500, 1400, 3, 1000)])
def test_kid_matches_torch_fidelity_on_features(n1, n2, subsets, m):
    """Both code paths (whole kernel matrix indexed, or per-subset kernels) against torch-fidelity."""
    from vcbench.metrics.inception import kid_from_features

    rng = np.random.default_rng(1)
    d = 64
    f1 = np.abs(rng.normal(size=(n1, d)))
    f2 = np.abs(rng.normal(loc=0.1, size=(n2, d)))
    mean, std = kid_from_features(torch.from_numpy(f1), torch.from_numpy(f2), subsets=subsets, subset_size=m)
    want_mean, want_std = _kid_reference(f1, f2, subsets, min(m, n1, n2))
    assert mean == pytest.approx(want_mean, rel=1e-9, abs=1e-12)
    assert std == pytest.approx(want_std, rel=1e-7, abs=1e-12)


def test_running_stats_match_numpy_mean_and_cov():
    from vcbench.metrics.inception import RunningStats

    rng = np.random.default_rng(2)
    x = np.abs(rng.normal(size=(97, 2048))).astype(np.float32)
    rs = RunningStats()
    for lo in range(0, 97, 13):
        rs.add(torch.from_numpy(x[lo:lo + 13]))
    mu, cov = rs.mean_cov()
    np.testing.assert_allclose(mu, x.astype(np.float64).mean(axis=0), rtol=0, atol=1e-12)
    np.testing.assert_allclose(cov, np.cov(x.astype(np.float64), rowvar=False), rtol=0, atol=1e-10)
    state = rs.state()
    again = RunningStats()
    again.load(state)
    np.testing.assert_array_equal(again.mean_cov()[1], cov)


@pytest.mark.parametrize("n", [300, 20])  # full rank, and a singular product (eps retry path)
def test_frechet_distance_matches_pytorch_fid(n):
    from pytorch_fid.fid_score import calculate_frechet_distance

    from vcbench.metrics.inception import frechet_distance

    rng = np.random.default_rng(3)
    a = np.abs(rng.normal(size=(n, 64)))
    b = np.abs(rng.normal(loc=0.2, scale=1.1, size=(n, 64)))
    args = (a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    reference = calculate_frechet_distance(*args)
    assert frechet_distance(*args, method="sqrtm") == pytest.approx(reference, rel=1e-9, abs=1e-9)
    # The eigendecomposition path computes the same trace; rank-deficient inputs (n=20) agree to
    # rounding of the clipped null space, full-rank ones to machine precision.
    assert frechet_distance(*args) == pytest.approx(reference, rel=1e-7, abs=1e-9)


@pytest.mark.parametrize("n1,n2", [(20, 25), (300, 280), (40, 300)])  # rank-deficient, full rank, mixed
def test_frechet_distance_from_factors_matches_pytorch_fid(n1, n2):
    """The trace term from the n1 x n2 product of centred features equals pytorch-fid's sqrtm."""
    from pytorch_fid.fid_score import calculate_frechet_distance

    from vcbench.metrics.inception import frechet_distance

    rng = np.random.default_rng(5)
    a = np.abs(rng.normal(size=(n1, 64)))
    b = np.abs(rng.normal(loc=0.2, scale=1.1, size=(n2, 64)))
    args = (a.mean(0), np.cov(a, rowvar=False), b.mean(0), np.cov(b, rowvar=False))
    factors = tuple((x - x.mean(0)) / np.sqrt(len(x) - 1) for x in (a, b))
    reference = calculate_frechet_distance(*args)
    rel = 1e-7 if min(n1, n2) < 64 else 1e-9  # sqrtm of a singular product is itself only that close
    assert frechet_distance(*args, factors=factors) == pytest.approx(reference, rel=rel, abs=1e-9)


def test_running_stats_keep_rows_only_up_to_dim():
    from vcbench.metrics.inception import RunningStats

    rng = np.random.default_rng(6)
    x = rng.normal(size=(40, 16)).astype(np.float32)
    rs = RunningStats(dim=16)
    rs.add(torch.from_numpy(x[:10]))
    f = rs.centred_factor()
    np.testing.assert_allclose(f.T @ f, rs.mean_cov()[1], rtol=0, atol=1e-12)
    again = RunningStats(dim=16)
    again.load(rs.state())  # the rows travel with the state
    np.testing.assert_array_equal(again.centred_factor(), f)
    rs.add(torch.from_numpy(x[10:]))  # 40 rows > 16: the covariance is full rank, rows are dropped
    assert rs.centred_factor() is None and "rows" not in rs.state()
    np.testing.assert_allclose(rs.mean_cov()[1], np.cov(x.astype(np.float64), rowvar=False), atol=1e-12)


def test_fid_below_2048_frames_uses_the_factor_path_and_equals_the_eigh_path():
    """At 2048-d with 30 frames per side, FID.compute (factors) equals the eigendecomposition path."""
    from vcbench.metrics.inception import FID, frechet_distance

    rng = np.random.default_rng(7)
    fid = FID.__new__(FID)  # the statistics alone: no network needed to test the distance
    from vcbench.metrics.inception import RunningStats

    fid._pred, fid._gt, fid.n_frames, fid._failure = RunningStats(), RunningStats(), 30, None
    fid._pred.add(torch.from_numpy(np.abs(rng.normal(size=(30, 2048))).astype(np.float32)))
    fid._gt.add(torch.from_numpy(np.abs(rng.normal(loc=0.05, size=(30, 2048))).astype(np.float32)))
    (mu1, s1), (mu2, s2) = fid.statistics()
    # The eigh path sums the square roots of ~2000 rounding-level eigenvalues of the null space
    # (clipped at 0, each ~1e-8): that, not the factor path, puts the two ~3e-8 apart.
    fast, slow = fid.compute(), frechet_distance(mu1, s1, mu2, s2)
    assert fast == pytest.approx(slow, rel=1e-7) and fast > 1000


def _assert_same_stats(a, b):
    for (mu_a, cov_a), (mu_b, cov_b) in zip(a, b):
        np.testing.assert_allclose(mu_a, mu_b, rtol=0, atol=1e-6)
        np.testing.assert_allclose(cov_a, cov_b, rtol=0, atol=1e-6)
    assert np.abs(a[0][0] - a[1][0]).max() > 1e-3  # prediction and GT statistics do differ


def test_gt_features_from_cache_and_gt_state(inception_home, sample_frames):
    """Cached GT features give the same FID/KID as computing them; `gt_state` round-trips."""
    from vcbench.metrics.inception import FID, GT_FEATURES_KEY, KID

    gt = sample_frames["bikes"][:4]
    pred = degrade(gt, "chroma", seed=4)
    P, G = _t(pred), _t(gt)  # reused tensors: the extractor's memo spares repeated forwards
    base = FID(allow_unverified=True)
    base.update(P, G)
    feats = base.gt_side(G)
    assert feats.shape == (4, 2048) and feats.dtype == torch.float32

    cached = FID(allow_unverified=True, extractor=base.extractor)
    cached.update(P, torch.zeros_like(G), FrameContext(clip="c", gt_cache={GT_FEATURES_KEY: feats}))
    # Compare the statistics FID is computed from (a 2048-d sqrtm per compare would cost a minute).
    _assert_same_stats(cached.statistics(), base.statistics())

    preloaded = FID(allow_unverified=True, extractor=base.extractor)
    preloaded.load_gt_state(base.gt_state())
    preloaded.update(P, G)
    _assert_same_stats(preloaded.statistics(), base.statistics())
    preloaded.reset()  # a reset keeps the preloaded GT side
    assert preloaded.gt_state()["n"] == 4

    k1 = KID(allow_unverified=True, extractor=base.extractor)
    k1.update(P, G)
    k2 = KID(allow_unverified=True, extractor=base.extractor)
    k2.load_gt_state(k1.gt_state())
    k2.update(P, G)
    assert k2.compute() == pytest.approx(k1.compute(), rel=1e-12)

    with pytest.raises(InputError, match="cached GT Inception features"):
        cached.update(P, G, FrameContext(clip="c", gt_cache={GT_FEATURES_KEY: feats[:2]}))


def test_fid_input_is_pytorch_fids_preprocessing_bit_for_bit(sample_frames):
    """pytorch-fid's steps (ToTensor's float / 255, bilinear resize to 299, 2x - 1) on real frames."""
    import torch.nn.functional as F

    from vcbench.metrics.inception import _fid_input

    frames = _t(sample_frames["bikes"][:3])
    x = F.interpolate(frames.to(torch.float32) / 255.0, size=(299, 299), mode="bilinear", align_corners=False)
    want = 2 * x - 1
    assert torch.equal(_fid_input(frames), want)
    assert torch.equal(_fid_input(frames.to(torch.float64)), want)  # non-uint8 input: float32 first, as before
    assert want.min() < -0.5 and want.max() > 0.5


def test_batched_features_equal_frame_by_frame(inception_home, sample_frames):
    """Tolerance 1e-4 absolute on pool3 features (float32 convolutions regroup sums by batch size)."""
    from vcbench.metrics.inception import InceptionFeatures

    frames = _t(sample_frames["bigbuckbunny"][:3])
    ex = InceptionFeatures(allow_unverified=True, batch_size=3)
    batched = ex.features(frames).clone()
    single = torch.cat([InceptionFeatures.features(ex, frames[k:k + 1].clone()) for k in range(3)])
    np.testing.assert_allclose(batched.numpy(), single.numpy(), rtol=0, atol=1e-4)
    assert ex.features(frames) is ex.features(frames)  # the last batch is remembered for FID + KID


def test_too_few_frames_give_none(inception_home, sample_frames):
    from vcbench.metrics.inception import FID, KID

    f = _t(sample_frames["bikes"][:1])
    fid = FID(allow_unverified=True)
    kid = KID(allow_unverified=True, extractor=fid.extractor)
    fid.update(f, f)
    kid.update(f, f)
    assert fid.compute() is None and kid.compute() is None
    with pytest.raises(InputError, match="at least 2 frames"):
        fid.statistics()


@requires_gpu
@pytest.mark.gpu
def test_cuda_features_match_cpu(inception_home, sample_frames):
    from vcbench.metrics.inception import InceptionFeatures

    frames = _t(sample_frames["bikes"][:2])
    cpu = InceptionFeatures("cpu", allow_unverified=True).features(frames)
    gpu = InceptionFeatures("cuda", allow_unverified=True).features(frames.cuda()).cpu()
    np.testing.assert_allclose(gpu.numpy(), cpu.numpy(), rtol=1e-3, atol=1e-3)


def test_frechet_distance_refuses_a_large_imaginary_part():
    """As pytorch-fid: sqrtm of a product with negative eigenvalues is imaginary, not a distance."""
    from vcbench.metrics.inception import frechet_distance

    for method in ("eigh", "sqrtm"):
        with pytest.raises(ValueError, match="imaginary"):
            frechet_distance(np.zeros(2), np.eye(2), np.zeros(2), -np.eye(2), method=method)
