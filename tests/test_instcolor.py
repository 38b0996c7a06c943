"""instcolor: the three generators with the official key names and shapes, strict loading from the
published zip layout through the resolver, torchvision Mask R-CNN through the resolver, the official
box handling, the no-detection fallback to the full-image branch and the fusion path on boxes."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
import torch

from vcbench.baselines.instcolor import InstColor
from vcbench.baselines.instcolor.detector import select_boxes
from vcbench.baselines.instcolor.networks import ColorGenerator, FusionGenerator, WeightGenerator, box_info
from vcbench.errors import WeightsError
from vcbench.lab import rgb_uint8_to_lab

ZIP = "InstColorization_checkpoints.zip"
MASKRCNN = "maskrcnn_resnet50_fpn_v2_coco-73cbd019.pth"
# Read off models/networks.py (SIGGRAPHGenerator / InstanceGenerator / FusionGenerator / WeightGenerator).
GEN_KEYS = [("model1.0.weight", (64, 4, 3, 3)), ("model1.4.running_var", (64,)), ("model3.6.weight", (256,)),
            ("model8up.0.weight", (512, 256, 4, 4)), ("model3short8.0.weight", (256, 256, 3, 3)),
            ("model10.1.weight", (128, 128, 3, 3)), ("model_class.0.weight", (529, 256, 1, 1)),
            ("model_out.0.weight", (2, 128, 1, 1))]
FUSION_KEYS = [("weight_layer.simple_instance_conv.0.weight", (16, 64, 3, 3)),
               ("weight_layer4.simple_bg_conv.4.weight", (1, 16, 3, 3)),
               ("weight_layer8_1.simple_instance_conv.0.weight", (16, 256, 3, 3)),
               ("weight_layer10_2.simple_bg_conv.2.weight", (16, 16, 3, 3)),
               ("weight_layerout.simple_instance_conv.0.weight", (16, 2, 3, 3))]


def _bytes(state) -> bytes:
    buf = io.BytesIO()
    torch.save(state, buf)
    return buf.getvalue()


def _random(cls, seed):
    torch.manual_seed(seed)
    net = cls()
    for k, v in net.state_dict().items():
        if k.endswith("running_var"):
            v.uniform_(0.5, 2.0)
    return {k: v.clone() for k, v in net.state_dict().items()}


@pytest.fixture(scope="session")
def instcolor_files(tmp_path_factory):
    """The zip as published (three folders; the fusion file with DataParallel's prefix) and a random
    torchvision Mask R-CNN v2 state dict."""
    root = tmp_path_factory.mktemp("instcolor")
    states = {"G": _random(ColorGenerator, 0), "GComp": _random(ColorGenerator, 1), "GF": _random(FusionGenerator, 2)}
    with zipfile.ZipFile(root / ZIP, "w", zipfile.ZIP_STORED) as zf:
        for name, st in states.items():
            st = {("module." + k if name == "GF" else k): v for k, v in st.items()}
            zf.writestr(f"checkpoints/coco_finetuned_mask_256_ffs/latest_net_{name}.pth", _bytes(st))
        zf.writestr("checkpoints/coco_finetuned_mask_256/latest_net_G.pth", _bytes(_random(ColorGenerator, 9)))
    from torchvision.models.detection import maskrcnn_resnet50_fpn_v2

    torch.manual_seed(0)
    torch.save(maskrcnn_resnet50_fpn_v2(weights=None, weights_backbone=None).state_dict(), root / MASKRCNN)
    return root, states


@pytest.fixture
def instcolor_home(torch_home, instcolor_files):
    root, states = instcolor_files
    for name in (ZIP, MASKRCNN):
        (torch_home / "hub" / "checkpoints" / name).symlink_to(root / name)
    return states


def test_detector_is_the_files_mask_rcnn_frozen_and_refuses_another_network(torch_home, instcolor_files):
    """build_detector loads through vcbench.weights (resolver, meta-device build, strict assign): the
    file's tensors, contiguous, frozen, in eval mode; another network under the file's name is one
    WeightsError naming the file and the download command."""
    from torchvision.models import alexnet

    from vcbench.baselines.instcolor.detector import build_detector

    root, _ = instcolor_files
    ckpt = torch_home / "hub" / "checkpoints" / MASKRCNN
    ckpt.parent.mkdir(parents=True, exist_ok=True)
    ckpt.symlink_to(root / MASKRCNN)
    resolved, net = build_detector(torch.device("cpu"), allow_unverified=True)
    assert resolved.path.name == MASKRCNN and resolved.verified is False
    assert not net.training and not any(p.requires_grad for p in net.parameters())
    want = torch.load(root / MASKRCNN, weights_only=True)
    got = net.state_dict()
    assert set(got) == set(want)
    for k, v in got.items():
        assert v.is_contiguous() and torch.equal(v, want[k]), k
    ckpt.unlink()
    torch.save(alexnet(weights=None).state_dict(), ckpt)  # an AlexNet under Mask R-CNN's name
    with pytest.raises(WeightsError, match="not a torchvision Mask R-CNN ResNet-50 FPN v2 state dict") as err:
        build_detector(torch.device("cpu"), allow_unverified=True)
    assert MASKRCNN in str(err.value) and "vcbench weights download maskrcnn_v2" in str(err.value)


def test_official_keys_and_shapes():
    gen, fus = ColorGenerator().state_dict(), FusionGenerator().state_dict()
    for k, s in GEN_KEYS:
        assert tuple(gen[k].shape) == s and tuple(fus[k].shape) == s, k
    for k, s in FUSION_KEYS:
        assert tuple(fus[k].shape) == s, k
    # 14 WeightGenerators (13 stages + the unused weight_layerout) of 6 convs, weight and bias each
    assert len([k for k in fus if k.startswith("weight_layer")]) == 14 * 12


def test_box_info_and_selection_as_the_official_code():
    # x0, y0, x1, y1 in a 200 x 100 (W x H) image, at 256: [left, right, top, bottom, width, height]
    assert box_info((50, 25, 150, 75), (200, 100), 256) == [64, 64, 64, 64, 128, 128]
    assert box_info((10, 10, 10, 12), (200, 100), 32) == [1, 30, 3, 28, 1, 1]  # degenerate: one pixel, grown
    assert box_info((194, 0, 194, 1), (200, 100), 32) == [30, 1, 0, 31, 1, 1]  # no room right: grows left
    boxes = torch.arange(40, dtype=torch.float32).reshape(10, 4) + 0.7
    scores = torch.tensor([0.9, 0.8, 0.95, 0.71, 0.99, 0.75, 0.85, 0.72, 0.93, 0.74])
    sel = select_boxes(boxes, scores)
    assert sel.dtype == np.int32 and sel.shape == (8, 4)
    assert sel[:, 0].tolist() == [36, 20, 4, 24, 0, 32, 8, 16]  # the 8 best, ascending score, truncated
    assert select_boxes(boxes[:3], scores[:3])[:, 0].tolist() == [0, 4, 8]  # <= 8: detector order


def test_weight_generator_keeps_the_background_outside_boxes():
    torch.manual_seed(0)
    wg = WeightGenerator(4).eval()
    bg, inst = torch.randn(1, 4, 16, 16), torch.randn(2, 4, 8, 8)
    boxes = [[2, 8, 3, 7, 6, 6], [8, 0, 8, 0, 8, 8]]
    out = wg(inst, bg, boxes)
    inside = torch.zeros(16, 16, dtype=torch.bool)
    inside[3:9, 2:8] = True
    inside[8:16, 8:16] = True
    assert torch.equal(out[0][:, ~inside], bg[0][:, ~inside])
    assert not torch.allclose(out[0][:, inside], bg[0][:, inside])


def test_strict_load_through_the_resolver_and_the_no_detection_fallback(instcolor_home, sample_frames):
    with pytest.raises(WeightsError, match="does not match"):  # random Mask R-CNN bytes fail its hash prefix
        InstColor()
    # random Mask R-CNN weights do score above 0.7; a threshold no score passes gives "no detection"
    model = InstColor(allow_unverified_weights=True, net_size=64, detector_size=64, score_thresh=1.0)
    assert model.verified is False
    assert set(model.weights_used()) == {ZIP, MASKRCNN, "latest_net_G.pth", "latest_net_GF.pth", "latest_net_GComp.pth"}
    for net, name in ((model.instance_net, "G"), (model.full_net, "GComp"), (model.fusion_net, "GF")):
        assert torch.equal(net.model1[0].weight, instcolor_home[name]["model1.0.weight"])
    frames = sample_frames["bigbuckbunny"][:2, :48, :80]
    L = rgb_uint8_to_lab(torch.from_numpy(frames).permute(0, 3, 1, 2))[:, :1].contiguous()
    out = model.colorize(L)
    assert out.shape == (2, 3, 48, 80) and out.dtype == torch.uint8
    assert [b.shape for b in model.last_boxes] == [(0, 4), (0, 4)]  # random weights: nothing above the threshold
    # the fallback is the full-image generator alone, as set_forward_without_box
    A = (torch.nn.functional.interpolate(L[:1], size=(64, 64), mode="bilinear", antialias=True) - 50) / 100
    with torch.no_grad():
        ab = model.full_net(A, torch.zeros(1, 2, 64, 64), torch.full((1, 1, 64, 64), -0.5)) * 110
    ab = torch.nn.functional.interpolate(ab, size=(48, 80), mode="bilinear")
    from vcbench.lab import lab_to_rgb

    expect = torch.round(lab_to_rgb(torch.cat([L[:1], ab], 1).double()) * 255).to(torch.uint8)
    assert torch.equal(out[:1], expect)
    # injected boxes take the instance + fusion path (the real fusion code)
    boxed = model.colorize_with_boxes(L[:1], np.array([[10, 5, 50, 40], [0, 0, 80, 48]], dtype=np.int32))
    assert boxed.shape == (1, 3, 48, 80) and not torch.equal(boxed, out[:1])


def test_missing_weights_is_one_line(torch_home, instcolor_files):
    with pytest.raises(WeightsError) as err:
        InstColor()
    assert MASKRCNN in str(err.value) and "\n" not in str(err.value)
    (torch_home / "hub" / "checkpoints" / MASKRCNN).symlink_to(instcolor_files[0] / MASKRCNN)
    with pytest.raises(WeightsError) as err:
        InstColor(allow_unverified_weights=True)
    assert ZIP in str(err.value) and "drive.google.com" in str(err.value) and "\n" not in str(err.value)
