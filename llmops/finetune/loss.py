"""Loss on assistant tokens only, computing the vocabulary projection only where there is a target.

Why: with assistant-only labels most positions of a chat example (the system prompt, the user turn)
have no target, yet a stock causal-LM forward projects *every* position onto the vocabulary and keeps
those logits, their softmax and their gradient in memory. For the support-triage example ~85% of the
positions are prompt; for a real model with a 128k vocabulary the full logits of one batch take
gigabytes. :class:`TargetOnlyTrainer` asks the model for logits only at positions whose next token is
a target (``logits_to_keep``, supported by transformers' causal LMs) and takes the cross-entropy there.

The value is the same as the stock loss: the sum of target-token negative log-likelihoods divided by
the number of target tokens in the (accumulated) batch, exactly as ``Trainer`` normalises it.
"""

from __future__ import annotations

from typing import Any

import torch
from transformers import Trainer

IGNORE_INDEX = -100


def target_positions(labels: torch.Tensor) -> torch.Tensor:
    """Sequence positions ``t`` whose next token ``t+1`` is a target in at least one row of the batch."""
    return (labels[:, 1:] != IGNORE_INDEX).any(dim=0).nonzero().squeeze(-1)


class TargetOnlyTrainer(Trainer):
    """``Trainer`` whose loss projects onto the vocabulary only at target positions."""

    #: the loss comes back already scaled for gradient accumulation (see ``compute_loss``)
    loss_is_scaled_for_ga = True

    def compute_loss(
        self,
        model: torch.nn.Module,
        inputs: dict[str, Any],
        return_outputs: bool = False,
        num_items_in_batch: torch.Tensor | int | None = None,
    ) -> torch.Tensor | tuple[torch.Tensor, Any]:
        labels = inputs.pop("labels")
        keep = target_positions(labels)
        if keep.numel() == 0:  # a batch without targets: keep one position so the graph stays connected
            keep = torch.zeros(1, dtype=torch.long, device=labels.device)
        outputs = model(**inputs, logits_to_keep=keep)
        logits = outputs.logits.float()
        targets = labels[:, 1:][:, keep]
        total = torch.nn.functional.cross_entropy(
            logits.reshape(-1, logits.shape[-1]), targets.reshape(-1), ignore_index=IGNORE_INDEX, reduction="sum"
        )
        if num_items_in_batch is not None:  # targets of the whole accumulated batch (Trainer counts them)
            loss = total / torch.clamp(torch.as_tensor(num_items_in_batch, device=total.device), min=1)
            if self.args.average_tokens_across_devices:
                loss = loss * self.accelerator.num_processes  # gradients are averaged across ranks afterwards
        else:  # a per-batch mean, scaled for accumulation here so it is "already scaled" in every case
            loss = total / torch.clamp((targets != IGNORE_INDEX).sum(), min=1)
            if model.training:
                loss = loss / self.current_gradient_accumulation_steps
        return (loss, outputs) if return_outputs else loss
