#!/usr/bin/env python3
"""Train the example churn classifier: a small PyTorch MLP on the numeric customer features.

    python train.py --data data/train.parquet --params params.yaml

Runs on CUDA when there is a GPU, on CPU otherwise, and under torchrun with one process per GPU
(DistributedDataParallel; gloo on CPU, nccl on GPU). Logs into the MLflow run that ml-cicd's
train-gpu stage created (MLFLOW_RUN_ID), and rank 0 logs the model with an input example.
The model standardises its inputs itself, so it takes the raw feature columns.
"""

from __future__ import annotations

import argparse
import contextlib
import os

import mlflow
import numpy as np
import pandas as pd
import torch
import torch.distributed as dist
import yaml
from torch import nn

FEATURES = ["age", "income", "tenure_months", "monthly_spend", "support_tickets"]
TARGET = "churned"


class ChurnNet(nn.Module):
    def __init__(self, mean: np.ndarray, std: np.ndarray, hidden: int) -> None:
        super().__init__()
        self.register_buffer("mean", torch.tensor(mean, dtype=torch.float32))
        self.register_buffer("std", torch.tensor(std, dtype=torch.float32))
        self.net = nn.Sequential(
            nn.Linear(len(mean), hidden),
            nn.ReLU(),
            nn.Linear(hidden, hidden),
            nn.ReLU(),
            nn.Linear(hidden, 1),
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = torch.where(
            torch.isnan(x), self.mean, x
        )  # a missing value counts as the training mean, not NaN out
        return torch.sigmoid(self.net((x - self.mean) / self.std))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--data", default="data/train.parquet")
    parser.add_argument("--params", default="params.yaml")
    args = parser.parse_args()
    params = yaml.safe_load(open(args.params, encoding="utf-8"))

    distributed = int(os.environ.get("WORLD_SIZE", "1")) > 1
    device = (
        torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        if torch.cuda.is_available()
        else torch.device("cpu")
    )
    if distributed:
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    rank = dist.get_rank() if distributed else 0
    torch.manual_seed(params["seed"])

    frame = pd.read_parquet(args.data, columns=[*FEATURES, TARGET])
    x = frame[FEATURES].to_numpy(dtype=np.float32)
    y = frame[TARGET].to_numpy(dtype=np.float32)
    rng = np.random.default_rng(params["seed"])
    order = rng.permutation(len(frame))
    cut = int(len(frame) * 0.8)
    train_idx, test_idx = order[:cut], order[cut:]

    model = ChurnNet(x[train_idx].mean(axis=0), x[train_idx].std(axis=0) + 1e-6, params["hidden"]).to(device)
    trained = nn.parallel.DistributedDataParallel(model) if distributed else model
    dataset = torch.utils.data.TensorDataset(torch.from_numpy(x[train_idx]), torch.from_numpy(y[train_idx]))
    sampler = torch.utils.data.distributed.DistributedSampler(dataset) if distributed else None
    loader = torch.utils.data.DataLoader(
        dataset, batch_size=params["batch_size"], shuffle=sampler is None, sampler=sampler
    )
    optimizer = torch.optim.Adam(trained.parameters(), lr=params["lr"])

    with mlflow.start_run() if rank == 0 else contextlib.nullcontext():  # joins the run train-gpu created
        for epoch in range(params["epochs"]):
            if sampler is not None:
                sampler.set_epoch(epoch)
            total = 0.0
            for xb, yb in loader:
                optimizer.zero_grad()
                loss = nn.functional.binary_cross_entropy(trained(xb.to(device)).squeeze(1), yb.to(device))
                loss.backward()
                optimizer.step()
                total += loss.item() * len(xb)
            if rank == 0:
                mlflow.log_metric("train_loss", total / len(sampler or dataset), step=epoch)
                print(f"epoch {epoch}: loss {total / len(sampler or dataset):.4f}", flush=True)
        if rank == 0:
            model.eval()
            with torch.no_grad():
                prob = model(torch.from_numpy(x[test_idx]).to(device)).squeeze(1).cpu().numpy()
            predicted = prob >= 0.5
            truth = y[test_idx] == 1
            tp = float((predicted & truth).sum())
            precision = tp / max(predicted.sum(), 1)
            recall = tp / max(truth.sum(), 1)
            mlflow.log_metrics(
                {
                    "test_accuracy": float((predicted == truth).mean()),
                    "test_f1": 2 * precision * recall / max(precision + recall, 1e-9),
                }
            )
            mlflow.pytorch.log_model(model.cpu(), name="model", input_example=x[test_idx][:5])
    if distributed:
        dist.barrier()
        # DDP's reducer holds the process group: free it first, or gloo's threads can abort the
        # interpreter at exit ("terminate called without an active exception").
        del trained
        dist.destroy_process_group()


if __name__ == "__main__":
    main()
