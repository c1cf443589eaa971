"""The PyTorch side of the `icons` benchmark: the atlas icon optimisation written as a PyTorch user writes it, all icons
of the batch in one tensor.

- network: torchvision's module cut at the layer with the ONNX model's weights (torch_side.py);
- image: lucid's fft_image (half spectrum scaled by sqrt(h w) / max(f, 1/max(h, w)) / 4, irfft2), lucid's colour
  decorrelation, sigmoid; spectrum initialised from N(0, 0.01^2);
- transformation robustness as the renderer draws it (RobustnessTransforms.Atlas): pad 16 with 0.5, jitter 4, 4, 8, 8, 8,
  scale 0.998^n (n in 20..39, TensorFlow 1's corner-aligned bilinear resize), rotation from range(-20, 20) +
  range(-10, 10) + range(-5, 5) + 5 x [0] degrees (bilinear about the centre, zeros outside), jitter 2, centre crop or
  zero pad back to the icon size, then a half-pixel bilinear resize to the network's input size where it differs. Each
  icon draws its own; the chain is applied to the whole batch as two affine_grid/grid_sample resamplings (jitters and
  scale; rotation, jitter and crop) with masks for the zero borders;
- normalisation: ImageNet mean/std, or the ResNet18 package's (x 255, RGB -> BGR, minus the mean image resized);
- objective: dot x max(0.1, cos)^4 of the activation at the layer's centre with the target; Adam, learning rate 0.05.

usage: icons_torch.py --model M --onnx MODEL.onnx --cut MODULE --directions D.f32 --channels C --size 80
       --input-size 96 --steps 64 --norm imagenet|meanimage [--preprocess ResNetPreprocess.onnx] --threads N
       --net-iterations 4 --check-input X.f32 --check-layer L.f32 --layer-shape 2,C,H,W

Setup: checks the layer against ONNX Runtime's on the check input (within 1e-4 relative, else it exits), checks the
batched transforms against a per-icon reference of the renderer's sampling, counts FLOPs, measures the matrix-multiply
peak, warms up. Worker commands: `steps` (a fresh optimisation of every icon for --steps steps, then one clean
evaluation: {"seconds", "median_fidelity"}) and `network` (--net-iterations runs of the network part alone on a fixed
transformed batch, normalisation to input gradient: {"ms_per_batch"}).
"""
import argparse
import math
import os
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_side as ts  # noqa: E402

PAD, JITTERS, LAST_JITTER = 16, (4, 4, 8, 8, 8), 2
SCALES = np.array([0.998 ** n for n in range(20, 40)])
ANGLES = np.array(list(range(-20, 20)) + list(range(-10, 10)) + list(range(-5, 5)) + 5 * [0], dtype=np.float64)


