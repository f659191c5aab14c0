"""A stand-in for torchvision, on sys.path only inside benchmarks/peers.py.

video-diffusion-pytorch imports ``torchvision.transforms`` and ``torchvision.utils`` at module
level for its GIF dataset and trainer, which the benchmark does not use; the real torchvision does
not load with our CPU torch build. Anything that is actually called raises.
"""

from torchvision import transforms, utils

__all__ = ["transforms", "utils"]
