"""Writes a gradient fixture (the format of shared/fixtures/onnx-gradients) for a small torchvision
VisionTransformer exported at a given ONNX opset (17: LayerNorm as the LayerNormalization op), with float64
references from PyTorch autograd.

usage: vit_fixture.py OUT_DIR [--opset 17] [--token 0]

The network: 32x32 images, 8x8 patches (16 patch tokens + the class token), 2 pre-norm blocks, 2 heads, width 32,
10 classes, seeded weights; the head is re-initialized (torchvision zero-initializes it). The hidden layer is the
output of the first block, [2,17,32], exported as the second graph output `layer`. `position` is [token]: 0 (the
class token) by default, since patch-token attribution vanishes behind the next block's LayerNorm.
No `onnx` Python package is needed: TensorProto files are encoded here.
"""
import argparse
import json
import os

import torch
from torchvision.models.vision_transformer import VisionTransformer


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        if n:
            out.append(b | 0x80)
        else:
            out.append(b)
            return bytes(out)


def tensor_proto(t):
    """Serialized ONNX TensorProto (dims = field 1, data_type = field 2 (FLOAT = 1), raw_data = field 9)."""
    t = t.detach().to(torch.float32).contiguous()
    raw = t.numpy().tobytes()
    body = b"".join(b"\x08" + varint(d) for d in t.shape) + b"\x10\x01" + b"\x4a" + varint(len(raw)) + raw
    return body


class WithLayer(torch.nn.Module):
    """The ViT returning (logits, output of the first encoder block)."""

    def __init__(self, vit):
        super().__init__()
        self.vit = vit

    def forward(self, x):
        v = self.vit
        tokens = v._process_input(x)
        cls = v.class_token.expand(tokens.shape[0], -1, -1)
        h = torch.cat([cls, tokens], dim=1) + v.encoder.pos_embedding
        h = v.encoder.dropout(h)
        layer = v.encoder.layers[0](h)
        h = layer
        for block in v.encoder.layers[1:]:
            h = block(h)
        h = v.encoder.ln(h)
        return v.heads(h[:, 0]), layer


def main():
    p = argparse.ArgumentParser()
    p.add_argument("out")
    p.add_argument("--opset", type=int, default=17)
    p.add_argument("--token", type=int, default=0)
    args = p.parse_args()
    os.makedirs(args.out, exist_ok=True)
    torch.manual_seed(0)
    vit = VisionTransformer(image_size=32, patch_size=8, num_layers=2, num_heads=2, hidden_dim=32, mlp_dim=64,
                            num_classes=10).eval()
    torch.nn.init.normal_(vit.heads.head.weight, std=0.2)
    torch.nn.init.normal_(vit.heads.head.bias, std=0.1)
    torch.nn.init.normal_(vit.class_token, std=0.5)
    model = WithLayer(vit).eval()
    x = torch.rand(2, 3, 32, 32)
    torch.onnx.export(model, x, os.path.join(args.out, "model.onnx"), opset_version=args.opset,
                      input_names=["input"], output_names=["logits", "layer"],
                      dynamic_axes={"input": {0: "batch"}, "logits": {0: "batch"}, "layer": {0: "batch"}})

    m64 = WithLayer(vit).double().eval()
    x64 = x.double().requires_grad_(True)
    logits, layer = m64(x64)
    g = torch.randn(layer.shape, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    (input_vjp,) = torch.autograd.grad((layer * g).sum(), x64, retain_graph=True)
    k = logits.shape[1]
    attribution = torch.zeros(2, k, dtype=torch.float64)
    for c in range(k):
        (gl,) = torch.autograd.grad(logits[:, c].sum(), layer, retain_graph=True)
        attribution[:, c] = (gl[:, args.token, :] * layer[:, args.token, :]).sum(-1)
    files = {"input.pb": x, "logits.pb": logits, "layer.pb": layer, "layer_cotangent.pb": g,
             "input_vjp.pb": input_vjp, "attribution.pb": attribution}
    for name, t in files.items():
        with open(os.path.join(args.out, name), "wb") as f:
            f.write(tensor_proto(t))
    meta = {"model": f"vit_opset{args.opset}", "layer_tensor": "layer", "input": "input", "output": "logits",
            "input_shape": list(x.shape), "layer_shape": list(layer.shape), "logits_shape": list(logits.shape),
            "position": [args.token], "opset": args.opset,
            "oracle": "PyTorch autograd in float64, model in eval mode"}
    with open(os.path.join(args.out, "meta.json"), "w") as f:
        json.dump(meta, f, indent=1)


if __name__ == "__main__":
    main()
