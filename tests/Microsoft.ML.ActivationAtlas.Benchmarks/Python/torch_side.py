"""The PyTorch side of the `gradients` and `icons` comparisons, written as a PyTorch user writes it.

The networks are torchvision's own modules (`resnet18`, `googlenet`, `VisionTransformer`) cut at the layer, with the
ONNX model's weights loaded into them: the initializers are read from the .onnx file (a small protobuf reader, so the
`onnx` package is not needed) and matched to the module's parameters by graph order and shape (convolutions, with the
BatchNormalization or bias that follows them) or by name (the vision transformer). Batch norms are folded into their
convolutions (`torch.nn.utils.fusion.fuse_conv_bn_eval`), the inference-time form ONNX Runtime runs too.

A timing script built on this module is a worker: it sets itself up (network, agreement check against ONNX Runtime,
warm-up), prints one JSON line with what it found, then reads commands from stdin, one per line, and answers each
timed round with one JSON line, so that the benchmark can alternate rounds between its own side and this one.
Progress and the checks go to stderr.
"""
import json
import os
import struct
import sys
import time
from collections import OrderedDict

import numpy as np
import torch
import torch.nn as nn
import torchvision
from torch.nn.utils.fusion import fuse_conv_bn_eval


# ---------------------------------------------------------------------------------------------------------------------
# ONNX initializers and nodes, read straight from the protobuf wire format.

def _varint(b, i):
    r = s = 0
    while True:
        c = b[i]
        i += 1
        r |= (c & 0x7F) << s
        s += 7
        if c < 0x80:
            return r, i


def _fields(b):
    i, n = 0, len(b)
    while i < n:
        key, i = _varint(b, i)
        f, w = key >> 3, key & 7
        if w == 0:
            v, i = _varint(b, i)
        elif w == 1:
            v, i = b[i:i + 8], i + 8
        elif w == 2:
            length, i = _varint(b, i)
            v, i = b[i:i + length], i + length
        elif w == 5:
            v, i = b[i:i + 4], i + 4
        else:
            raise ValueError(f"unsupported protobuf wire type {w}")
        yield f, w, v


def _tensor(b):
    """TensorProto -> (name, float32 array or None for non-float tensors)."""
    dims, name, dtype, raw, floats = [], "", 1, None, []
    for f, w, v in _fields(b):
        if f == 1:
            if w == 2:
                j = 0
                while j < len(v):
                    d, j = _varint(v, j)
                    dims.append(d)
            else:
                dims.append(v)
        elif f == 2:
            dtype = v
        elif f == 8:
            name = v.decode()
        elif f == 9:
            raw = v
        elif f == 4:
            floats.extend(struct.unpack(f"<{len(v) // 4}f", v) if w == 2 else struct.unpack("<f", v))
    if dtype != 1:
        return name, None
    data = np.frombuffer(raw, dtype="<f4").copy() if raw is not None else np.asarray(floats, dtype=np.float32)
    return name, data.reshape(dims)


class OnnxGraph:
    """The initializers (name -> array), aliases made by Identity nodes, and the nodes (op, inputs, outputs) in order."""

    def __init__(self, path):
        with open(path, "rb") as f:
            model = f.read()
        graph = next(v for f, _, v in _fields(model) if f == 7)
        self.initializers, self.nodes = OrderedDict(), []
        for f, _, v in _fields(graph):
            if f == 5:
                name, arr = _tensor(v)
                if arr is not None:
                    self.initializers[name] = arr
            elif f == 1:
                node = {"input": [], "output": [], "op": ""}
                for nf, _, nv in _fields(v):
                    if nf == 1:
                        node["input"].append(nv.decode())
                    elif nf == 2:
                        node["output"].append(nv.decode())
                    elif nf == 4:
                        node["op"] = nv.decode()
                self.nodes.append(node)
        self.aliases = {n["output"][0]: n["input"][0] for n in self.nodes
                        if n["op"] == "Identity" and n["input"][0] in self.initializers}

    def get(self, name):
        name = self.aliases.get(name, name)
        return self.initializers.get(name)


