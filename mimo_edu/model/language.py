"""Language model: Llama (Vicuna is a Llama) with optional LoRA adapters (peft) on the attention projections."""

from peft import LoraConfig, inject_adapter_in_model
from transformers import LlamaForCausalLM

from mimo_edu.model.config import LLMConfig


def build_llm(config: LLMConfig) -> LlamaForCausalLM:
    """A randomly initialised Llama with the sizes in `config`."""
    return LlamaForCausalLM(config.to_hf())


def add_lora(llm: LlamaForCausalLM, rank: int, alpha: int, dropout: float, targets: tuple[str, ...]) -> None:
    """Inject LoRA adapters into `llm` in place (module names gain `.base_layer` / `.lora_A.default`)."""
    config = LoraConfig(
        r=rank, lora_alpha=alpha, lora_dropout=dropout, target_modules=list(targets), bias="none"
    )
    inject_adapter_in_model(config, llm)


def checkpoint_layers(llm: LlamaForCausalLM) -> None:
    """Gradient (activation) checkpointing of every decoder layer: each keeps only its input for the backward
    and recomputes the rest there; non-reentrant, so inputs need not require grad. Active in training mode."""
    kwargs = {"use_reentrant": False}
    if hasattr(llm, "activation_checkpointing_enable"):  # its name from transformers 5.2x on
        llm.activation_checkpointing_enable(activation_checkpointing_kwargs=kwargs)
    else:
        llm.gradient_checkpointing_enable(gradient_checkpointing_kwargs=kwargs)


def is_lora_param(name: str) -> bool:
    return "lora_" in name


def is_embedding_param(name: str) -> bool:
    """Token embeddings and LM head: they train beside LoRA so the new special tokens can learn (as LISA)."""
    return name.startswith(("model.embed_tokens.", "lm_head."))
