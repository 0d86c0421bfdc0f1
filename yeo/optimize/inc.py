"""Intel Neural Compressor's (ONNX line) accuracy-aware autotune, as a second INT8 backend."""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from yeo.optimize.portability import pair_overflows
from yeo.optimize.quantize import ImageCalibrationReader, calibration_method, excluded_nodes, finish
from yeo.optimize.recipes import QuantRecipe

log = logging.getLogger(__name__)


def autotune_inc(
    fp32: Path,
    out: Path,
    recipes: list[QuantRecipe],
    images: list[Path],
    imgsz: int,
    score: Any,
    reference_map: float,
    max_drop: float,
) -> tuple[Path | None, list[dict[str, Any]], QuantRecipe | None]:
    """Intel Neural Compressor's (ONNX line) accuracy-aware ``autotune`` over ``recipes``.

    Its eval function is ``score`` (the project's evaluator); its criterion is the absolute
    ``max_drop`` expressed as INC's relative ``tolerable_loss``. Returns the model it returns
    (None if it found none), one record per evaluation, and the recipe of that model.

    INC's verdict is not trusted: its tuning monitor also stops on the last trial whatever the
    accuracy, and it calls ``exit(0)`` when nothing meets the budget (caught here). Callers
    re-score the model (:func:`quantize_int8`).
    """
    import onnx
    import onnxruntime as ort
    from onnx_neural_compressor import data_reader
    from onnx_neural_compressor.quantization import config, tuning
    from onnxruntime.quantization import QuantFormat, QuantType

    source = onnx.load(str(fp32))
    base_reader = ImageCalibrationReader(images, imgsz, source.graph.input[0].name)

    class Reader(data_reader.CalibrationDataReader):
        def get_next(self) -> dict[str, np.ndarray] | None:
            return base_reader.get_next()

        def rewind(self) -> None:
            base_reader.rewind()

    reader = Reader()
    configs = [
        config.StaticQuantConfig(
            calibration_data_reader=reader,
            calibrate_method=calibration_method(r.calibrate),
            quant_format=QuantFormat.QDQ,
            activation_type=QuantType.QUInt8 if r.activation == "u8" else QuantType.QInt8,
            weight_type=QuantType.QInt8,
            per_channel=r.per_channel,
            reduce_range=r.portable,  # asked for; INC 1.0's autotune does not apply it (below)
            nodes_to_exclude=excluded_nodes(source, r.exclude),
            extra_options={"CalibPercentile": r.percentile},
            execution_provider="CPUExecutionProvider",
        )
        for r in recipes
    ]
    records: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory(prefix="yeo-inc-") as tmp:

        def eval_fn(model_path: str) -> float:
            candidate = finish(Path(model_path), source, Path(tmp) / "candidate.onnx", None)
            m = score(candidate)
            # evaluation 0 is INC's FP32 baseline; evaluation i > 0 is configs[i - 1]
            recipe = recipes[len(records) - 1].name if records else "fp32 baseline"
            records.append({"evaluation": len(records), "recipe": recipe, "map50_95": m})
            return m

        tolerable = max_drop / reference_map if reference_map > 0 else 0.0
        try:
            best = tuning.autotune(
                str(fp32),
                tuning.TuningConfig(
                    config_set=configs, tolerable_loss=tolerable, max_trials=len(configs)
                ),
                eval_fn=eval_fn,
                calibration_data_reader=reader,
                optimization_level=ort.GraphOptimizationLevel.ORT_DISABLE_ALL,  # node names
            )
        except SystemExit:  # INC's "found nothing" (and failed baseline) path calls exit(0)
            log.warning("INC autotune found no model within the budget (it called exit)")
            best = None
        if best is None or len(records) < 2:
            return None, records, None
        chosen = next(r for r in recipes if r.name == records[-1]["recipe"])  # last evaluated
        # INC 1.0's autotune does not apply reduce_range to the weights (seen: up to +-127),
        # so whether its model is portable is read off the model, not the recipe
        portable = not pair_overflows(best)
        raw = Path(tmp) / "best.onnx"
        onnx.save(best, str(raw))
        finish(
            raw, source, out, chosen.as_dict() | {"backend": "inc-autotune", "portable": portable}
        )
    return out, records, chosen
