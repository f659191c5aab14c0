"""Phenaki's pipeline: any frame count the causal tokenizer allows, a first frame to continue,
and stories: one video that follows a sequence of prompts."""

from __future__ import annotations

import torch

from t2v.errors import T2VError
from t2v.pipelines.base import Pipeline, check_seed
from t2v.video import Video


class PhenakiPipeline(Pipeline):
    """``pipe(prompt, first_frame=image, steps=12)`` and ``pipe.story([prompt, ...])``."""

    def check_shape(self, num_frames: int | None, height: int | None, width: int | None) -> None:
        super().check_shape(None, height, width)
        if num_frames is not None:
            self.model.config.cvivit.slots(num_frames)  # 1 + k * temporal_patch, within the position table

    def model_options(self, num_frames: int | None, height: int | None, width: int | None) -> dict:
        return {} if num_frames is None else {"slots": self.model.config.cvivit.slots(num_frames)}

    def __call__(self, prompt: str, *, first_frame=None, **options) -> Video:
        if first_frame is not None:
            options["first_frame"] = self.first_frame_tensor(first_frame)
        return super().__call__(prompt, **options)

    @torch.no_grad()
    def story(self, prompts: list[str], *, seed: int | None = None, num_frames: int | None = None,
              first_frame=None, **options) -> Video:
        """One video of ``len(prompts) * num_frames`` frames, segment i following prompt i.

        The first segment is drawn from its prompt (or continues ``first_frame``); each later one
        is conditioned on the tokens of the last frame so far, so the objects carry on from where they are.
        """
        if not prompts:
            raise T2VError("a story needs at least one prompt")
        prompts = self.prepare_prompts(prompts)
        self.check_shape(num_frames, None, None)
        self.check_options(options)
        num_frames = num_frames or self.video_shape[0]
        generators = [torch.Generator().manual_seed(check_seed(seed))]
        first = None if first_frame is None else self.first_frame_tensor(first_frame)
        with self.sampling_precision():
            video = self.model.generate(prompts[:1], generators=generators, first_frame=first,
                                        **self.model_options(num_frames, None, None), **options)  # (1, T, H, W, 3)
            for prompt in prompts[1:]:
                video = torch.cat([video, self.model.continue_video(video, [prompt], num_frames,
                                                                    generators=generators, **options)], dim=1)
        return Video(video[0].numpy(), fps=self.fps)
