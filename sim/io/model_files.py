"""The file names of a validated model folder: what an archive holds and what the evaluation sandbox reads.

Torch-free on purpose: the sandboxed runner imports it (``sim.race.onnx_policy``) without the archive reader.
"""

METADATA_FILE = "model_metadata.json"  # DeepRacer's model metadata (SPEC §6): sensors, network, action space
WEIGHTS_FILE = "model.safetensors"  # the ActorCritic's float32 state dict
# The policy tower as an ONNX graph (sim.learn.onnx_plan), written by the worker beside the validated weights for
# the sandbox; never part of an archive.
RACE_PLAN_FILE = "race_plan.onnx"
# The race's track as the worker prepared it (sim.sensors.floor.save_floor_raster), at the model mount's top (beside
# a match's two model folders): written before the job line, so the runner may read it while the model arrives.
TRACK_FOLDER = "track"
