"""Serve a verified edge bundle over HTTP (FastAPI): ``python -m edge.serve BUNDLE``.

The one module of ``edge/`` that needs more than numpy, onnxruntime and pillow: fastapi,
uvicorn and python-multipart (``edge/requirements-serve.txt``). Inference runs through the
edge runtime in a bounded thread pool, so concurrent requests use the cores and never block
the event loop. Bad input gets a 4xx with a one-line reason, never a 500.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any

import anyio
from fastapi import FastAPI, HTTPException, Query, Request
from PIL import Image, UnidentifiedImageError
from pydantic import BaseModel

from edge.metadata import read_metadata
from edge.preprocess import ImageTooLarge, load_image
from edge.runtime import Detector
from edge.verify import verify


@dataclass(frozen=True)
class Limits:
    max_bytes: int = 10 * 1024 * 1024  # request body
    max_pixels: int = 40_000_000  # width x height, checked before decoding


class BundleError(RuntimeError):
    """The bundle failed edge.verify: the server does not start."""


class Box(BaseModel):
    x1: float
    y1: float
    x2: float
    y2: float


class DetectionOut(BaseModel):
    class_id: int
    class_name: str
    score: float
    box: Box


class Prediction(BaseModel):
    detections: list[DetectionOut]
    width: int
    height: int
    timing_ms: dict[str, float]
    thresholds: dict[str, float]


class Health(BaseModel):
    status: str
    model: str
    uptime_s: float


class TooLarge(Exception):
    pass


class BodyLimit:
    """ASGI middleware: 413 for a body over ``max_bytes``, by Content-Length before reading
    and by counting chunks for streamed bodies, so no oversized body is held in memory."""

    def __init__(self, app: Any, max_bytes: int) -> None:
        self.app, self.max_bytes = app, max_bytes

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        length = dict(scope.get("headers") or []).get(b"content-length")
        if length is not None and (not length.isdigit() or int(length) > self.max_bytes):
            return await self._reject(send)
        seen, started = 0, False

        async def limited_receive() -> dict:
            nonlocal seen
            message = await receive()
            seen += len(message.get("body", b""))
            if seen > self.max_bytes:
                raise TooLarge
            return message

        async def tracking_send(message: dict) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except TooLarge:
            if not started:
                await self._reject(send)

    async def _reject(self, send: Any) -> None:
        body = json.dumps({"detail": f"request body over {self.max_bytes} bytes"}).encode()
        await send(
            {
                "type": "http.response.start",
                "status": 413,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})


def decode(data: bytes, limits: Limits) -> Image.Image:
    """Bytes -> RGB image, or an HTTPException with a 4xx status and one-line reason."""
    if not data:
        raise HTTPException(400, "empty body: send one image (multipart field 'file' or raw)")
    try:
        return load_image(io.BytesIO(data), limits.max_pixels)
    except ImageTooLarge as e:
        raise HTTPException(413, str(e)) from None
    except Image.DecompressionBombError as e:
        raise HTTPException(413, f"image too large: {e}") from None
    except UnidentifiedImageError:
        raise HTTPException(
            415, "not an image format this server can decode (JPEG, PNG, BMP, TIFF, WebP, GIF)"
        ) from None
    except (OSError, SyntaxError, ValueError) as e:  # truncated / corrupt data
        raise HTTPException(
            400, f"corrupt or truncated image: {' '.join(str(e).split())}"
        ) from None
    except Exception as e:  # any mode PIL cannot turn into RGB
        raise HTTPException(415, f"unsupported image: {type(e).__name__}: {e}") from None


async def read_image_bytes(request: Request) -> bytes:
    """The image bytes from a multipart upload (field ``file``) or the raw body."""
    ctype = request.headers.get("content-type", "")
    if ctype.startswith("multipart/form-data"):
        try:
            form = await request.form(max_files=1, max_fields=4)
        except TooLarge:
            raise
        except Exception as e:  # malformed multipart
            raise HTTPException(400, f"malformed multipart body: {e}") from None
        upload = form.get("file")
        if upload is None or isinstance(upload, str):
            raise HTTPException(400, "multipart body without a 'file' field holding the image")
        return await upload.read()
    return await request.body()


PREDICT_BODY = {
    "requestBody": {
        "required": True,
        "content": {
            "multipart/form-data": {
                "schema": {
                    "type": "object",
                    "required": ["file"],
                    "properties": {"file": {"type": "string", "format": "binary"}},
                }
            },
            "application/octet-stream": {"schema": {"type": "string", "format": "binary"}},
            "image/jpeg": {"schema": {"type": "string", "format": "binary"}},
            "image/png": {"schema": {"type": "string", "format": "binary"}},
        },
    }
}


def create_app(
    bundle: Path,
    threads: int = 1,
    workers: int | None = None,
    limits: Limits = Limits(),
    check: bool = True,
) -> FastAPI:
    """The app for ``bundle``; raises :class:`BundleError` if it fails edge.verify."""
    bundle = Path(bundle)
    if check:
        faults, _ = verify(bundle)
        if faults:
            raise BundleError(f"{bundle} fails edge.verify: {faults[0]}")
    meta = read_metadata(bundle)
    detector = Detector(bundle, threads=threads)
    pool = anyio.CapacityLimiter(workers or os.cpu_count() or 1)
    started = time.monotonic()
    model_id = f"{meta['name']}-{meta['version']}"
    app = FastAPI(
        title=f"YOLO Edge Optimizer: {model_id}",
        version=meta["version"],
        description="Object detection with a verified edge bundle.",
    )

    @app.get("/health")
    def health() -> Health:
        return Health(status="ok", model=model_id, uptime_s=round(time.monotonic() - started, 1))

    @app.get("/metadata")
    def metadata() -> dict[str, Any]:
        return {
            "name": meta["name"],
            "version": meta["version"],
            "classes": meta["classes"],
            "input_size": meta["input"]["shape"][-1],
            "precision": meta["precision"],
            # what runs it here: the bundle's own backend when installed, else onnxruntime
            "runtime": {"backend": detector.engine.backend, "computes_in": detector.engine.runs},
            "thresholds": meta["thresholds"],
            "data_version": meta["source"].get("data_dvc_hash"),
            "source": meta["source"],
            "metrics": meta.get("metrics", {}),
        }

    def infer(data: bytes, conf: float, iou: float) -> Prediction:
        t0 = time.perf_counter()
        image = decode(data, limits)
        decode_ms = (time.perf_counter() - t0) * 1000
        dets, stages = detector.timed(image, conf, iou)
        ms = {"decode": decode_ms, **stages, "total": decode_ms + sum(stages.values())}
        return Prediction(
            detections=[
                DetectionOut(
                    class_id=d.class_id,
                    class_name=d.class_name,
                    score=round(d.score, 5),
                    box=Box(**dict(zip(("x1", "y1", "x2", "y2"), d.box, strict=True))),
                )
                for d in dets
            ],
            width=image.width,
            height=image.height,
            timing_ms={k: round(v, 3) for k, v in ms.items()},
            thresholds={"conf": conf, "iou": iou},
        )

    @app.post(
        "/predict",
        openapi_extra=PREDICT_BODY,
        responses={
            400: {"description": "empty, truncated or malformed body"},
            413: {"description": "body or image over the configured limits"},
            415: {"description": "not a decodable image"},
        },
    )
    async def predict(
        request: Request,
        conf: Annotated[float | None, Query(ge=0.0, le=1.0, description="confidence")] = None,
        iou: Annotated[float | None, Query(gt=0.0, le=1.0, description="NMS IoU")] = None,
    ) -> Prediction:
        """Detect objects in one image: multipart field ``file`` or the raw image bytes."""
        data = await read_image_bytes(request)
        c = detector.conf if conf is None else conf
        i = detector.iou if iou is None else iou
        return await anyio.to_thread.run_sync(infer, data, c, i, limiter=pool)

    app.add_middleware(BodyLimit, max_bytes=limits.max_bytes)
    return app


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(
        prog="python -m edge.serve",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    ap.add_argument("bundle", type=Path)
    ap.add_argument("--host", default="127.0.0.1")
    ap.add_argument("--port", type=int, default=8000)
    ap.add_argument("--threads", type=int, default=1, help="onnxruntime threads per inference")
    ap.add_argument("--workers", type=int, default=None, help="concurrent inferences (cores)")
    ap.add_argument("--max-bytes", type=int, default=Limits.max_bytes)
    ap.add_argument("--max-pixels", type=int, default=Limits.max_pixels)
    args = ap.parse_args(argv)
    serve(
        args.bundle,
        args.host,
        args.port,
        args.threads,
        args.workers,
        Limits(args.max_bytes, args.max_pixels),
    )
    return 0


def serve(
    bundle: Path,
    host: str,
    port: int,
    threads: int = 1,
    workers: int | None = None,
    limits: Limits = Limits(),
) -> None:
    """Verify the bundle, then run uvicorn until interrupted; exit 1 on a bad bundle."""
    import uvicorn

    try:
        app = create_app(bundle, threads, workers, limits)
    except (BundleError, OSError, ValueError, KeyError) as e:  # ValueError: bad JSON, model
        print(f"edge.serve: refusing to start: {e}", file=sys.stderr)
        raise SystemExit(1) from None
    uvicorn.run(app, host=host, port=port, log_level="info")


if __name__ == "__main__":
    sys.exit(main())
