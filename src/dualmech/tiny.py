"""Tiny random-weight checkpoints of every supported family, for tests and dry runs (no downloads).

Each checkpoint is a real Hugging Face model of the family's class, saved with `save_pretrained` next to
the processor files a real checkpoint ships (image-processor config, tokenizer, chat template,
processor_config.json), so `dualmech.models.load(ModelSpec(name=..., path=DIR))` treats it exactly like
the real model. The tokenizer is word-level over the project's stimulus vocabulary plus the family's
special tokens; the chat templates are simplified versions of the families' own.

    python -m dualmech.tiny --family qwen2vl --out DIR
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
import transformers as T
from tokenizers import Tokenizer, models, pre_tokenizers, processors

from . import organism
from .seeding import torch_seed

FAMILIES = ("llava", "pixtral", "qwen2vl", "gemma3", "qwen2_5vl", "mistral3", "internvl", "idefics3", "smolvlm",
            "paligemma", "llava_onevision", "qwen3vl")
D_VISION, D_LM, LAYERS, HEADS = 32, 64, 2, 2     # tiny widths: a forward takes a few ms on CPU
CLIP_MEAN, CLIP_STD = list(organism.CLIP_MEAN), list(organism.CLIP_STD)

# Simplified chat templates in each family's style (the image placeholder is the processor's).
QWEN_TEMPLATE = (
    "{% for m in messages %}<|im_start|>{{ m['role'] }}\n"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<|vision_start|><|image_pad|><|vision_end|>{% else %}{{ c['text'] }}{% endif %}"
    "{% endfor %}{% endif %}<|im_end|>\n{% endfor %}"
    "{% if add_generation_prompt %}<|im_start|>assistant\n{% endif %}")
GEMMA_TEMPLATE = (   # Gemma 3 folds the system prompt into the first user turn
    "{{ bos_token }}{% set ns = namespace(sys='') %}{% for m in messages %}"
    "{% set content = [{'type': 'text', 'text': m['content']}] if m['content'] is string else m['content'] %}"
    "{% if m['role'] == 'system' %}{% set ns.sys = content[0]['text'] + '\n\n' %}{% else %}"
    "<start_of_turn>{{ 'model' if m['role'] == 'assistant' else m['role'] }}\n{{ ns.sys }}{% set ns.sys = '' %}"
    "{% for c in content %}{% if c['type'] == 'image' %}<start_of_image>{% else %}{{ c['text'] | trim }}{% endif %}"
    "{% endfor %}<end_of_turn>\n{% endif %}{% endfor %}"
    "{% if add_generation_prompt %}<start_of_turn>model\n{% endif %}")
PIXTRAL_TEMPLATE = (  # Mistral [INST] format; the system prompt is prepended to the user turn
    "{{ bos_token }}{% set ns = namespace(sys='') %}{% for m in messages %}"
    "{% set content = [{'type': 'text', 'text': m['content']}] if m['content'] is string else m['content'] %}"
    "{% if m['role'] == 'system' %}{% set ns.sys = content[0]['text'] + '\n\n' %}"
    "{% elif m['role'] == 'user' %}[INST]{{ ns.sys }}{% set ns.sys = '' %}{% for c in content %}"
    "{% if c['type'] == 'image' %}[IMG]{% else %}{{ c['text'] }}{% endif %}{% endfor %}[/INST]"
    "{% else %}{{ content[0]['text'] }}{{ eos_token }}{% endif %}{% endfor %}")
MISTRAL3_TEMPLATE = (  # Mistral-Small-3.1: the system prompt in its own [SYSTEM_PROMPT] block
    "{{ bos_token }}{% for m in messages %}"
    "{% set content = [{'type': 'text', 'text': m['content']}] if m['content'] is string else m['content'] %}"
    "{% if m['role'] == 'system' %}[SYSTEM_PROMPT]{{ content[0]['text'] }}[/SYSTEM_PROMPT]"
    "{% elif m['role'] == 'user' %}[INST]{% for c in content %}"
    "{% if c['type'] == 'image' %}[IMG]{% else %}{{ c['text'] }}{% endif %}{% endfor %}[/INST]"
    "{% else %}{{ content[0]['text'] }}{{ eos_token }}{% endif %}{% endfor %}")
ONEVISION_TEMPLATE = QWEN_TEMPLATE.replace("<|vision_start|><|image_pad|><|vision_end|>", "<image>\n")
INTERNVL_TEMPLATE = QWEN_TEMPLATE.replace("<|vision_start|><|image_pad|><|vision_end|>", "<IMG_CONTEXT>")
IDEFICS3_TEMPLATE = (  # "User:<image>...<end_of_utterance>\nAssistant:" with the system turn first
    "{{ bos_token }}{% for m in messages %}{{ m['role'] | capitalize }}:"
    "{% if m['content'] is string %}{{ m['content'] }}{% else %}{% for c in m['content'] %}"
    "{% if c['type'] == 'image' %}<image>{% else %} {{ c['text'] }}{% endif %}{% endfor %}{% endif %}"
    "<end_of_utterance>\n{% endfor %}{% if add_generation_prompt %}Assistant:{% endif %}")


def word_tokenizer(specials: list[str], words: list[str], template: str, **named) -> T.PreTrainedTokenizerFast:
    """Word-level tokenizer: `specials` first (registered as special tokens, so runs of image placeholders
    without spaces split), then the stimulus vocabulary and `words`. `named` maps roles (pad_token, ...,
    or extra names such as image_token) to special tokens. With a bos_token it prepends BOS like the real
    tokenizers do (the chat templates write it too; adapters must not double it)."""
    stimulus = [w for w in organism.vocabulary() if w not in organism.SPECIAL]
    vocab = {w: i for i, w in enumerate(dict.fromkeys(specials + sorted(set(stimulus) | set(words))))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token=named["unk_token"]))
    tok.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    if "bos_token" in named:
        bos = named["bos_token"]
        tok.post_processor = processors.TemplateProcessing(single=f"{bos} $A", pair=f"{bos} $A $B",
                                                          special_tokens=[(bos, vocab[bos])])
    roles = ("pad_token", "bos_token", "eos_token", "unk_token")
    fast = T.PreTrainedTokenizerFast(tokenizer_object=tok, **{k: v for k, v in named.items() if k in roles},
                                     extra_special_tokens={k: v for k, v in named.items() if k not in roles})
    fast.add_special_tokens({"additional_special_tokens": [s for s in specials if s not in named.values()]
                             + [v for k, v in named.items() if k not in roles]})
    fast.chat_template = template
    return fast


def _ids(tok, *tokens: str) -> list[int]:
    return [tok.convert_tokens_to_ids(t) for t in tokens]


def _text_kw(tok) -> dict:
    return dict(vocab_size=len(tok), hidden_size=D_LM, intermediate_size=2 * D_LM, num_hidden_layers=LAYERS,
                num_attention_heads=HEADS, num_key_value_heads=HEADS, max_position_embeddings=1024,
                pad_token_id=tok.pad_token_id, bos_token_id=tok.bos_token_id, eos_token_id=tok.eos_token_id)


def _vision_kw() -> dict:
    return dict(hidden_size=D_VISION, intermediate_size=2 * D_VISION, num_hidden_layers=LAYERS,
                num_attention_heads=HEADS)


# ------------------------------------------------------------------ families: (model, save processor files)
def _llava(seed: int):
    """LLaVA-1.5 style: CLIP (CLS dropped, penultimate layer) + MLP projector + Llama; 8x8 tokens of 8 px."""
    tok = organism.build_tokenizer()          # USER:/ASSISTANT: template, <image> placeholder
    image, patch = 64, 8
    vc = T.CLIPVisionConfig(**_vision_kw(), image_size=image, patch_size=patch, projection_dim=D_VISION)
    cfg = T.LlavaConfig(vision_config=vc.to_dict() | {"model_type": "clip_vision_model"},
                        text_config=T.LlamaConfig(**_text_kw(tok)).to_dict() | {"model_type": "llama"},
                        image_token_index=tok.convert_tokens_to_ids(organism.IMAGE_TOKEN),
                        image_seq_length=(image // patch) ** 2, vision_feature_select_strategy="default",
                        vision_feature_layer=-2)
    ip = T.CLIPImageProcessor(size={"shortest_edge": image}, crop_size={"height": image, "width": image},
                              image_mean=CLIP_MEAN, image_std=CLIP_STD)
    processor = T.LlavaProcessor(image_processor=ip, tokenizer=tok, patch_size=patch,
                                 vision_feature_select_strategy="default", num_additional_image_tokens=1,
                                 chat_template=organism.CHAT_TEMPLATE)
    return _init(T.LlavaForConditionalGeneration, cfg, seed, "llava"), processor.save_pretrained


def _pixtral(seed: int):
    """Pixtral-12B style: Pixtral vision tower + Mistral LM in LlavaForConditionalGeneration; patch 4 px,
    max image 64 px (the adapter uses a 15x15-token canvas of 60 px)."""
    tok = word_tokenizer(["<unk>", "<s>", "</s>", "<pad>", "[INST]", "[/INST]", "[IMG]", "[IMG_BREAK]", "[IMG_END]"],
                         [], PIXTRAL_TEMPLATE, unk_token="<unk>", bos_token="<s>", eos_token="</s>",
                         pad_token="<pad>")
    image, patch = 64, 4
    vc = T.PixtralVisionConfig(**_vision_kw(), head_dim=D_VISION // HEADS, image_size=image, patch_size=patch)
    tc = T.MistralConfig(**_text_kw(tok), head_dim=D_LM // HEADS, sliding_window=None)
    cfg = T.LlavaConfig(vision_config=vc.to_dict() | {"model_type": "pixtral"},
                        text_config=tc.to_dict() | {"model_type": "mistral"},
                        image_token_index=tok.convert_tokens_to_ids("[IMG]"),
                        vision_feature_select_strategy="full", vision_feature_layer=-1)
    ip = T.PixtralImageProcessor(size={"longest_edge": image}, patch_size={"height": patch, "width": patch},
                                 image_mean=CLIP_MEAN, image_std=CLIP_STD)

    def save(out: Path):      # PixtralProcessor needs torchvision; write the files it would write
        ip.save_pretrained(out)
        tok.save_pretrained(out)
        _write_processor_config(out, "PixtralProcessor", patch_size=patch, spatial_merge_size=1,
                                image_token="[IMG]", image_break_token="[IMG_BREAK]", image_end_token="[IMG_END]")
    return _init(T.LlavaForConditionalGeneration, cfg, seed, "pixtral"), save


def _qwen_tokenizer():
    return word_tokenizer(["<|endoftext|>", "<unk>", "<|im_start|>", "<|im_end|>", "<|vision_start|>",
                           "<|vision_end|>", "<|image_pad|>", "<|video_pad|>"], ["system", "user", "assistant"],
                          QWEN_TEMPLATE, unk_token="<unk>", pad_token="<|endoftext|>", eos_token="<|im_end|>",
                          image_token="<|image_pad|>", video_token="<|video_pad|>")


def _qwen_save(ip, tok, processor_class: str):
    """The Qwen-VL processors need torchvision (their video processor): write the processor's files instead."""
    def save(out: Path):
        ip.save_pretrained(out)
        tok.save_pretrained(out)
        _write_processor_config(out, processor_class)
    return save


