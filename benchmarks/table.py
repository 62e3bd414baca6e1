"""The table of `benchmarks/results/*.json` (written by `train_step --save`), as markdown.

    python -m benchmarks.table           # print it
    python -m benchmarks.table --write   # and put it into benchmarks/README.md between the
                                         # <!-- train-step results --> markers
"""
import argparse
import json
import pathlib

from benchmarks import _common
from benchmarks.train_step import RESULTS

README = pathlib.Path(__file__).parent / "README.md"
BEGIN, END = "<!-- train-step results -->", "<!-- end of train-step results -->"


def compiled(r) -> str:
    """The torch.compile cell: its rate and the library's ratio to it, why it failed, or that
    the run did not ask for it (--torch-compile)."""
    if r.get("torch_compile_img_s"):
        return f"{r['torch_compile_img_s']:.0f} ({r['ratio_vs_torch_compile']:.2f})"
    return "failed" if str(r.get("torch_compile", "")).startswith("failed") else "not run"


def markdown(results) -> str:
    rows = [[r["model"], r["batch"], f"{r['parameters']:,}", f"{r['segen_img_s']:.0f}",
             (f"{r['segen_parts1_img_s']:.0f} (parts {r['segen_parts']}: "
              f"{r['segen_img_s'] / r['segen_parts1_img_s']:.2f}x)" if r["segen_parts"] > 1
              else "— (parts 1: the same step)"),
             (f"{r['segen_xla_defaults_img_s']:.0f}" if r.get("segen_xla_defaults_img_s")
              else "not run"),
             f"{r['torch_nchw_img_s']:.0f}", f"{r['torch_channels_last_img_s']:.0f}",
             f"{r['keras_jax_img_s']:.0f}" if r.get("keras_jax_img_s") else "n/a",
             compiled(r),
             f"**{r['ratio']:.2f}**", f"{r['ratio_vs_torch_nchw']:.2f}", f"{r['compile_s']:.1f} ({r['compile_parts1_s']:.1f})",
             f"{r['jax_peak_rss_mb']:.0f}", "not measured"]
            for r in results]
    header = ["model", "batch", "parameters", "segen_jax img/s", "batch kept whole img/s",
              "XLA's default options img/s",
              "torch NCHW img/s", "torch channels_last img/s", "Keras 3 (JAX) img/s",
              "torch.compile img/s (segen ÷ it)", "ratio (÷ best torch eager)",
              "÷ torch NCHW", "compile s (batch whole)", "JAX peak RSS MiB", "GPU"]
    first = results[0] if results else {}
    notes = (f"\n\nCPU: {first.get('device', '?')}; "
             + ", ".join(f"{k} {v}" for k, v in first.get("versions", {}).items())
             + "; commands: " + "; ".join(f"`{r['command']}` ({r['date']}; {r['load']})"
                                          for r in results)) if results else ""
    return _common.table(header, rows) + notes


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--write", action="store_true")
    args = parser.parse_args(argv)
    order = {"classifier": 0, "tinyfcn": 1, "fcn8s": 2}
    results = sorted((json.loads(p.read_text()) for p in RESULTS.glob("*.json")),
                     key=lambda r: (order.get(r["model"], 9), r["model"], r["batch"]))
    text = markdown(results)
    print(text)
    if args.write:
        readme = README.read_text()
        if BEGIN not in readme or END not in readme:
            raise SystemExit(f"{README} lacks the markers {BEGIN} ... {END}")
        head, rest = readme.split(BEGIN, 1)
        README.write_text(head + BEGIN + "\n" + text + "\n" + END + rest.split(END, 1)[1])
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
