"""The DeepRacer networks of SPEC §4 in torch: separate policy and value towers.

Each tower = camera embedder (+ lidar embedder, concatenated) -> middleware -> head, with a ReLU after every
layer, camera pixels divided by 255 and "valid" convolutions, exactly as the simapp's rl_coach ``scheme``
embedders (research/simapp.md §4.2):

| network | camera convs (filters, kernel, stride) | embedder dense | middleware |
|---|---|---|---|
| SHALLOW ("3-layer CNN") | (32,8,4) (64,4,2) (64,3,1) | - | 512 |
| DEEP_CONVOLUTIONAL_NETWORK ("5-layer CNN") | (32,5,2) (32,3,1) (64,3,2) (64,3,1) | 64 | 512 |
| DEEP_CONVOLUTIONAL_NETWORK_DEEP | (32,8,4) (32,4,2) (64,4,2) (64,3,1) | 512, 512 | 256, 128 |

Stereo cameras (2 channels) use the SHALLOW convs for SHALLOW and (32,3,1) (64,3,2) (64,3,1) (128,3,2)
(128,3,1) without embedder dense layers for the two deeper networks (simapp ``get_stereo_camera_embedders``).
Lidar embedder: FC 256 -> FC 256.

Heads: discrete = logits -> ``Categorical``; continuous = linear mean (as rl_coach's PPO head: no tanh, the
action is clipped to [-1, 1] when turned into a command) with a state-independent log-std clipped to
[-20, 2] -> ``Normal``. Value head: one linear output.

Observations are what the environment produces: the camera as uint8 ``(N, 120, 160, C)`` NHWC (numpy or
torch) and, with a lidar, a mapping ``{camera_sensor_name: images, lidar_sensor_name: (N, 64 | 8) floats}``
(the keys ``"camera"`` and ``"lidar"`` are accepted too). A camera-only vehicle also accepts the bare array.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from typing import Any, NamedTuple

import numpy as np
import torch
from torch import nn
from torch.distributions import Categorical, Distribution, Normal

from sim.world.vehicle import (
    DEEP_CONVOLUTIONAL_NETWORK,
    DEEP_CONVOLUTIONAL_NETWORK_DEEP,
    DEEP_CONVOLUTIONAL_NETWORK_SHALLOW,
    LIDAR,
    SECTOR_LIDAR,
    STEREO_CAMERAS,
    Vehicle,
)

IMAGE_HEIGHT, IMAGE_WIDTH = 120, 160
LIDAR_INPUT_SIZE = {LIDAR: 64, SECTOR_LIDAR: 8}
LOG_STD_MIN, LOG_STD_MAX = -20.0, 2.0
INITIAL_LOG_STD = -0.5  # std 0.6 in [-1, 1] action units: explores without saturating the clip most of the time

_SHALLOW_CONVS = ((32, 8, 4), (64, 4, 2), (64, 3, 1))
_STEREO_DEEP_CONVS = ((32, 3, 1), (64, 3, 2), (64, 3, 1), (128, 3, 2), (128, 3, 1))
# network -> (mono camera convs, embedder dense, middleware)
_ARCHITECTURES: dict[str, tuple[tuple[tuple[int, int, int], ...], tuple[int, ...], tuple[int, ...]]] = {
    DEEP_CONVOLUTIONAL_NETWORK_SHALLOW: (_SHALLOW_CONVS, (), (512,)),
    DEEP_CONVOLUTIONAL_NETWORK: (((32, 5, 2), (32, 3, 1), (64, 3, 2), (64, 3, 1)), (64,), (512,)),
    DEEP_CONVOLUTIONAL_NETWORK_DEEP: (((32, 8, 4), (32, 4, 2), (64, 4, 2), (64, 3, 1)), (512, 512), (256, 128)),
}
_LIDAR_DENSE = (256, 256)

# Names of the policy head tensors in the state dict (the archive checks them against the action space).
DISCRETE_HEAD = "policy_net.head.logits"
CONTINUOUS_HEAD = "policy_net.head.mean"
LOG_STD = "policy_net.head.log_std"


def camera_layers(vehicle: Vehicle) -> tuple[tuple[tuple[int, int, int], ...], tuple[int, ...]]:
    """(convs, embedder dense sizes) of the vehicle's camera embedder."""
    convs, dense, _ = _ARCHITECTURES[vehicle.neural_network]
    if vehicle.camera == STEREO_CAMERAS and vehicle.neural_network != DEEP_CONVOLUTIONAL_NETWORK_SHALLOW:
        return _STEREO_DEEP_CONVS, ()
    return convs, dense


def _conv_output(size: int, kernel: int, stride: int) -> int:
    return (size - kernel) // stride + 1


