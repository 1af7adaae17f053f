"""Rebuild a MediaPipe .tflite graph as a PyTorch module (for tracing + pnnx).

Reads the flatbuffer with the `tflite` package, turns every operator into the
matching torch layer (weights copied from the file, fp16 constants dequantized to
fp32), and runs them in graph order. Activations are kept in NCHW; TFLite is NHWC, so
before any RESHAPE of a 4-D activation the tensor is permuted to NHWC, which
reproduces TFLite's flat NHWC order exactly.

Supported operators: CONV_2D, DEPTHWISE_CONV_2D, ADD, MUL, RELU, RELU6, PRELU,
HARD_SWISH, LOGISTIC, PAD (spatial and channel), MAX_POOL_2D, AVERAGE_POOL_2D,
RESIZE_BILINEAR (half-pixel centres), RESHAPE, CONCATENATION, DEQUANTIZE (fp16 -> fp32)
and MediaPipe's custom Convolution2DTransposeBias. Anything else raises.

Only torch, numpy and tflite are needed; TensorFlow / MediaPipe are not.
"""
from __future__ import annotations

import numpy as np
import tflite
import torch
import torch.nn.functional as F
from tflite.BuiltinOperator import BuiltinOperator as B
from torch import nn

_OPNAMES = {v: k for k, v in B.__dict__.items() if not k.startswith("_")}
_PAD_SAME, _PAD_VALID = 0, 1
_NP_TYPES = {0: np.float32, 1: np.float16, 2: np.int32, 4: np.int64}


