"""timm model families of the zoo, one file per family; importing registers them with timm."""

from zoo.models import resnet_dropfix, resnet_gncal, resnet_kp, vit_gauss, vit_preln

__all__ = ["resnet_dropfix", "resnet_gncal", "resnet_kp", "vit_gauss", "vit_preln"]
