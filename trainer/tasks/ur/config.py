"""Ur's training options: plain data, no torch (the jobs' settings extend it)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class UrTrainOptions(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)
    soft_policy_temperature: float = Field(0.0, ge=0.0, description="0: one-hot policy targets; > 0: softmax of the mover's move values / T")
    illegal_mass_weight: float = Field(
        1.0, ge=0.0, description="Weight of -log(probability on legal moves) under a softmax over all 7 policy outputs (the old engine's rule)"
    )
    dropout: float = Field(0.1, ge=0.0, lt=1.0, description="Dropout after each hidden layer of both networks, in training only")
