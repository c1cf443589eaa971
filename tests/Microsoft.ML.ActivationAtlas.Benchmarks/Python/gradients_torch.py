"""The PyTorch side of the `gradients` benchmark: forward + backward (the input gradient of a seed of ones at the layer)
with torchvision's network cut at the layer and the ONNX model's weights (see torch_side.py), on the CPU.

usage: gradients_torch.py --model resnet18|googlenet|vit_tiny --onnx MODEL.onnx --cut MODULE --batch 8 --size 224
       --iterations 5 --threads N --check-input X.f32 --check-layer L.f32 --check-gradient G.f32
       --check-shape 2,3,224,224 --layer-shape 2,512,14,14

Setup: checks the layer (and the input gradient) against ONNX Runtime's on the check input (the layer within 1e-4
relative, else it exits), counts the FLOPs, measures the matrix-multiply peak, warms up; then a worker
(torch_side.serve): `round` times `iterations` steps and answers {"ms_per_batch": mean}.
"""
import argparse
import os
import sys
import time

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import torch_side as ts  # noqa: E402


def shape(text):
    return [int(v) for v in text.split(",")]


p = argparse.ArgumentParser()
p.add_argument("--model", required=True)
p.add_argument("--onnx", required=True)
p.add_argument("--cut", required=True)
p.add_argument("--batch", type=int, default=8)
p.add_argument("--size", type=int, default=224)
p.add_argument("--iterations", type=int, default=5)
p.add_argument("--threads", type=int, default=os.cpu_count())
p.add_argument("--check-input", required=True)
p.add_argument("--check-layer", required=True)
p.add_argument("--check-gradient", required=True)
p.add_argument("--check-shape", type=shape, required=True)
p.add_argument("--layer-shape", type=shape, required=True)
args = p.parse_args()

ts.set_threads(args.threads)
torch.manual_seed(0)
net = ts.build(args.model, args.onnx, args.cut)

# Agreement with ONNX Runtime on the check input: the layer, and the input gradient of a seed of ones.
xc = ts.read_f32(args.check_input, args.check_shape).requires_grad_(True)
yc = net(xc)
layer_err = ts.agreement(f"{args.model} to {args.cut}, layer {list(yc.shape)}", yc.detach(), ts.read_f32(args.check_layer, args.layer_shape))
(gc,) = torch.autograd.grad(yc, xc, torch.ones_like(yc))
grad_err = ts.agreement(f"{args.model} to {args.cut}, input gradient", gc, ts.read_f32(args.check_gradient, args.check_shape))
ts.require("the layer", layer_err, 1e-4)

x = torch.rand(args.batch, 3, args.size, args.size)
count = ts.flops(net, x[:1])
peak = ts.matmul_peak()
seed = None


def step():
    global seed
    xi = x.detach().requires_grad_(True)
    y = net(xi)
    if seed is None:
        seed = torch.ones_like(y)
    (g,) = torch.autograd.grad(y, xi, seed)
    return g


for _ in range(2):
    step()


def timed_round():
    t = time.perf_counter()
    for _ in range(args.iterations):
        step()
    return {"ms_per_batch": (time.perf_counter() - t) * 1000 / args.iterations}


info = ts.configuration(args.threads)
info.update({"check": {"layer_max_rel_diff": layer_err, "input_gradient_max_rel_diff": grad_err},
             "forward_flops_per_image": count["forward"], "backward_flops_per_image": count["backward"],
             "matmul_peak_gflops": peak})
ts.serve(info, {"round": timed_round})
