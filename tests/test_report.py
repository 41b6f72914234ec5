"""The ablation report on hand-made sweep folders: axes found from the overrides, seeds averaged,
failed and unfinished jobs listed but never averaged in, one-line errors for bad input."""

import csv
import json
from pathlib import Path

import pytest

from lenet5.results.report import main, write_report
from lenet5.results.study_table import grid_edge


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
    assert "| avg | 2 | 4.00 ± 1.41 | baseline | 96.00 ± 1.41 | – | 15 | – | 0 |" in text
    # seed 0 is the only seed both rows finished: a difference without an interval
    assert "| max | 1 | 1.00 | -2.00 | 99.00 | – | 10 | 1 diverged | 1 |" in text
    assert "- `3` (model/pooling=max seed=1): FloatingPointError: training loss is nan" in text
    assert "## Unfinished jobs\n\n- `4` (model/pooling=max seed=2)" in text
    assert paths["png"].read_bytes()[:4] == b"\x89PNG"


def test_writes_elsewhere_with_out(sweep: Path, tmp_path: Path, capsys):
    assert main([str(sweep), "--out", str(tmp_path / "elsewhere")]) == 0
    written = {p.name for p in (tmp_path / "elsewhere").iterdir()}
    assert written == {"report.md", "report.csv", "jobs.csv", "report.png", "curves.png"}
    assert "| avg | 2 |" in capsys.readouterr().out


@pytest.mark.parametrize("folder", ["missing", "empty"])
def test_bad_folder_is_a_one_line_error(tmp_path: Path, folder: str, capsys):
    (tmp_path / "empty").mkdir()
    assert main([str(tmp_path / folder)]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and err.count("\n") == 1


def study(tmp_path: Path, results: dict[tuple[str, str, int], tuple[float, float]]) -> Path:
    """A study sweep: (variant, lr_scale, seed) -> (val acc, test acc)."""
    sweep = tmp_path / "study"
    for num, ((variant, scale, seed), (val, test)) in enumerate(results.items()):
        overrides = [f"variant={variant}", f"lr_scale={scale}", f"seed={seed}"]
        make_job(sweep, num, overrides, {"val/acc": val, "test/acc": test, "test/error": 1 - test})
    return sweep


def test_learning_rate_is_picked_on_validation_and_the_difference_is_paired(tmp_path: Path):
    baseline_errors, variant_errors = (0.010, 0.012, 0.011), (0.013, 0.016, 0.012)
    results = {}
    for seed in range(3):
        # The baseline's x2 rate is better on validation but worse on test: x2 must be chosen.
        results["baseline", "0.5", seed] = (0.980, 1 - baseline_errors[seed] + 0.005)
        results["baseline", "2", seed] = (0.990, 1 - baseline_errors[seed])
        results["pooling_max", "0.5", seed] = (0.985, 1 - variant_errors[seed])
        results["pooling_max", "2", seed] = (0.970, 0.999)
    paths = write_report(study(tmp_path, results))
    with paths["csv"].open() as handle:
        baseline, variant = list(csv.DictReader(handle))
    assert (baseline["variant"], baseline["lr_scale"], variant["lr_scale"]) == ("baseline", "2", "0.5")
    assert float(baseline["test_error_mean"]) == pytest.approx(0.011)
    diffs = [v - b for v, b in zip(variant_errors, baseline_errors, strict=True)]
    assert float(variant["diff_error_mean"]) == pytest.approx(sum(diffs) / 3)
    sd = (sum((d - sum(diffs) / 3) ** 2 for d in diffs) / 2) ** 0.5
    assert float(variant["diff_error_ci95"]) == pytest.approx(4.303 * sd / 3**0.5, rel=1e-3)
    text = paths["md"].read_text()
    assert "- lr_scale: per row, the value with the best mean val/acc" in text
    assert "| pooling_max | 0.5 (smallest) | 3 | 1.37 ± 0.21 | +0.27 [-0.11, +0.65] |" in text
    with paths["jobs"].open() as handle:
        jobs = list(csv.DictReader(handle))
    assert len(jobs) == 12 and sum(job["chosen"] == "True" for job in jobs) == 6


def test_a_rate_chosen_at_the_edge_of_the_grid_is_flagged(tmp_path: Path):
    """Three candidates: the middle one is a rate found; the largest may not be the best."""
    results = {}
    for seed in range(2):
        for scale, val in (("0.5", 0.970), ("1", 0.990), ("2", 0.980)):
            results["baseline", scale, seed] = (val, val)
        for scale, val in (("0.5", 0.960), ("1", 0.970), ("2", 0.985)):
            results["pooling_max", scale, seed] = (val, val)
    paths = write_report(study(tmp_path, results))
    with paths["csv"].open() as handle:
        baseline, variant = list(csv.DictReader(handle))
    assert (baseline["lr_scale"], baseline["tuned_at_edge"]) == ("1", "")
    assert (variant["lr_scale"], variant["tuned_at_edge"]) == ("2", "largest")
    text = paths["md"].read_text()
    assert "| baseline | 1 | 2 |" in text
    assert "| pooling_max | 2 (largest) | 2 |" in text
    assert "## lr_scale at the edge of its candidates" in text
    assert "1 of 2 rows chose the largest lr_scale tried" in text
    assert "- pooling_max: lr_scale=2 (largest)" in text


@pytest.mark.parametrize(
    "chosen, candidates, edge",
    [
        ("2", ["0.5", "1", "2"], "largest"),
        ("0.5", ["1", "0.5", "2"], "smallest"),
        ("1", ["0.5", "1", "2"], ""),
        ("2", ["2"], ""),  # one candidate: nothing was chosen
        ("adam", ["sgd", "adam"], ""),  # names have no order
    ],
)
def test_grid_edge(chosen: str, candidates: list[str], edge: str) -> None:
    assert grid_edge(chosen, candidates) == edge


def test_runs_at_chance_are_flagged_listed_and_not_averaged(tmp_path: Path):
    results = {("baseline", "1", seed): (0.99, 0.99) for seed in range(3)}
    results |= {("activation_sigmoid", "1", 0): (0.11, 0.1135), ("activation_sigmoid", "1", 1): (0.98, 0.98)}
    paths = write_report(study(tmp_path, results))
    text = paths["md"].read_text()
    assert "| activation_sigmoid | 1 | 2.00 | +1.00 | 98.00 | 98.00 | – | 1 chance | 0 |" in text
    assert "## Flagged runs (not averaged)" in text
    assert "(variant=activation_sigmoid seed=0): chance, test acc 11.35%" in text


def test_baseline_can_be_named(tmp_path: Path, capsys):
    results = {(v, "1", seed): (0.99, acc) for v, acc in (("a", 0.99), ("b", 0.98)) for seed in range(2)}
    sweep = study(tmp_path, results)
    assert main([str(sweep), "--baseline", "variant=b"]) == 0
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("| ")]
    assert table[1].startswith("| b | 2 | 2.00 ± 0.00 | baseline |")
    assert table[2].startswith("| a | 2 | 1.00 ± 0.00 | -1.00 [-1.00, -1.00] |")
    assert main([str(sweep), "--baseline", "model/head=rbf"]) == 2
    assert "model/head is not swept" in capsys.readouterr().err