def offset(inp, out):
    """CropOrPadTransform: crop starts (in - out) / 2 into the input; pad: the input starts (out - in) / 2 in."""
    return np.where(inp >= out, (inp - out) // 2, -((out - inp) // 2))


class AtlasTransforms:
    """The atlas transformation robustness for a batch, one random draw per icon per step."""

    def __init__(self, size, input_size, rng):
        self.size, self.input_size, self.rng = size, input_size, rng
        self.padded = size + 2 * PAD
        self.cropped = self.padded - sum(JITTERS)
        self.canvas = int(SCALES.max() * self.cropped)

    def draw(self, n):
        r = self.rng
        return {"oy": sum(r.integers(0, d + 1, n) for d in JITTERS), "ox": sum(r.integers(0, d + 1, n) for d in JITTERS),
                "scale": SCALES[r.integers(0, len(SCALES), n)], "angle": ANGLES[r.integers(0, len(ANGLES), n)],
                "jy": r.integers(0, LAST_JITTER + 1, n), "jx": r.integers(0, LAST_JITTER + 1, n)}

    def __call__(self, images, d):
        n, s, p, h0, c = images.shape[0], self.size, self.padded, self.cropped, self.canvas
        scaled = (d["scale"] * h0).astype(np.int64)  # (int)(scale * height)
        # 1. pad, jitters (integer crops: one offset) and scale (corner-aligned: source = offset + y * h0 / scaled).
        r = h0 / scaled
        a = r * (c - 1) / (p - 1)
        theta = np.zeros((n, 2, 3))
        theta[:, 0, 0] = theta[:, 1, 1] = a
        theta[:, 0, 2] = -1 + 2 * d["ox"] / (p - 1) + a
        theta[:, 1, 2] = -1 + 2 * d["oy"] / (p - 1) + a
        x = F.pad(images, [PAD] * 4, value=0.5)
        grid = F.affine_grid(torch.from_numpy(theta).float(), [n, 3, c, c], align_corners=True)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="border", align_corners=True)
        idx = torch.arange(c)
        inside = torch.from_numpy(scaled).view(n, 1)
        mask = ((idx.view(1, c) < inside).view(n, 1, c, 1) & (idx.view(1, c) < inside).view(n, 1, 1, c)).float()
        x = x * mask
        # 2. rotation about the scaled image's centre, jitter 2, crop or pad to the icon size: output (X, Y) samples the
        # scaled image at R (X + off + jx - centre, Y + off + jy - centre) + centre; zeros outside.
        off = offset(scaled - LAST_JITTER, s)
        centre = (scaled - 1) / 2.0
        rad = np.radians(d["angle"])
        cos, sin = np.cos(rad), np.sin(rad)
        ux, uy = off + d["jx"] - centre, off + d["jy"] - centre
        tx, ty = cos * ux - sin * uy + centre, sin * ux + cos * uy + centre
        k, m = (s - 1) / 2.0, 2.0 / (c - 1)
        theta = np.zeros((n, 2, 3))
        theta[:, 0, 0], theta[:, 0, 1], theta[:, 0, 2] = m * cos * k, -m * sin * k, -1 + m * (cos * k - sin * k + tx)
        theta[:, 1, 0], theta[:, 1, 1], theta[:, 1, 2] = m * sin * k, m * cos * k, -1 + m * (sin * k + cos * k + ty)
        grid = F.affine_grid(torch.from_numpy(theta).float(), [n, 3, s, s], align_corners=True)
        x = F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=True)
        j = torch.arange(s).view(1, s) + torch.from_numpy(off).view(n, 1)
        valid = (j >= 0) & (j < torch.from_numpy(scaled - LAST_JITTER).view(n, 1))
        x = x * (valid.view(n, 1, s, 1) & valid.view(n, 1, 1, s)).float()
        # 3. to the network's input size (half-pixel bilinear), as the renderer's chain ends.
        if self.input_size != s:
            x = F.interpolate(x, size=(self.input_size, self.input_size), mode="bilinear", align_corners=False)
        return x


