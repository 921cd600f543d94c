"""fer_train's settings: every field is a --option of the command and a line of the card."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class TrainConfig:
    train: str
    val: str = field(default='', metadata={'help': "validation data, 'a+b' for several (a "
                     "posed folder gives its val split; the best epoch is the one whose worst "
                     'set scores highest); empty: hold out val_fraction of train'})
    posed: str = field(default='', metadata={'help': "posed-face folders ('kdef+cfee', with "
                       'index.csv) whose train split is mixed into the training data, cut as '
                       'fer_node cuts faces'})
    posed_repeat: int = field(default=5, metadata={'help': 'with posed: each posed face '
                              'appears this many times per epoch'})
    compound: bool = field(default=False, metadata={'help': "with posed: also train on CFEE's "
                           'compound expressions as soft targets on their two components'})
    val_fraction: float = 0.1        # whole tracks of a fer_record folder, else random images
    name: str = 'fer_model'
    arch: str = 'fer_cnn'
    arch_kwargs: dict = field(default_factory=dict)
    init: str = field(default='', metadata={'help': 'fine-tune from this registry name or '
                      'checkpoint; classifier rows are matched to the classes by name'})
    teacher: str = field(default='', metadata={'help': "distil from this model, ensemble "
                         "('a+b') or checkpoint: its flip-averaged probabilities on the "
                         'training images are mixed into the targets'})
    distill_weight: float = 0.5      # with teacher: the teacher's share of each target
    input_size: int = 48
    crop_margin: float = 0.1
    freeze_epochs: int = field(default=0, metadata={'help': 'fine-tuning: train only the '
                               'classifier layer for this many epochs first (the backbone and '
                               'its batch-norm statistics stay as --init left them)'})
    backbone_lr_scale: float = field(default=1.0, metadata={'help': "the backbone's learning "
                                     'rate as a fraction of --lr, e.g. 0.1 to fine-tune gently '
                                     'after a frozen start'})
    epochs: int = 40
    batch_size: int = 64
    optimizer: str = 'sgd'           # sgd | adamw
    lr: float = 0.05
    weight_decay: float = 5e-4
    schedule: str = 'cosine'         # cosine | plateau
    warmup_epochs: float = 1.0
    loss: str = 'auto'               # auto | ce | soft_ce  (auto: soft_ce for vote data)
    class_weights: str = 'none'      # none | balanced
    label_smoothing: float = 0.0
    center_loss_weight: float = 0.0  # 0 disables center loss
    center_lr: float = 0.5
    ema_decay: float = field(default=0.0, metadata={'help': 'validate and keep an exponential '
                             'moving average of the weights with this decay per step, e.g. '
                             '0.999 (0 disables)'})
    align_faces: bool = field(default=False, metadata={'help': "crop every training and "
                              "validation face as fer_node does (the detector's box, framing "
                              'and eye roll on the face upscaled 4x): a few minutes per split'})
    augment: bool = True
    capture_augment: bool = field(default=False, metadata={'help': 'augment as a robot camera '
                                  'captures faces: wider crop jitter, low light and contrast, '
                                  'blur, low resolution, JPEG, noise '
                                  '(fer_ros/learning/degrade.py)'})
    patience: int = 10               # early stopping, epochs without val improvement
    seed: int = 0
    threads: int = 0                 # 0: torch default
    device: str = field(default='cpu', metadata={'help': 'cpu, cuda, cuda:N or auto; on a GPU '
                        'the data stay on the device and training runs in bfloat16 autocast'})
    max_batches: int = 0             # per epoch; 0 = all (for smoke tests)


def data_name(path: str) -> str:
    """'…/fer2013/train.npz' -> 'fer2013/train.npz': what cards record, without machine paths;
    each member of an 'a+b' ensemble (a --teacher) is shortened the same way."""
    return '+'.join('/'.join(Path(p).parts[-2:]) for p in path.split('+')) if path else ''