def _dense(sizes: tuple[int, ...], in_features: int, prefix: str) -> tuple[OrderedDict, int]:
    layers: OrderedDict[str, nn.Module] = OrderedDict()
    for index, size in enumerate(sizes, start=1):
        layers[f"{prefix}{index}"] = nn.Linear(in_features, size)
        layers[f"relu{index}"] = nn.ReLU()
        in_features = size
    return layers, in_features


class Tower(nn.Module):
    """Camera embedder (+ lidar embedder) -> middleware -> head; one full network, shares nothing."""

    def __init__(self, vehicle: Vehicle, make_head: Callable[[int], nn.Module]) -> None:
        super().__init__()
        convs, embedder_dense = camera_layers(vehicle)
        channels = 2 if vehicle.camera == STEREO_CAMERAS else 1
        height, width = IMAGE_HEIGHT, IMAGE_WIDTH
        camera: OrderedDict[str, nn.Module] = OrderedDict()
        for index, (filters, kernel, stride) in enumerate(convs, start=1):
            camera[f"conv{index}"] = nn.Conv2d(channels, filters, kernel, stride)  # padding "valid"
            camera[f"relu_conv{index}"] = nn.ReLU()
            channels, height, width = filters, _conv_output(height, kernel, stride), _conv_output(width, kernel, stride)
        camera["flatten"] = nn.Flatten()
        dense, features = _dense(embedder_dense, channels * height * width, "fc")
        camera.update(dense)
        self.camera = nn.Sequential(camera)
        if vehicle.lidar is not None:
            lidar, lidar_features = _dense(_LIDAR_DENSE, LIDAR_INPUT_SIZE[vehicle.lidar], "fc")
            self.lidar: nn.Sequential | None = nn.Sequential(lidar)
            features += lidar_features
        else:
            self.lidar = None
        middleware, features = _dense(_ARCHITECTURES[vehicle.neural_network][2], features, "fc")
        self.middleware = nn.Sequential(middleware)
        self.head = make_head(features)

    def embed(self, camera: torch.Tensor, lidar: torch.Tensor | None) -> torch.Tensor:
        embedding = self.camera(camera)
        if self.lidar is not None:
            embedding = torch.cat([embedding, self.lidar(lidar)], dim=1)
        return self.middleware(embedding)


class DiscreteHead(nn.Module):
    def __init__(self, features: int, actions: int) -> None:
        super().__init__()
        self.logits = nn.Linear(features, actions)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.logits(features)


class GaussianHead(nn.Module):
    def __init__(self, features: int, dimensions: int) -> None:
        super().__init__()
        self.mean = nn.Linear(features, dimensions)
        self.log_std = nn.Parameter(torch.full((dimensions,), INITIAL_LOG_STD))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.mean(features)

    def std(self) -> torch.Tensor:
        return self.log_std.clamp(LOG_STD_MIN, LOG_STD_MAX).exp()


class ValueHead(nn.Module):
    def __init__(self, features: int) -> None:
        super().__init__()
        self.value = nn.Linear(features, 1)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.value(features).squeeze(-1)


class Act(NamedTuple):
    action: torch.Tensor  # (N,) int64 indices, or (N, 2) float32 raw Gaussian outputs
    log_prob: torch.Tensor  # (N,)
    value: torch.Tensor  # (N,)


