"""Running on a SLURM cluster: a one-node cluster on this machine (local_slurm) for trying the
SLURM launcher, requeues and DDP through srun, and what the tests start."""
