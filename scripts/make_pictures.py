"""docs/images/annotated.png: what image_annotated shows, made from scikit-image's astronaut
photo (NASA, public domain) by fer_node's own pipeline with landmarks on.

  .venv/bin/python scripts/make_pictures.py
"""
from pathlib import Path

import cv2
from skimage import data

from fer_ros.perception.annotate import annotate
from fer_ros.perception.classifier import ExpressionClassifier
from fer_ros.perception.face_state import FaceStates
from fer_ros.perception.landmarks import FaceLandmarker
from fer_ros.perception.pipeline import FerPipeline
from fer_ros.perception.tiling import make_detector

OUT = Path(__file__).resolve().parents[1] / 'docs' / 'images' / 'annotated.png'


def main() -> None:
    frame = cv2.cvtColor(data.astronaut(), cv2.COLOR_RGB2BGR)
    with make_detector('full_range', 0.3, 0, 0) as detector:
        pipeline = FerPipeline(detector, ExpressionClassifier(backend='auto'),
                               states=FaceStates(FaceLandmarker()))
        for _ in range(3):  # a confirmed track, as a live stream has it
            result = pipeline.process(frame)
    picture = cv2.resize(annotate(frame, result), (384, 384), interpolation=cv2.INTER_AREA)
    OUT.parent.mkdir(parents=True, exist_ok=True)
    cv2.imwrite(str(OUT), picture, [cv2.IMWRITE_PNG_COMPRESSION, 9])
    print(f'{OUT}: {", ".join(result.class_names[f.label_index] for f in result.faces)}')


if __name__ == '__main__':
    main()
