# U-Net + ASPP on HRF with resolution-aware atrous rates (paper B): full-resolution head
# (output stride 1), 256x256 crops, rates (42, 85, 127).
_base_ = ['mmseg::unet/unet-s5-d16_deeplabv3_4xb4-40k_hrf-256x256.py']
custom_imports = dict(imports=['zoo.mmseg'], allow_failed_imports=False)
crop_size = (256, 256)
model = dict(
    decode_head=dict(
        type='ResolutionAwareASPPHead',
        dilations='auto',
        crop_size=crop_size,
        output_stride=1))
