"""Evaluation metrics as small pure functions (no pretrained weights anywhere).

- encoder: how discriminative an embedding is (kNN / linear probe / silhouette / NMI).
- baselines: training-free reference features (colour histogram, random CNN).
- generation: FID / KID from feature matrices of a network trained in this project.
- alignment: R-precision and kNN class consistency.
- diversity: per-caption pairwise MS-SSIM.
"""
from metrics.alignment import class_consistency, r_precision
from metrics.baselines import color_histogram_features, random_cnn_features
from metrics.diversity import MS_SSIM_BETAS_3, ms_ssim_diversity
from metrics.encoder import encoder_report, kmeans_nmi, knn_accuracy, linear_probe_accuracy, silhouette
from metrics.generation import fid, fid_kid_from_images, kid, real_floor

__all__ = [
    "knn_accuracy", "linear_probe_accuracy", "silhouette", "kmeans_nmi", "encoder_report",
    "color_histogram_features", "random_cnn_features",
    "fid", "kid", "fid_kid_from_images", "real_floor",
    "r_precision", "class_consistency",
    "ms_ssim_diversity", "MS_SSIM_BETAS_3",
]
