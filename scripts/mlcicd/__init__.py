"""ml-cicd: CI/CD stages for machine-learning models, run from GitHub Actions or a terminal."""

__version__ = "1.0.0"
