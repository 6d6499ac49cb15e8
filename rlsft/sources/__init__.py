"""Where batches come from: offline trajectories (trajectories.py), MuJoCo rollouts for PPO (rollouts.py) and
text rollouts for GRPO (text_rollouts.py), each a BatchSource (base.py)."""
