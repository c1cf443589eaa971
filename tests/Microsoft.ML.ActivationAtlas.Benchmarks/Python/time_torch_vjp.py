"""Times forward + backward (input gradient of a seeded hidden layer) with PyTorch on CPU for an ONNX model.
Usage: time_torch_vjp.py MODEL.onnx LAYER BATCH SIZE ITERATIONS THREADS; prints the mean ms per batch, last."""
import os
import sys

import torch

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from onnx_torch import OnnxTorch  # noqa: E402
from torch_timing import mean_ms  # noqa: E402

path, layer, batch, size, iterations, threads = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), int(sys.argv[6])
torch.set_num_threads(threads)
torch.manual_seed(0)
model = OnnxTorch(path)
x = torch.rand(batch, 3, size, size)


def step():
    xi = x.clone().requires_grad_(True)
    (y,) = model.run({"input": xi}, [layer])
    (g,) = torch.autograd.grad(y, xi, torch.ones_like(y))
    return g


print(mean_ms(step, iterations))
