"""Problem generators with ground truth, the sparse interior system and the metrics."""

from problems.base import MIN_GRID, LinearSystem, Problem, ProblemError, check_grid
from problems.generators import GENERATORS, generator, make_problem, reference_bytes_per_node

__all__ = ["GENERATORS", "MIN_GRID", "LinearSystem", "Problem", "ProblemError", "check_grid", "generator",
           "make_problem", "reference_bytes_per_node"]
