"""A DQN balancing CartPole, attacked through its observations (issue 19).

The environment and its normalised state (:mod:`.environment`), the Q-network (:mod:`.net`), a seeded trainer
(:mod:`.trainer`), seeded episodes that replay bit for bit (:mod:`.episodes`), the three observation attacks
(:mod:`.attacks`), their measurement (:mod:`.evaluation`), the model cards (:mod:`.card`) and the plot
(:mod:`.plot`). ``python -m app.ml.agents.train`` reproduces the checkpoints in ``models/`` and their cards.
"""
