"""`python -m vidm_rt.train` (and `torchrun ... -m vidm_rt.train`): the `vidm-rt train` command."""

from .cli import train_command

train_command()
