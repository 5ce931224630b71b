"""Reproduction pipeline for ELCRec (NeurIPS 2024): data, models, training, statistics, report."""

__version__ = "0.1.0"


class ElcrecError(Exception):
    """An error the user can cause and fix (bad input, bad config, checksum mismatch).

    The command line prints its message alone, without a traceback, so the message must name
    the file, line or key, what was expected and what was found.
    """


# where a run (dataset, model, variant, seed) lives: the one place the layout is spelled
RUN_DIR = "results/runs/{dataset}/{model}/{variant}/seed{seed}"
# where a pre-training (dataset, model, pretraining) lives; fine-tuning runs that name it start from it
PRETRAIN_DIR = "results/pretrain/{dataset}/{model}/{pretraining}"
