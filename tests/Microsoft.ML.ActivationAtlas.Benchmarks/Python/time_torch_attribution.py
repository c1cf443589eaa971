"""Times class attribution h . d(logit_k)/dh at one position of a 14x14 layer with PyTorch on the CPU, the reverse-mode
way: one forward pass, then one backward pass batched over the K one-hot seeds (torch.autograd.grad with
is_grads_batched=True). The network is torchvision's ResNet of basic blocks with the ResNet18 package's block counts
(2, 2, 2, 3: its last stage has three blocks; seeded random weights, the timing does not depend on them) with a K-class
linear head; the layer is layer3's output (256 x 14 x 14, as ResNet18's ReLU347 in ONNX).
Usage: time_torch_attribution.py IMAGE_LIST BATCH THREADS CLASSES ROUNDS; prints one JSON line, last."""
import json
import sys
import time

import numpy as np
import torch
import torchvision
from PIL import Image

paths = [p for p in open(sys.argv[1]).read().splitlines() if p]
batch, threads, classes, rounds = int(sys.argv[2]), int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5])
torch.set_num_threads(threads)
torch.manual_seed(0)
net = torchvision.models.resnet.ResNet(torchvision.models.resnet.BasicBlock, [2, 2, 2, 3], num_classes=classes).eval()
mean = torch.tensor([0.485, 0.456, 0.406]).view(1, 3, 1, 1)
std = torch.tensor([0.229, 0.224, 0.225]).view(1, 3, 1, 1)
# Decoding and resizing are not timed: the same rows, as tensors, for every round.
pixels = torch.stack([torch.from_numpy(np.asarray(Image.open(p).convert("RGB").resize((224, 224), Image.BILINEAR), dtype=np.float32))
                      .permute(2, 0, 1) for p in paths]) / 255.0
pixels = (pixels - mean) / std
rng = np.random.default_rng(0)
positions = rng.integers(1, 13, size=(len(paths), 2))


def to_layer(x):
    x = net.maxpool(net.relu(net.bn1(net.conv1(x))))
    return net.layer3(net.layer2(net.layer1(x)))


def from_layer(h):
    return net.fc(torch.flatten(net.avgpool(net.layer4(h)), 1))


def attribution(start, count):
    with torch.no_grad():
        h = to_layer(pixels[start:start + count])
    h.requires_grad_(True)
    logits = from_layer(h)
    seeds = torch.eye(classes).unsqueeze(1).expand(classes, count, classes)
    (g,) = torch.autograd.grad(logits, h, seeds, is_grads_batched=True)  # [K, N, C, H, W]
    n = torch.arange(count)
    y, x = torch.from_numpy(positions[start:start + count, 0]), torch.from_numpy(positions[start:start + count, 1])
    # Advanced indices separated by a slice go first: g[:, n, :, y, x] is [N, K, C].
    return (g[:, n, :, y, x] * h.detach()[n, :, y, x].unsqueeze(1)).sum(-1)  # [N, K]


def forward_only(start, count):
    with torch.no_grad():
        return from_layer(to_layer(pixels[start:start + count]))


def timed(fn):
    t = time.perf_counter()
    for start in range(0, len(paths), batch):
        fn(start, min(batch, len(paths) - start))
    return time.perf_counter() - t


# Warm-up, and a check of the batched backward against one backward pass per class.
first = attribution(0, min(batch, len(paths)))
with torch.no_grad():
    h0 = to_layer(pixels[:min(batch, len(paths))])
h0.requires_grad_(True)
logits0 = from_layer(h0)
for k in range(classes):
    (g0,) = torch.autograd.grad(logits0[:, k].sum(), h0, retain_graph=True)
    for i in range(h0.shape[0]):
        y, x = positions[i]
        expected = float((g0[i, :, y, x] * h0[i, :, y, x]).sum())
        assert abs(float(first[i, k]) - expected) <= 1e-4 * (1 + abs(expected)), (i, k, float(first[i, k]), expected)
forward_only(0, min(batch, len(paths)))
reverse, forward = [], []
for _ in range(rounds):
    reverse.append(timed(attribution))
    forward.append(timed(forward_only))
print(json.dumps({"torch": torch.__version__, "threads": threads, "rows": len(paths), "classes": classes,
                  "reverse_batched_s": float(np.median(reverse)), "forward_s": float(np.median(forward)),
                  "rounds_reverse_s": reverse, "rounds_forward_s": forward}))
