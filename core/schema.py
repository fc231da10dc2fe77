"""The typed defaults of every config section: what `experiments/*.yaml` and dotted overrides may set
(core/config.py parses, checks and validates them)."""
from __future__ import annotations

from dataclasses import dataclass, field

# Where the official files are looked for when neither data.root nor $OXFORD102_DIR names a folder.
DEFAULT_DATA_DIRS = ("data/oxford102",)  # where `prepare --download` puts the official files


@dataclass
class DataConfig:
    root: str = ""  # official-layout folder; "" -> $OXFORD102_DIR -> data/oxford102
    cache: str = "data/flowers.h5"  # HDF5 cache written by `python -m data_utils.prepare`
    seed: int = 0  # seed of the 20/5 class split and of the validation hold-out
    n_train_classes: int = 20
    n_test_classes: int = 5
    val_fraction: float = 0.1  # share of each train class held out for checkpoint selection
    image_size: int = 64  # training resolution (random crops of the cached 72x72 images)
    max_caption_len: int = 32  # tokens; longer captions are truncated
    min_word_count: int = 2  # words seen fewer times in training captions map to <unk>
    limit_per_class: int = 0  # >0: keep only this many images per class (tests, demos)


@dataclass
class ModelConfig:
    embed_dim: int = 128  # source representation / shared image-text space
    enc_width: int = 32  # base channel width of the source encoder
    enc_depth: int = 1  # residual blocks per encoder stage (2: ResNet-18-like depth, ~2x the parameters)
    text_width: int = 128  # token embedding and GRU width of the text encoder
    text_dim: int = 128  # text encoding fed to the generator
    noise_dim: int = 64
    cond_dim: int = 64  # conditioning-augmentation output size for the text encoding
    g_width: int = 48  # preferred generator conv width (the mapping MLP is sized to hit g_ratio)
    g_upsample: str = "nearest"  # x2 upsampling of every block: nearest | bilinear, or 4 comma-separated (README)
    d_width: int = 32  # base channel width of the discriminator
    d_rep: bool = False  # the discriminator also projects the source representation r (judges image-r fit)
    g_ratio: float = 0.5  # generator params / encoder params (the assignment fixes 0.5)


@dataclass
class TrainConfig:
    seed: int = 0
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    threads: int = 0  # torch CPU threads; 0 = number of cores
    batch_size: int = 64
    gan_batch_size: int = 0  # stage 2's batch; 0 = batch_size (a smaller batch gives more GAN steps per epoch)
    encoder_epochs: int = 100  # stage 1: label-free image-text contrastive + augmentation SSL
    gan_epochs: int = 100  # stage 2: conditional GAN with the frozen encoder
    encoders_from: str = ""  # run dir or checkpoint: skip stage 1 and start stage 2 with its trained encoders
    lr_encoder: float = 2e-3
    wd_encoder: float = 0.5  # AdamW weight decay of the encoder stage (source and text encoders)
    whiten_eps: float = 0.01  # end of stage 1: PCA-whiten the representation (eigenvalue floor, x the largest); 0 = off
    lr_g: float = 1e-4  # two time-scale rates (TTUR): D learns 4x faster than G
    lr_d: float = 4e-4
    temperature: float = 0.1
    affinity_alpha: float = 0.8  # share of each image's positive mass given to caption-similar images
    affinity_temperature: float = 0.1  # sharpness of the caption TF-IDF affinity
    text_weight: float = 1.0  # weight of the image-text contrastive term (0 = the encoder learns from images alone)
    semantic_weight: float = 2.0  # regress the representation onto the caption LSA of its image
    ssl_weight: float = 1.0  # weight of the image-image (augmentation) contrastive term
    diffaug: str = "color,translation,cutout"  # DiffAugment policy; "" disables
    r1_gamma: float = 0.1  # R1 gradient penalty on real images; 0 disables
    r1_every: int = 4  # lazy R1: apply every N discriminator steps (scaled by N)
    mismatch_weight: float = 0.5  # matching-aware D: weight of (real image, wrong text)
    distill_weight: float = 1.0  # encoder(G(z, t, r)) should match r
    kl_weight: float = 1.0  # conditioning augmentation KL
    ema_decay: float = 0.995  # generator EMA decay per 32 images (GanStage.update_ema): a ~6,400-image time constant
    eval_every: int = 10  # epochs between validation metrics / best-checkpoint checks
    log_every: int = 20  # steps between logged losses
    max_steps: int = 0  # >0: cut every epoch to this many steps (smoke tests, benchmarks)
    amp: str = "off"  # mixed precision of the training steps: off | auto (bf16 / fp16 by GPU, off on CPU) | bf16 | fp16
    channels_last: bool = True  # NHWC memory layout for the conv nets' weights and inputs (faster CPU convolutions)
    compile: bool = False  # torch.compile the source encoder and the generator's synthesis in the training steps
    reuse_host_memory: bool = True  # keep freed CPU tensor memory for the next step (glibc; core/runtime.py)


@dataclass
class EvalConfig:
    knn_k: int = 10
    samples_per_caption: int = 1
    captions_per_test_class: int = 40  # captions of each unseen class drawn for the generation metrics
    truncation: float = 1.0  # sampling noise z * truncation for every text-only sample (1 = as in training)
    figures: bool = True  # end-of-run t-SNE / UMAP / real-vs-generated PNGs in eval/figures (and to W&B)
    judge: bool = True  # score with the 102-class judge (trained once per data cache, kept beside it)


@dataclass
class WandbConfig:
    mode: str = "auto"  # auto | online | offline | disabled
    project: str = "flower-t2i-gan"
    entity: str = ""
    group: str = ""
    tags: str = ""  # comma-separated


@dataclass
class RunConfig:
    name: str = ""  # "" -> timestamp-based id
    out_dir: str = "runs"
    resume: str = ""  # path to a run directory or checkpoint to resume


@dataclass
class Config:
    data: DataConfig = field(default_factory=DataConfig)
    model: ModelConfig = field(default_factory=ModelConfig)
    train: TrainConfig = field(default_factory=TrainConfig)
    eval: EvalConfig = field(default_factory=EvalConfig)
    wandb: WandbConfig = field(default_factory=WandbConfig)
    run: RunConfig = field(default_factory=RunConfig)
