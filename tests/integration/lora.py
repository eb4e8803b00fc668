"""Small random PEFT LoRA adapters for the reference model, for tests that need adapters before training."""

from __future__ import annotations

from pathlib import Path


def make_random_lora(base_model: Path, out_dir: Path, *, seed: int, r: int = 8) -> Path:
    """Save a LoRA adapter (safetensors + adapter_config.json) with random, non-zero A and B matrices."""
    import torch
    from peft import LoraConfig, get_peft_model
    from transformers import AutoModelForCausalLM

    torch.manual_seed(seed)
    model = AutoModelForCausalLM.from_pretrained(base_model)
    config = LoraConfig(r=r, lora_alpha=2 * r, target_modules=["q_proj", "v_proj", "o_proj"], init_lora_weights=False)
    peft_model = get_peft_model(model, config)
    with torch.no_grad():
        for name, param in peft_model.named_parameters():
            if "lora_B" in name:
                param.mul_(0).add_(torch.randn_like(param) * 0.5)
    peft_model.save_pretrained(out_dir, safe_serialization=True)
    return out_dir
