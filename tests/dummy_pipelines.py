"""Stable-Diffusion-style pipelines with random weights, built from configs (diffusers' own test
recipe): "tiny" for tests (saved with ``save_pretrained`` and loaded back through the real path)
and "sd-turbo" (SD-Turbo's architecture) to measure renderer speed on a GPU without downloads; the
same two for the embedding-conditioned renderer (``StableUnCLIPImg2ImgPipeline``): "tiny-unclip"
and "unclip" (SD 2.1 unCLIP's architecture)."""

from __future__ import annotations

import json
import string
from pathlib import Path


def write_tokenizer_files(folder: Path) -> tuple[Path, Path]:
    """A character-level CLIP BPE vocabulary (no merges): enough for real tokenisation of prompts."""
    chars = list(string.ascii_lowercase + string.digits + "'-.,!")
    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for c in chars:
        vocab.setdefault(c, len(vocab))
        vocab.setdefault(c + "</w>", len(vocab))
    vocab_file, merges_file = folder / "vocab.json", folder / "merges.txt"
    vocab_file.write_text(json.dumps(vocab))
    merges_file.write_text("#version: 0.2\n")
    return vocab_file, merges_file


def tiny_vae_and_text_encoder(folder: Path):
    """The tiny pipelines' shared parts: a 2-block VAE, the character-level tokenizer (its files under
    ``folder/_tok``) and a 2-layer CLIP text encoder, random weights."""
    from diffusers import AutoencoderKL
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vae = AutoencoderKL(block_out_channels=[32, 64], in_channels=3, out_channels=3,
                        down_block_types=["DownEncoderBlock2D", "DownEncoderBlock2D"],
                        up_block_types=["UpDecoderBlock2D", "UpDecoderBlock2D"], latent_channels=4, norm_num_groups=32)
    tok_dir = folder / "_tok"
    tok_dir.mkdir(exist_ok=True)
    vocab, merges = write_tokenizer_files(tok_dir)
    tokenizer = CLIPTokenizer(str(vocab), str(merges), model_max_length=77)
    text_encoder = CLIPTextModel(CLIPTextConfig(bos_token_id=0, eos_token_id=1, pad_token_id=1, hidden_size=32,
                                                intermediate_size=37, num_attention_heads=4, num_hidden_layers=2,
                                                vocab_size=len(tokenizer), projection_dim=32))
    return vae, tokenizer, text_encoder


def sd2_vae_and_text_encoder():
    """SD 2.x's VAE and OpenCLIP-H text encoder architectures (random weights) with the character-level
    tokenizer: the parts the SD-Turbo- and unCLIP-sized pipelines share."""
    import tempfile

    from diffusers import AutoencoderKL
    from transformers import CLIPTextConfig, CLIPTextModel, CLIPTokenizer

    vae = AutoencoderKL(block_out_channels=(128, 256, 512, 512), layers_per_block=2, latent_channels=4,
                        down_block_types=("DownEncoderBlock2D",) * 4, up_block_types=("UpDecoderBlock2D",) * 4)
    with tempfile.TemporaryDirectory() as tmp:
        vocab, merges = write_tokenizer_files(Path(tmp))
        tokenizer = CLIPTokenizer(str(vocab), str(merges), model_max_length=77)
    text_encoder = CLIPTextModel(CLIPTextConfig(hidden_size=1024, intermediate_size=4096, num_attention_heads=16,
                                                num_hidden_layers=23, vocab_size=len(tokenizer), bos_token_id=0,
                                                eos_token_id=1, pad_token_id=1, hidden_act="gelu", projection_dim=1024))
    return vae, tokenizer, text_encoder


def build_tiny_pipeline(folder: str | Path) -> Path:
    """Write a ~6 MB text-to-image pipeline (UNet (32, 64), 2-block VAE, 2-layer CLIP text encoder,
    Euler scheduler as SD-Turbo uses) to ``folder``."""
    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    unet = UNet2DConditionModel(block_out_channels=(32, 64), layers_per_block=1, sample_size=32, in_channels=4,
                                out_channels=4, down_block_types=("DownBlock2D", "CrossAttnDownBlock2D"),
                                up_block_types=("CrossAttnUpBlock2D", "UpBlock2D"), cross_attention_dim=32,
                                norm_num_groups=32)
    vae, tokenizer, text_encoder = tiny_vae_and_text_encoder(folder)
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       timestep_spacing="trailing")
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    pipe.save_pretrained(folder)
    return folder


