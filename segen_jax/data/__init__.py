"""Data that works offline: shipped MNIST digits, generated scenes and toy distributions,
loaders for the real data sets on disk, and a resumable batch iterator."""
from segen_jax.data.batches import batches, steps_per_epoch
from segen_jax.data.mnist import load_mnist, read_idx
from segen_jax.data.photos import sample_photo
from segen_jax.data.scenes import (DIGIT_SCENE_CLASSES, SHAPE_CLASSES, digit_scenes,
                                   load_digit_scenes, shapes_scenes)
from segen_jax.data.segmentation_sets import PET_CLASSES, VOC_CLASSES, load_pets, load_voc
from segen_jax.data.toys import Toy2D, grid_of_gaussians, ring_of_gaussians

__all__ = ["DIGIT_SCENE_CLASSES", "PET_CLASSES", "SHAPE_CLASSES", "Toy2D", "VOC_CLASSES",
           "batches", "digit_scenes", "grid_of_gaussians", "load_digit_scenes", "load_mnist",
           "load_pets", "load_voc", "read_idx", "ring_of_gaussians", "sample_photo",
           "shapes_scenes", "steps_per_epoch"]
