"""Network definitions. Weights are not here: checkpoints live in ``models/`` and are loaded by opponents."""