class ActorCritic(nn.Module):
    """Policy tower ``policy_net`` and value tower ``value_net`` for one vehicle."""

    def __init__(self, vehicle: Vehicle) -> None:
        super().__init__()
        self.vehicle = vehicle
        outputs = vehicle.action_space.policy_output_size
        head = DiscreteHead if vehicle.is_discrete else GaussianHead
        self.policy_net = Tower(vehicle, lambda features: head(features, outputs))
        self.value_net = Tower(vehicle, ValueHead)
        self._initialise()

    def _initialise(self) -> None:
        # PyTorch's default (Kaiming-uniform) init for the towers: an orthogonal init of the 11264x512 (up to
        # 112000x512) middleware costs seconds per tower. The policy head is scaled down so the initial policy
        # is near-uniform (discrete) / centred (continuous), as CleanRL's gain-0.01 head does.
        head = self.policy_net.head
        layer = head.logits if isinstance(head, DiscreteHead) else head.mean
        with torch.no_grad():
            layer.weight.mul_(0.01)
            layer.bias.zero_()

    # --- inputs ---

    def prepare(self, observations: Any) -> tuple[torch.Tensor, torch.Tensor | None]:
        """Environment observations -> (camera NCHW float in [0, 1], lidar float or None)."""
        vehicle = self.vehicle
        if isinstance(observations, Mapping):
            camera = _lookup(observations, vehicle.camera, "camera")
            lidar = _lookup(observations, vehicle.lidar, "lidar") if vehicle.lidar else None
        else:
            if vehicle.lidar is not None:
                raise ValueError(
                    f"this vehicle has a {vehicle.lidar}: pass a mapping "
                    f"{{{vehicle.camera!r}: images, {vehicle.lidar!r}: ranges}}"
                )
            camera, lidar = observations, None
        device = next(self.parameters()).device
        images = torch.as_tensor(camera, device=device)
        channels = 2 if vehicle.camera == STEREO_CAMERAS else 1
        if images.dim() != 4 or tuple(images.shape[1:]) != (IMAGE_HEIGHT, IMAGE_WIDTH, channels):
            raise ValueError(
                f"{vehicle.camera} observations must be (N, {IMAGE_HEIGHT}, {IMAGE_WIDTH}, {channels}), "
                f"got {tuple(images.shape)}"
            )
        # Contiguous NCHW: convolutions on the permuted view run about 2x slower on CPU.
        images = images.permute(0, 3, 1, 2).to(torch.float32).mul_(1.0 / 255.0).contiguous()
        if lidar is None:
            return images, None
        ranges = torch.as_tensor(lidar, dtype=torch.float32, device=device)
        expected = LIDAR_INPUT_SIZE[vehicle.lidar]
        if ranges.dim() != 2 or ranges.shape != (images.shape[0], expected):
            raise ValueError(f"{vehicle.lidar} observations must be (N, {expected}), got {tuple(ranges.shape)}")
        return images, ranges

    # --- outputs ---

    def forward(self, observations: Any) -> tuple[torch.Tensor, torch.Tensor]:
        """(logits ``(N, actions)`` or Gaussian means ``(N, 2)``, values ``(N,)``)."""
        camera, lidar = self.prepare(observations)
        return self._policy_output(camera, lidar), self._value(camera, lidar)

    def policy(self, observations: Any) -> Distribution:
        """The action distribution: ``Categorical`` over indices, or ``Normal`` over [steering, speed]."""
        return self._distribution(self._policy_output(*self.prepare(observations)))

    distribution = policy  # the name sim.learn.ppo's ActorCriticModule protocol uses

    def value(self, observations: Any) -> torch.Tensor:
        return self._value(*self.prepare(observations))

    @torch.no_grad()
    def act(self, observations: Any, deterministic: bool = False) -> Act:
        """Pick actions (argmax / mean when deterministic, as in races; sampled in training)."""
        camera, lidar = self.prepare(observations)
        distribution = self._distribution(self._policy_output(camera, lidar))
        if deterministic:
            action = distribution.probs.argmax(-1) if self.vehicle.is_discrete else distribution.mean
        else:
            action = distribution.sample()
        log_prob = distribution.log_prob(action)
        if log_prob.dim() > 1:
            log_prob = log_prob.sum(-1)
        return Act(action, log_prob, self._value(camera, lidar))

    @torch.inference_mode()
    def predict(self, observations: Any) -> torch.Tensor:
        """Race-mode actions (argmax / mean) from the policy tower alone: half the work of ``act``."""
        output = self._policy_output(*self.prepare(observations))
        return output.argmax(-1) if self.vehicle.is_discrete else output

    def _policy_output(self, camera: torch.Tensor, lidar: torch.Tensor | None) -> torch.Tensor:
        return self.policy_net.head(self.policy_net.embed(camera, lidar))

    def _value(self, camera: torch.Tensor, lidar: torch.Tensor | None) -> torch.Tensor:
        return self.value_net.head(self.value_net.embed(camera, lidar))

    def _distribution(self, output: torch.Tensor) -> Distribution:
        if self.vehicle.is_discrete:
            return Categorical(logits=output)
        return Normal(output, self.policy_net.head.std().expand_as(output))


def _lookup(observations: Mapping[str, Any], sensor: str, generic: str) -> Any:
    for key in (sensor, generic):
        if key in observations:
            return observations[key]
    raise ValueError(f"observation mapping has no {sensor!r} (or {generic!r}) entry; keys: {sorted(observations)}")


def build_actor_critic(vehicle: Vehicle, seed: int | None = None) -> ActorCritic:
    """A freshly initialised network for ``vehicle``; ``seed`` makes the initial weights reproducible."""
    if seed is None:
        return ActorCritic(vehicle)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        return ActorCritic(vehicle)


def expected_state_dict_layout(vehicle: Vehicle) -> dict[str, tuple[tuple[int, ...], torch.dtype]]:
    """Tensor name -> (shape, dtype) of ``build_actor_critic(vehicle).state_dict()``, allocating no weights."""
    with torch.device("meta"):
        model = ActorCritic(vehicle)
    return {name: (tuple(tensor.shape), tensor.dtype) for name, tensor in model.state_dict().items()}


def parameter_count(vehicle: Vehicle) -> int:
    return sum(int(np.prod(shape)) for shape, _ in expected_state_dict_layout(vehicle).values())
