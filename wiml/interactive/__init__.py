"""Interactive refinement: geodesic distances, graph cut, the headless RefinementSession, the robot user."""
