"""Multi-modal Input Aligner: the instruction reads the image and the visual prompts before the LLM does.

What is known: a third-party summary of MIMO's paper describes its aligner as
extracting instruction-guided information from fused visual and text features.
MIMO's code is not released and its method section is only partly public, so
the aligner's internals are unknown. This one is the course's own design
[inferred]: a gated cross-attention block (as in Flamingo's gated xattn layers):

    q = question token embeddings,   k = v = image tokens + <region> tokens
    question tokens += tanh(gate) * CrossAttention(LayerNorm(q), LayerNorm(kv))

Why this design:
- Guided by the instruction: each question token gathers the visual evidence
  that *it* asks about ("left kidney" pulls the kidney's patches, "this"
  pulls the marked region), so the LLM receives question tokens that already
  carry the relevant pixels, not only raw patches to search through.
- Cheap and width-independent: attention runs in `dim` (256 for nano, 1024
  for paper), not in the LLM width, and only over the visual tokens.
- Safe to add to a pretrained LLM: the gate starts at 0, so at initialisation
  the LLM input is exactly the text embeddings; training opens the gate as
  far as it helps. Answer tokens are untouched, so generation sees the same
  inputs as training.
- Switchable: `MIMOConfig.use_aligner=False` removes it for the ablation.
"""

import torch
import torch.nn.functional as F
from torch import nn


class InputAligner(nn.Module):
    """Gated cross-attention from instruction tokens to visual (image + prompt) tokens."""

    def __init__(self, llm_dim: int, dim: int = 256, num_heads: int = 4) -> None:
        super().__init__()
        self.num_heads = num_heads
        self.norm_q = nn.LayerNorm(llm_dim)
        self.norm_kv = nn.LayerNorm(llm_dim)
        self.q_proj = nn.Linear(llm_dim, dim)
        self.k_proj = nn.Linear(llm_dim, dim)
        self.v_proj = nn.Linear(llm_dim, dim)
        self.out_proj = nn.Linear(dim, llm_dim)
        self.gate = nn.Parameter(torch.zeros(1))

    def project(self, embeds: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """embeds (B, L, H) -> queries, keys and values (B, heads, L, d): queries from the normalised tokens,
        keys and values from the same tokens normalised apart."""
        b, L, _ = embeds.shape

        def heads(x: torch.Tensor) -> torch.Tensor:
            return x.view(b, L, self.num_heads, -1).transpose(1, 2)  # (B, h, L, d)

        kv = self.norm_kv(embeds)
        return heads(self.q_proj(self.norm_q(embeds))), heads(self.k_proj(kv)), heads(self.v_proj(kv))

    def attention(self, embeds: torch.Tensor, visual_mask: torch.Tensor) -> torch.Tensor:
        """The attention weights `forward` applies, (B, heads, L, L): each token over the visual tokens only
        (softmax of the scaled dot products, as `scaled_dot_product_attention` computes them)."""
        q, k, _ = self.project(embeds)
        scores = q @ k.transpose(-1, -2) / q.shape[-1] ** 0.5  # (B, h, L, L)
        return scores.masked_fill(~visual_mask[:, None, None, :], float("-inf")).softmax(dim=-1)

    def forward(
        self, embeds: torch.Tensor, visual_mask: torch.Tensor, instruction_mask: torch.Tensor
    ) -> torch.Tensor:
        """embeds (B, L, H); visual_mask, instruction_mask (B, L) bool -> embeds with the instruction updated."""
        b, L, _ = embeds.shape
        q, k, v = self.project(embeds)
        attn_mask = visual_mask[:, None, None, :]  # (B, 1, 1, L): attend to visual tokens only
        out = F.scaled_dot_product_attention(q, k, v, attn_mask=attn_mask)  # (B, h, L, d)
        out = self.out_proj(out.transpose(1, 2).reshape(b, L, -1))  # (B, L, H)
        return embeds + torch.tanh(self.gate) * out * instruction_mask[..., None].to(out.dtype)
