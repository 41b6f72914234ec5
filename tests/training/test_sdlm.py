"""SDLM: the curvature against autograd, the step rule, the schedule, and a short run."""

import pytest
import torch
from torch.func import functional_call, jacrev

from lenet5.models import LeNet5
from lenet5.training.curvature import gauss_newton_diagonal, head_curvature
from lenet5.training.schedules import paper
from lenet5.training.sdlm import SDLM

# Every layer kind at least once: each pooling, both C3 tables, both heads, four activations.
VARIANTS = [
    dict(activation="scaled_tanh", pooling="trainable", c3="paper", head="rbf"),
    dict(activation="relu", pooling="max", c3="full", head="linear"),
    dict(activation="tanh", pooling="avg", c3="paper", head="linear"),
    dict(activation="sigmoid", pooling="max", c3="full", head="rbf"),
]


def squared_jacobian_reference(model: LeNet5, images: torch.Tensor, labels: torch.Tensor) -> dict:
    """The same recursion from full Jacobians that autograd computes, one pattern at a time:
    every output o of a block passes  (do/dx)^2 g_o  to its inputs and  (do/dw)^2 g_o  to its
    parameters. Slow and independent of the layer-by-layer formulas under test."""
    blocks = [getattr(model, name) for name in model.LAYERS[:-1]]
    total: dict[torch.nn.Parameter, torch.Tensor] = {}
    for image, label in zip(images, labels, strict=True):
        inputs = [model.normalize(image[None])]
        for block in blocks:
            inputs.append(block(inputs[-1]).detach())
        h: dict = {}
        g = head_curvature(model.output, inputs[-1].flatten(1), label[None], h)
        for block, x, out in zip(reversed(blocks), reversed(inputs[:-1]), reversed(inputs[1:]), strict=True):
            g = g.reshape(out.shape).flatten()
            params = dict(block.named_parameters())
            if params:
                jac = jacrev(lambda p, x=x, block=block: functional_call(block, p, (x,)).flatten())(params)
                for name, param in params.items():
                    h[param] = (jac[name].flatten(1).square().T @ g).reshape(param.shape)
            jac_x = jacrev(lambda x, block=block: block(x).flatten())(x).flatten(1)
            g = (jac_x.square().T @ g).reshape(x.shape)
        for param, value in h.items():
            total[param] = total.get(param, 0) + value
    return {param: value / len(images) for param, value in total.items()}


@pytest.mark.parametrize("variant", VARIANTS, ids=lambda v: "-".join(v.values()))
def test_curvature_equals_the_squared_jacobian_recursion(variant: dict) -> None:
    torch.manual_seed(0)
    model = LeNet5(**variant)
    images, labels = torch.rand(2, 1, 32, 32), torch.tensor([3, 7])  # the sum over patterns too
    fast = gauss_newton_diagonal(model, images, labels)
    reference = squared_jacobian_reference(model, images, labels)
    assert set(fast) == set(reference) == set(model.parameters())
    for param in model.parameters():
        torch.testing.assert_close(fast[param], reference[param], rtol=1e-4, atol=1e-9)
        assert (fast[param] >= 0).all()
    if variant["c3"] == "paper":  # absent C3 connections have no curvature
        assert (
            fast[model.c3.conv.weight][model.c3.conv.mask.expand_as(model.c3.conv.weight) == 0] == 0
        ).all()


def test_curvature_is_the_exact_gauss_newton_diagonal_where_the_paper_is_exact() -> None:
    """One weighted layer (F6) into the linear head: no off-diagonal terms to drop below the
    output, so per connection the recursion equals diag(J^T H J) from autograd."""
    torch.manual_seed(0)
    model = LeNet5(head="linear")
    x = torch.rand(1, 120, 1, 1)
    weight = model.f6.linear.weight

    def logits(w: torch.Tensor) -> torch.Tensor:
        return model.output(
            model.f6.activation(torch.nn.functional.linear(x.flatten(1), w, model.f6.linear.bias))
        )

    jac = jacrev(logits)(weight).reshape(10, -1)  # (outputs, weights)
    p = logits(weight).softmax(dim=1)[0]
    hessian = torch.diag(p) - torch.outer(p, p)
    exact = torch.einsum("ok,ol,lk->k", jac, hessian, jac)
    h: dict = {}
    g_x = head_curvature(model.output, model.f6(x), torch.tensor([0]), h)
    pre = model.f6.linear(x.flatten(1))
    slope = torch.autograd.functional.jacobian(model.f6.activation, pre).diagonal(dim1=1, dim2=3)[0]
    per_connection = (g_x * slope.square()).T @ x.flatten(1).square()
    # the diagonal of H only: the exact value minus its off-diagonal part
    off_diagonal = torch.einsum("ok,ol,lk->k", jac, hessian - torch.diag(hessian.diagonal()), jac)
    torch.testing.assert_close(per_connection.flatten(), exact - off_diagonal, rtol=1e-4, atol=1e-8)


