"""Where a tokenizer's reconstruction error lies: on the black background or on the objects.

    python benchmarks/background.py stage-1e:DIR stage-1f:checkpoints/phenaki-shapes
    # -> benchmarks/results/background.json (or --name NAME)

Moving Shapes videos are mostly black. A decoder that leaves the background a grey level or two above
zero costs little PSNR and is invisible, but SSIM's luminance term punishes faint values on black, so
SSIM can fall while PSNR and the objects improve. For each tokenizer (``NAME:DIR``: a stage-1
checkpoint or a model holding one) this reconstructs ``-n`` test-split videos and reports PSNR, SSIM,
the share of background pixels (black in every channel of the rendered video) that come back above
zero and at 3 levels or more, and the mean absolute error on the other pixels.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

from t2v.checkpoint import load_model
from t2v.eval.metrics import psnr, ssim
from t2v.eval.run import rendered_examples, tokenizer_of

RESULTS = Path(__file__).resolve().parent / "results"


def error_split(frames: torch.Tensor, recon: torch.Tensor) -> dict:
    """PSNR, SSIM and the error on background and object pixels of uint8 videos (N, T, H, W, 3)."""
    background = (frames == 0).all(-1)  # (N, T, H, W)
    lit = recon.float()[background]  # (P, 3) reconstructed background pixels
    objects = (recon.float() - frames.float())[~background].abs()
    return {"psnr_db": psnr(frames, recon).mean().item(), "ssim": ssim(frames, recon).mean().item(),
            "background_above_zero": (lit > 0).float().mean().item(),
            "background_at_3_or_more": (lit >= 3).float().mean().item(),
            "background_mean_level": lit.mean().item(), "object_mean_abs_error": objects.mean().item()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tokenizers", nargs="+", help="NAME:DIR, a stage-1 checkpoint or a model holding one")
    parser.add_argument("-n", type=int, default=32, help="test-split videos")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--name", default="background")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows = []
    for spec in args.tokenizers:
        name, _, directory = spec.partition(":")
        if not directory:
            parser.error(f"expected NAME:DIR, got {spec!r}")
        tokenizer = tokenizer_of(load_model(directory))
        cfg = tokenizer.config
        frames, _ = rendered_examples(range(args.seed, args.seed + args.n), split="test",
                                      shape=(cfg.num_frames, cfg.height, cfg.width))
        with torch.inference_mode():
            row = {"name": name, "directory": directory, **error_split(frames, tokenizer.reconstruct(frames))}
        rows.append(row)
        print(f"{name}: PSNR {row['psnr_db']:.2f} dB, SSIM {row['ssim']:.3f}, background above zero "
              f"{row['background_above_zero']:.1%} (>= 3 levels {row['background_at_3_or_more']:.1%}), "
              f"object mean abs error {row['object_mean_abs_error']:.2f}")
    out = RESULTS / f"{args.name}.json"
    out.write_text(json.dumps({"videos": args.n, "seed": args.seed, "split": "test", "rows": rows}, indent=2) + "\n")
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
