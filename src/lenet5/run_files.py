"""Every file name a run folder, and a sweep folder, holds: each written here once, and every
module that writes or reads one (the run, the report, a resume, a sweep's summary, the configs
through ``${run_file:NAME}``) takes it from here.

Paths inside a folder are given with ``/``: ``run_dir / LAST_CHECKPOINT`` is right on every
system. Importing this module costs nothing (config.py registers the configs' resolver with it).
"""

# Written by the run (lenet5.run; lenet5.evaluate writes METRICS and the
# pictures into its own folder).
CONFIG = "config.yaml"  # the resolved config the run trained with
METRICS = "metrics.json"  # test metrics and timings: the run finished
HISTORY = "history.csv"  # per-epoch train/val loss and accuracy
CURVES = "curves.png"  # drawn from HISTORY
CONFUSION = "confusion_matrix.png"
MISCLASSIFIED = "misclassified.png"
ERROR_CURVE = "error_curve.csv"  # experiment=paper*: training and test error after every pass
# debug=profiler: Lightning's profiler writes <stage>-profile.txt (fit-profile.txt, ...).
PROFILE = "profile"

# Checkpoints (conf/callbacks/default.yaml names them; a seeds=K run keeps one folder per seed).
CHECKPOINTS = "checkpoints"
CHECKPOINT_SUFFIX = ".ckpt"
LAST = "last"  # ModelCheckpoint's filename, which adds CHECKPOINT_SUFFIX
LAST_FILE = f"{LAST}{CHECKPOINT_SUFFIX}"  # in CHECKPOINTS, or in a seed's folder
LAST_CHECKPOINT = f"{CHECKPOINTS}/{LAST_FILE}"


def seed_checkpoints(seed: int) -> str:
    """The folder of one seed's checkpoints in a ``seeds=K`` run."""
    return f"{CHECKPOINTS}/seed{seed}"


# Written when a job does not finish (lenet5.sweep).
FAILURE = "failure.json"  # the error, its traceback, the overrides and the config
INTERRUPTED = "interrupted.json"  # the signal, epoch, step, checkpoint and resume command

# Held by the one process training in a run folder (lenet5.training.run_folder).
LOCK = ".lenet5.lock"

# Loggers' folders and the files of theirs that lenet5 reads or keeps.
CSV_LOGS = "csv"  # conf/logger/csv.yaml's name
CSV_METRICS = "metrics.csv"  # Lightning's CSVLogger's file, inside its log folder
WANDB = "wandb"
WANDB_RUN_ID = f"{WANDB}/run_id"  # the run folder's W&B id, kept across resumes

# Hydra's own folder and the files of it that lenet5 reads.
HYDRA = ".hydra"
HYDRA_CONFIG = f"{HYDRA}/config.yaml"
HYDRA_OVERRIDES = f"{HYDRA}/overrides.yaml"
SWEEP_FILE = "multirun.yaml"  # Hydra's record of a multirun, in the sweep folder

# A resume's records (lenet5.training.resume), numbered 1, 2, ... in the order they ran.
RESUME_RECORDS = "resume-*.yaml"


def resume_record(number: int) -> str:
    """The resume's overrides and the settings it changed."""
    return f"resume-{number}.yaml"


def resume_hydra(number: int) -> str:
    """The resume's own Hydra files, where the first run's stay in HYDRA."""
    return f"{HYDRA}/resume-{number}"


# A sweep folder's report (lenet5.report), beside the job folders: the summary table, its
# rows as CSV, one line per job, the test errors' figure and the learning curves.
REPORT = {
    "md": "report.md",
    "csv": "report.csv",
    "jobs": "jobs.csv",
    "png": "report.png",
    "curves": "curves.png",
}
