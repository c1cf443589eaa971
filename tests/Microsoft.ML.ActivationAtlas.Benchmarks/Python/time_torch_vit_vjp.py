"""Times forward + backward (input gradient of a seeded hidden layer) with PyTorch on CPU for the vit_tiny fixture's
architecture written with native torchvision modules: VisionTransformer at 64 px, 8 px patches, 4 blocks, 4 heads,
width 128, MLP 256, 100 classes (seeded random weights; timing does not depend on the values). The layer is the output
of the third block (encoder_layer_2), [N, 65, 128], as in the fixture.
Usage: time_torch_vit_vjp.py BATCH ITERATIONS THREADS; prints the mean ms per batch, last."""
import os
import sys

import torch
from torchvision.models.vision_transformer import VisionTransformer

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_timing import mean_ms  # noqa: E402

batch, iterations, threads = int(sys.argv[1]), int(sys.argv[2]), int(sys.argv[3])
torch.set_num_threads(threads)
torch.manual_seed(0)
vit = VisionTransformer(image_size=64, patch_size=8, num_layers=4, num_heads=4, hidden_dim=128, mlp_dim=256,
                        num_classes=100).eval()
x = torch.rand(batch, 3, 64, 64)


def layer(xi):
    tokens = vit._process_input(xi)
    h = torch.cat([vit.class_token.expand(xi.shape[0], -1, -1), tokens], dim=1) + vit.encoder.pos_embedding
    for block in vit.encoder.layers[:3]:
        h = block(h)
    return h


def step():
    xi = x.clone().requires_grad_(True)
    y = layer(xi)
    (g,) = torch.autograd.grad(y, xi, torch.ones_like(y))
    return g


print(mean_ms(step, iterations))
