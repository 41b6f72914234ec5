"""The ablation report on hand-made sweep folders: axes found from the overrides, seeds averaged,
failed and unfinished jobs listed but never averaged in, one-line errors for bad input."""

import csv
import json
from pathlib import Path

import pytest

from lenet5.results.report import main, write_report


def make_job(sweep: Path, num: int, overrides: list[str], metrics: dict | None = None, failure: str = ""):
    job = sweep / str(num)
    (job / ".hydra").mkdir(parents=True)
    (job / ".hydra" / "config.yaml").write_text("seed: 0\n")
    (job / ".hydra" / "overrides.yaml").write_text("".join(f"- {o}\n" for o in overrides))
    if metrics is not None:
        (job / "metrics.json").write_text(json.dumps({"epochs": 2, **metrics}))
    if failure:
        payload = {"error": "FloatingPointError", "message": failure, "overrides": overrides}
        (job / "failure.json").write_text(json.dumps(payload))


@pytest.fixture
def sweep(tmp_path: Path) -> Path:
    """pooling avg/max x seed 0/1 (model=classic fixed): max/1 failed, a fifth job unfinished."""
    sweep = tmp_path / "sweep"
    accuracies = {("avg", 0): 0.97, ("avg", 1): 0.95, ("max", 0): 0.99}
    num = 0
    for pooling in ("avg", "max"):
        for seed in (0, 1):
            overrides = ["model=classic", f"model/pooling={pooling}", f"seed={seed}"]
            acc = accuracies.get((pooling, seed))
            metrics = (
                {"test/acc": acc, "test/error": 1 - acc, "train_seconds": 10.0 * (seed + 1)} if acc else None
            )
            make_job(sweep, num, overrides, metrics, failure="" if acc else "training loss is nan")
            num += 1
    make_job(sweep, num, ["model=classic", "model/pooling=max", "seed=2"])
    return sweep


def test_groups_by_swept_axes_and_averages_seeds(sweep: Path):
    paths = write_report(sweep)
    with paths["csv"].open() as handle:
        rows = list(csv.DictReader(handle))
    assert [r["model/pooling"] for r in rows] == ["avg", "max"]
    avg, max_ = rows
    assert (avg["n"], avg["failed"], max_["n"], max_["failed"]) == ("2", "0", "1", "1")
    assert float(avg["test_acc_mean"]) == pytest.approx(0.96)
    assert float(avg["test_acc_std"]) == pytest.approx(0.0141421, rel=1e-4)
    assert float(avg["train_seconds_mean"]) == pytest.approx(15.0)
    assert float(max_["test_acc_mean"]) == pytest.approx(0.99)  # the failed seed is not averaged
    assert max_["test_acc_std"] == ""

    text = paths["md"].read_text()
    assert "- swept: model/pooling; seeds: 0, 1, 2" in text
    assert "- fixed: model=classic" in text
    assert "- jobs: 5 (3 finished, 1 failed, 1 unfinished)" in text
    assert "| avg | 2 | 96.00 ± 1.41 | 4.00 ± 1.41 | 15 | 0 |" in text
    assert "| max | 1 | 99.00 | 1.00 | 10 | 1 |" in text
    assert "- `3` (model/pooling=max seed=1): FloatingPointError: training loss is nan" in text
    assert "## Unfinished jobs\n\n- `4` (model/pooling=max seed=2)" in text
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"


def test_writes_elsewhere_with_out(sweep: Path, tmp_path: Path, capsys):
    assert main([str(sweep), "--out", str(tmp_path / "elsewhere")]) == 0
    assert {p.name for p in (tmp_path / "elsewhere").iterdir()} == {"report.md", "report.csv", "report.png"}
    assert "| avg | 2 |" in capsys.readouterr().out


@pytest.mark.parametrize("folder", ["missing", "empty"])
def test_bad_folder_is_a_one_line_error(tmp_path: Path, folder: str, capsys):
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1
