"""What every stage-2 model over a frozen stage-1 tokenizer shares: building it on a trained
tokenizer checkpoint, and keeping that tokenizer frozen and in eval mode."""

from __future__ import annotations

from dataclasses import replace

from torch import nn

from t2v.checkpoint import load_model, read_training_stages


class TokenizerPrior(nn.Module):
    """Subclasses set ``tokenizer_class`` and ``tokenizer_field`` (the config field holding its config)."""

    tokenizer_class: type
    tokenizer_field: str

    @classmethod
    def for_training(cls, config):
        """A fresh model on top of the trained tokenizer checkpoint named by ``config.tokenizer``."""
        tokenizer = load_model(config.tokenizer, family=cls.tokenizer_class.family)
        model = cls(replace(config, **{cls.tokenizer_field: tokenizer.config}))
        model.tokenizer.load_state_dict(tokenizer.state_dict())
        model.earlier_stages = read_training_stages(config.tokenizer)  # how stage 1 was trained, for the card
        return model

    def train(self, mode: bool = True):
        super().train(mode)
        self.tokenizer.eval()  # frozen stage 1: its EMA codebook must not move
        return self