def reference_transform(image, d, i, size, input_size):
    """One icon through the renderer's SampledMap steps (pad, windows, corner-aligned resize, rotation with per-tap
    bounds, window, half-pixel resize), in numpy float64: the check of the batched version."""
    def window(img, oh, ow, oy, ox, fill):
        out = np.full((3, oh, ow), fill)
        ya, yb, xa, xb = max(0, -oy), min(oh, img.shape[1] - oy), max(0, -ox), min(ow, img.shape[2] - ox)
        out[:, ya:yb, xa:xb] = img[:, ya + oy:yb + oy, xa + ox:xb + ox]
        return out

    def resize(img, oh, ow, half):
        ih, iw = img.shape[1:]
        def src(o, i_):
            r = i_ / o
            s = (np.arange(o) + 0.5) * r - 0.5 if half else np.arange(o) * r
            s = np.clip(s, 0, i_ - 1)
            s0 = np.floor(s).astype(int)
            return s0, np.minimum(s0 + 1, i_ - 1), s - s0
        y0, y1, fy = src(oh, ih)
        x0, x1, fx = src(ow, iw)
        top = img[:, y0][:, :, x0] * (1 - fx) + img[:, y0][:, :, x1] * fx
        bottom = img[:, y1][:, :, x0] * (1 - fx) + img[:, y1][:, :, x1] * fx
        return top * (1 - fy)[:, None] + bottom * fy[:, None]

    def rotate(img, degrees):
        h, w = img.shape[1:]
        a = math.radians(degrees)
        yy, xx = np.meshgrid(np.arange(h), np.arange(w), indexing="ij")
        cy, cx = (h - 1) / 2, (w - 1) / 2
        sx = math.cos(a) * (xx - cx) - math.sin(a) * (yy - cy) + cx
        sy = math.sin(a) * (xx - cx) + math.cos(a) * (yy - cy) + cy
        x0, y0 = np.floor(sx).astype(int), np.floor(sy).astype(int)
        fx, fy = sx - x0, sy - y0
        out = np.zeros_like(img)
        for dy, dx, wgt in ((0, 0, (1 - fy) * (1 - fx)), (0, 1, (1 - fy) * fx), (1, 0, fy * (1 - fx)), (1, 1, fy * fx)):
            ty, tx = y0 + dy, x0 + dx
            ok = (ty >= 0) & (ty < h) & (tx >= 0) & (tx < w)
            out[:, ok] += wgt[ok] * img[:, ty[ok], tx[ok]]
        return out

    img = window(image, size + 2 * PAD, size + 2 * PAD, -PAD, -PAD, 0.5)
    h = img.shape[1] - sum(JITTERS)
    img = window(img, h, h, int(d["oy"][i]), int(d["ox"][i]), 0.0)
    sc = int(d["scale"][i] * h)
    img = resize(img, sc, sc, half=False)
    img = rotate(img, float(d["angle"][i]))
    img = window(img, sc - LAST_JITTER, sc - LAST_JITTER, int(d["jy"][i]), int(d["jx"][i]), 0.0)
    o = int(offset(np.array(sc - LAST_JITTER), size))
    img = window(img, size, size, o, o, 0.0)
    if input_size != size:
        img = resize(img, input_size, input_size, half=True)
    return img


class FourierImages:
    """lucid's fft_image + colour decorrelation + sigmoid for n icons: parameters [n, 2, 3, h, w // 2 + 1]."""

    def __init__(self, n, size):
        fy = np.fft.fftfreq(size)[:, None]
        fx = np.fft.rfftfreq(size)[None, :]
        freqs = np.sqrt(fx * fx + fy * fy)
        self.scale = torch.from_numpy(np.sqrt(size * size) / np.maximum(freqs, 1.0 / size) / 4.0).float()
        svd = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
        self.colors = svd / svd.norm(dim=0).max()
        self.n, self.size = n, size
        self.spectrum = torch.zeros(n, 2, 3, size, fx.shape[1], requires_grad=True)

    def reset(self, generator):
        with torch.no_grad():
            self.spectrum.normal_(0.0, 0.01, generator=generator)

    def __call__(self):
        spec = torch.complex(self.spectrum[:, 0], self.spectrum[:, 1]) * self.scale
        raw = torch.fft.irfft2(spec, s=(self.size, self.size))
        return torch.sigmoid(torch.einsum("ij,njhw->nihw", self.colors, raw))


def shape(text):
    return [int(v) for v in text.split(",")]


p = argparse.ArgumentParser()
for name in ("model", "onnx", "cut", "directions", "norm", "check-input", "check-layer"):
    p.add_argument("--" + name, required=True)
for name, default in (("channels", None), ("size", 80), ("input-size", None), ("steps", 64), ("net-iterations", 4),
                      ("threads", os.cpu_count()), ("seed", 0)):
    p.add_argument("--" + name, type=int, default=default)
p.add_argument("--preprocess")
p.add_argument("--layer-shape", type=shape, required=True)
args = p.parse_args()
input_size = args.input_size or args.size

ts.set_threads(args.threads)
torch.manual_seed(args.seed)
net = ts.build(args.model, args.onnx, args.cut)
targets = torch.from_numpy(np.fromfile(args.directions, dtype=np.float32).reshape(-1, args.channels))
n = targets.shape[0]

