"""Fine-tuning a registered model on new data (the retraining pipeline's training step)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from apparel.config import Config
from apparel.data.dataset import PKSampler, normalize
from apparel.data.manifest import label_values
from apparel.losses import EmbeddingRegressionLoss, TripletMarginLoss
from apparel.miners import build_miner
from apparel.models.attributes import ApparelNet
from apparel.train.attributes import encode_targets, loss_for
from apparel.train.loop import augment, embed


def finetune(model: ApparelNet, frame: pd.DataFrame, images: torch.Tensor, config: Config, log=print) -> ApparelNet:
    """Every head and the trunk, ``steps_per_epoch × epochs`` P×K steps at ``train.finetune_lr``."""
    train = config.train
    labelled = pd.notna(label_values(frame, config.data.label))
    codes = torch.from_numpy(np.unique(label_values(frame, config.data.label)[labelled].astype(str),
                                       return_inverse=True)[1])
    rows = torch.from_numpy(np.flatnonzero(labelled))
    specs = [s for s in model.spec.attributes if s.name in frame.columns]
    targets = encode_targets(frame, specs)
    anchor = torch.from_numpy(embed(model.base, images))
    triplet = TripletMarginLoss(train.margin, build_miner(train.miner, train.margin))
    losses, anchor_loss = {s.name: loss_for(s) for s in specs}, EmbeddingRegressionLoss()
    optimizer = torch.optim.AdamW(model.parameters(), lr=train.finetune_lr, weight_decay=train.weight_decay)
    sampler = PKSampler(codes.numpy(), train.batch_p, train.batch_k, seed=train.seed,
                        batches=train.steps_per_epoch * train.epochs)
    device = next(model.parameters()).device  # the stage put the model on its pod's GPU (or the CPU)
    model.train()
    for step, batch in enumerate(sampler):
        index = rows[batch]
        embedding, logits = model.forward_logits(normalize(augment(images[index].to(device))))
        pull = anchor_loss(embedding, anchor[index].to(device))
        loss = triplet(embedding, codes[batch].to(device)) + train.finetune_embedding_weight * pull
        loss = loss + sum(losses[s.name](logits[s.name], targets[s.name][index].to(device)) for s in specs)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
        if (step + 1) % train.steps_per_epoch == 0:
            log(f"[finetune] step {step + 1}/{len(sampler)} loss={loss.item():.4f}")
    return model.eval()