def _qwen2vl(seed: int):
    """Qwen2-VL: ViT with 2x2 patch merger + Qwen2 LM with M-RoPE; patch 4 px, 8 px per merged token."""
    tok = _qwen_tokenizer()
    patch, merge = 4, 2
    vc = T.Qwen2VLVisionConfig(depth=LAYERS, embed_dim=D_VISION, hidden_size=D_LM, num_heads=HEADS, mlp_ratio=2,
                               patch_size=patch, spatial_merge_size=merge, temporal_patch_size=2)
    head_dim = D_LM // HEADS     # mrope_section (t, h, w) must sum to head_dim / 2
    tc = T.Qwen2VLTextConfig(**_text_kw(tok), rope_parameters={
        "rope_type": "default", "rope_theta": 10000.0,
        "mrope_section": [head_dim // 8, head_dim * 3 // 16, head_dim * 3 // 16]})
    img, vid, vs, ve = _ids(tok, "<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")
    cfg = T.Qwen2VLConfig(text_config=tc.to_dict(), vision_config=vc.to_dict(), image_token_id=img,
                          video_token_id=vid, vision_start_token_id=vs, vision_end_token_id=ve)
    ip = T.Qwen2VLImageProcessor(patch_size=patch, merge_size=merge, temporal_patch_size=2,
                                 image_mean=CLIP_MEAN, image_std=CLIP_STD)
    return _init(T.Qwen2VLForConditionalGeneration, cfg, seed, "qwen2vl"), _qwen_save(ip, tok, "Qwen2VLProcessor")


def _gemma3(seed: int):
    """Gemma 3: SigLIP tower, 16x16 patches of 4 px average-pooled to 8x8 tokens + Gemma 3 LM."""
    tok = word_tokenizer(["<pad>", "<eos>", "<bos>", "<unk>", "<start_of_turn>", "<end_of_turn>", "<start_of_image>",
                          "<end_of_image>", "<image_soft_token>"], ["user", "model"], GEMMA_TEMPLATE,
                         unk_token="<unk>", pad_token="<pad>", bos_token="<bos>", eos_token="<eos>",
                         boi_token="<start_of_image>", eoi_token="<end_of_image>", image_token="<image_soft_token>")
    image, patch, tokens = 64, 4, 64
    vc = T.SiglipVisionConfig(**_vision_kw(), image_size=image, patch_size=patch)
    tc = T.Gemma3TextConfig(**_text_kw(tok) | {"num_key_value_heads": 1}, head_dim=D_LM // HEADS,
                            query_pre_attn_scalar=D_LM // HEADS, sliding_window=512)
    boi, eoi, img = _ids(tok, "<start_of_image>", "<end_of_image>", "<image_soft_token>")
    cfg = T.Gemma3Config(text_config=tc.to_dict(), vision_config=vc.to_dict(), mm_tokens_per_image=tokens,
                         boi_token_index=boi, eoi_token_index=eoi, image_token_index=img)
    ip = T.Gemma3ImageProcessor(size={"height": image, "width": image}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    processor = T.Gemma3Processor(image_processor=ip, tokenizer=tok, chat_template=GEMMA_TEMPLATE,
                                  image_seq_length=tokens)
    model = _init(T.Gemma3ForConditionalGeneration, cfg, seed, "gemma3")
    # HF initialises this projection to zeros, so a random-init Gemma 3 would ignore the image.
    with torch.random.fork_rng():
        torch.manual_seed(torch_seed(seed, "tiny", "gemma3", "mm_input_projection"))
        torch.nn.init.normal_(model.model.multi_modal_projector.mm_input_projection_weight, std=D_VISION ** -0.5)
    return model, processor.save_pretrained


def _qwen2_5vl(seed: int):
    """Qwen2.5-VL: windowed ViT (a full-attention block last) with 2x2 patch merger + Qwen2 LM with M-RoPE;
    patch 4 px, 8 px per merged token, windows of 2x2 merged tokens."""
    tok = _qwen_tokenizer()
    patch, merge = 4, 2
    vc = T.Qwen2_5_VLVisionConfig(depth=LAYERS, hidden_size=D_VISION, intermediate_size=2 * D_VISION, num_heads=HEADS,
                                  out_hidden_size=D_LM, patch_size=patch, spatial_merge_size=merge,
                                  temporal_patch_size=2, window_size=4 * patch, fullatt_block_indexes=[LAYERS - 1])
    head_dim = D_LM // HEADS
    tc = T.Qwen2_5_VLTextConfig(**_text_kw(tok), rope_parameters={
        "rope_type": "default", "rope_theta": 10000.0,
        "mrope_section": [head_dim // 8, head_dim * 3 // 16, head_dim * 3 // 16]})
    img, vid, vs, ve = _ids(tok, "<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")
    cfg = T.Qwen2_5_VLConfig(text_config=tc.to_dict(), vision_config=vc.to_dict(), image_token_id=img,
                             video_token_id=vid, vision_start_token_id=vs, vision_end_token_id=ve)
    ip = T.Qwen2VLImageProcessor(patch_size=patch, merge_size=merge, temporal_patch_size=2,
                                 image_mean=CLIP_MEAN, image_std=CLIP_STD)
    return _init(T.Qwen2_5_VLForConditionalGeneration, cfg, seed, "qwen2_5vl"), _qwen_save(ip, tok, "Qwen2_5_VLProcessor")


def _qwen3vl(seed: int):
    """Qwen3-VL: ViT with learned + rotary position embeddings, 2x2 patch merger, DeepStack (the merged states
    of vision blocks 0 and 1 added to the outputs of LM layers 0 and 1 at the image positions), Qwen3 LM with
    interleaved M-RoPE; patch 4 px, 8 px per merged token."""
    tok = _qwen_tokenizer()
    patch, merge = 4, 2
    vc = T.Qwen3VLVisionConfig(depth=LAYERS, hidden_size=D_VISION, intermediate_size=2 * D_VISION, num_heads=HEADS,
                               out_hidden_size=D_LM, patch_size=patch, spatial_merge_size=merge,
                               temporal_patch_size=2, num_position_embeddings=256,
                               deepstack_visual_indexes=list(range(LAYERS)))
    head_dim = D_LM // HEADS
    tc = T.Qwen3VLTextConfig(**_text_kw(tok), head_dim=head_dim, rope_parameters={
        "rope_type": "default", "rope_theta": 10000.0, "mrope_interleaved": True,
        "mrope_section": [head_dim // 4, head_dim // 8, head_dim // 8]})
    img, vid, vs, ve = _ids(tok, "<|image_pad|>", "<|video_pad|>", "<|vision_start|>", "<|vision_end|>")
    cfg = T.Qwen3VLConfig(text_config=tc.to_dict(), vision_config=vc.to_dict(), image_token_id=img,
                          video_token_id=vid, vision_start_token_id=vs, vision_end_token_id=ve)
    ip = T.Qwen2VLImageProcessor(patch_size=patch, merge_size=merge, temporal_patch_size=2,
                                 image_mean=[0.5] * 3, image_std=[0.5] * 3)
    return _init(T.Qwen3VLForConditionalGeneration, cfg, seed, "qwen3vl"), _qwen_save(ip, tok, "Qwen3VLProcessor")


def _mistral3(seed: int):
    """Mistral-Small-3.1 style: Pixtral tower (patch 4 px) + 2x2 patch merger + Mistral LM; 8 px per token,
    an 8x8-token canvas (dualmech.json: the Pixtral tower attends over all patches of a batch at once, so
    the default 12x12 canvas makes the batched patching sweeps of the tests slow)."""
    tok = word_tokenizer(["<unk>", "<s>", "</s>", "<pad>", "[INST]", "[/INST]", "[SYSTEM_PROMPT]", "[/SYSTEM_PROMPT]",
                          "[IMG]", "[IMG_BREAK]", "[IMG_END]"], [], MISTRAL3_TEMPLATE, unk_token="<unk>",
                         bos_token="<s>", eos_token="</s>", pad_token="<pad>")
    image, patch, merge = 64, 4, 2
    vc = T.PixtralVisionConfig(**_vision_kw(), head_dim=D_VISION // HEADS, image_size=image, patch_size=patch)
    tc = T.MistralConfig(**_text_kw(tok), head_dim=D_LM // HEADS, sliding_window=None)
    cfg = T.Mistral3Config(vision_config=vc.to_dict() | {"model_type": "pixtral"},
                           text_config=tc.to_dict() | {"model_type": "mistral"},
                           image_token_index=tok.convert_tokens_to_ids("[IMG]"), spatial_merge_size=merge,
                           vision_feature_layer=-1)
    ip = T.PixtralImageProcessor(size={"longest_edge": image}, patch_size={"height": patch, "width": patch},
                                 image_mean=CLIP_MEAN, image_std=CLIP_STD)

    def save(out: Path):      # PixtralProcessor needs torchvision; write the files it would write
        ip.save_pretrained(out)
        tok.save_pretrained(out)
        _write_processor_config(out, "PixtralProcessor", patch_size=patch, spatial_merge_size=merge,
                                image_token="[IMG]", image_break_token="[IMG_BREAK]", image_end_token="[IMG_END]")
        (out / "dualmech.json").write_text(json.dumps({"geometry": {"grid": image // (patch * merge)}}) + "\n")
    return _init(T.Mistral3ForConditionalGeneration, cfg, seed, "mistral3"), save


def _internvl(seed: int):
    """InternVL3-hf style: InternViT (CLS dropped) over 4 px patches of a 64 px tile, 2x2 pixel shuffle,
    MLP projector, Qwen2 LM; 8x8 tokens of 8 px between <img> and </img>."""
    tok = word_tokenizer(["<|endoftext|>", "<unk>", "<|im_start|>", "<|im_end|>", "<img>", "</img>", "<IMG_CONTEXT>",
                          "<video>"], ["system", "user", "assistant"], INTERNVL_TEMPLATE, unk_token="<unk>",
                         pad_token="<|endoftext|>", eos_token="<|im_end|>", start_image_token="<img>",
                         end_image_token="</img>", context_image_token="<IMG_CONTEXT>", video_token="<video>")
    image, patch = 64, 4
    vc = T.InternVLVisionConfig(**_vision_kw(), image_size=[image, image], patch_size=[patch, patch],
                                layer_scale_init_value=1.0)   # at 0.1 the Fig-9 ablation moved the answers < 1e-6
    tc = T.Qwen2Config(**_text_kw(tok))
    n = (image // patch // 2) ** 2
    cfg = T.InternVLConfig(vision_config=vc.to_dict(), text_config=tc.to_dict() | {"model_type": "qwen2"},
                           image_token_id=tok.convert_tokens_to_ids("<IMG_CONTEXT>"), image_seq_length=n,
                           downsample_ratio=0.5, vision_feature_layer=-1, vision_feature_select_strategy="default")
    ip = T.GotOcr2ImageProcessor(size={"height": image, "width": image}, crop_to_patches=True,   # adapter: off
                                 image_mean=CLIP_MEAN, image_std=CLIP_STD)

    def save(out: Path):      # InternVLProcessor needs torchvision (video processor); write its files
        ip.save_pretrained(out)
        tok.save_pretrained(out)
        _write_processor_config(out, "InternVLProcessor", image_seq_length=n)
    return _init(T.InternVLForConditionalGeneration, cfg, seed, "internvl"), save


def _idefics3(seed: int, smolvlm: bool = False):
    """Idefics3 / SmolVLM: SigLIP-style tower over 4 px patches of a 64 px image, pixel shuffle (scale 2)
    + linear connector, Llama LM; one global image (no splitting): 8x8 tokens of 8 px."""
    tok = word_tokenizer(["<|endoftext|>", "<unk>", "<|begin_of_text|>", "<end_of_utterance>",
                          "<fake_token_around_image>", "<global-img>", "<image>"], ["System:", "User:", "Assistant:"],
                         IDEFICS3_TEMPLATE, unk_token="<unk>", pad_token="<|endoftext|>", bos_token="<|begin_of_text|>",
                         eos_token="<end_of_utterance>", image_token="<image>")
    image, patch, scale = 64, 4, 2
    n = (image // patch // scale) ** 2
    vc = (T.SmolVLMVisionConfig if smolvlm else T.Idefics3VisionConfig)(**_vision_kw(), image_size=image,
                                                                          patch_size=patch)
    cls = T.SmolVLMConfig if smolvlm else T.Idefics3Config
    tc = T.LlamaConfig(**_text_kw(tok)).to_dict() | {"model_type": "llama"}
    cfg = cls(vision_config=vc.to_dict(), text_config=tc, image_token_id=tok.convert_tokens_to_ids("<image>"),
              scale_factor=scale, pad_token_id=tok.pad_token_id)
    ip_cls = T.SmolVLMImageProcessor if smolvlm else T.Idefics3ImageProcessor
    ip = ip_cls(do_image_splitting=True, size={"longest_edge": 4 * image}, max_image_size={"longest_edge": image},
                image_mean=[0.5] * 3, image_std=[0.5] * 3)       # the real processors' defaults, scaled

    def save(out: Path):      # write what Idefics3Processor / SmolVLMProcessor would write
        ip.save_pretrained(out)
        tok.save_pretrained(out)
        _write_processor_config(out, "SmolVLMProcessor" if smolvlm else "Idefics3Processor", image_seq_len=n)
    family = "smolvlm" if smolvlm else "idefics3"
    model_cls = T.SmolVLMForConditionalGeneration if smolvlm else T.Idefics3ForConditionalGeneration
    return _init(model_cls, cfg, seed, family), save


def _paligemma(seed: int):
    """PaliGemma: SigLIP over 8 px patches of a 64 px image (one token per patch: 8x8 of 8 px), linear
    projector, Gemma LM; the image tokens come first, then BOS and the prompt (no chat template)."""
    tok = word_tokenizer(["<pad>", "<eos>", "<bos>", "<unk>", "<image>"], [], "", unk_token="<unk>",
                         pad_token="<pad>", bos_token="<bos>", eos_token="<eos>", image_token="<image>")
    tok.chat_template = None
    image, patch = 64, 8
    n = (image // patch) ** 2
    vc = T.SiglipVisionConfig(**_vision_kw(), image_size=image, patch_size=patch, projection_dim=D_LM)
    tc = T.GemmaConfig(**_text_kw(tok) | {"num_key_value_heads": 1}, head_dim=D_LM // HEADS)
    cfg = T.PaliGemmaConfig(vision_config=vc.to_dict(), text_config=tc.to_dict(),
                            image_token_index=tok.convert_tokens_to_ids("<image>"), projection_dim=D_LM,
                            hidden_size=D_LM, vocab_size=len(tok))
    ip = T.SiglipImageProcessor(size={"height": image, "width": image}, image_mean=[0.5] * 3, image_std=[0.5] * 3)
    ip.image_seq_length = n
    processor = T.PaliGemmaProcessor(image_processor=ip, tokenizer=tok)
    return _init(T.PaliGemmaForConditionalGeneration, cfg, seed, "paligemma"), processor.save_pretrained


def _llava_onevision(seed: int):
    """LLaVA-OneVision: SigLIP (no CLS) over 8 px patches of a 68 px image (like the real 384 px / 14 px, the
    patches do not fill the image: 8x8 tokens of 8 px, the last 4 px unseen), MLP projector, Qwen2 LM, a
    learned image_newline after the base view; anyres grid pinpoints scaled from the real ones."""
    tok = word_tokenizer(["<|endoftext|>", "<unk>", "<|im_start|>", "<|im_end|>", "<image>", "<video>"],
                         ["system", "user", "assistant"], ONEVISION_TEMPLATE, unk_token="<unk>",
                         pad_token="<|endoftext|>", eos_token="<|im_end|>", image_token="<image>",
                         video_token="<video>")
    image, patch = 68, 8
    pinpoints = [[image * a, image * b] for a in (1, 2) for b in (1, 2)]
    vc = T.SiglipVisionConfig(**_vision_kw(), image_size=image, patch_size=patch)
    tc = T.Qwen2Config(**_text_kw(tok))
    img, vid = _ids(tok, "<image>", "<video>")
    cfg = T.LlavaOnevisionConfig(vision_config=vc.to_dict() | {"model_type": "siglip_vision_model"},
                                 text_config=tc.to_dict() | {"model_type": "qwen2"}, image_token_id=img,
                                 video_token_id=vid, image_grid_pinpoints=pinpoints,
                                 vision_feature_select_strategy="full", vision_feature_layer=-1)
    ip = T.LlavaOnevisionImageProcessorPil(size={"height": image, "width": image}, image_grid_pinpoints=pinpoints,
                                           image_mean=[0.5] * 3, image_std=[0.5] * 3)

    def save(out: Path):      # LlavaOnevisionProcessor needs torchvision (video processor); write its files
        ip.save_pretrained(out)
        tok.save_pretrained(out)
        _write_processor_config(out, "LlavaOnevisionProcessor", num_image_tokens=(image // patch) ** 2,
                                vision_feature_select_strategy="full", vision_aspect_ratio="anyres_max_9")
    return _init(T.LlavaOnevisionForConditionalGeneration, cfg, seed, "llava_onevision"), save


BUILDERS = {"llava": _llava, "pixtral": _pixtral, "qwen2vl": _qwen2vl, "gemma3": _gemma3, "qwen2_5vl": _qwen2_5vl,
            "mistral3": _mistral3, "internvl": _internvl, "idefics3": _idefics3,
            "smolvlm": lambda seed: _idefics3(seed, smolvlm=True), "paligemma": _paligemma,
            "llava_onevision": _llava_onevision, "qwen3vl": _qwen3vl}


def _init(cls, cfg, seed: int, family: str):
    with torch.random.fork_rng():            # deterministic from the seed, global RNG left untouched
        torch.manual_seed(torch_seed(seed, "tiny", family))
        return cls(cfg).eval()


def _write_processor_config(out: Path, processor_class: str, **kw) -> None:
    (out / "processor_config.json").write_text(json.dumps({"processor_class": processor_class, **kw}, indent=2) + "\n")


def build(family: str, seed: int = 0):
    """(model, save_processor(out_dir)) for a family."""
    if family not in BUILDERS:
        raise ValueError(f"unknown family {family!r}; expected one of {FAMILIES}")
    return BUILDERS[family](seed)


def make_tiny(family: str, out_dir, seed: int = 0) -> Path:
    """Write a tiny random-weight checkpoint of `family` (model + processor files) to `out_dir`."""
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    model, save_processor = build(family, seed)
    model.save_pretrained(out)
    save_processor(out)
    (out / "tiny.json").write_text(json.dumps({"family": family, "seed": seed}) + "\n")
    return out


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--family", required=True, choices=FAMILIES)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args(argv)
    print(make_tiny(a.family, a.out, a.seed))


if __name__ == "__main__":
    main()
