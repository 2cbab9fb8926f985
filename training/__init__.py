"""Model training with torch DDP: the demand forecaster and the recommender (two-tower and sequence models).

Each model is launched with `torchrun --standalone --nproc_per_node=N -m training.<model>.train`
(or `training.launch.run_torchrun`) and also runs as a plain `python -m` process.
"""
