"""Dataset formats shared by the labeler (labels -> datasets) and the model-server
(training manifests): one in-memory model and readers/writers for each format.

- :class:`Dataset` / :class:`ImageAnnotations` / :class:`Box`: absolute pixels from the
  top-left corner; ``group`` = the media (video) an image came from.
- Ground Truth bounding-box manifests (= Rekognition Custom Labels training manifests):
  :func:`read_ground_truth`, :func:`write_ground_truth`.
- Ground Truth video frame object detection: :func:`read_ground_truth_video`.
- COCO: :func:`read_coco`, :func:`write_coco`.
- YOLO: :func:`read_yolo`, :func:`write_yolo` (``data.yaml``: :func:`read_data_yaml`,
  :func:`write_data_yaml`).
- :func:`validate_dataset`, :func:`statistics`, :func:`split_by_group`; with few videos
  (:data:`FEW_MEDIA`), :func:`in_blocks` / :func:`in_position_blocks` first, so a split
  holds out time blocks of each video instead of whole videos.

Every problem is a :class:`DatasetError` naming the line, field and image.
"""

from brandlens_core.datasets.base import (
    EDGE_TOLERANCE_PX,
    GROUP_FIELD,
    MAX_BOXES_PER_IMAGE,
    MAX_LABELS,
    Box,
    Dataset,
    ImageAnnotations,
    validate_dataset,
)
from brandlens_core.datasets.coco import read_coco, write_coco
from brandlens_core.datasets.errors import DatasetError
from brandlens_core.datasets.ground_truth import (
    read_ground_truth,
    read_ground_truth_video,
    write_ground_truth,
)
from brandlens_core.datasets.split import (
    BLOCK_MARK,
    FEW_MEDIA,
    DatasetStatistics,
    LabelStatistics,
    in_blocks,
    in_position_blocks,
    is_block,
    media_count,
    media_of,
    split_by_group,
    statistics,
)
from brandlens_core.datasets.yolo import (
    read_data_yaml,
    read_yolo,
    write_data_yaml,
    write_yolo,
    yolo_label_name,
)

__all__ = [
    "BLOCK_MARK",
    "EDGE_TOLERANCE_PX",
    "FEW_MEDIA",
    "GROUP_FIELD",
    "MAX_BOXES_PER_IMAGE",
    "MAX_LABELS",
    "Box",
    "Dataset",
    "DatasetError",
    "DatasetStatistics",
    "ImageAnnotations",
    "LabelStatistics",
    "in_blocks",
    "in_position_blocks",
    "is_block",
    "media_count",
    "media_of",
    "read_coco",
    "read_data_yaml",
    "read_ground_truth",
    "read_ground_truth_video",
    "read_yolo",
    "split_by_group",
    "statistics",
    "validate_dataset",
    "write_coco",
    "write_data_yaml",
    "write_ground_truth",
    "write_yolo",
    "yolo_label_name",
]
