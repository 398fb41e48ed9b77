"""The boids predator (contract: docs/predator.md): a small pre-norm transformer over the tokens
[CLS], [CTX], predator and one per boid, trained to imitate a teacher's action (MSE), exported
in our format, the browser's and the browser's `.js` wrapper.

Modules: `config` (options, no torch), `model`, `export` (weight files), `learner` (what the
training loop calls)."""
