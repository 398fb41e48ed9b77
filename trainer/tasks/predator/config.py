"""The predator's training options: plain data, no torch (the jobs' settings extend it)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, model_validator


class PredatorTrainOptions(BaseModel):
    model_config = ConfigDict(allow_inf_nan=False)
    d_model: int = Field(48, ge=4, le=1024, description="Transformer width (d_model)")
    n_heads: int = Field(4, ge=1, le=64, description="Attention heads; must divide D_MODEL")
    n_layers: int = Field(3, ge=1, le=24, description="Transformer blocks")
    ffn_hidden: int = Field(96, ge=1, le=8192, description="Hidden width of each block's GEGLU feed-forward")
    near_weight: float = Field(
        0.0, ge=0.0, le=1000.0, description="Extra loss weight of samples with a boid close by: 1 + NEAR_WEIGHT * exp(-distance / 40 px)"
    )
    mode_kappa: float = Field(
        0.0,
        ge=0.0,
        le=1000.0,
        description="0: the loss is the action's MSE. Above 0: 1 - exp(MODE_KAPPA * (cos(angle to the teacher) - 1)) plus the squared "
        "length error, which seeks the teacher's most common direction in a state rather than the mean of its directions",
    )
    mirror: bool = Field(True, description="Train on mirror images too: each training sample flipped left-right and/or up-down at random")

    @model_validator(mode="after")
    def _heads_divide_width(self) -> PredatorTrainOptions:
        if self.d_model % self.n_heads:
            raise ValueError(f"N_HEADS={self.n_heads} does not divide D_MODEL={self.d_model}")
        return self

    def architecture(self) -> dict[str, int]:
        return {"d_model": self.d_model, "n_heads": self.n_heads, "n_layers": self.n_layers, "ffn_hidden": self.ffn_hidden}
