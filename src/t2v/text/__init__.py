"""Text encoders behind one interface: ``build_text_encoder(TextEncoderConfig(...))(prompts) -> TextEmbedding``."""

from t2v.text.encoders import (
    MiniLMEncoder,
    SmallTextEncoder,
    TextEmbedding,
    TextEncoder,
    TextEncoderConfig,
    build_text_encoder,
    hash_tokenize,
)

__all__ = ["MiniLMEncoder", "SmallTextEncoder", "TextEmbedding", "TextEncoder", "TextEncoderConfig",
           "build_text_encoder", "hash_tokenize"]
