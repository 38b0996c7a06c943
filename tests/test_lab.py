"""Torch Lab against skimage.color on real images, both ways, float32/float64, and gradients."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch
from skimage import color, data

from vcbench.frames import Clip, sample_videos
from vcbench.lab import lab2rgb_np, lab_to_rgb, lab_to_rgb_uint8, rgb2lab_np, rgb_to_lab, rgb_uint8_to_lab


def _bikes_frame() -> np.ndarray:
    clip = Clip("bikes", sample_videos()["bikes"], "video")
    return next(iter(clip.iter_frames()))


@pytest.fixture(scope="module")
def images() -> dict[str, np.ndarray]:
    return {"chelsea": data.chelsea(), "astronaut": data.astronaut(), "bikes": _bikes_frame()}


def _chw(a: np.ndarray, dtype=torch.float64) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(a)).permute(2, 0, 1).to(dtype)


def _hwc(t: torch.Tensor) -> np.ndarray:
    return t.permute(1, 2, 0).double().numpy()


def _random_lab(shape, seed=0) -> np.ndarray:
    """Lab values far outside the sRGB gamut too: L beyond 0..100, |a|,|b| up to 160."""
    rng = np.random.default_rng(seed)
    lab = np.empty(shape + (3,))
    lab[..., 0] = rng.uniform(-5, 105, shape)
    lab[..., 1:] = rng.uniform(-160, 160, shape + (2,))
    return lab


@pytest.mark.parametrize("name", ["chelsea", "astronaut", "bikes"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_rgb_to_lab_matches_skimage(images, name, dtype):
    img = images[name]
    ref = color.rgb2lab(img)
    got = _hwc(rgb_to_lab(_chw(img, dtype) / 255.0))
    assert got.shape == ref.shape
    np.testing.assert_allclose(got, ref, atol=1e-4 if dtype == torch.float32 else 1e-10, rtol=0)
    got_u8 = _hwc(rgb_uint8_to_lab(_chw(img, torch.uint8), dtype=dtype))
    np.testing.assert_allclose(got_u8, ref, atol=1e-4 if dtype == torch.float32 else 1e-10, rtol=0)


@pytest.mark.parametrize("name", ["chelsea", "astronaut", "bikes"])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_lab_to_rgb_matches_skimage_in_and_out_of_gamut(images, name, dtype):
    lab_in = color.rgb2lab(images[name])
    lab_out = _random_lab(lab_in.shape[:2], seed=len(name))
    tol = 1e-4 if dtype == torch.float32 else 1e-10
    for lab in (lab_in, lab_out):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # skimage warns about the negative Z it clips
            ref = color.lab2rgb(lab)
        got = _hwc(lab_to_rgb(_chw(lab, dtype)))
        np.testing.assert_allclose(got, ref, atol=tol, rtol=0)
    # The out-of-gamut sample really exercises the clipping paths.
    assert (ref == 0).mean() > 0.1 and (ref == 1).mean() > 0.1


def test_uint8_output_truncates_like_astype(images):
    def ref_u8(lab):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return (color.lab2rgb(lab) * 255).astype(np.uint8)

    # Generic Lab (e.g. a network's prediction), in and out of gamut: identical uint8 output.
    lab = _random_lab((200, 300), seed=3)
    lab[..., 1:] *= 0.5
    got = lab_to_rgb_uint8(_chw(lab)).permute(1, 2, 0).numpy()
    assert got.dtype == np.uint8
    np.testing.assert_array_equal(got, ref_u8(lab))
    # A uint8 round trip lands within 1e-13 of integers, where truncation is ill-conditioned (skimage
    # itself returns the input for only ~60% of values): agreement is then within one level.
    lab = color.rgb2lab(images["chelsea"])
    diff = np.abs(lab_to_rgb_uint8(_chw(lab)).permute(1, 2, 0).numpy().astype(int) - ref_u8(lab).astype(int))
    assert diff.max() <= 1
    # Truncation, not rounding: a colour 0.7 of a level above 100 comes out as 100.
    lab_gray = color.rgb2lab(np.full((1, 1, 3), 100.7 / 255))
    assert lab_to_rgb_uint8(_chw(lab_gray)).flatten().tolist() == [100, 100, 100]


def test_batched_leading_dims_and_numpy_wrappers(images):
    a = images["chelsea"][:64, :96]
    b = images["astronaut"][:64, :96]
    batch = torch.stack([_chw(a), _chw(b)]).view(1, 2, 3, 64, 96) / 255.0
    lab = rgb_to_lab(batch)
    assert lab.shape == (1, 2, 3, 64, 96)
    np.testing.assert_allclose(_hwc(lab[0, 1]), color.rgb2lab(b), atol=1e-10)
    np.testing.assert_allclose(rgb2lab_np(np.stack([a, b])), color.rgb2lab(np.stack([a, b])), atol=1e-10)
    np.testing.assert_allclose(lab2rgb_np(color.rgb2lab(a)), color.lab2rgb(color.rgb2lab(a)), atol=1e-10)
    with pytest.raises(ValueError):
        rgb_to_lab(torch.zeros(4, 64, 96))
    with pytest.raises(TypeError):
        rgb_to_lab(torch.zeros(3, 4, 4, dtype=torch.uint8))


def test_gradients_flow_and_are_finite(images):
    rgb = (_chw(images["chelsea"][:32, :48], torch.float32) / 255.0).requires_grad_(True)
    # Include exact threshold values and zeros, where a naive pow would give NaN gradients.
    with torch.no_grad():
        rgb[0, 0, :3] = torch.tensor([0.0, 0.04045, 1.0])
    lab = rgb_to_lab(rgb)
    lab.sum().backward()
    assert torch.isfinite(rgb.grad).all() and rgb.grad.abs().sum() > 0

    lab_in = torch.from_numpy(_random_lab((16, 16), seed=7)).permute(2, 0, 1).requires_grad_(True)
    out = lab_to_rgb(lab_in)
    out.sum().backward()
    assert torch.isfinite(lab_in.grad).all() and lab_in.grad.abs().sum() > 0
    # gradcheck on in-gamut values away from the clipping kinks
    x = torch.from_numpy(color.rgb2lab(images["astronaut"][100:103, 200:203])).permute(2, 0, 1).requires_grad_(True)
    assert torch.autograd.gradcheck(lab_to_rgb, (x,))
    y = (torch.rand(3, 3, 3, dtype=torch.float64) * 0.8 + 0.1).requires_grad_(True)
    assert torch.autograd.gradcheck(rgb_to_lab, (y,))


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device; none here")
def test_gpu_matches_cpu(images):
    x = _chw(images["astronaut"], torch.float32) / 255.0
    np.testing.assert_allclose(rgb_to_lab(x.cuda()).cpu().numpy(), rgb_to_lab(x).numpy(), atol=1e-4)
    lab = rgb_to_lab(x)
    np.testing.assert_allclose(lab_to_rgb(lab.cuda()).cpu().numpy(), lab_to_rgb(lab).numpy(), atol=1e-5)
