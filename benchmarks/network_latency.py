"""CPU inference latency of every network (``predict``: policy tower; ``act``: both) and model-archive timings.

``plan``: the race plan evaluations use (``sim.learn.inference``): int8 weights for the large dense layer, and with
``auto`` also bfloat16 convolutions where the CPU has them natively; ``plan build`` is what making it costs once per
evaluation. Batch-1 figures are medians of calls interleaved across the fp32 network and the plans.

    .venv/bin/python benchmarks/network_latency.py [--threads 1] [--repeats 30]

Prints a table, then as the last line one JSON object with the figures (milliseconds).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from sim.io import archive
from sim.learn.agent import race_policy
from sim.learn.inference import resolve_precision
from sim.learn.networks import build_actor_critic, parameter_count
from sim.world.vehicle import (
    FRONT_FACING_CAMERA,
    NEURAL_NETWORKS,
    STEREO_CAMERAS,
    DiscreteActionSpace,
    Vehicle,
)


def _median_ms(function, repeats: int) -> float:
    function()  # warm-up (allocations, kernel selection)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append((time.perf_counter() - start) * 1000)
    return statistics.median(times)


def _interleaved_medians_ms(functions: dict[str, object], repeats: int) -> dict[str, float]:
    """Median CPU time (this thread) per call, the calls of every function interleaved: shared-machine noise and
    cache state hit them alike."""
    for function in functions.values():
        function()  # warm-up
    times: dict[str, list[float]] = {name: [] for name in functions}
    for _ in range(repeats):
        for name, function in functions.items():
            start = time.thread_time()
            function()
            times[name].append((time.thread_time() - start) * 1000)
    return {name: statistics.median(values) for name, values in times.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads (evaluation uses 1)")
    parser.add_argument("--repeats", type=int, default=30)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    actions = DiscreteActionSpace.from_granularity(30, 5, 1, 3)
    rng = np.random.default_rng(0)
    rows, figures = [], {}
    for camera in (FRONT_FACING_CAMERA, STEREO_CAMERAS):
        channels = 2 if camera == STEREO_CAMERAS else 1
        for network in NEURAL_NETWORKS:
            vehicle = Vehicle((camera,), network, actions)
            model = build_actor_critic(vehicle, seed=0).eval()
            one = rng.integers(0, 256, (1, 120, 160, channels), dtype=np.uint8)
            batch = rng.integers(0, 256, (64, 120, 160, channels), dtype=np.uint8)
            build_started = time.thread_time()
            plans = {"int8": race_policy(model, "int8")}
            build = (time.thread_time() - build_started) * 1000
            if resolve_precision("auto") != "int8":
                plans["auto"] = race_policy(model, "auto")
            calls = {"predict": lambda model=model, one=one: model.predict(one)}
            calls |= {name: (lambda plan=plan, one=one: plan(one)) for name, plan in plans.items()}
            medians = _interleaved_medians_ms(calls, args.repeats)
            single, int8 = medians["predict"], medians["int8"]
            auto = medians.get("auto", int8)
            both = _median_ms(lambda model=model, one=one: model.act(one, deterministic=True), args.repeats)
            batched = _median_ms(lambda model=model, batch=batch: model.act(batch), max(args.repeats // 5, 3)) / 64
            key = f"{camera}/{network}"
            figures[key] = {
                "predict_batch1_ms": round(single, 3),
                "plan_int8_batch1_ms": round(int8, 3),
                "plan_auto_batch1_ms": round(auto, 3),
                "plan_build_ms": round(build, 1),
                "act_batch1_ms": round(both, 3),
                "act_batch64_ms_per_sample": round(batched, 3),
            }
            rows.append((key, parameter_count(vehicle), single, int8, auto, build, both, batched))
            del model

    vehicle = Vehicle((FRONT_FACING_CAMERA,), "DEEP_CONVOLUTIONAL_NETWORK_SHALLOW", actions)
    state_dict = build_actor_critic(vehicle, seed=0).state_dict()
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "model.tar.gz"
        write = _median_ms(lambda: archive.write_model_archive(path, vehicle, state_dict), 3)
        inspect = _median_ms(lambda: archive.inspect_archive(path), 3)
        load = _median_ms(lambda: archive.load_actor_critic(path), 3)
        size = path.stat().st_size
    figures["archive_3layer_cnn"] = {
        "write_ms": round(write, 1),
        "inspect_ms": round(inspect, 1),
        "load_ms": round(load, 1),
        "bytes": size,
    }

    print(f"torch {torch.__version__}, {args.threads} thread(s), median of {args.repeats} runs, auto plan = "
          f"{resolve_precision('auto')}, load average {os.getloadavg()[0]:.2f}")
    print("predict = race-mode action from the fp32 policy tower; plan = the same from the race plan (int8 dense; "
          "auto: + bf16 convolutions where native); act = both towers (training rollouts)")
    header = (f"{'camera/network':52s} {'params':>12s} {'predict b1 ms':>14s} {'int8 plan':>10s} {'auto plan':>10s} "
              f"{'plan build':>11s} {'act b1 ms':>10s} {'act b64 ms/obs':>15s}")
    print(header)
    for key, params, single, int8, auto, build, both, batched in rows:
        print(f"{key:52s} {params:12,d} {single:14.2f} {int8:10.2f} {auto:10.2f} {build:9.0f}ms {both:10.2f} "
              f"{batched:15.3f}")
    print(f"archive (3-layer CNN, {size / 1e6:.1f} MB): write {write:.0f} ms, inspect {inspect:.0f} ms, ", end="")
    print(f"load {load:.0f} ms")
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
