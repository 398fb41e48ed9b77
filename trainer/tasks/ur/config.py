"""Ur's training options: plain data, no torch (the jobs' settings extend it)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class UrTrainOptions(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)
    soft_policy_temperature: float = Field(0.0, ge=0.0, description="0: one-hot policy targets; > 0: softmax of the mover's move values / T")
    # Defaults measured on the default pipeline (docs/results/ur.md, "The perfect teacher"): with no dropout
    # and a weight of 3 the compatible file puts half the probability on illegal pieces that it
    # did with 0.1 and 1, the policy is more accurate, and the value player plays as well.
    illegal_mass_weight: float = Field(
        3.0, ge=0.0, description="Weight of -log(probability on legal moves) under a softmax over all 7 policy outputs (the old engine's rule)"
    )
    dropout: float = Field(0.0, ge=0.0, lt=1.0, description="Dropout after each hidden layer of both networks, in training only")