if args.norm == "imagenet":
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)

    def normalize(x):
        return (x - mean) / std
elif args.norm == "meanimage":
    graph = ts.OnnxGraph(args.preprocess)
    mean_image = torch.from_numpy(next(iter(graph.initializers.values())))
    mean_image = F.interpolate(mean_image, size=(input_size, input_size), mode="bilinear", align_corners=False)

    def normalize(x):
        return x.flip(1) * 255.0 - mean_image
else:
    raise SystemExit(f"unknown --norm {args.norm}")

# Agreement with ONNX Runtime (normalisation included) on the check images.
with torch.no_grad():
    check = net(normalize(ts.read_f32(args.check_input, [args.layer_shape[0], 3, input_size, input_size])))
layer_err = ts.agreement(f"{args.model} to {args.cut} at {input_size} px, layer {list(check.shape)}", check,
                         ts.read_f32(args.check_layer, args.layer_shape))
ts.require("the layer", layer_err, 1e-4)
py, px = check.shape[2] // 2, check.shape[3] // 2

rng = np.random.default_rng(args.seed)
transforms = AtlasTransforms(args.size, input_size, rng)
images = FourierImages(n, args.size)
generator = torch.Generator().manual_seed(args.seed)
images.reset(generator)

# The batched transforms against the per-icon reference.
with torch.no_grad():
    img = images()
    d = transforms.draw(n)
    batched = transforms(img, d)
transform_err = max(float(np.abs(batched[i].double().numpy() - reference_transform(img[i].double().numpy(), d, i, args.size, input_size)).max())
                    for i in range(min(n, 4)))
ts.log(f"check: batched transforms vs the per-icon reference of the renderer's sampling: max |diff| = {transform_err:.2e}")
if not transform_err <= 1e-4:
    raise SystemExit(f"check failed: the batched transforms differ from the reference by {transform_err:.2e}")


def objective(layer):
    a = layer[:, :, py, px]
    dot = (a * targets).sum(1)
    cos = dot / (a.norm(dim=1) * targets.norm(dim=1) + 1e-4)
    return dot * torch.clamp(cos, min=0.1) ** 4, a


def run_steps(steps):
    images.reset(generator)
    opt = torch.optim.Adam([images.spectrum], lr=0.05)
    start = time.perf_counter()
    for _ in range(steps):
        opt.zero_grad(set_to_none=True)
        x = transforms(images(), transforms.draw(n))
        value, _ = objective(net(normalize(x)))
        (-value.sum()).backward()
        opt.step()
    with torch.no_grad():
        clean = images()
        if input_size != args.size:
            clean = F.interpolate(clean, size=(input_size, input_size), mode="bilinear", align_corners=False)
        _, a = objective(net(normalize(clean)))
        fidelity = F.cosine_similarity(a, targets, dim=1)
    seconds = time.perf_counter() - start
    return {"seconds": seconds, "icon_steps_per_s": n * steps / seconds, "median_fidelity": float(fidelity.median())}


with torch.no_grad():
    fixed = transforms(images(), transforms.draw(n))


def network_step():
    xi = fixed.detach().requires_grad_(True)
    value, _ = objective(net(normalize(xi)))
    (g,) = torch.autograd.grad(-value.sum(), xi)
    return g


def network_round():
    t = time.perf_counter()
    for _ in range(args.net_iterations):
        network_step()
    return {"ms_per_batch": (time.perf_counter() - t) * 1000 / args.net_iterations}


count = ts.flops(net, fixed[:1])
peak = ts.matmul_peak()
run_steps(2)
network_step()

info = ts.configuration(args.threads)
info.update({"check": {"layer_max_rel_diff": layer_err, "transforms_max_abs_diff": transform_err},
             "forward_flops_per_image": count["forward"], "backward_flops_per_image": count["backward"],
             "matmul_peak_gflops": peak, "layer_position": [py, px]})
ts.serve(info, {"steps": lambda: run_steps(args.steps), "network": network_round})
