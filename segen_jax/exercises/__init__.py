"""Checkers for the notebooks' exercises: a student gets "correct" or a precise hint.

Each checker takes the student's function, runs it on cases with known answers, prints one
verdict line (`✓ correct: ...` or `✗ not yet: <hint>`) and returns True or False. A function
that still raises NotImplementedError gets the exercise's first hint. Checkers never raise, so
a notebook with an unsolved exercise still runs top to bottom. Solutions: `solutions/`.

One module a chapter; all checkers are importable from here: `exercises.check_log_softmax(fn)`.
"""
from segen_jax.exercises.ch00 import check_log_softmax, check_per_example_grads
from segen_jax.exercises.ch01 import check_conv_weight_grad, check_im2col, check_output_size
from segen_jax.exercises.ch02 import check_avg_pool_counts, check_max_pool, check_max_pool_backward
from segen_jax.exercises.ch03 import (check_bilinear_tent, check_conv_matrix,
                                      check_transposed_output_size)
from segen_jax.exercises.ch04 import (check_atrous_support, check_dilate_kernel,
                                      check_mean_field_step)
from segen_jax.exercises.ch05 import (check_frechet_1d, check_gradient_penalty,
                                      check_non_saturating_loss, check_optimal_value)
from segen_jax.exercises.ch06 import check_gaussian_kl, check_log_mean_exp, check_reparameterize

__all__ = ["check_atrous_support", "check_avg_pool_counts", "check_bilinear_tent",
           "check_conv_matrix", "check_conv_weight_grad", "check_dilate_kernel",
           "check_frechet_1d", "check_gaussian_kl", "check_gradient_penalty", "check_im2col",
           "check_log_mean_exp", "check_log_softmax", "check_max_pool", "check_max_pool_backward",
           "check_mean_field_step", "check_non_saturating_loss", "check_optimal_value",
           "check_output_size", "check_per_example_grads", "check_reparameterize",
           "check_transposed_output_size"]
