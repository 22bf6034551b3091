# Monocular depth on NYU (mmseg's dataset format) with the NaN-safe SILog loss and a head that
# predicts log-depth as logsigmoid(x) + log(max_depth) (paper A). A ResNet-50 (d8) encoder and
# StableDepthHead in mmseg's DepthEstimator; data, runtime and schedule are mmseg's.
_base_ = [
    'mmseg::_base_/datasets/nyu.py', 'mmseg::_base_/default_runtime.py',
    'mmseg::_base_/schedules/schedule_25k.py'
]
custom_imports = dict(imports=['zoo.mmseg'], allow_failed_imports=False)
crop_size = (480, 480)
norm_cfg = dict(type='SyncBN', requires_grad=True)
model = dict(
    type='DepthEstimator',
    data_preprocessor=dict(
        type='SegDataPreProcessor',
        mean=[123.675, 116.28, 103.53],
        std=[58.395, 57.12, 57.375],
        bgr_to_rgb=True,
        pad_val=0,
        seg_pad_val=0,
        size=crop_size),
    pretrained='open-mmlab://resnet50_v1c',
    backbone=dict(
        type='ResNetV1c',
        depth=50,
        num_stages=4,
        out_indices=(0, 1, 2, 3),
        dilations=(1, 1, 2, 4),
        strides=(1, 2, 1, 1),
        norm_cfg=norm_cfg,
        norm_eval=False,
        style='pytorch',
        contract_dilation=True),
    decode_head=dict(
        type='StableDepthHead',
        in_channels=2048,
        in_index=3,
        channels=256,
        num_convs=2,
        max_depth=10.0,
        norm_cfg=norm_cfg,
        align_corners=False,
        loss_decode=dict(
            type='StableSiLogLoss', pred_space='log_depth', lambd=0.5,
            sqrt=False)),
    train_cfg=dict(),
    test_cfg=dict(mode='whole'))
# mmseg's NYU pipeline without its Albu step (albumentations is not a dependency here)
train_pipeline = [
    dict(type='LoadImageFromFile'),
    dict(type='LoadDepthAnnotation', depth_rescale_factor=1e-3),
    dict(type='RandomDepthMix', prob=0.25),
    dict(type='RandomFlip', prob=0.5),
    dict(type='RandomCrop', crop_size=crop_size),
    dict(
        type='PackSegInputs',
        meta_keys=('img_path', 'depth_map_path', 'ori_shape', 'img_shape',
                   'pad_shape', 'scale_factor', 'flip', 'flip_direction',
                   'category_id')),
]
train_dataloader = dict(dataset=dict(pipeline=train_pipeline))
custom_hooks = [dict(type='NonFiniteLossHook')]
optim_wrapper = dict(
    constructor='GammaDecayOptimWrapperConstructor',
    paramwise_cfg=dict(gamma_policy='paper'))
