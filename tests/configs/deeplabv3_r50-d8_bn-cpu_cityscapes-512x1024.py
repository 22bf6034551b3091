# Environment smoke test: mmseg's own DeepLabV3 R-50 config, inherited through the mmseg::
# scope, made buildable on one CPU process (plain BN instead of SyncBN, no pretrained download).
_base_ = ['mmseg::deeplabv3/deeplabv3_r50-d8_4xb2-40k_cityscapes-512x1024.py']

norm_cfg = dict(type='BN', requires_grad=True)
model = dict(
    pretrained=None,
    backbone=dict(norm_cfg=norm_cfg),
    decode_head=dict(norm_cfg=norm_cfg),
    auxiliary_head=dict(norm_cfg=norm_cfg),
)
