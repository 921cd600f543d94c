"""Training, evaluation and export of expression models; never imported at run time."""
