# DeepLabV3 on Cityscapes with a zoo timm variant as backbone: resnet50_kp (kernel padding,
# paper H) through mmseg's TIMMBackbone at output stride 8, and resolution-aware ASPP rates
# (paper B). `zoo.mmseg` registers the zoo's variants with timm.
_base_ = ['mmseg::deeplabv3/deeplabv3_r50-d8_4xb2-40k_cityscapes-512x1024.py']
custom_imports = dict(imports=['zoo.mmseg'], allow_failed_imports=False)
crop_size = (512, 1024)
model = dict(
    pretrained=None,
    backbone=dict(
        _delete_=True,
        type='mmseg.TIMMBackbone',
        model_name='resnet50_kp',
        features_only=True,
        pretrained=False,
        output_stride=8,
        out_indices=(1, 2, 3, 4)),
    decode_head=dict(
        type='ResolutionAwareASPPHead',
        dilations='auto',
        crop_size=crop_size,
        output_stride=8))
