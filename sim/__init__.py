"""Pitlane simulator: a plain library (no Django) of tracks, car, sensors, race rules,
environments, networks, model archives and training, faithful to AWS DeepRacer."""
