"""MLflow pyfunc model (logged "from code", no pickling) that runs ultralytics weights.

``mlflow.pyfunc.load_model("models:/NAME/VERSION").predict([image paths])`` returns one dict
per image with ``boxes`` (xyxy pixels), ``classes`` and ``scores``.
"""

from __future__ import annotations

import mlflow
import mlflow.pyfunc

WEIGHTS_KEY = "weights"


class YoloDetector(mlflow.pyfunc.PythonModel):
    def load_context(self, context):
        from ultralytics import YOLO

        self.model = YOLO(context.artifacts[WEIGHTS_KEY], task="detect")

    def predict(self, context, model_input, params=None):
        images = list(model_input.iloc[:, 0]) if hasattr(model_input, "iloc") else model_input
        results = self.model.predict(images, verbose=False, **(params or {}))
        return [
            {
                "boxes": r.boxes.xyxy.tolist(),
                "classes": r.boxes.cls.tolist(),
                "scores": r.boxes.conf.tolist(),
            }
            for r in results
        ]


mlflow.models.set_model(YoloDetector())
