"""The README's "Lightning without Hydra" block runs as written (on tiny data: the hold-out is
shrunk to fit the 600 training images of the fixture)."""

import re

import pytest
import torch

from support import REPO


def readme_block(heading: str) -> str:
    text = (REPO / "README.md").read_text()
    section = text.split(f"## {heading}\n", 1)[1].split("\n## ", 1)[0]
    (block,) = re.findall(r"```python\n(.*?)```", section, flags=re.S)
    return block


def test_lightning_without_hydra_example_runs(tiny_data, monkeypatch, tmp_path, capsys):
    code = readme_block("Lightning without Hydra")
    assert "hydra" not in code.replace("without Hydra", "").lower()
    monkeypatch.setenv("LENET5_DATA_DIR", str(tiny_data))
    monkeypatch.chdir(tmp_path)
    namespace: dict = {}
    exec(compile(code.replace("val_size=5000", "val_size=100"), "README.md", "exec"), namespace)
    probabilities = namespace["probabilities"]
    assert probabilities.shape == (200, 10)
    torch.testing.assert_close(probabilities.sum(dim=1), torch.ones(200))
    assert "test/acc" in capsys.readouterr().out
    # the scores are larger = more likely for the RBF head too
    module, images = namespace["module"], namespace["images"]
    scores = module(images)
    assert torch.equal(module.model.predict(scores), scores.argmax(dim=1))


@pytest.mark.parametrize("head", ["linear", "rbf"])
def test_predict_step_matches_forward_for_every_head(head):
    from lenet5 import LeNet5, LeNet5Module

    module = LeNet5Module(model=LeNet5(head=head)).eval()
    images = torch.rand(6, 1, 32, 32)
    with torch.no_grad():
        probabilities = module.predict_step((images, torch.zeros(6)), 0)
        assert torch.equal(probabilities.argmax(dim=1), module(images).argmax(dim=1))
        assert torch.equal(module.predict_step(images, 0), probabilities)
