"""A small ONNX -> PyTorch interpreter for the CNN operators of the gradient fixtures.

Runs an ONNX graph with torch ops so that PyTorch autograd can differentiate it (used by the `gradients`
benchmark to time PyTorch on the very same model, and to cross-check references).
"""
import numpy as np
import onnx
import torch
import torch.nn.functional as F
from onnx import numpy_helper


def _attrs(node):
    return {a.name: onnx.helper.get_attribute_value(a) for a in node.attribute}


class OnnxTorch:
    def __init__(self, path, dtype=torch.float32):
        self.model = onnx.load(path)
        self.dtype = dtype
        self.consts = {}
        for t in self.model.graph.initializer:
            arr = numpy_helper.to_array(t)
            self.consts[t.name] = torch.from_numpy(arr.copy())
            if self.consts[t.name].is_floating_point():
                self.consts[t.name] = self.consts[t.name].to(dtype)

    def run(self, inputs, outputs):
        env = dict(self.consts)
        env.update(inputs)
        wanted = set(outputs)
        for node in self.model.graph.node:
            a = _attrs(node)
            ins = [env[i] if i else None for i in node.input]
            op = node.op_type
            if op == "Conv":
                k = len(a.get("kernel_shape", ins[1].shape[2:]))
                pads = a.get("pads", [0] * 2 * k)
                x = ins[0]
                if pads[:k] != pads[k:]:
                    x = F.pad(x, [p for i in reversed(range(k)) for p in (pads[i], pads[i + k])])
                    pad = 0
                else:
                    pad = tuple(pads[:k])
                y = F.conv2d(x, ins[1], ins[2] if len(ins) > 2 else None, stride=tuple(a.get("strides", [1] * k)),
                             padding=pad, dilation=tuple(a.get("dilations", [1] * k)), groups=a.get("group", 1))
            elif op == "Relu":
                y = F.relu(ins[0])
            elif op == "MaxPool":
                k = a["kernel_shape"]
                pads = a.get("pads", [0] * 2 * len(k))
                y = F.max_pool2d(ins[0], k, stride=a.get("strides", [1] * len(k)), padding=tuple(pads[:len(k)]),
                                 ceil_mode=bool(a.get("ceil_mode", 0)))
            elif op == "AveragePool":
                k = a["kernel_shape"]
                pads = a.get("pads", [0] * 2 * len(k))
                y = F.avg_pool2d(ins[0], k, stride=a.get("strides", [1] * len(k)), padding=tuple(pads[:len(k)]),
                                 ceil_mode=bool(a.get("ceil_mode", 0)), count_include_pad=bool(a.get("count_include_pad", 0)))
            elif op == "Concat":
                y = torch.cat(ins, dim=a["axis"])
            elif op == "GlobalAveragePool":
                y = ins[0].mean(dim=(2, 3), keepdim=True)
            elif op == "Flatten":
                y = torch.flatten(ins[0], a.get("axis", 1))
            elif op == "Gemm":
                A = ins[0].t() if a.get("transA", 0) else ins[0]
                B = ins[1].t() if a.get("transB", 0) else ins[1]
                y = a.get("alpha", 1.0) * (A @ B)
                if len(ins) > 2 and ins[2] is not None:
                    y = y + a.get("beta", 1.0) * ins[2]
            elif op == "BatchNormalization":
                y = F.batch_norm(ins[0], ins[3], ins[4], ins[1], ins[2], False, 0.0, a.get("epsilon", 1e-5))
            elif op == "Add":
                y = ins[0] + ins[1]
            elif op == "Mul":
                y = ins[0] * ins[1]
            elif op in ("Identity", "Dropout"):
                y = ins[0]
            elif op == "Clip":
                y = torch.clamp(ins[0], ins[1].item() if ins[1] is not None else None, ins[2].item() if len(ins) > 2 and ins[2] is not None else None)
            elif op == "LRN":
                y = F.local_response_norm(ins[0], a["size"], a.get("alpha", 1e-4), a.get("beta", 0.75), a.get("bias", 1.0))
            else:
                raise NotImplementedError(f"{op} ({node.name})")
            env[node.output[0]] = y
            if wanted.issubset(env.keys()):
                break
        return [env[o] for o in outputs]
