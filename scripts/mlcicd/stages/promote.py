"""promote: placeholder, replaced by the real stage."""

from mlcicd.config import Option, Stage, text

STAGE = Stage("promote", "register a model version and move a registry alias", (Option("model-name", text, "", "registered model name"),), lambda v: 2)
HISTORY = Stage("history", "show a model's promotion history", (Option("model-name", text, "", "registered model name"),), lambda v: 2, has_config_section=False, positional="model-name")
