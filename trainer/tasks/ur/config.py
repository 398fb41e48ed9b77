"""Ur's training options: plain data, no torch (the jobs' settings extend it)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class UrTrainOptions(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)
    soft_policy_temperature: float = Field(0.0, ge=0.0, description="0: one-hot policy targets; > 0: softmax of the mover's move values / T")
