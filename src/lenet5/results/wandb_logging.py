"""Weights & Biases for ``logger=wandb``: never a login prompt, one W&B run per training run
(resumes included: its id is kept in ``<run>/wandb/run_id``), a short name from the swept
values, the config once as flat dotted keys, everything (artifact staging too) inside the run
folder, and the test results as summary values, a confusion matrix, a per-class table and the
grid of misclassified digits.

Online logging that cannot work stops before training with one line: no API key (wandb would
ask for one on a terminal), a W&B server that does not answer within ``init_timeout`` seconds
(wandb waits 90 s, then raises), a W&B folder that cannot be written.

wandb is imported only when a run is actually logged, so other loggers pay nothing for it.
"""

import logging
import netrc
import os
import random
import string
import sys
import tempfile
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from lightning.pytorch.loggers import Logger, WandbLogger
from lightning.pytorch.utilities import rank_zero_only

from lenet5.atomic import write_whole
from lenet5.errors import UserError, first_line
from lenet5.results.plots import Outcome, per_class_accuracy
from lenet5.results.run_identity import (
    final_numbers,
    flat_params,
    job_identity,
    logs_this_checkpoint,
    run_tags,
)
from lenet5.results.run_identity import short_name as short_name  # tests import it from here
from lenet5.run_files import WANDB, WANDB_RUN_ID

log = logging.getLogger(__name__)


def has_credentials() -> bool:
    """An API key in the environment or in ~/.netrc (what ``wandb login`` writes)."""
    if os.environ.get("WANDB_API_KEY") or os.environ.get("WANDB_IDENTITY_TOKEN_FILE"):
        return True
    host = urlsplit(os.environ.get("WANDB_BASE_URL", "https://api.wandb.ai")).hostname
    try:
        return netrc.netrc(os.environ.get("NETRC")).authenticators(host) is not None
    except (OSError, netrc.NetrcParseError):
        return False


def choose_mode(mode: str | None) -> str | None:
    """The config's mode if given, else $WANDB_MODE (left for wandb to read), else online with
    credentials and offline without: wandb would otherwise stop and ask for a key."""
    if mode is not None or os.environ.get("WANDB_MODE"):
        return mode
    if has_credentials():
        return "online"
    log.info("wandb: no credentials (WANDB_API_KEY or `wandb login`), logging offline")
    return "offline"


NOT_ONLINE = ("offline", "dryrun", "disabled")
INIT_TIMEOUT = 30  # seconds for wandb.init to reach the server (wandb's own default: 90)
OFFLINE_ADVICE = "or use logger.wandb.mode=offline (upload later with `wandb sync`)"


def wandb_finds_key() -> bool:
    """Whether wandb itself finds credentials (WANDB_API_KEY, `wandb login`'s netrc, its settings
    file), asked so that it never prompts: wandb.init would ask on a terminal."""
    import wandb

    if os.environ.get("WANDB_MODE") in NOT_ONLINE:  # wandb.login declines to look when offline
        return has_credentials()
    try:
        return bool(wandb.login(prompt=False, verify=False))
    except TypeError:  # a wandb before login(prompt=...)
        return has_credentials()
    except wandb.Error as error:  # a malformed key, a key and an identity token both set
        raise UserError(f"W&B credentials: {first_line(error)}") from error


def writable_folder(folder: Path) -> None:
    """``folder`` made if needed and written to once, or one line naming it: wandb would
    otherwise log into a temporary folder of its own, or fail with a traceback."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise UserError(
            f"{folder}: W&B cannot write there ({error.strerror or error}); make it a writable "
            "folder, or use another logger (logger=csv)"
        ) from error


def checked_mode(asked: str | None, mode: str | None) -> str | None:
    """``mode`` (choose_mode's answer to the config's ``asked``), if it can work: online needs a
    key that wandb finds without asking. Online by choice (the config, $WANDB_MODE) without one
    is refused in one line; online by default (a key wandb does not read) becomes offline."""
    env = os.environ.get("WANDB_MODE")
    if (mode or env or "online") in NOT_ONLINE or wandb_finds_key():
        return mode
    if asked is None and not env:
        log.info("wandb: no API key that wandb reads, logging offline")
        return "offline"
    source = f"logger.wandb.mode={asked}" if asked else f"WANDB_MODE={env}"
    raise UserError(
        f"no W&B API key for online logging ({source}): run `wandb login` or set WANDB_API_KEY, "
        + OFFLINE_ADVICE
    )


def run_id(save_dir: str) -> str:
    """This run folder's W&B id, made on its first start and read back on every resume."""
    path = Path(save_dir) / WANDB_RUN_ID
    if path.is_file():
        return path.read_text().strip()
    identifier = "".join(random.SystemRandom().choices(string.ascii_lowercase + string.digits, k=8))
    if rank_zero_only.rank == 0:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_whole(path, identifier + "\n")
    return identifier


