"""Metamizer (Wandel et al., ICLR 2025): a neural optimiser proposing gradient-descent
steps, rebuilt for the harness. ``model`` (network + update rule), ``pool`` and
``train`` (meta-learning), ``checkpoint`` (safe save/load), ``solver`` (the
harness Solver). See MODEL_CARD.md for the shipped checkpoint."""