def sd_turbo_sized_pipeline(device: str = "cuda", dtype=None):
    """An in-memory pipeline with SD-Turbo's architecture (SD 2.1 UNet, 4-block VAE, a 23-layer 1024-wide
    text encoder) and random weights: for speed measurements only, it draws noise."""

    import torch
    from diffusers import EulerDiscreteScheduler, StableDiffusionPipeline, UNet2DConditionModel

    dtype = dtype or (torch.float16 if device == "cuda" else torch.float32)
    unet = UNet2DConditionModel(
        sample_size=64, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, cross_attention_dim=1024,
        attention_head_dim=(5, 10, 20, 20), use_linear_projection=True,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"))
    vae, tokenizer, text_encoder = sd2_vae_and_text_encoder()
    scheduler = EulerDiscreteScheduler(beta_start=0.00085, beta_end=0.012, beta_schedule="scaled_linear",
                                       timestep_spacing="trailing")
    pipe = StableDiffusionPipeline(vae=vae, text_encoder=text_encoder, tokenizer=tokenizer, unet=unet,
                                   scheduler=scheduler, safety_checker=None, feature_extractor=None,
                                   requires_safety_checker=False)
    return pipe.to(device, dtype)


def _unclip_pipeline(unet, vae, text_encoder, tokenizer, image_encoder, embed_dim: int, image_size: int):
    """A ``StableUnCLIPImg2ImgPipeline`` around these parts, with the schedulers and the image
    normaliser SD 2.1 unCLIP uses (DDIM v-prediction; DDPM squaredcos noising of the embedding)."""
    from diffusers import DDIMScheduler, DDPMScheduler, StableUnCLIPImg2ImgPipeline
    from diffusers.pipelines.stable_diffusion.stable_unclip_image_normalizer import (
        StableUnCLIPImageNormalizer,
    )
    from transformers import CLIPImageProcessor

    scheduler = DDIMScheduler(beta_schedule="scaled_linear", beta_start=0.00085, beta_end=0.012,
                              prediction_type="v_prediction", set_alpha_to_one=False, steps_offset=1,
                              timestep_spacing="trailing")
    return StableUnCLIPImg2ImgPipeline(
        feature_extractor=CLIPImageProcessor(crop_size=image_size, size=image_size),
        image_encoder=image_encoder.eval(), image_normalizer=StableUnCLIPImageNormalizer(embedding_dim=embed_dim),
        image_noising_scheduler=DDPMScheduler(beta_schedule="squaredcos_cap_v2"), tokenizer=tokenizer,
        text_encoder=text_encoder.eval(), unet=unet.eval(), scheduler=scheduler, vae=vae.eval())


def build_tiny_unclip_pipeline(folder: str | Path, embed_dim: int = 32) -> Path:
    """Write a few-MB ``StableUnCLIPImg2ImgPipeline`` with random weights to ``folder`` (diffusers' own
    dummy components: a 2-layer CLIP vision encoder projecting to ``embed_dim``, a UNet (32, 64) whose
    class embedding (``projection``) takes the noised embedding and its noise-level embedding, a
    2-block VAE, a 2-layer text encoder on :func:`write_tokenizer_files`)."""
    import torch
    from diffusers import UNet2DConditionModel
    from transformers import (
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    torch.manual_seed(0)
    image_encoder = CLIPVisionModelWithProjection(CLIPVisionConfig(
        hidden_size=32, projection_dim=embed_dim, num_hidden_layers=2, num_attention_heads=4, image_size=32,
        intermediate_size=37, patch_size=4))
    unet = UNet2DConditionModel(sample_size=32, in_channels=4, out_channels=4,
                                down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
                                up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"), block_out_channels=(32, 64),
                                attention_head_dim=(2, 4), class_embed_type="projection",
                                projection_class_embeddings_input_dim=embed_dim * 2, cross_attention_dim=32,
                                layers_per_block=1, upcast_attention=True, use_linear_projection=True)
    vae, tokenizer, text_encoder = tiny_vae_and_text_encoder(folder)
    pipe = _unclip_pipeline(unet, vae, text_encoder, tokenizer, image_encoder, embed_dim, image_size=32)
    pipe.save_pretrained(folder)
    return folder


def unclip_sized_pipeline(device: str = "cuda", dtype=None, small: bool = False):
    """An in-memory ``StableUnCLIPImg2ImgPipeline`` with SD 2.1 unCLIP's architecture and random weights
    (UNet of SD 2.1 with a ``projection`` class embedding of the 1024-d noised embedding + its 1024-d
    noise-level embedding; OpenCLIP ViT-H/14 image encoder; 23-layer 1024-wide text encoder; 4-block
    VAE); ``small``: the "-small" variant (CLIP ViT-L/14, 768-d). For speed measurements only."""

    import torch
    from diffusers import UNet2DConditionModel
    from transformers import (
        CLIPVisionConfig,
        CLIPVisionModelWithProjection,
    )

    dtype = dtype or (torch.float16 if device == "cuda" else torch.float32)
    embed_dim = 768 if small else 1024
    vision = (CLIPVisionConfig(hidden_size=1024, intermediate_size=4096, num_attention_heads=16, num_hidden_layers=24,
                               patch_size=14, image_size=224, projection_dim=768, hidden_act="quick_gelu") if small else
              CLIPVisionConfig(hidden_size=1280, intermediate_size=5120, num_attention_heads=16, num_hidden_layers=32,
                               patch_size=14, image_size=224, projection_dim=1024, hidden_act="gelu"))
    image_encoder = CLIPVisionModelWithProjection(vision)
    unet = UNet2DConditionModel(
        sample_size=96, block_out_channels=(320, 640, 1280, 1280), layers_per_block=2, cross_attention_dim=1024,
        attention_head_dim=(5, 10, 20, 20), use_linear_projection=True, class_embed_type="projection",
        projection_class_embeddings_input_dim=embed_dim * 2,
        down_block_types=("CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "CrossAttnDownBlock2D", "DownBlock2D"),
        up_block_types=("UpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D", "CrossAttnUpBlock2D"))
    vae, tokenizer, text_encoder = sd2_vae_and_text_encoder()
    pipe = _unclip_pipeline(unet, vae, text_encoder, tokenizer, image_encoder, embed_dim, image_size=224)
    return pipe.to(device, dtype)
