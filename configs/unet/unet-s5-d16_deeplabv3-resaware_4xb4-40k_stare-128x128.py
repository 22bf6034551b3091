# U-Net + ASPP on STARE with resolution-aware atrous rates (paper B). The U-Net's ASPP head
# runs at full resolution (output stride 1) on 128x128 crops: rates (21, 42, 63) instead of
# mmseg's (12, 24, 36). Everything else is mmseg's config.
_base_ = ['mmseg::unet/unet-s5-d16_deeplabv3_4xb4-40k_stare-128x128.py']
custom_imports = dict(imports=['zoo.mmseg'], allow_failed_imports=False)
crop_size = (128, 128)
model = dict(
    decode_head=dict(
        type='ResolutionAwareASPPHead',
        dilations='auto',
        crop_size=crop_size,
        output_stride=1))
