"""Training: a run from configuration to export, and what `model.fit` runs with.

- `run`: the whole run (`train`), and the steps other tools share;
- `validation`: the one check of a configuration before work starts;
- `fit`: `model.fit` with the callbacks in their order; `progress`, `dev`, `stopping`,
  `checkpoints`, `resume`, `memory`: those callbacks;
- `model_setup`, `losses`, `optim`: the compiled model, its loss and metrics, optimizers and
  schedules; `monitoring`: TensorBoard's samples, attention images and HParams;
- `distribute`: tf.distribute strategies and the multi-worker loop.
"""
