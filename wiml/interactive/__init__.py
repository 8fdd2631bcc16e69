"""Interactive refinement: geodesic distances, graph cut, the headless RefinementSession, the robot user."""

from wiml.interactive.session import Click, RefinementSession, refine_mask

__all__ = ["Click", "RefinementSession", "refine_mask"]
