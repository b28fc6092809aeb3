"""The policy tower of an ``ActorCritic`` as an ONNX graph: the race plan the league's sandbox runs without torch.

A sandboxed evaluation is one fresh process per job, and importing torch there costs more CPU (~2 s on a 2-core
EPYC) than racing the demo race itself; ONNX Runtime imports in ~0.05 s. The trusted worker, which has torch and has
just validated the archive, builds this graph from the weights (``race_plan_bytes``) and puts it beside them in the
model folder (``sim.io.model_files.RACE_PLAN_FILE``); the runner races it with ``sim.race.onnx_policy`` and never
imports torch.

The graph: camera uint8 NHWC -> float NCHW (the 1/255 scaling folded into the first convolution's weights) ->
convolutions + ReLU -> flatten -> dense layers (+ the lidar embedder, concatenated) -> middleware -> head: logits or
Gaussian means, as ``ActorCritic._policy_output``. Dense layers of at least ``QUANTIZE_MIN_WEIGHTS`` weights (the
11264x512 layer of the 3-layer CNN, streamed from memory at every step) keep int8 weights, one symmetric scale per
block of 32 inputs, and are computed by ONNX Runtime's ``MatMulNBits`` (its input quantised per block of 32 as
well); everything else stays float32. How closely it drives like the fp32 network is tested on
trained models (tests/sim/test_race_inference.py).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper
from torch import nn

from sim.io.archive import load_actor_critic
from sim.io.model_files import RACE_PLAN_FILE
from sim.learn.inference import QUANTIZE_MIN_WEIGHTS
from sim.learn.networks import IMAGE_HEIGHT, IMAGE_WIDTH, LIDAR_INPUT_SIZE, ActorCritic, DiscreteHead
from sim.race.onnx_policy import CAMERA_INPUT, LIDAR_INPUT, OUTPUT
from sim.world.vehicle import STEREO_CAMERAS

OPSET = 17
BLOCK = 32  # MatMulNBits: weights quantised in blocks of 32 inputs, one scale each
# MatMulNBits' accuracy level 4: the input is quantised to int8 per block too and the products summed in integers;
# ONNX Runtime's float path for 8-bit weights (levels 0-1) is ~60x slower at batch 1.
INT8_COMPUTE = 4


class _Graph:
    """Nodes and initialisers under construction, with fresh value names."""

    def __init__(self) -> None:
        self.nodes: list[onnx.NodeProto] = []
        self.initializers: list[onnx.TensorProto] = []
        self._count = 0

    def name(self, hint: str) -> str:
        self._count += 1
        return f"{hint}_{self._count}"

    def constant(self, array: np.ndarray, hint: str) -> str:
        name = self.name(hint)
        self.initializers.append(numpy_helper.from_array(np.ascontiguousarray(array), name))
        return name

    def node(self, op: str, inputs: list[str], outputs: int = 1, domain: str = "", **attributes) -> list[str]:
        names = [self.name(op.lower()) for _ in range(outputs)]
        self.nodes.append(helper.make_node(op, inputs, names, domain=domain, **attributes))
        return names

    def add_sequence(self, sequence: nn.Sequential, x: str, input_scale: float = 1.0) -> str:
        """Conv2d/ReLU/Flatten/Linear modules (what networks.Tower builds) applied to value ``x``."""
        for module in sequence.children():
            if isinstance(module, nn.Conv2d):
                weight = module.weight.detach().float().numpy() * np.float32(input_scale)
                input_scale = 1.0
                inputs = [x, self.constant(weight, "conv_w")]
                if module.bias is not None:
                    inputs.append(self.constant(module.bias.detach().float().numpy(), "conv_b"))
                (x,) = self.node("Conv", inputs, kernel_shape=list(module.kernel_size), strides=list(module.stride))
            elif isinstance(module, nn.ReLU):
                (x,) = self.node("Relu", [x])
            elif isinstance(module, nn.Flatten):
                (x,) = self.node("Flatten", [x], axis=1)
            elif isinstance(module, nn.Linear):
                x = self.add_linear(module.weight.detach().float().numpy(), module.bias.detach().float().numpy(), x)
            else:
                raise TypeError(f"no ONNX race plan for {type(module).__name__}")
        return x

    def add_linear(self, weight: np.ndarray, bias: np.ndarray, x: str) -> str:
        """``x W^T + b``; the large layers with int8 weights (``MatMulNBits``)."""
        if weight.size < QUANTIZE_MIN_WEIGHTS:
            (y,) = self.node("Gemm", [x, self.constant(weight, "dense_w"), self.constant(bias, "dense_b")], transB=1)
            return y
        outputs, inputs = weight.shape
        blocks = -(-inputs // BLOCK)
        padded = np.zeros((outputs, blocks * BLOCK), dtype=np.float32)
        padded[:, :inputs] = weight
        padded = padded.reshape(outputs, blocks, BLOCK)
        scale = np.abs(padded).max(axis=2) / 127.0
        scale[scale == 0] = 1.0
        # Symmetric int8 stored offset by 128: MatMulNBits' 8-bit weights are unsigned with zero point 128.
        quantised = (np.clip(np.rint(padded / scale[..., None]), -127, 127) + 128).astype(np.uint8)
        (product,) = self.node(
            "MatMulNBits", [x, self.constant(quantised, "dense_q"), self.constant(scale.astype(np.float32).reshape(-1),
                                                                                   "dense_scale")],
            domain="com.microsoft", K=inputs, N=outputs, bits=8, block_size=BLOCK, accuracy_level=INT8_COMPUTE)
        (y,) = self.node("Add", [product, self.constant(bias, "dense_b")])
        return y


def race_plan_model(network: ActorCritic) -> onnx.ModelProto:
    """The ONNX graph of ``network``'s policy tower: inputs ``camera`` (and ``lidar``), output ``output``."""
    vehicle, tower = network.vehicle, network.policy_net
    graph = _Graph()
    channels = 2 if vehicle.camera == STEREO_CAMERAS else 1
    inputs = [helper.make_tensor_value_info(CAMERA_INPUT, TensorProto.UINT8,
                                            ["batch", IMAGE_HEIGHT, IMAGE_WIDTH, channels])]
    (x,) = graph.node("Cast", [CAMERA_INPUT], to=TensorProto.FLOAT)
    (x,) = graph.node("Transpose", [x], perm=[0, 3, 1, 2])
    x = graph.add_sequence(tower.camera, x, input_scale=1.0 / 255.0)
    if tower.lidar is not None:
        inputs.append(helper.make_tensor_value_info(LIDAR_INPUT, TensorProto.FLOAT,
                                                    ["batch", LIDAR_INPUT_SIZE[vehicle.lidar]]))
        lidar = graph.add_sequence(tower.lidar, LIDAR_INPUT)
        (x,) = graph.node("Concat", [x, lidar], axis=1)
    x = graph.add_sequence(tower.middleware, x)
    head = tower.head
    layer = head.logits if isinstance(head, DiscreteHead) else head.mean
    x = graph.add_linear(layer.weight.detach().float().numpy(), layer.bias.detach().float().numpy(), x)
    graph.nodes.append(helper.make_node("Identity", [x], [OUTPUT]))
    outputs = [helper.make_tensor_value_info(OUTPUT, TensorProto.FLOAT, ["batch", layer.out_features])]
    opsets = [helper.make_opsetid("", OPSET), helper.make_opsetid("com.microsoft", 1)]
    model = helper.make_model(helper.make_graph(graph.nodes, "pitlane_race_plan", inputs, outputs, graph.initializers),
                              opset_imports=opsets, producer_name="pitlane")
    model.ir_version = 8  # what every ONNX Runtime release since 1.10 reads
    return model


def race_plan_bytes(network: ActorCritic) -> bytes:
    """``race_plan_model`` serialised: the bytes of ``RACE_PLAN_FILE``."""
    return race_plan_model(network).SerializeToString()


def write_race_plan(model_dir: str | Path) -> Path:
    """Build the race plan of the validated model folder ``model_dir`` and write it there as ``RACE_PLAN_FILE``."""
    _, network = load_actor_critic(model_dir)
    path = Path(model_dir) / RACE_PLAN_FILE
    partial = path.with_name(path.name + ".partial")
    partial.write_bytes(race_plan_bytes(network))
    os.replace(partial, path)
    return path
