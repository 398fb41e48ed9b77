"""One package per task: its learner (trainer.learner.Learner), model and weight formats."""
