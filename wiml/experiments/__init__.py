"""Experiment runners: the pipeline, robot-user WIA simulation (wia-sim), baselines and CAM quality."""