def _same_pads(size: int, k: int, s: int, d: int = 1) -> tuple[int, int]:
    """TensorFlow SAME padding (extra pixel goes after)."""
    ek = (k - 1) * d + 1
    out = -(-size // s)
    total = max((out - 1) * s + ek - size, 0)
    return total // 2, total - total // 2


class _Act(nn.Module):
    def __init__(self, code: int):
        super().__init__()
        self.code = code  # 0 NONE, 1 RELU, 3 RELU6, 4 TANH

    def forward(self, x):
        if self.code == 1:
            return F.relu(x)
        if self.code == 3:
            return F.hardtanh(x, 0.0, 6.0)
        if self.code == 4:
            return torch.tanh(x)
        return x


def _act(code: int) -> nn.Module:
    if code not in (0, 1, 3, 4):
        raise NotImplementedError(f"fused activation {code}")
    return nn.ReLU() if code == 1 else (nn.Identity() if code == 0 else _Act(code))


class TFLiteModule(nn.Module):
    """Torch re-implementation of a single-subgraph TFLite model.

    `output_adapters` maps each TFLite output index to a callable applied to the
    torch-layout tensor, so the ncnn blobs get the layouts of contracts section 1.
    """

    def __init__(self, data: bytes, output_adapters=None):
        super().__init__()
        m = tflite.Model.GetRootAsModel(data, 0)
        if m.SubgraphsLength() != 1:
            raise ValueError("only single-subgraph models are supported")
        g = m.Subgraphs(0)
        self._m, self._g = m, g
        self.consts: dict[int, np.ndarray] = {}
        for i in range(g.TensorsLength()):
            t = g.Tensors(i)
            buf = m.Buffers(t.Buffer())
            if buf is not None and buf.DataLength() > 0:
                dt = _NP_TYPES[t.Type()]
                arr = np.frombuffer(buf.DataAsNumpy().tobytes(), dtype=dt)
                self.consts[i] = arr.reshape(t.ShapeAsNumpy().tolist() or [])
        self.inputs = [int(g.Inputs(i)) for i in range(g.InputsLength())]
        self.outputs = [int(g.Outputs(i)) for i in range(g.OutputsLength())]
        self.layers = nn.ModuleList()
        self.steps: list[tuple] = []  # (kind, layer index or None, input ids, output id, extra)
        self.output_adapters = output_adapters or {}
        self.rank: dict[int, int] = {}
        for i in self.inputs:
            self.rank[i] = 4
        for k in range(g.OperatorsLength()):
            self._add_op(g.Operators(k))

    # -- helpers ---------------------------------------------------------------
    def _shape(self, idx):
        return self._g.Tensors(idx).ShapeAsNumpy().tolist()

    def _const(self, idx) -> np.ndarray:
        return self.consts[idx].astype(np.float32)

    def _opts(self, op, cls):
        o = cls()
        t = op.BuiltinOptions()
        o.Init(t.Bytes, t.Pos)
        return o

    def _layer(self, mod) -> int:
        self.layers.append(mod)
        return len(self.layers) - 1

    def _add_op(self, op):
        oc = self._m.OperatorCodes(op.OpcodeIndex())
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        ins = [int(i) for i in op.InputsAsNumpy()]
        out = int(op.OutputsAsNumpy()[0])
        name = _OPNAMES.get(code, str(code))

        if code == B.DEQUANTIZE:
            self.consts[out] = self._const(ins[0])
            return
        if code in (B.CONV_2D, B.DEPTHWISE_CONV_2D):
            depthwise = code == B.DEPTHWISE_CONV_2D
            o = self._opts(op, tflite.DepthwiseConv2DOptions if depthwise else tflite.Conv2DOptions)
            w = self._const(ins[1])
            b = self._const(ins[2]) if len(ins) > 2 and ins[2] >= 0 else None
            _, h, wd, cin = self._shape(ins[0])
            sh, sw = o.StrideH(), o.StrideW()
            dh, dw = o.DilationHFactor(), o.DilationWFactor()
            if depthwise:
                # [1, KH, KW, C*mult] -> [C*mult, 1, KH, KW]
                kh, kw, cout = w.shape[1], w.shape[2], w.shape[3]
                wt = w.transpose(3, 0, 1, 2)
                groups = cin
            else:
                # [O, KH, KW, I] -> [O, I, KH, KW]
                cout, kh, kw = w.shape[0], w.shape[1], w.shape[2]
                wt = w.transpose(0, 3, 1, 2)
                groups = 1
            pad = (0, 0, 0, 0)
            if o.Padding() == _PAD_SAME:
                pt, pb = _same_pads(h, kh, sh, dh)
                pl, pr = _same_pads(wd, kw, sw, dw)
                pad = (pl, pr, pt, pb)
            seq = []
            if pad[0] == pad[1] and pad[2] == pad[3]:
                conv_pad = (pad[2], pad[0])
            else:
                seq.append(nn.ZeroPad2d(pad))
                conv_pad = (0, 0)
            conv = nn.Conv2d(cin, cout, (kh, kw), (sh, sw), conv_pad, (dh, dw), groups,
                             bias=b is not None)
            with torch.no_grad():
                conv.weight.copy_(torch.from_numpy(np.ascontiguousarray(wt)))
                if b is not None:
                    conv.bias.copy_(torch.from_numpy(b))
            seq.append(conv)
            seq.append(_act(o.FusedActivationFunction()))
            self._step("layer", nn.Sequential(*seq), [ins[0]], out)
            return
        if code == B.CUSTOM:
            cname = oc.CustomCode().decode()
            if cname != "Convolution2DTransposeBias":
                raise NotImplementedError(f"custom op {cname}")
            padding, sw, sh = np.frombuffer(op.CustomOptionsAsNumpy().tobytes()[:12], np.int32)
            if padding != _PAD_VALID:
                raise NotImplementedError("Convolution2DTransposeBias with SAME padding")
            w = self._const(ins[1])  # [O, KH, KW, I]
            b = self._const(ins[2])
            cout, kh, kw, cin = w.shape
            deconv = nn.ConvTranspose2d(cin, cout, (kh, kw), (int(sh), int(sw)))
            with torch.no_grad():
                deconv.weight.copy_(torch.from_numpy(np.ascontiguousarray(w.transpose(3, 0, 1, 2))))
                deconv.bias.copy_(torch.from_numpy(b))
            self._step("layer", deconv, [ins[0]], out)
            return
        if code in (B.RELU, B.RELU6, B.LOGISTIC, B.HARD_SWISH):
            mod = {B.RELU: nn.ReLU, B.RELU6: nn.ReLU6, B.LOGISTIC: nn.Sigmoid,
                   B.HARD_SWISH: nn.Hardswish}[code]()
            self._step("layer", mod, [ins[0]], out)
            return
        if code == B.PRELU:
            alpha = self._const(ins[1]).reshape(-1)
            mod = nn.PReLU(alpha.size)
            with torch.no_grad():
                mod.weight.copy_(torch.from_numpy(alpha))
            self._step("layer", mod, [ins[0]], out)
            return
        if code in (B.MAX_POOL_2D, B.AVERAGE_POOL_2D):
            o = self._opts(op, tflite.Pool2DOptions)
            _, h, wd, _ = self._shape(ins[0])
            fh, fw, sh, sw = o.FilterHeight(), o.FilterWidth(), o.StrideH(), o.StrideW()
            if code == B.AVERAGE_POOL_2D and fh == h and fw == wd and o.Padding() == _PAD_VALID:
                mod = nn.AdaptiveAvgPool2d(1)
            else:
                pad = (0, 0, 0, 0)
                if o.Padding() == _PAD_SAME:
                    pt, pb = _same_pads(h, fh, sh)
                    pl, pr = _same_pads(wd, fw, sw)
                    pad = (pl, pr, pt, pb)
                if any(pad):
                    raise NotImplementedError(f"{name} with padding {pad}")
                cls = nn.MaxPool2d if code == B.MAX_POOL_2D else nn.AvgPool2d
                mod = cls((fh, fw), (sh, sw))
            self._step("layer", nn.Sequential(mod, _act(o.FusedActivationFunction())),
                       [ins[0]], out)
            return
        if code in (B.ADD, B.MUL):
            o = self._opts(op, tflite.AddOptions if code == B.ADD else tflite.MulOptions)
            for i in ins:
                if i in self.consts:
                    raise NotImplementedError(f"{name} with a constant operand")
            self._step("add" if code == B.ADD else "mul", _act(o.FusedActivationFunction()),
                       ins, out)
            return
        if code == B.PAD:
            p = self.consts[ins[1]].reshape(-1, 2).tolist()  # NHWC [[b0,a0],...]
            if p[0] != [0, 0]:
                raise NotImplementedError("PAD on the batch axis")
            (t, bo), (le, r), (cf, cb) = p[1], p[2], p[3]
            self._step("pad", None, [ins[0]], out, (le, r, t, bo, cf, cb))
            return
        if code == B.RESIZE_BILINEAR:
            o = self._opts(op, tflite.ResizeBilinearOptions)
            if o.AlignCorners() or not o.HalfPixelCenters():
                raise NotImplementedError("RESIZE_BILINEAR needs half_pixel_centers")
            size = tuple(int(v) for v in self.consts[ins[1]])
            self._step("resize", None, [ins[0]], out, size)
            return
        if code == B.RESHAPE:
            self._step("reshape", None, [ins[0]], out, tuple(self._shape(out)))
            return
        if code == B.CONCATENATION:
            o = self._opts(op, tflite.ConcatenationOptions)
            axis = o.Axis()
            self._step("concat", None, ins, out, axis)
            return
        raise NotImplementedError(f"TFLite operator {name}")

    def _step(self, kind, mod, ins, out, extra=None):
        li = self._layer(mod) if mod is not None else None
        rank = self.rank.get(ins[0], 4)
        if kind == "reshape":
            rank = len(extra)
        self.rank[out] = rank
        if kind == "concat" and rank == 4:
            extra = {0: 0, 1: 2, 2: 3, 3: 1}[extra % 4]
        self.steps.append((kind, li, ins, out, extra))

    # -- forward ---------------------------------------------------------------
    def forward(self, x):
        v = {self.inputs[0]: x}
        for kind, li, ins, out, extra in self.steps:
            a = v[ins[0]]
            if kind == "layer":
                r = self.layers[li](a)
            elif kind in ("add", "mul"):
                b = v[ins[1]]
                r = self.layers[li](a + b if kind == "add" else a * b)
            elif kind == "pad":
                le, ri, t, bo, cf, cb = extra
                if cf or cb:
                    r = F.pad(a, (le, ri, t, bo, cf, cb))
                else:
                    r = F.pad(a, (le, ri, t, bo))
            elif kind == "resize":
                r = F.interpolate(a, size=extra, mode="bilinear", align_corners=False)
            elif kind == "reshape":
                if a.dim() == 4:
                    a = a.permute(0, 2, 3, 1)  # back to TFLite's NHWC order
                r = a.reshape(extra)
            elif kind == "concat":
                r = torch.cat([v[i] for i in ins], dim=extra)
            else:  # pragma: no cover
                raise AssertionError(kind)
            v[out] = r
        res = []
        for k, o in enumerate(self.outputs):
            t = v[o]
            fn = self.output_adapters.get(k)
            res.append(fn(t) if fn else t)
        return tuple(res) if len(res) > 1 else res[0]
