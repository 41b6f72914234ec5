"""Layer outputs are the network's own, for every variant; the kernels and C3's table as trained."""

import pytest
import torch
from sketches import VARIANTS

from lenet5.inspection.layers import (
    SHAPES,
    c1_kernels,
    c3_connections,
    c3_table,
    inspect_image,
    layer_outputs,
)
from lenet5.models import LeNet5
from lenet5.models.connectivity import PAPER_TABLE


@pytest.mark.parametrize("variant", VARIANTS)
def test_layer_outputs_are_what_forward_computes(variant: str) -> None:
    torch.manual_seed(0)
    model = LeNet5(**{k: v for k, v in VARIANTS[variant].items() if k != "compile"}).eval()
    images = torch.rand(3, 1, 32, 32)
    outputs = layer_outputs(model, images)
    assert list(outputs) == ["c1", "s2", "c3", "s4", "c5", "f6", "output"]
    for name, shape in SHAPES.items():
        assert outputs[name].shape == (3, *shape), name
    with torch.no_grad():
        assert torch.allclose(outputs["output"], model(images), atol=1e-5)
        # Each layer is the next one's input: S2 of C1's answer is S2's answer.
        assert torch.allclose(model.s2(outputs["c1"]), outputs["s2"], atol=1e-6)


@pytest.mark.parametrize("variant", ["classic", "modern"])
def test_one_image_inspected(variant: str) -> None:
    torch.manual_seed(1)
    model = LeNet5(**VARIANTS[variant]).eval()
    image = torch.rand(1, 1, 32, 32)
    seen = inspect_image(model, image)
    scores = model(image)
    assert seen.digit == int(model.predict(scores)[0])
    assert torch.allclose(seen.probabilities, model.probabilities(scores)[0], atol=1e-6)
    answer = seen.as_json()
    assert answer["layers"]["c1"].__len__() == 6 and len(answer["layers"]["c1"][0]) == 28
    if model.config["head"] == "rbf":
        assert torch.allclose(seen.penalties, -scores[0], atol=1e-4)
        assert torch.equal(seen.code, model.output.codes[seen.digit])
        assert len(answer["rbf_penalties"]) == 10 and len(answer["rbf_code"]) == 84
    else:
        assert seen.penalties is None and "rbf_penalties" not in answer


def test_kernels_and_the_trained_connection_table() -> None:
    model = LeNet5(c3="paper")
    assert torch.equal(c1_kernels(model), model.c1.conv.weight[:, 0])
    table = torch.tensor([[c == "X" for c in row] for row in PAPER_TABLE.split()])
    assert torch.equal(c3_table(model), table)
    norms = c3_connections(model)
    assert norms.shape == (6, 16) and (norms[~table] == 0).all() and (norms[table] > 0).all()
    expected = model.c3.conv.weight[3, 2].norm()  # C3 map 4 reads S2 map 3 in Table I
    assert torch.isclose(norms[2, 3], expected)
    full = LeNet5(c3="full")
    assert c3_table(full).all() and (c3_connections(full) > 0).all()