def _set_module(root, dotted, module):
    parent, _, leaf = dotted.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, module)


def load_convolutions(module, graph):
    """Loads every Conv2d of `module` (in module order) from the first unused ONNX Conv node with the same weight shape
    (graph order), with the bias of that node or the BatchNormalization that consumes its output, and folds the
    BatchNorm2d that follows the Conv2d in the module. Returns the number of convolutions loaded."""
    convs = [n for n in graph.nodes if n["op"] == "Conv"]
    consumers = {}
    for n in graph.nodes:
        for i in n["input"]:
            consumers.setdefault(i, []).append(n)
    used = set()
    mods = list(module.named_modules())
    loaded = 0
    for k, (name, m) in enumerate(mods):
        if not isinstance(m, nn.Conv2d):
            continue
        shape = tuple(m.weight.shape)
        idx = next((i for i, n in enumerate(convs) if i not in used and graph.get(n["input"][1]).shape == shape), None)
        if idx is None:
            raise ValueError(f"no unused ONNX Conv with weight shape {list(shape)} for {name}")
        used.add(idx)
        node = convs[idx]
        bn_name, bn = (mods[k + 1] if k + 1 < len(mods) else (None, None))
        if not isinstance(bn, nn.BatchNorm2d):
            bn_name, bn = None, None
        conv = nn.Conv2d(m.in_channels, m.out_channels, m.kernel_size, m.stride, m.padding, m.dilation, m.groups, bias=True)
        with torch.no_grad():
            conv.weight.copy_(torch.from_numpy(graph.get(node["input"][1])))
            bias = graph.get(node["input"][2]) if len(node["input"]) > 2 and node["input"][2] else None
            conv.bias.copy_(torch.from_numpy(bias) if bias is not None else torch.zeros(m.out_channels))
        onnx_bn = next((c for c in consumers.get(node["output"][0], []) if c["op"] == "BatchNormalization"), None)
        if onnx_bn is not None:
            if bn is None:
                raise ValueError(f"{name} is followed by a BatchNormalization in the ONNX graph but not in the module")
            with torch.no_grad():
                for attr, i in (("weight", 1), ("bias", 2), ("running_mean", 3), ("running_var", 4)):
                    getattr(bn, attr).copy_(torch.from_numpy(graph.get(onnx_bn["input"][i])))
            conv = fuse_conv_bn_eval(conv.eval(), bn.eval())
        _set_module(module, name, conv)
        if bn_name is not None:
            _set_module(module, bn_name, nn.Identity())
        loaded += 1
    return loaded


def load_by_name(module, graph, prefix="m."):
    """Loads the state_dict by name (`prefix` + key, Identity aliases included); the parameters left over take the
    unnamed initializers in order, matched by shape or transposed shape (MatMul weights of the export)."""
    state = module.state_dict()
    unnamed = [(n, a) for n, a in graph.initializers.items() if not n.startswith(prefix)]
    used = set()
    new = {}
    for key, p in state.items():
        arr = graph.get(prefix + key)
        if arr is None:
            for j, (n, a) in enumerate(unnamed):
                if j in used:
                    continue
                if tuple(a.shape) == tuple(p.shape):
                    arr = a
                elif a.ndim == 2 and tuple(a.T.shape) == tuple(p.shape):
                    arr = a.T
                else:
                    continue
                used.add(j)
                break
        if arr is None or tuple(arr.shape) != tuple(p.shape):
            raise ValueError(f"no ONNX initializer for {key} {list(p.shape)}")
        new[key] = torch.from_numpy(np.ascontiguousarray(arr))
    module.load_state_dict(new)


# ---------------------------------------------------------------------------------------------------------------------
# The networks, cut at the layer.

