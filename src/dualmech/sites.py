"""Names of the sites where activations are read and edited, in depth order (no torch: table and figure code,
and the probes, use them too).

  `vision_input`          input of the vision encoder's first block (patch + position embeddings);
  `vision.{l}`            output of vision-encoder block l;
  `lm_input`              the LM input (= layer-0 input; post-projector visual tokens at the image positions,
                          the paper's "Embed");
  `resid_post.{l}`        output of LM decoder layer l.
"""
from __future__ import annotations

VISION_INPUT = "vision_input"
LM_INPUT = "lm_input"


def vision_site(layer: int) -> str:
    return f"vision.{layer}"


def resid_post(layer: int) -> str:
    return f"resid_post.{layer}"


def all_sites(n_layers: int) -> list[str]:
    """Embed followed by every layer output: the x-axis of every patching figure."""
    return [LM_INPUT] + [resid_post(layer) for layer in range(n_layers)]


def site_label(site: str) -> str:
    return "Embed" if site == LM_INPUT else site.split(".")[1]


def site_order(n_vision: int, n_lm: int) -> list[str]:
    """Every site of a model, shallow to deep (the x-axis of depth curves)."""
    return [VISION_INPUT] + [vision_site(i) for i in range(n_vision)] + all_sites(n_lm)


def is_vision(site: str) -> bool:
    return site == VISION_INPUT or site.startswith("vision.")


def depth_key(site: str) -> tuple:
    """Sort key: vision sites, then the LM input, then the LM layers, each by index."""
    if site == VISION_INPUT:
        return (0, -1)
    kind, _, idx = site.partition(".")
    return ({"vision": 0, LM_INPUT: 1, "resid_post": 2}[kind], int(idx) if idx else -1)
