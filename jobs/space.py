"""A sweep's search space (SWEEP_SPACE, or the task's default): the train settings to search and
their ranges, checked against the settings' own bounds before any trial runs. Imports no Optuna:
the settings check a space's syntax without it.

Grammar: comma-separated `name=low..high` (a float or integer range; `:log` samples on a log
scale) or `name=a|b|c` (choices), e.g.
`learning_rate=0.0005..0.008:log,batch_size=256|512|1024,epochs=10..40`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ValidationError

from common.errors import ConfigError
from trainer.config import TrainConfig

# The run's identity, its data and where training runs: fixed for every trial of a sweep.
NOT_SEARCHABLE = frozenset(
    {
        *("storage_url", "run_id", "data_run_id", "seed", "shards", "validation_split"),
        *("device", "memory_budget", "shuffle_shards", "prefetch_shards", "compile", "mixed_precision"),
    }
)
ITEM = re.compile(r"^(?P<name>[a-z][a-z0-9_]*)=(?:(?P<low>[^.|:]+(?:\.[^.|:]+)?)\.\.(?P<high>[^|:]+?)(?P<log>:log)?|(?P<choices>[^=]+))$")


@dataclass(frozen=True)
class Dimension:
    """One searched setting: a range (`low`..`high`, integers when both are) or `choices`."""

    name: str
    low: float | None = None
    high: float | None = None
    log: bool = False
    integer: bool = False
    choices: tuple[Any, ...] = ()

    def bounds(self) -> tuple[Any, ...]:
        """The values that must be valid settings: both ends of a range, or every choice."""
        if self.choices:
            return self.choices
        assert self.low is not None and self.high is not None
        return (int(self.low), int(self.high)) if self.integer else (self.low, self.high)

    def holds(self, value: Any) -> bool:
        if self.choices:
            return value in self.choices
        assert self.low is not None and self.high is not None
        return isinstance(value, (int, float)) and self.low <= value <= self.high

    def text(self) -> str:
        if self.choices:
            return f"{self.name}={'|'.join(map(str, self.choices))}"
        low, high = self.bounds()
        return f"{self.name}={low}..{high}{':log' if self.log else ''}"


def number(text: str) -> int | float | str:
    """An integer, else a float, else the text as it is (a choice may be a word)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def parse_space(text: str, variable: str = "SWEEP_SPACE") -> dict[str, Dimension]:
    """The space's dimensions by name; a malformed item is an error naming it."""
    space: dict[str, Dimension] = {}
    for item in (part.strip() for part in text.split(",") if part.strip()):
        match = ITEM.match(item)
        if not match:
            raise ConfigError(f"{variable}: {item!r} is neither name=low..high[:log] nor name=a|b|c")
        name = match["name"]
        if name in space:
            raise ConfigError(f"{variable}: {name} is given twice")
        if match["choices"] is not None:
            space[name] = Dimension(name, choices=tuple(number(c.strip()) for c in match["choices"].split("|")))
            continue
        low, high = number(match["low"]), number(match["high"])
        if isinstance(low, str) or isinstance(high, str) or not low < high:
            raise ConfigError(f"{variable}: {item!r} needs two numbers, the lower first")
        if match["log"] and low <= 0:
            raise ConfigError(f"{variable}: {item!r} samples on a log scale, which needs a lower end above 0")
        space[name] = Dimension(name, float(low), float(high), bool(match["log"]), isinstance(low, int) and isinstance(high, int))
    if not space:
        raise ConfigError(f"{variable}: the space is empty; e.g. learning_rate=0.0005..0.008:log,batch_size=256|512")
    return space


def check_space(
    space: dict[str, Dimension], train_settings: type[BaseModel], task_train: type[BaseModel], base: dict[str, Any], variable: str = "SWEEP_SPACE"
) -> None:
    """Refuses a setting that is not searchable and a bound that the train settings refuse."""
    allowed = searchable_names(task_train)
    for name, dimension in space.items():
        if name not in allowed:
            raise ConfigError(f"{variable}: {name.upper()} is not a searchable setting; searchable: {', '.join(n.upper() for n in sorted(allowed))}")
        for value in dimension.bounds():
            try:
                train_settings.model_validate({**base, name: value})
            except ValidationError as e:
                reasons = "; ".join(str(err["msg"]).removeprefix("Value error, ") for err in e.errors() if err["loc"] and err["loc"][0] == name)
                raise ConfigError(
                    f"{variable}: {dimension.text()}: {name.upper()}={value!r} is not allowed ({reasons or e.errors()[0]['msg']})"
                ) from None


def searchable_names(task_train: type[BaseModel]) -> set[str]:
    """The trainer's hyperparameters and the task's own train settings (`task_train`), less
    what defines the run or where it trains (NOT_SEARCHABLE)."""
    return (set(TrainConfig.model_fields) | set(task_train.model_fields)) - NOT_SEARCHABLE
