"""Moving Shapes vocabulary: attribute values, caption templates and synonyms.

Words are split in two sets: the training templates use ``TRAIN`` synonyms only, and the
paraphrase prompt set uses ``PARAPHRASE`` synonyms that never appear in training captions.
The checker's parser understands both.
"""

from __future__ import annotations

PALETTE: dict[str, tuple[int, int, int]] = {
    "red": (220, 40, 40),
    "green": (40, 190, 60),
    "blue": (40, 90, 230),
    "yellow": (235, 215, 40),
    "magenta": (210, 50, 210),
    "cyan": (40, 210, 210),
    "white": (235, 235, 235),
    "orange": (245, 140, 30),
}
COLOURS = tuple(PALETTE)
SHAPES = ("circle", "square", "triangle")
SIZES = ("small", "large")
MOTIONS = ("left", "right", "up", "down", "still")
HELD_OUT_PAIRS = frozenset({("red", "triangle"), ("green", "circle"), ("blue", "square"), ("orange", "circle")})

# Synonyms used by training captions (the canonical word is always first).
TRAIN_SYNONYMS: dict[str, tuple[str, ...]] = {
    "small": ("small", "little"),
    "large": ("large", "big"),
    "circle": ("circle", "disc"),
    "square": ("square", "block"),
    "triangle": ("triangle",),
}
TRAIN_MOTION_PHRASES: dict[str, tuple[str, ...]] = {
    "left": ("moving left", "moves to the left", "goes left", "moving to the left"),
    "right": ("moving right", "moves to the right", "goes right", "moving to the right"),
    "up": ("moving up", "moves up", "goes up", "moving upwards"),
    "down": ("moving down", "moves down", "goes down", "moving downwards"),
    "still": ("staying still", "that does not move", "standing still", "not moving"),
}

# Synonyms that never appear in training captions: the paraphrase prompt set draws from these.
PARAPHRASE_SYNONYMS: dict[str, tuple[str, ...]] = {
    "small": ("tiny", "smaller"),
    "large": ("huge", "bigger"),
    "circle": ("ball", "round disk"),
    "square": ("box", "cube"),
    "triangle": ("pyramid", "wedge"),
}
PARAPHRASE_MOTION_PHRASES: dict[str, tuple[str, ...]] = {
    "left": ("drifting leftwards", "sliding towards the left", "travelling to the left side"),
    "right": ("drifting rightwards", "sliding towards the right", "travelling to the right side"),
    "up": ("rising", "drifting upward", "travelling towards the top"),
    "down": ("falling", "sinking downward", "travelling towards the bottom"),
    "still": ("motionless", "resting in place", "stationary"),
}

# Words the parser maps to a motion (single tokens, checked after multi-word phrases).
MOTION_WORDS: dict[str, str] = {
    "left": "left", "leftwards": "left", "leftward": "left",
    "right": "right", "rightwards": "right", "rightward": "right",
    "up": "up", "upwards": "up", "upward": "up", "rising": "up", "rises": "up", "top": "up",
    "down": "down", "downwards": "down", "downward": "down", "falling": "down", "falls": "down",
    "sinking": "down", "bottom": "down",
    "still": "still", "motionless": "still", "stationary": "still", "place": "still",
}
# Multi-word phrases mapping to "still" (they contain no direction word).
STILL_PHRASES = ("does not move", "not moving", "doesn't move", "in place")
