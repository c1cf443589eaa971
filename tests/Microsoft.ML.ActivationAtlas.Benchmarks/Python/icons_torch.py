"""The icon optimisation of the `icons` benchmark written with PyTorch (CPU), for a same-run comparison.

Same network (the ONNX file run by onnx_torch's interpreter, so the weights are identical), lucid's Fourier
parameterisation with decorrelated colour and sigmoid, the atlas transformation robustness drawn per icon, the atlas
objective dot x max(0.1, cos)^4 at the centre of the layer, Adam 0.05. Prints one JSON line.

usage: icons_torch.py MODEL LAYER DIRECTIONS.f32 CHANNELS SIZE STEPS NORM [MEAN_IMAGE.f32 MEAN_SIZE]
  NORM: imagenet | meanimage (x * 255, RGB -> BGR, minus the mean image [3, MEAN_SIZE, MEAN_SIZE] resized to SIZE)
"""
import json
import math
import os
import random
import sys
import time

import numpy as np
import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_torch import OnnxTorch  # noqa: E402

torch.set_num_threads(os.cpu_count() or 1)
model_path, layer, dir_path, channels, size, steps, norm = sys.argv[1:8]
channels, size, steps = int(channels), int(size), int(steps)
targets = torch.from_numpy(np.fromfile(dir_path, dtype=np.float32).reshape(-1, channels))
batch = targets.shape[0]
torch.manual_seed(0)
random.seed(0)

net = OnnxTorch(model_path)
input_name = net.model.graph.input[0].name
for p in net.consts.values():
    p.requires_grad_(False)

if norm == "imagenet":
    mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
    std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
    normalize = lambda x: (x - mean) / std  # noqa: E731
else:
    ms = int(sys.argv[9])
    mimg = torch.from_numpy(np.fromfile(sys.argv[8], dtype=np.float32).reshape(1, 3, ms, ms))
    mimg = F.interpolate(mimg, size=(size, size), mode="bilinear", align_corners=False)
    normalize = lambda x: x.flip(1) * 255.0 - mimg  # noqa: E731

# lucid fft_image + decorrelated colour + sigmoid
h = w = size
fy = np.fft.fftfreq(h)[:, None]
fx = np.fft.fftfreq(w)[: w // 2 + (2 if w % 2 else 1)]
freqs = np.sqrt(fx * fx + fy * fy)
scale = torch.from_numpy((1.0 / np.maximum(freqs, 1.0 / max(h, w)) * math.sqrt(w * h)).astype(np.float32))
spectrum = (0.01 * torch.randn(2, batch, 3, *freqs.shape)).requires_grad_(True)
svd = torch.tensor([[0.26, 0.09, 0.02], [0.27, 0.00, -0.05], [0.27, -0.09, 0.03]])
svd = svd / svd.norm(dim=0).max()


def image():
    spec = torch.complex(spectrum[0], spectrum[1]) * scale
    img = torch.fft.irfft2(spec, s=(h, 2 * (freqs.shape[1] - 1)))[..., :h, :w] / 4.0
    img = torch.einsum("ij,bjhw->bihw", svd, img)
    return torch.sigmoid(img)


scales = [0.998 ** n for n in range(20, 40)]
angles = list(range(-20, 20)) + list(range(-10, 10)) + list(range(-5, 5)) + 5 * [0]


def jitter(t, d):
    oy, ox = random.randint(0, d), random.randint(0, d)
    return t[:, :, oy:t.shape[2] - d + oy, ox:t.shape[3] - d + ox]


def rotate(t, deg):
    a = math.radians(deg)
    theta = torch.tensor([[math.cos(a), -math.sin(a), 0.0], [math.sin(a), math.cos(a), 0.0]]).unsqueeze(0)
    grid = F.affine_grid(theta, list(t.shape), align_corners=False)
    return F.grid_sample(t, grid, mode="bilinear", padding_mode="zeros", align_corners=False)


def crop_or_pad(t, s):
    dh, dw = t.shape[2] - s, t.shape[3] - s
    if dh < 0 or dw < 0:
        t = F.pad(t, [max(-dw, 0) // 2, max(-dw, 0) - max(-dw, 0) // 2, max(-dh, 0) // 2, max(-dh, 0) - max(-dh, 0) // 2])
        dh, dw = t.shape[2] - s, t.shape[3] - s
    return t[:, :, dh // 2:dh // 2 + s, dw // 2:dw // 2 + s]


def transform(one):
    t = F.pad(one, [16, 16, 16, 16], value=0.5)
    for d in (4, 4, 8, 8, 8):
        t = jitter(t, d)
    sc = random.choice(scales)
    t = F.interpolate(t, size=(int(sc * t.shape[2]), int(sc * t.shape[3])), mode="bilinear", align_corners=False)
    t = rotate(t, random.choice(angles))
    t = jitter(t, 2)
    return crop_or_pad(t, size)


def layer_of(x):
    return net.run({input_name: normalize(x)}, [layer])[0]


def objective(acts):
    py, px = acts.shape[2] // 2, acts.shape[3] // 2
    a = acts[:, :, py, px]
    dot = (a * targets).sum(1)
    cos = dot / (a.norm(dim=1) * targets.norm(dim=1) + 1e-4)
    return dot * torch.clamp(cos, min=0.1) ** 4, a


opt = torch.optim.Adam([spectrum], lr=0.05)
# One untimed forward/backward (first-call initialisation), as the C# side builds its sessions before timing.
img = image()
(-objective(layer_of(torch.cat([transform(img[i:i + 1]) for i in range(batch)], 0)))[0].sum()).backward()
spectrum.grad = None
start = time.perf_counter()
for step in range(steps):
    opt.zero_grad()
    img = image()
    x = torch.cat([transform(img[i:i + 1]) for i in range(batch)], 0)
    obj, _ = objective(layer_of(x))
    (-obj.sum()).backward()
    opt.step()
seconds = time.perf_counter() - start
with torch.no_grad():
    _, a = objective(layer_of(image()))
    fid = F.cosine_similarity(a, targets, dim=1).numpy()
print(json.dumps({"seconds_per_step": seconds / steps, "median_fidelity": float(np.median(fid)), "threads": torch.get_num_threads()}))