class VitTo(nn.Module):
    """torchvision's VisionTransformer up to the output of encoder block `blocks - 1` ([N, 1 + patches, width])."""

    def __init__(self, vit, blocks):
        super().__init__()
        self.vit, self.blocks = vit, blocks

    def forward(self, x):
        v = self.vit
        tokens = v._process_input(x)
        h = torch.cat([v.class_token.expand(tokens.shape[0], -1, -1), tokens], dim=1) + v.encoder.pos_embedding
        for block in v.encoder.layers[:self.blocks]:
            h = block(h)
        return h


def resnet_blocks(graph):
    """Basic blocks per stage of a ResNet graph: residual Adds counted per stage, a stage starting at a 1x1 (projection)
    convolution."""
    blocks = [0]
    for n in graph.nodes:
        if n["op"] == "Conv" and graph.get(n["input"][1]).shape[2:] == (1, 1):
            blocks.append(0)
        elif n["op"] == "Add":
            blocks[-1] += 1
    if len(blocks) != 4 or 0 in blocks:
        raise ValueError(f"not a four-stage ResNet of basic blocks: blocks per stage {blocks}")
    return blocks


def build(model, onnx_path, cut):
    """The torchvision network `model` (resnet18 | googlenet | vit_tiny) up to `cut`, with the ONNX file's weights."""
    graph = OnnxGraph(onnx_path)
    if model == "resnet18":
        # ML.NET's ResNet18 package (a CNTK export) has three basic blocks in its last stage: torchvision's ResNet with
        # the block counts read from the graph ([2, 2, 2, 2] is torchvision's resnet18).
        net = torchvision.models.resnet.ResNet(torchvision.models.resnet.BasicBlock, resnet_blocks(graph))
        order = ["conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4"]
        if cut not in order[4:]:
            raise ValueError(f"resnet18 cut {cut}: expected layer1..layer4")
        body = nn.Sequential(OrderedDict((n, getattr(net, n)) for n in order[:order.index(cut) + 1]))
        load_convolutions(body, graph)
    elif model == "googlenet":
        net = torchvision.models.googlenet(weights=None, aux_logits=False, transform_input=False, init_weights=False)
        order = [n for n, _ in net.named_children()]
        if cut not in order:
            raise ValueError(f"googlenet cut {cut}: not a child module")
        body = nn.Sequential(OrderedDict((n, getattr(net, n)) for n in order[:order.index(cut) + 1]))
        load_convolutions(body, graph)
    elif model == "vit_tiny":
        from torchvision.models.vision_transformer import VisionTransformer
        vit = VisionTransformer(image_size=64, patch_size=8, num_layers=4, num_heads=4, hidden_dim=128, mlp_dim=256,
                                num_classes=100)
        load_by_name(vit, graph)
        body = VitTo(vit, int(cut.rsplit("_", 1)[-1]) + 1)
    else:
        raise ValueError(f"unknown model {model}")
    body.eval()
    for p in body.parameters():
        p.requires_grad_(False)
    return body


def flops(net, x):
    """FLOPs of one forward pass of `net` on `x` (multiply-adds x 2 of Conv2d, Linear and attention), and of the
    backward pass to the input alone: the weights are constants, so a convolution's or linear layer's backward is its
    input gradient only (as many multiply-adds as its forward); a product of two activations (attention) needs both
    operands' gradients (twice its forward)."""
    count = {"forward": 0, "backward": 0}

    def conv(m, inp, out):
        macs = out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
        count["forward"] += 2 * macs
        count["backward"] += 2 * macs

    def linear(m, inp, out):
        macs = out.numel() * m.in_features
        count["forward"] += 2 * macs
        count["backward"] += 2 * macs

    def attention(m, inp, out):
        o = out[0]  # the attention output, shaped like the query (called with keywords, so `inp` is empty)
        n, t, c = (o.shape[0], o.shape[1], o.shape[2]) if m.batch_first else (o.shape[1], o.shape[0], o.shape[2])
        projections = n * t * c * 3 * c + n * t * c * c
        products = 2 * n * t * t * c
        count["forward"] += 2 * (projections + products)
        count["backward"] += 2 * (projections + 2 * products)

    hooks = []
    for m in net.modules():
        if isinstance(m, nn.Conv2d):
            hooks.append(m.register_forward_hook(conv))
        elif isinstance(m, nn.MultiheadAttention):
            hooks.append(m.register_forward_hook(attention))
        elif isinstance(m, nn.Linear) and not type(m).__name__.startswith("NonDynamicallyQuantizable"):
            hooks.append(m.register_forward_hook(linear))
    with torch.no_grad():
        net(x)
    for h in hooks:
        h.remove()
    return count