class RunLogger(WandbLogger):
    """WandbLogger with the mode passed to ``wandb.init`` rather than Lightning's ``offline``
    flag: that flag forbids ``log_model``, while an offline run can hold the checkpoint
    artifacts and ``wandb sync`` uploads them with the rest."""

    def __init__(
        self,
        mode: str | None = None,
        name: str | None = None,
        group: str | None = None,
        save_dir: str = ".",
        init_timeout: float = INIT_TIMEOUT,
        **kwargs: Any,
    ):
        import wandb

        default_name, default_group = job_identity()
        writable_folder(Path(save_dir) / WANDB)
        # wandb stages artifact files under $WANDB_DATA_DIR (the home folder by default) and
        # the offline run points at them there: kept in the run folder, `wandb sync` finds them.
        # Set before wandb is asked anything: it reads its environment once per process.
        os.environ["WANDB_DATA_DIR"] = str(Path(save_dir).resolve() / WANDB / "data")
        mode = checked_mode(mode, choose_mode(mode))
        if mode is not None:
            kwargs["mode"] = mode
        self.init_timeout = init_timeout
        kwargs.setdefault("settings", wandb.Settings(init_timeout=init_timeout))
        kwargs.setdefault("id", run_id(save_dir))
        kwargs.setdefault("resume", "allow")
        kwargs["tags"] = run_tags(kwargs.get("tags"))
        super().__init__(name=name or default_name, group=group or default_group, save_dir=save_dir, **kwargs)
        self.config_logged = False

    @property
    def experiment(self) -> Any:
        """The W&B run, started on first use (wandb.init); what stops it is one UserError line."""
        import wandb

        try:
            return super().experiment
        except wandb.errors.CommError as error:
            raise UserError(
                f"W&B online: the run did not start on the W&B server within init_timeout="
                f"{self.init_timeout} s ({first_line(error)}); check the network and the API key, "
                + OFFLINE_ADVICE
            ) from error
        except wandb.Error as error:
            raise UserError(f"W&B: {first_line(error)}; {OFFLINE_ADVICE}") from error
        except OSError as error:
            where = error.filename or Path(self.save_dir or ".") / "wandb"
            raise UserError(f"{where}: W&B cannot write there ({error.strerror or error})") from error

    @rank_zero_only
    def log_hyperparams(self, params: Any) -> None:
        """Flat keys (``model.activation``, ``optimizer.lr``) that the W&B UI can group runs by,
        once: the run's whole config comes first, and Lightning's later call (the module's and
        datamodule's hyperparameters, the same values under other keys) would only duplicate it."""
        if self.config_logged:
            return
        self.experiment.config.update(flat_params(params), allow_val_change=True)
        self.config_logged = True

    def after_save_checkpoint(self, checkpoint_callback: Any) -> None:
        """The ranked checkpoints only (run_identity.logs_this_checkpoint)."""
        if logs_this_checkpoint(checkpoint_callback):
            super().after_save_checkpoint(checkpoint_callback)


@rank_zero_only
def log_test_results(loggers: list[Logger], outcome: Outcome, names: list[str], grid: Path) -> None:
    """Test-time pictures for each W&B logger; ``grid`` is the misclassified.png already drawn."""
    runs = [logger.experiment for logger in loggers if isinstance(logger, WandbLogger)]
    if not runs:
        return
    import wandb

    table = wandb.Table(columns=["class", "label", "images", "correct", "accuracy"])
    for c, (images, correct, accuracy) in enumerate(per_class_accuracy(outcome, len(names))):
        table.add_data(c, names[c], images, correct, accuracy)
    for run in runs:
        run.log(
            {
                "test/confusion_matrix": wandb.plot.confusion_matrix(
                    y_true=outcome.labels.tolist(), preds=outcome.predictions.tolist(), class_names=names
                ),
                "test/per_class": table,
                "test/misclassified": wandb.Image(str(grid), caption="true / predicted (confidence)"),
            }
        )


@rank_zero_only
def summarize_wandb(loggers: list[Logger], summary: dict[str, Any]) -> None:
    """The run's final numbers (test metrics, best epoch, time) as the W&B run summary."""
    for logger in loggers:
        if isinstance(logger, WandbLogger):
            logger.experiment.summary.update(final_numbers(summary))


def finish_wandb(failed: bool) -> None:
    """End this job's run. Lightning's WandbLogger adopts any run still open in the process, so
    without this the next job of a sweep (or of a reused joblib worker) would log into it."""
    wandb = sys.modules.get("wandb")
    if wandb is not None and wandb.run is not None:
        try:
            wandb.finish(exit_code=1 if failed else 0)
        except Exception as error:  # noqa: BLE001 - which one depends on where the service died
            if not failed:
                raise
            # The run's own error stays the one raised. A scheduler's SIGTERM (a SLURM requeue)
            # reaches every process of the job, W&B's service too: the W&B run keeps what it
            # was sent, and the resume continues it.
            log.warning("wandb: could not finish the run (%s: %s)", type(error).__name__, first_line(error))
