"""A loss that grows by orders of magnitude, while finite, stops the run with advice."""

from types import SimpleNamespace

import pytest
import torch

from lenet5.training.divergence import StopOnDivergence


def trainer(step: int) -> SimpleNamespace:
    optimizer = torch.optim.SGD([torch.zeros(1, requires_grad=True)], lr=5.0)
    return SimpleNamespace(global_step=step, log_every_n_steps=1, current_epoch=0, optimizers=[optimizer])


@pytest.mark.parametrize(
    "losses, stops",
    [
        ([2.3, 1.0, 0.1, 0.01], False),  # learning
        ([2.3, 50.0, 2000.0], False),  # bad, but under three orders of magnitude
        ([2.3, 10.0, 5000.0], True),
        ([0.0, 1.0], True),  # from zero, anything large is a blow-up
    ],
)
def test_stops_only_on_orders_of_magnitude(losses: list[float], stops: bool) -> None:
    watch = StopOnDivergence()
    raised = None
    for step, loss in enumerate(losses):
        try:
            watch.on_train_batch_end(trainer(step), None, {"loss": torch.tensor(loss)}, None, step)
        except FloatingPointError as error:
            raised = error
    assert (raised is not None) == stops
    if stops:
        assert "optimizer.lr" in str(raised) and "blew up" in str(raised)
