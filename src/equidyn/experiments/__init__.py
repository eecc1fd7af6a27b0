"""Experiments built on the library: runnable protocols, not part of the core API.

* :mod:`equidyn.experiments.nbody` — ``equidyn nbody``, the charged N-body protocol of EGNN;
* :mod:`equidyn.experiments.nbody_models` — its models by name and their input features;
* :mod:`equidyn.experiments.nbody_task` — its :class:`~equidyn.train.task.Task`, training
  and the measurements made after it (test MSE, equivariance error, rollouts);
* :mod:`equidyn.experiments.published` — the published numbers they are compared with.

The core packages (``o3``, ``nn``, ``graph``, ``models``, ``dynamics``, ``train``) never import
this package.
"""
