# DeepLabV3 R-50 on iSAID, 896x896 crops, with resolution-aware atrous rates (paper B): output
# stride 8 -> a 112x112 feature map, rates (18, 37, 55). mmseg ships no DeepLabV3 iSAID config;
# this one is assembled from mmseg's own bases the way its PSPNet iSAID config is.
_base_ = [
    'mmseg::_base_/models/deeplabv3_r50-d8.py', 'mmseg::_base_/datasets/isaid.py',
    'mmseg::_base_/default_runtime.py', 'mmseg::_base_/schedules/schedule_80k.py'
]
custom_imports = dict(imports=['zoo.mmseg'], allow_failed_imports=False)
crop_size = (896, 896)
data_preprocessor = dict(size=crop_size)
model = dict(
    data_preprocessor=data_preprocessor,
    decode_head=dict(
        type='ResolutionAwareASPPHead',
        dilations='auto',
        crop_size=crop_size,
        output_stride=8,
        num_classes=16),
    auxiliary_head=dict(num_classes=16))
