"""The Royal Game of Ur (contract: docs/ur.md): two MLPs on 150 features, a value (MSE) and a
policy (cross-entropy on masked logits), exported in our format and the old engine's.

Modules: `config` (options, no torch), `model`, `export` (weight files and the old-file
converter: `python -m trainer.tasks.ur.export`), `learner` (what the training loop calls)."""
