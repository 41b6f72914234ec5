"""Every study table composes into the jobs it promises (Hydra compose only, nothing trains),
and every reproduction recipe is the set-up the paper describes."""

import itertools
from pathlib import Path

import pytest
from hydra import compose, initialize_config_dir
from omegaconf import OmegaConf

from lenet5.config import CONFIG_DIR

STUDIES = sorted(path.stem for path in (Path(CONFIG_DIR) / "study").glob("*.yaml"))
AXES = ("activation", "pooling", "c3", "head", "init", "normalization")


def compose_train(overrides: list[str], hydra: bool = False):
    with initialize_config_dir(config_dir=CONFIG_DIR, version_base="1.3"):
        return compose("train", overrides=overrides, return_hydra_config=hydra)


def sweep_params(study: str) -> dict[str, list[str]]:
    params = compose_train([f"study={study}"], hydra=True).hydra.sweeper.params
    return {key: str(value).split(",") for key, value in params.items()}


def changed(cfg, reference) -> set[str]:
    """The settings a variant changes: model axes, data.augment, the optimizer."""
    keys = {f"model.{axis}": (cfg.model[axis], reference.model[axis]) for axis in AXES}
    keys["data.augment"] = (cfg.data.augment, reference.data.augment)
    keys["optimizer"] = (cfg.optimizer._target_, reference.optimizer._target_)
    return {key for key, (mine, theirs) in keys.items() if mine != theirs}


def test_there_are_the_promised_tables() -> None:
    assert set(STUDIES) >= {"classic", "modern", "activation_head", "activation_init"}


@pytest.mark.parametrize("study", STUDIES)
def test_every_table_has_three_seeds_two_rates_and_a_fixed_budget(study: str) -> None:
    params = sweep_params(study)
    assert params["seed"] == ["0", "1", "2"]
    assert len(params["lr_scale"]) >= 2
    cfg = compose_train([f"study={study}"], hydra=True)
    assert cfg.trainer.max_epochs >= 3
    assert cfg.data.val_size == 5000  # rates are picked on the hold-out
    assert cfg.hydra.sweep.dir == f"outputs/study/{study}"


@pytest.mark.parametrize("study", ["classic", "modern"])
def test_one_axis_tables_change_exactly_one_setting_per_row(study: str) -> None:
    variants = sweep_params(study)["variant"]
    assert variants[0] == "baseline" and len(variants) == len(set(variants)) >= 12
    reference = compose_train([f"study={study}", "variant=baseline"])
    assert reference.model.activation == ("scaled_tanh" if study == "classic" else "relu")
    seen = set()
    for variant in variants[1:]:
        cfg = compose_train([f"study={study}", f"variant={variant}"])
        assert len(changed(cfg, reference)) == 1, variant
        seen |= changed(cfg, reference)
    assert seen == {*(f"model.{axis}" for axis in AXES), "data.augment", "optimizer"}


@pytest.mark.parametrize("study", ["activation_head", "activation_init"])
def test_interaction_tables_cross_two_axes(study: str) -> None:
    params = sweep_params(study)
    axes = [key for key in params if key.startswith("model/")]
    assert len(axes) == 2
    for values in itertools.product(*(params[axis] for axis in axes)):
        cfg = compose_train([f"study={study}", *(f"{a}={v}" for a, v in zip(axes, values, strict=True))])
        assert [cfg.model[a.split("/")[1]] for a in axes] == list(values)


@pytest.mark.parametrize("experiment", ["paper", "paper_distortions", "paper_sdlm", "classic_best"])
def test_reproduction_recipes_train_on_everything_and_test_the_last_pass(experiment: str) -> None:
    cfg = compose_train([f"experiment={experiment}"])
    assert cfg.data.val_size == 0  # all 60,000 training images, as the paper
    assert cfg.callbacks.model_checkpoint is None  # no checkpoint picked by a score
    model = OmegaConf.to_container(cfg.model)
    # paper_sdlm starts from LeCun's lab initialisation, a departure from the paper's text
    init = "eblearn" if experiment == "paper_sdlm" else "paper"
    assert {axis: model[axis] for axis in AXES} == {
        "activation": "scaled_tanh", "pooling": "trainable", "c3": "paper",
        "head": "rbf", "init": init, "normalization": "paper",
    }  # fmt: skip
    assert cfg.trainer.max_epochs >= 20
    assert cfg.data.augment == ("none" if experiment in ("paper", "paper_sdlm") else "affine")
    if experiment == "paper_sdlm":
        assert cfg.optimizer._target_ == "lenet5.training.sdlm.SDLM"
        assert cfg.scheduler._target_ == "lenet5.training.schedules.paper"
        assert (cfg.optimizer.mu, cfg.optimizer.samples) == (0.02, 500)
        # the paper's online update at the paper's first rate
        assert (cfg.optimizer.online, cfg.optimizer.lr) == (True, 0.0005)
