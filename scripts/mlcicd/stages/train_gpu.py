"""train-gpu: placeholder, replaced by the real stage."""

from mlcicd.config import Option, Stage, text

STAGE = Stage("train-gpu", "train a model inside a tracked MLflow run", (Option("command", text, "", "training command"),), lambda v: 2)
