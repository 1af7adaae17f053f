"""Which of ncnn's layers every SwapLab build compiles: the ones the model pack uses and
the ones ncnn's own code creates inside them; the other layers are WITH_LAYER_<name>=OFF.

Why: with the run-time CPU dispatch of the phone builds (and the Vulkan shaders of the host
build) each layer is compiled several times over, and 80 of ncnn's 110 layers are never
loaded; leaving them out is most of ncnn's build time, for the host, each Android ABI and
CI's cold build. A model with a layer left out fails to load with ncnn's "layer X not
exists or registered" (exit 4): add the layer to MODEL_LAYERS then
(tests/test_runner_vulkan.py checks the model pack against it).
"""
from __future__ import annotations

import pathlib
import re

# Every layer of ncnn 20261020's src/CMakeLists.txt (ncnn_add_layer), in its order.
# check_layer_list() compares it with the sdist before building.
ALL_LAYERS = (
    "AbsVal", "ArgMax", "BatchNorm", "Bias", "BNLL", "Concat", "Convolution", "Crop",
    "Deconvolution", "Dropout", "Eltwise", "ELU", "Embed", "Exp", "Flatten", "InnerProduct",
    "Input", "Log", "LRN", "MemoryData", "MVN", "Pooling", "Power", "PReLU", "Proposal",
    "Reduction", "ReLU", "Reshape", "ROIPooling", "Scale", "Sigmoid", "Slice", "Softmax",
    "Split", "SPP", "TanH", "Threshold", "Tile", "RNN", "LSTM", "BinaryOp", "UnaryOp",
    "ConvolutionDepthWise", "Padding", "Squeeze", "ExpandDims", "Normalize", "Permute",
    "PriorBox", "DetectionOutput", "Interp", "DeconvolutionDepthWise", "ShuffleChannel",
    "InstanceNorm", "Clip", "Reorg", "YoloDetectionOutput", "Quantize", "Dequantize",
    "Yolov3DetectionOutput", "PSROIPooling", "ROIAlign", "Packing", "Requantize", "Cast",
    "HardSigmoid", "SELU", "HardSwish", "Noop", "PixelShuffle", "DeepCopy", "Mish",
    "StatisticsPooling", "Swish", "Gemm", "GroupNorm", "LayerNorm", "Softplus", "GRU",
    "MultiHeadAttention", "GELU", "Convolution1D", "Pooling1D", "ConvolutionDepthWise1D",
    "Convolution3D", "ConvolutionDepthWise3D", "Pooling3D", "MatMul", "Deconvolution1D",
    "DeconvolutionDepthWise1D", "Deconvolution3D", "DeconvolutionDepthWise3D", "Einsum",
    "DeformableConv2D", "GLU", "Fold", "Unfold", "GridSample", "CumulativeSum", "CopyTo",
    "Erf", "Diag", "CELU", "Shrink", "RMSNorm", "Spectrogram", "InverseSpectrogram", "Flip",
    "SDPA", "RotaryEmbed",
)

# The model pack's layer types (models/*.param) ...
MODEL_LAYERS = (
    "BinaryOp", "Concat", "Convolution", "ConvolutionDepthWise", "Deconvolution",
    "HardSwish", "InnerProduct", "Input", "Interp", "Padding", "Permute", "Pooling",
    "PReLU", "ReLU", "Reshape", "Split",
)
# ... and what ncnn creates inside those layers and its runtime (grep LayerType:: in src/,
# src/layer/{x86,arm}/):
# fused activations (fused_activation.h), Flatten (InnerProduct), Gemm (x86 Deconvolution),
# Crop (Vulkan Deconvolution), Packing/Cast (GPU upload/download, fp16 conversion),
# Bias/Scale/Quantize/Dequantize/Requantize (mat.cpp helpers), Noop.
INTERNAL_LAYERS = (
    "Clip", "Sigmoid", "Mish", "HardSwish", "ReLU", "Flatten", "Gemm", "Crop", "Padding",
    "Interp", "Packing", "Cast", "Bias", "Scale", "Quantize", "Dequantize", "Requantize",
    "Noop",
)

LAYERS_USED = sorted(set(MODEL_LAYERS) | set(INTERNAL_LAYERS))


def flags() -> list[str]:
    """cmake options that leave out every layer not in LAYERS_USED."""
    return [f"-DWITH_LAYER_{name.lower()}=OFF" for name in ALL_LAYERS if name not in LAYERS_USED]


def check_layer_list(ncnn_src: pathlib.Path) -> str | None:
    """None when the sdist's layer list is ALL_LAYERS, else what differs (a new ncnn
    version: update ALL_LAYERS so no new layer is built unasked)."""
    text = (ncnn_src / "src" / "CMakeLists.txt").read_text()
    found = re.findall(r"^ncnn_add_layer\((\w+)", text, re.MULTILINE)
    if tuple(found) == ALL_LAYERS:
        return None
    new = sorted(set(found) - set(ALL_LAYERS))
    gone = sorted(set(ALL_LAYERS) - set(found))
    return f"ncnn's layer list changed (new: {new}, gone: {gone}); update runner/buildlib/ncnn_layers.py"