# ---------------------------------------------------------------------------------------------------------------------
# Machine, agreement check, worker loop.

def matmul_peak(largest=2048, reps=3):
    """Best GFLOP/s of an n x n x n float32 matrix product with torch.mm and numpy.dot (after one warm-up each), n
    doubling from 256 up to `largest` while one product takes under 0.25 s (a reference BLAS stops early)."""
    out = {}
    for name, make in (("torch_mm", lambda n: (lambda a, b: lambda: torch.mm(a, b))(torch.rand(n, n), torch.rand(n, n))),
                       ("numpy_dot", lambda n: (lambda a, b: lambda: a.dot(b))(np.random.rand(n, n).astype(np.float32),
                                                                             np.random.rand(n, n).astype(np.float32)))):
        n = 256
        while True:
            fn = make(n)
            first = _seconds(fn)
            if n >= largest or first > 0.25:
                break
            n *= 2
        best = min(_seconds(fn) for _ in range(reps))
        out[name] = round(2.0 * n ** 3 / best / 1e9, 1)
        log(f"matrix-multiply peak: {name} {out[name]} GFLOP/s at n = {n}")
    return out


def _seconds(fn):
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def read_f32(path, shape):
    return torch.from_numpy(np.fromfile(path, dtype=np.float32).reshape(shape))


def agreement(what, actual, reference):
    """max |actual - reference| / max |reference|."""
    err = float((actual - reference).abs().max() / reference.abs().max().clamp_min(1e-30))
    log(f"check: {what}: max |torch - ONNX Runtime| / max |ONNX Runtime| = {err:.2e}")
    return err


def require(what, err, tolerance):
    if not err <= tolerance:
        raise SystemExit(f"check failed: {what} differs from ONNX Runtime by {err:.2e} (relative), more than {tolerance:g}")


def blas_libraries():
    """The BLAS libraries this process has loaded (resolved), e.g. Debian's reference libblas3 or OpenBLAS: torch's
    matrix products (Linear, attention) and numpy's go through it; convolutions go through oneDNN."""
    found = set()
    with open("/proc/self/maps") as f:
        for line in f:
            path = line.split()[-1] if "/" in line else ""
            if any(k in os.path.basename(path).lower() for k in ("blas", "mkl_rt", "libmkl")):
                found.add(os.path.realpath(path))
    return sorted(found)


def configuration(threads):
    return {"blas_libraries": blas_libraries(), "torch": torch.__version__, "torchvision": torchvision.__version__, "numpy": np.__version__,
            "threads": torch.get_num_threads(), "requested_threads": threads, "cores": sorted(os.sched_getaffinity(0)),
            "omp_wait_policy": os.environ.get("OMP_WAIT_POLICY", "(default)"), "config": torch.__config__.show()}


def log(message):
    print(message, file=sys.stderr, flush=True)


def serve(info, commands):
    """Prints `info` as one JSON line, then answers each command read from stdin with one JSON line, until `quit`."""
    print(json.dumps(info), flush=True)
    for line in sys.stdin:
        command = line.strip()
        if command in ("", "quit"):
            break
        if command not in commands:
            raise SystemExit(f"unknown command {command!r}; expected one of {sorted(commands)} or quit")
        print(json.dumps(commands[command]()), flush=True)


def set_threads(threads):
    torch.set_num_threads(threads)
