"""Top-1/top-5 against a direct torchvision VGG19 + IMAGENET1K_V1 transforms forward, same random weights."""

from __future__ import annotations

import os

import numpy as np
import pytest
import torch
from conftest import degrade, requires_gpu

from vcbench.errors import InputError, WeightsError
from vcbench.metrics.context import FrameContext

VGG_FILE = "vgg19-dcbb9e9d.pth"


@pytest.fixture(scope="module")
def vgg_file(tmp_path_factory):
    from torchvision.models import vgg19

    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("vgg") / VGG_FILE
    torch.save(vgg19(weights=None).state_dict(), path)
    return path


@pytest.fixture
def vgg_home(torch_home, vgg_file):
    os.symlink(vgg_file, torch_home / "hub" / "checkpoints" / VGG_FILE)
    return torch_home


def _t(frames: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(frames)).permute(0, 3, 1, 2).contiguous()


@pytest.fixture(scope="module")
def reference_net(vgg_file):
    """torchvision's own recipe: vgg19(weights=None) + the same state dict."""
    from torchvision.models import vgg19

    net = vgg19(weights=None)
    net.load_state_dict(torch.load(vgg_file, weights_only=True))
    return net.eval()


def _reference_logits(net, frames: torch.Tensor) -> torch.Tensor:
    """One frame at a time through the weights' own transforms (IMAGENET1K_V1.transforms())."""
    from torchvision.models import VGG19_Weights

    tf = VGG19_Weights.IMAGENET1K_V1.transforms()
    with torch.no_grad():
        return torch.cat([net(tf(f)[None]) for f in frames])


def test_top1_top5_match_torchvision(vgg_home, reference_net, sample_frames):
    from vcbench.metrics.registry import create_metrics

    gt = sample_frames["bigbuckbunny"][:3]
    pred = degrade(gt, "chroma+hue", seed=0)
    ref_gt = _reference_logits(reference_net, _t(gt))
    ref_pred = _reference_logits(reference_net, _t(pred))

    ms = create_metrics(["top1", "top5"], allow_unverified=True)
    top1, top5 = ms["top1"], ms["top5"]
    assert top1.classifier is top5.classifier  # one network for both
    calls = []
    top1.classifier.net.register_forward_hook(lambda *a: calls.append(1))
    ctx = FrameContext(clip="c")
    p, g = _t(pred), _t(gt)  # one tensor per batch, fed to every metric (as the scorer does)
    top1.update(p, g, ctx)
    top5.update(p, g, ctx)
    assert len(calls) == 2  # prediction and GT once each, shared by top1 and top5

    np.testing.assert_allclose(top1.classifier.logits(_t(pred)).numpy(), ref_pred.numpy(), rtol=1e-4, atol=1e-5)
    label = ref_gt.argmax(1)
    want1 = (ref_pred.argmax(1) == label).double().tolist()
    want5 = (ref_pred.topk(5, dim=1).indices == label[:, None]).any(1).double().tolist()
    top1.end_clip("c")
    top5.end_clip("c")
    assert top1.per_frame["c"] == want1 and top5.per_frame["c"] == want5
    assert top1.per_clip["c"] == pytest.approx(np.mean(want1))
    # The GT against itself: every label is its own top-1.
    same = type(top1)(classifier=top1.classifier)
    same.update(g, g)
    assert same.compute() == 1.0


def test_labels_and_cached_gt_predictions(vgg_home, reference_net, sample_frames):
    from vcbench.metrics.classification import GT_TOP1_KEY, LABELS_KEY, Top1, Top5

    frames = _t(sample_frames["bikes"][:3])
    ref = _reference_logits(reference_net, frames)
    best = ref.argmax(1)
    top1 = Top1(allow_unverified=True)
    top5 = Top5(classifier=top1.classifier)
    wrong = (best[2] + 1) % 1000
    labels = torch.tensor([best[0], best[1], wrong])
    rank = (ref[2] > ref[2, wrong]).sum().item()  # how many classes beat the wrong label on frame 2
    ctx = FrameContext(clip="c", gt_cache={LABELS_KEY: labels})
    top1.update(frames, torch.zeros_like(frames), ctx)  # with labels the GT frames are not needed
    top5.update(frames, torch.zeros_like(frames), ctx)
    assert top1._current == [1.0, 1.0, 0.0]
    assert top5._current == [1.0, 1.0, 1.0 if rank < 5 else 0.0]

    assert torch.equal(top1.gt_side(frames), best)  # what the scorer caches
    cached = Top1(classifier=top1.classifier)
    cached.update(frames, torch.zeros_like(frames), FrameContext(clip="c", gt_cache={GT_TOP1_KEY: best}))
    assert cached._current == [1.0, 1.0, 1.0]
    with pytest.raises(InputError, match="0..999"):
        cached.update(frames, frames, FrameContext(clip="c", gt_cache={LABELS_KEY: torch.tensor([0, 1, 1000])}))


def test_batched_equals_frame_by_frame(vgg_home, sample_frames):
    """Logits within 1e-4 (float32 convolutions regroup sums by batch size); identical hits."""
    from vcbench.metrics.classification import VGG19Classifier

    frames = _t(sample_frames["bigbuckbunny"][3:6])
    clf = VGG19Classifier(allow_unverified=True, batch_size=3)
    batched = clf.logits(frames).clone()
    clf.batch_size = 1
    one = clf.logits(frames.clone())
    np.testing.assert_allclose(batched.numpy(), one.numpy(), rtol=1e-4, atol=1e-5)


def test_missing_weights_are_a_weights_error(torch_home):
    from vcbench.metrics.classification import Top1

    with pytest.raises(WeightsError, match=VGG_FILE):
        Top1()


@requires_gpu
@pytest.mark.gpu
def test_cuda_matches_cpu(vgg_home, sample_frames):
    from vcbench.metrics.classification import VGG19Classifier

    frames = _t(sample_frames["bikes"][:2])
    cpu = VGG19Classifier("cpu", allow_unverified=True).logits(frames)
    gpu = VGG19Classifier("cuda", allow_unverified=True).logits(frames.cuda()).cpu()
    np.testing.assert_allclose(gpu.numpy(), cpu.numpy(), rtol=1e-3, atol=1e-3)
