"""The task table: every Taskonomy task, one literal ``TaskSpec`` each.

Sources (see ``../shared/docs/taskonomy_reference.md``): output sizes, losses
and decoders from the taskbank ``experiments/final/*/config.py``; target
scalings from ``code/lib/data/load_ops.py``; clusters from
``data/assets/task_tree.jpg``; code -> dataset names from midlevel-reps
``task_mapping``; results names from ``results/affinities/*.pkl``.
Where sources disagree the choice is commented at the entry.

To add a task, append a spec here (or call ``register_task`` from your own
code); see ``docs/adding_a_task.md``.
"""

from __future__ import annotations

from taskonomy_tf.tasks.spec import Cluster, OutputKind, TaskSpec

D, V, C, N = OutputKind.DENSE, OutputKind.VECTOR, OutputKind.CLASSES, OutputKind.NONE
G3, T2, LD, SE = Cluster.GEOMETRIC_3D, Cluster.TEXTURE_2D, Cluster.LOW_DIM, Cluster.SEMANTIC

CATALOG: tuple[TaskSpec, ...] = (
    # fc_layers: 2 for most heads, 3 for non-fixated pose, egomotion and jigsaw
# (taskbank configs, reference section 1).
# ---------------------------------------------------------------- 2D
    TaskSpec(
        name="autoencoding", title="Autoencoding", domain="rgb",
        aliases=("autoencoder",), output=D, channels=3,
        loss="masked_l1", metric="mae", decode="rgb", cluster=T2,
        code_name="autoencoder", results_name="autoencoder",
        description="Reconstruct the input image in [-1, 1] (L1; the GAN "
        "term of the original is left out).",
    ),
    TaskSpec(
        name="denoising", title="Denoising", domain="rgb",
        aliases=("denoise",), output=D, channels=3,
        loss="masked_l1", metric="mae", decode="rgb", cluster=T2,
        input="noisy_rgb", code_name="denoise", results_name="denoise",
        description="Clean image from an input with Gaussian noise of "
        "variance 0.01 on [0, 1] (taskbank denoise config).",
    ),
    TaskSpec(
        name="colorization", title="Colorization", domain="rgb",
        aliases=("colorize",), output=D, channels=261, output_stride=4,
        loss="soft_ce", metric="top1", decode="ab_bins", cluster=T2,
        input="luminance", source_only=True,
        code_name="colorization", results_name="colorization",
        # The original's 313 bins (pts_in_hull.npy) are not redistributed;
        # ours are the sRGB-reachable cells of the same 10-unit ab grid (261).
        description="Soft distribution over quantised ab bins at 1/4 "
        "resolution from the L channel (Zhang et al. 2016 encoding: 10 "
        "nearest bins, Gaussian sigma 5).",
    ),
    TaskSpec(
        name="inpainting", title="In-painting", domain="rgb",
        aliases=("inpainting_whole", "impainting_whole", "context_encoding",
                 "in_painting"),
        output=D, channels=3, loss="masked_l1", metric="mae", decode="rgb",
        cluster=T2, input="centre_masked", source_only=True,
        code_name="inpainting_whole", results_name="impainting_whole",
        description="Whole image from an input whose centre half (128x128 "
        "of 256) is zeroed (taskbank inpainting config).",
    ),
    TaskSpec(
        name="edges", title="2D edges", domain="edge_texture",
        aliases=("edge2d", "edge_texture", "texture_edges", "edges_2d"),
        output=D, channels=1, loss="masked_l1", metric="mae",
        decode="unit16_range", value_range=(0.0, 0.08), clip=True,
        cluster=T2, code_name="edge2d", results_name="edge2d",
        description="Canny response without non-maximum suppression; "
        "value/65535 clipped to [0, 0.08] then mapped to [-1, 1] (load_ops).",
    ),
    TaskSpec(
        name="keypoints2d", title="2D keypoints", domain="keypoints2d",
        aliases=("keypoint2d", "keypoints_2d"), output=D, channels=1,
        loss="masked_l1", metric="mae", decode="unit16_range",
        value_range=(0.0, 0.005), clip=True, cluster=T2,
        code_name="keypoint2d", results_name="keypoint2d",
        description="SURF response without NMS; value/65535 clipped to "
        "[0, 0.005] then mapped to [-1, 1] (load_ops).",
    ),
    TaskSpec(
        name="segment_unsup2d", title="2D segmentation", domain="segment_unsup2d",
        aliases=("segment2d", "segmentation_2d", "unsupervised_segmentation_2d"),
        output=D, channels=64, loss="segment_metric", metric="segment_metric",
        decode="segment_ids", cluster=T2,
        code_name="segment2d", results_name="segment2d",
        description="64-d per-pixel embedding trained with the metric loss "
        "on 300 sampled pixels of normalized-cuts segments on RGB.",
    ),
    # ---------------------------------------------------------------- 3D
    TaskSpec(
        name="occlusion_edges", title="Occlusion edges", domain="edge_occlusion",
        aliases=("edge3d", "edge_occlusion", "edges_3d"), output=D, channels=1,
        loss="masked_l1", metric="mae", decode="unit16_range",
        value_range=(0.0, 0.00625), clip=False, blur_sigma=4.0,
        mask="depth_valid", cluster=G3,
        code_name="edge3d", results_name="edge3d",
        description="Depth-discontinuity edges; value/65535 mapped from "
        "[0, 0.00625] to [-1, 1] without clipping, then blurred sigma 4 "
        "(load_ops); targets may exceed 1.",
    ),
    TaskSpec(
        name="keypoints3d", title="3D keypoints", domain="keypoints3d",
        aliases=("keypoint3d", "keypoints_3d"), output=D, channels=1,
        loss="masked_l1", metric="mae", decode="unit16_range",
        value_range=(0.0, 1.0), clip=False, mask="depth_valid", cluster=G3,
        code_name="keypoint3d", results_name="keypoint3d",
        description="NARF response on 3D data; value/65535 mapped to [-1, 1] "
        "with no range crop (load_ops).",
    ),
    TaskSpec(
        name="segment_unsup25d", title="2.5D segmentation",
        domain="segment_unsup25d",
        aliases=("segment25d", "segmentation_25d", "unsupervised_segmentation_25d"),
        output=D, channels=64, loss="segment_metric", metric="segment_metric",
        decode="segment_ids", cluster=G3,
        code_name="segment25d", results_name="segment25d",
        description="Like 2D segmentation, on segments of RGB + normals + "
        "depth.",
    ),
    TaskSpec(
        name="curvature", title="Curvature", domain="principal_curvature",
        aliases=("principal_curvature",), output=D, channels=2,
        loss="masked_l2", metric="rmse", decode="curvature", mask="depth_valid",
        cluster=G3, code_name="curvature", results_name="curvature",
        description="Principal curvatures k1, k2 from channels 0-1, "
        "standardised with mean (123.572, 120.1) and std (31.922, 21.658) "
        "(load_ops); masked L2.",
    ),
    TaskSpec(
        name="depth_zbuffer", title="Z-depth", domain="depth_zbuffer",
        aliases=("rgb2depth", "z_depth", "zdepth", "depth"), output=D,
        channels=1, loss="masked_l1", metric="mae", decode="log_depth",
        mask="depth_valid", cluster=G3,
        code_name="rgb2depth", results_name="rgb2depth",
        description="Z-buffer depth, target log(1 + raw) / log(2^16) with raw "
        "in 1/512 m; pixels with raw >= 64500 masked (load_ops).",
    ),
    TaskSpec(
        name="depth_euclidean", title="Distance", domain="depth_euclidean",
        aliases=("rgb2mist", "mist", "distance", "euclidean_depth"), output=D,
        channels=1, loss="masked_l1", metric="mae", decode="log_depth",
        mask="depth_valid", cluster=G3,
        code_name="rgb2mist", results_name="rgb2mist",
        description="Euclidean distance to the camera centre, encoded as "
        "Z-depth.",
    ),
    TaskSpec(
        name="normals", title="Surface normals", domain="normal",
        aliases=("rgb2sfnorm", "normal", "surface_normals", "sfnorm"),
        output=D, channels=3, loss="masked_l1", metric="angle_deg",
        decode="normals", mask="depth_valid", hflip="negate_x", cluster=G3,
        code_name="rgb2sfnorm", results_name="rgb2sfnorm",
        # 3 channels per the taskbank config; decoder_loss.png says 2.
        description="Camera-frame unit normals in [-1, 1] (3 channels per "
        "the config; the taskbank table's 2 is wrong).",
    ),
    TaskSpec(
        name="reshading", title="Reshading", domain="reshading",
        aliases=("reshade",), output=D, channels=1, loss="masked_l1",
        metric="mae", decode="reshading", mask="depth_valid", cluster=G3,
        code_name="reshade", results_name="reshade",
        # 1 channel as in omnidata; taskgrouping's model has 3 (R=G=B).
        description="Shading from one point light at the camera with fixed "
        "albedo, [0, 1] -> [-1, 1]; one channel (omnidata task_configs).",
    ),
    # ------------------------------------------------- low-dim geometric
    TaskSpec(
        name="room_layout", title="Room layout", domain="point_info",
        aliases=(), output=V, channels=9, loss="mse", metric="rmse",
        decode="room_layout", hflip="never", cluster=LD,
        code_name="room_layout", results_name="room_layout",
        description="Room box centre in camera frame (3), camera Euler "
        "angles (3), box extents (3), world turned by k*90 deg about z so "
        "the camera looks along +x; standardised on the data.",
    ),
    TaskSpec(
        name="vanishing_points", title="Vanishing points", domain="point_info",
        aliases=("vanishing_point", "vanishing_point_well_defined"),
        output=V, channels=9, loss="mse", metric="rmse",
        decode="vanishing_points", hflip="never", cluster=LD,
        code_name="vanishing_point_well_defined",
        results_name="vanishing_point_well_defined",
        # 9 values per the config; decoder_loss.png says 6.
        description="The three world axes in the camera frame after the "
        "'well-defined axes' k*90 deg world turn (load_ops): 9 values.",
    ),
    TaskSpec(
        name="fixated_pose", title="Camera pose (fixated)", domain="point_info",
        aliases=("fix_pose", "camera_pose_fixated"), output=V, channels=6,
        loss="pose_norm", metric="pose_error", decode="relative_pose",
        views=2, hflip="never", cluster=LD,
        code_name="fix_pose", results_name="fix_pose",
        description="Relative pose of two views of the same point: "
        "euler(R2^T R1) and R2^T (c1 - c2), standardised on the data.",
    ),
    TaskSpec(
        name="nonfixated_pose", title="Camera pose (non-fixated)",
        domain="point_info",
        aliases=("non_fixated_pose", "camera_pose_nonfixated"), output=V,
        channels=6, loss="pose_norm", metric="pose_error",
        decode="relative_pose_nonfixated", views=2, hflip="never", fc_layers=3,
        cluster=LD, code_name="non_fixated_pose",
        results_name="non_fixated_pose",
        description="Relative pose of two overlapping views of different "
        "points (nonfixated_points_in_view).",
    ),
    TaskSpec(
        name="egomotion", title="Egomotion", domain="point_info",
        aliases=("ego_motion", "triplet_egomotion"), output=V, channels=18,
        loss="ego_cycle", metric="pose_error", decode="egomotion", views=3,
        hflip="never", fc_layers=3, cluster=LD,
        code_name="ego_motion", results_name="ego_motion",
        description="Relative poses 12, 13, 23 of three views of one point "
        "(18 values).",
    ),
    TaskSpec(
        name="point_matching", title="Point matching", domain="point_info",
        aliases=("point_match",), output=C, channels=2, loss="soft_ce",
        metric="top1", decode="point_match", views=2, hflip="never",
        cluster=LD, code_name="point_match", results_name="point_match",
        description="Whether the centre pixels of two views are the same "
        "3D point (class 1) or not (class 0).",
    ),
    TaskSpec(
        name="jigsaw", title="Jigsaw", domain="rgb", aliases=("jigsaw_puzzle",),
        output=C, channels=100, loss="soft_ce", metric="top1",
        decode="jigsaw_permutation", views=9, input="jigsaw_tiles",
        hflip="never", fc_layers=3, source_only=True, cluster=LD,
        code_name="jigsaw", results_name="jigsaw",
        description="Which of 100 maximal-Hamming permutations shuffled the "
        "3x3 tiles (each tile 90% of its cell, randomly offset).",
    ),
    TaskSpec(
        name="random", title="Random projection", domain=None,
        aliases=("random_projection", "random_network"), output=N,
        channels=0, loss="none", metric="none", decode="none",
        source_only=True, cluster=LD,
        code_name="random", results_name="random",
        description="A Gaussian-initialised encoder, never trained: a "
        "baseline source.",
    ),
    # --------------------------------------------------------- semantic
    TaskSpec(
        name="class_object", title="Object class", domain="class_object",
        aliases=("class_1000", "object_classification", "imagenet"),
        output=C, channels=1000, loss="soft_ce", metric="top1",
        decode="softmax_logits", mask="file_present", hflip="keep",
        cluster=SE, code_name="class_1000", results_name="class_1000",
        description="Soft ImageNet-1k targets: softmax of the stored "
        "ResNet-152 logits (load_ops).",
    ),
    TaskSpec(
        name="class_scene", title="Scene class", domain="class_scene",
        aliases=("class_places", "scene_classification", "places"),
        output=C, channels=63, loss="soft_ce", metric="top1",
        decode="places63", mask="file_present", cluster=SE, classes="places63",
        code_name="class_places", results_name="class_places",
        description="Places-365 probabilities restricted to 63 home and "
        "workspace classes and renormalised (load_ops).",
    ),
    TaskSpec(
        name="segment_semantic", title="Semantic segmentation",
        domain="segment_semantic",
        aliases=("segmentsemantic", "segmentsemantic_rb",
                 "semantic_segmentation"),
        output=D, channels=17, loss="pixel_sparse_ce", metric="pixel_accuracy",
        decode="semantic_labels", mask="label_positive", cluster=SE,
        classes="semantic", code_name="segmentsemantic",
        results_name="segmentsemantic_rb",
        # 17 = background + 16 COCO classes (omnidata); taskgrouping uses 18.
        description="FCIS pseudo-labels: label 0 (uncertain) masked, then "
        "label - 1 gives 17 classes, 0 = background (load_ops).",
    ),
)
