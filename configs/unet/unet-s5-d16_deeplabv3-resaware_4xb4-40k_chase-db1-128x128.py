# U-Net + ASPP on CHASE_DB1 with resolution-aware atrous rates (paper B): full-resolution head
# (output stride 1), 128x128 crops, rates (21, 42, 63).
_base_ = ['mmseg::unet/unet_s5-d16_deeplabv3_4xb4-40k_chase-db1-128x128.py']
custom_imports = dict(imports=['zoo.mmseg'], allow_failed_imports=False)
crop_size = (128, 128)
model = dict(
    decode_head=dict(
        type='ResolutionAwareASPPHead',
        dilations='auto',
        crop_size=crop_size,
        output_stride=1))
