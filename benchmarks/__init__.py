"""Train-step benchmarks for segen-jax (not part of the installed package).

    python -m benchmarks.step_variants        # ways to compile one NNX train step
    python -m benchmarks.classifier_vs_torch  # the library's classifier step vs PyTorch eager

PyTorch is only needed by the second script (benchmarks/requirements.txt); it is never a
dependency of segen_jax. Results and how to read them: benchmarks/RESULTS.md.
"""
