"""Placeholders for the transforms video-diffusion-pytorch names; building one is fine, calling it raises."""


class _Unavailable:
    def __init__(self, *args, **kwargs) -> None:
        pass

    def __call__(self, *args, **kwargs):
        raise RuntimeError(f"torchvision.transforms.{type(self).__name__} is a stub in the peers benchmark environment")


class Compose(_Unavailable):
    pass


class Resize(_Unavailable):
    pass


class RandomHorizontalFlip(_Unavailable):
    pass


class CenterCrop(_Unavailable):
    pass


class Lambda(_Unavailable):
    pass


class ToTensor(_Unavailable):
    pass
