"""Every schedule must survive the tiny runs of smoke tests and debug configs."""

import pytest
import torch

from lenet5.training import schedules

FACTORIES = [schedules.one_cycle, schedules.step, schedules.paper]


@pytest.mark.parametrize("factory", FACTORIES, ids=lambda f: f.__name__)
@pytest.mark.parametrize("total_steps", [1, 2, 3, 4, 5, 8, 40])
def test_schedule_steps_through_a_whole_run(factory, total_steps: int) -> None:
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    config = factory(optimizer, total_steps=total_steps, epochs=1)
    rates = []
    for _ in range(total_steps):
        optimizer.step()
        config["scheduler"].step()
        rates.append(optimizer.param_groups[0]["lr"])
    assert all(0 <= rate <= 0.1 + 1e-12 for rate in rates)


@pytest.mark.parametrize("pct_start", [0.25, 0.5])
def test_one_cycle_peaking_at_step_zero_starts_at_the_configured_lr(pct_start: float) -> None:
    weight = torch.nn.Parameter(torch.zeros(1))
    optimizer = torch.optim.SGD([weight], lr=0.1)
    total_steps = round(1 / pct_start)
    schedules.one_cycle(optimizer, total_steps=total_steps, epochs=1, pct_start=pct_start)
    assert optimizer.param_groups[0]["lr"] == pytest.approx(0.1, rel=1e-4)
