# DeepLabV3 R-101 on Cityscapes with resolution-aware atrous rates (paper B): output stride 8,
# 512x1024 crops -> a 64x128 feature map; rates (10, 21, 31), whose 3x3 spans fit its 64 rows
# (mmseg's 36 spans 73).
_base_ = ['mmseg::deeplabv3/deeplabv3_r101-d8_4xb2-40k_cityscapes-512x1024.py']
custom_imports = dict(imports=['zoo.mmseg'], allow_failed_imports=False)
crop_size = (512, 1024)
model = dict(
    decode_head=dict(
        type='ResolutionAwareASPPHead',
        dilations='auto',
        crop_size=crop_size,
        output_stride=8))
