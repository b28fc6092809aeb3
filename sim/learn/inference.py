"""Race-mode inference: the policy tower of an ``ActorCritic`` compiled into a lean batch-1 plan for evaluations.

A race asks the network for one greedy action per 1/15 s step, one car at a time. In float32 the demo race's car
(camera, 3-layer CNN) spends ~2 ms per step there, about 60 % of it streaming the 11264x512 dense layer's 23 MB of
weights from memory. The plan cuts the bytes and the Python around them:

- large dense layers (``QUANTIZE_MIN_WEIGHTS``) keep int8 weights quantised per INPUT feature (a scale and an
  offset per row of W^T: fbgemm's row-wise 8-bit embedding format) and are computed as a weighted sum of the rows of
  the inputs that are not zero (``embedding_bag``): the inputs come after a ReLU, about 60 % are zero, so a step
  reads ~2.4 MB instead of 23 MB. Activations and sums stay float32; the logits move by ~1e-3.
- convolutions run channels-last, in bfloat16 only where the CPU computes it natively (``cpu_has_native_bf16``:
  elsewhere it is emulated and much slower); logits then move by ~3e-2.
- no ``nn.Module`` dispatch: one flat list of tensor operations per tower part.

``PRECISIONS``: ``"fp32"`` is ``ActorCritic.predict`` itself (the reference, bit for bit the trained network);
``"int8"`` quantises the large dense layers only; ``"int8+bf16"`` also runs the convolutions in bfloat16; ``"auto"``
(the default) is ``"int8+bf16"`` on CPUs with native bfloat16 and ``"int8"`` elsewhere. How close the fast plans
drive to the reference is tested on trained models (tests/sim/test_race_inference.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from sim.learn.agent import cpu_has_native_bf16
from sim.learn.networks import IMAGE_HEIGHT, IMAGE_WIDTH, ActorCritic, DiscreteHead, _conv_output

PRECISIONS = ("auto", "fp32", "int8", "int8+bf16")
# Only layers whose fp32 weights do not fit a core's L2 cache (2 MB here) are quantised: 1 M weights = 4 MB. That is
# the dense layer on the flattened convolutions of every network but the mono 4-conv deep one (0.6 M weights):
# 11264x512 (3-layer CNN), 56000x64 (5-layer), 112000x512 / 112000x256 (stereo); middlewares and heads never are.
QUANTIZE_MIN_WEIGHTS = 1 << 20

Step = Callable[[torch.Tensor], torch.Tensor]


def resolve_precision(precision: str = "auto") -> str:
    """The concrete plan ``precision`` means on this CPU."""
    if precision not in PRECISIONS:
        raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if precision == "auto":
        return "int8+bf16" if cpu_has_native_bf16() else "int8"
    return precision


def race_predictor(network: ActorCritic, precision: str = "auto") -> Callable[[Any], np.ndarray]:
    """Greedy actions (argmax index / Gaussian mean) of ``network`` for environment observations, as numpy."""
    network.eval()
    precision = resolve_precision(precision)
    if precision == "fp32":
        def reference(observations: Any) -> np.ndarray:
            return network.predict(observations).numpy()

        return reference
    return RacePlan(network, conv_dtype=torch.bfloat16 if precision == "int8+bf16" else torch.float32)


class RowwiseInt8Linear:
    """``y = x W^T + b`` with W^T stored as int8 rows (one scale and offset per input feature), summing only the rows
    of non-zero inputs: fbgemm's 8-bit row-wise ``embedding_bag`` with the inputs as per-sample weights."""

    def __init__(self, layer: nn.Linear) -> None:
        weight = layer.weight.detach().float()
        self.in_features = weight.shape[1]
        self.packed = torch.ops.quantized.embedding_bag_byte_prepack(weight.t().contiguous())
        self.bias = layer.bias.detach().float().clone()
        self._one_bag = torch.zeros(1, dtype=torch.long)

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        values = x.float().contiguous().numpy().reshape(-1)
        # numpy's nonzero of a bool mask: ~9 us here, torch.nonzero of the floats ~50-100 us.
        where = (values != 0).nonzero()[0]
        rows = x.shape[0]
        if rows == 1:
            indices, offsets = torch.from_numpy(where), self._one_bag
        else:
            indices = torch.from_numpy(where % self.in_features)
            counts = np.bincount(where // self.in_features, minlength=rows)
            offsets = torch.from_numpy(np.concatenate([[0], np.cumsum(counts)[:-1]]).astype(np.int64))
        out = torch.ops.quantized.embedding_bag_byte_rowwise_offsets(
            self.packed, indices, offsets, False, 0, False, torch.from_numpy(values[where]), None, False)
        return out.add_(self.bias)


class RacePlan:
    """The policy tower of one network as flat tensor steps; call it like ``race_policy``'s policy."""

    def __init__(self, network: ActorCritic, conv_dtype: torch.dtype = torch.float32) -> None:
        tower = network.policy_net
        self.vehicle = network.vehicle
        self.conv_dtype = conv_dtype
        self.camera_key = self.vehicle.camera
        self.lidar_key = self.vehicle.lidar
        self.camera = _compile(tower.camera, conv_dtype, (IMAGE_HEIGHT, IMAGE_WIDTH), input_scale=1.0 / 255.0)
        self.lidar = _compile(tower.lidar, torch.float32) if tower.lidar is not None else None
        self.middleware = _compile(tower.middleware, torch.float32)
        head = tower.head
        layer = head.logits if isinstance(head, DiscreteHead) else head.mean
        self.head_weight, self.head_bias = layer.weight.detach().float(), layer.bias.detach().float()
        self.discrete = isinstance(head, DiscreteHead)

    def __call__(self, observations: Any) -> np.ndarray:
        """Greedy actions: (N,) int64 indices, or (N, 2) float32 Gaussian means."""
        with torch.inference_mode():
            out = self._forward(observations)
            return (out.argmax(-1) if self.discrete else out).numpy()

    @torch.inference_mode()
    def raw_output(self, observations: Any) -> torch.Tensor:
        """The policy head's (N, outputs) float32 logits or Gaussian means, as ``ActorCritic._policy_output``."""
        return self._forward(observations)

    def _forward(self, observations: Any) -> torch.Tensor:
        if isinstance(observations, dict):
            images = observations[self.camera_key] if self.camera_key in observations else observations["camera"]
        else:
            images = observations
        # The bytes as they lie (NHWC) viewed as NCHW: channels-last strides, what the convolutions want. Pixel
        # values 0..255 are exact in bfloat16 too; the 1/255 scaling is folded into the first convolution's weights.
        x = torch.as_tensor(images).to(self.conv_dtype).permute(0, 3, 1, 2)
        for step in self.camera:
            x = step(x)
        if self.lidar is not None:
            assert isinstance(observations, dict)
            key = self.lidar_key if self.lidar_key in observations else "lidar"
            ranges = torch.as_tensor(observations[key], dtype=torch.float32)
            for step in self.lidar:
                ranges = step(ranges)
            x = torch.cat([x, ranges], dim=1)
        for step in self.middleware:
            x = step(x)
        if x.shape[0] == 1:  # addmv: a quarter of F.linear's cost for one row
            return torch.addmv(self.head_bias, self.head_weight, x[0]).unsqueeze(0)
        return F.linear(x, self.head_weight, self.head_bias)


def _compile(sequence: nn.Sequential, conv_dtype: torch.dtype, image: tuple[int, int] = (0, 0),
             input_scale: float = 1.0) -> list[Step]:
    """A tower part's modules as tensor steps: Conv2d/ReLU/Flatten/Linear (the layers networks.Tower builds); a
    convolution followed by a ReLU becomes one fused step; ``input_scale`` multiplies the first convolution's
    weights (conv(x * s, W) = conv(x, s * W))."""
    modules = list(sequence.children())
    steps: list[Step] = []
    index = 0
    while index < len(modules):
        module = modules[index]
        if isinstance(module, nn.Conv2d):
            relu = index + 1 < len(modules) and isinstance(modules[index + 1], nn.ReLU)
            steps.append(_conv(module, conv_dtype, relu, image, input_scale))
            input_scale = 1.0
            image = tuple(_conv_output(size, k, st) for size, k, st in zip(image, module.kernel_size, module.stride,
                                                                              strict=True))
            index += 2 if relu else 1
            continue
        if isinstance(module, nn.ReLU):
            steps.append(torch.relu_)
        elif isinstance(module, nn.Flatten):
            steps.append(_flatten_float32)
        elif isinstance(module, nn.Linear):
            steps.append(_linear(module))
        else:
            raise TypeError(f"no race plan for {type(module).__name__}")
        index += 1
    return steps


def _flatten_float32(x: torch.Tensor) -> torch.Tensor:
    # One copy into float32 NCHW order (the dense layer's columns follow channel, row, column), whatever the dtype
    # and layout the convolutions left.
    return torch.empty(x.shape, dtype=torch.float32).copy_(x).flatten(1)


def _conv(module: nn.Conv2d, dtype: torch.dtype, relu: bool, image: tuple[int, int], scale: float) -> Step:
    weight = (module.weight.detach() * scale).to(dtype).contiguous(memory_format=torch.channels_last)
    bias = module.bias.detach().to(dtype) if module.bias is not None else None
    stride, padding, dilation, groups = module.stride, module.padding, module.dilation, module.groups
    fused = _onednn_conv(weight, bias, stride, padding, dilation, groups, relu, image)
    if fused is not None:
        return fused
    if relu:
        return lambda x: torch.relu_(F.conv2d(x, weight, bias, stride, padding, dilation, groups))
    return lambda x: F.conv2d(x, weight, bias, stride, padding, dilation, groups)


def _onednn_conv(weight: torch.Tensor, bias: torch.Tensor | None, stride: tuple, padding: Any, dilation: tuple,
                 groups: int, relu: bool, image: tuple[int, int]) -> Step | None:
    """oneDNN's convolution with the weights reordered once and the ReLU fused (the ops inductor's freezing uses):
    20-40 % less per call than ``F.conv2d`` at batch 1. None where this torch build lacks them."""
    if not torch.backends.mkldnn.is_available() or not isinstance(padding, tuple):
        return None
    try:
        packed = torch.ops.mkldnn._reorder_convolution_weight(
            weight, list(padding), list(stride), list(dilation), groups, [1, weight.shape[1], *image])
    except (AttributeError, RuntimeError):
        return None
    attribute = "relu" if relu else "none"
    args = (list(padding), list(stride), list(dilation), groups, attribute, [None], "")
    return lambda x: torch.ops.mkldnn._convolution_pointwise(x, packed, bias, *args)


def _linear(module: nn.Linear) -> Step:
    if module.weight.numel() >= QUANTIZE_MIN_WEIGHTS:
        try:
            return RowwiseInt8Linear(module)
        except (AttributeError, NotImplementedError, RuntimeError):  # a torch build without the quantized ops
            pass
    weight, bias = module.weight.detach().float(), module.bias.detach().float()
    return lambda x: F.linear(x, weight, bias)