def test_rbf_head_curvature_is_its_gauss_newton_diagonal() -> None:
    torch.manual_seed(0)
    model = LeNet5()
    x = torch.rand(1, 84) * 2 - 1
    label = torch.tensor([4])
    penalties = model.output.penalties(x)  # the head outputs -penalties
    jac = jacrev(model.output.penalties)(x)[0, :, 0, :]  # dy_i/dx_j
    p = torch.cat([torch.tensor([[-model.output.j]]), -penalties], dim=1).softmax(dim=1)[0, 1:]
    expected = 2.0 + (jac.square() * (p * (1 - p))[:, None]).sum(dim=0)
    torch.testing.assert_close(head_curvature(model.output, x, label, {})[0], expected)


def test_step_is_lr_over_mu_plus_h_times_the_summed_gradient() -> None:
    param = torch.nn.Parameter(torch.tensor([1.0, 2.0, 3.0]))
    optimizer = SDLM([param], lr=0.01, mu=0.02, batch_size=4)
    optimizer.set_curvature({param: torch.tensor([0.0, 0.08, 1.98])})
    param.grad = torch.tensor([1.0, 1.0, -2.0])
    optimizer.step()
    step = 4 * 0.01 / (0.02 + torch.tensor([0.0, 0.08, 1.98])) * torch.tensor([1.0, 1.0, -2.0])
    torch.testing.assert_close(param.detach(), torch.tensor([1.0, 2.0, 3.0]) - step)


@pytest.mark.parametrize("bad", [dict(lr=0.0), dict(mu=-1.0), dict(batch_size=0), dict(samples=0)])
def test_bad_settings_are_refused(bad: dict) -> None:
    with pytest.raises(ValueError, match=next(iter(bad))):
        SDLM([torch.nn.Parameter(torch.zeros(1))], **bad)


def test_paper_schedule_gives_the_papers_rates() -> None:
    optimizer = SDLM([torch.nn.Parameter(torch.zeros(1))], lr=0.0005)
    scheduler = paper(optimizer, total_steps=20, epochs=20)["scheduler"]
    rates = []
    for _ in range(20):
        rates.append(optimizer.param_groups[0]["lr"])
        scheduler.step()
    expected = [0.0005] * 2 + [0.0002] * 3 + [0.0001] * 3 + [0.00005] * 4 + [0.00001] * 8
    assert rates == pytest.approx(expected)


@pytest.mark.parametrize("batch_size, lr", [(1, 1e-4), (16, 1e-5)])
def test_a_short_run_lowers_the_loss(batch_size: int, lr: float) -> None:
    torch.manual_seed(0)
    model = LeNet5()
    images = torch.rand(64, 1, 32, 32)
    labels = torch.randint(0, 10, (64,))
    optimizer = SDLM(model.parameters(), lr=lr, batch_size=batch_size)
    optimizer.set_curvature(gauss_newton_diagonal(model, images, labels))
    before = model.loss(model(images), labels).item()
    for _ in range(3):
        for start in range(0, 64, batch_size):
            loss = model.loss(model(images[start : start + batch_size]), labels[start : start + batch_size])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    assert model.loss(model(images), labels).item() < 0.8 * before


@pytest.mark.parametrize("pooling", ["max", "avg", "trainable"])
def test_curvature_runs_with_deterministic_algorithms(pooling: str) -> None:
    """trainer.deterministic=true (the default) turns on torch's deterministic-only mode."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(True)
    try:
        h = gauss_newton_diagonal(LeNet5(pooling=pooling), torch.rand(3, 1, 32, 32), torch.tensor([0, 1, 2]))
    finally:
        torch.use_deterministic_algorithms(before)
    assert all(torch.isfinite(value).all() for value in h.values())
