"""Evaluation on the paper's five capability dimensions, and side-by-side comparison."""
