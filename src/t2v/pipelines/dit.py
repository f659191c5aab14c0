"""The DiT / Sora pipeline: any size and duration in the trained range (one frame is an image),
a first frame to start from, and extension of a given video forward in time."""

from __future__ import annotations

import os

import numpy as np
import torch

from t2v.errors import T2VError
from t2v.pipelines.base import Pipeline
from t2v.video import Video, read_video


class DiTPipeline(Pipeline):
    """``pipe(prompt, num_frames=24, height=48, width=80)``, ``pipe(prompt, first_frame=image)``,
    ``pipe.extend(video, prompt)``."""

    def check_shape(self, num_frames: int | None, height: int | None, width: int | None) -> None:
        t, h, w = self.video_shape
        self.model.check_size(num_frames or t, height or h, width or w)

    def model_options(self, num_frames: int | None, height: int | None, width: int | None) -> dict:
        return {k: v for k, v in (("num_frames", num_frames), ("height", height), ("width", width)) if v is not None}

    def __call__(self, prompt: str, *, first_frame=None, **options) -> Video:
        if first_frame is not None:
            options["first_frame"] = self.first_frame_tensor(first_frame, (options.get("height"), options.get("width")))
        return super().__call__(prompt, **options)

    def context_tensor(self, video) -> torch.Tensor:
        """A path, a ``Video`` or a uint8 (T, H, W, 3) array -> (1, T, H, W, 3) at a size the model takes."""
        if isinstance(video, (str, os.PathLike)):
            video = read_video(video)
        frames = np.asarray(video.frames if isinstance(video, Video) else video)
        if frames.dtype != np.uint8 or frames.ndim != 4 or frames.shape[-1] != 3:
            raise T2VError(f"the video to extend must be uint8 (T, H, W, 3), got {frames.dtype} {frames.shape}")
        self.check_shape(None, frames.shape[1], frames.shape[2])
        return torch.tensor(frames)[None]

    def extend(self, video, prompt: str, *, seed: int | None = None, num_frames: int | None = None,
               **options) -> Video:
        """``video`` followed by ``num_frames`` new frames that continue it as ``prompt`` says."""
        context = self.context_tensor(video)
        _, h, w = context.shape[1:4]
        new = self.generate_batch([prompt], seed=seed, num_frames=num_frames, height=h, width=w, context=context,
                                  **options)[0]
        return Video(np.concatenate([context[0].numpy(), new.frames]), fps=self.fps)
