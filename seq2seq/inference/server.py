"""The translation server: TensorFlow Serving's REST API, `/v1/translate` and a web page.

Built on Starlette and uvicorn. Both are maintained by the Encode team, used by FastAPI (which is
Starlette underneath), and small: Starlette needs only `anyio`, uvicorn only `h11` and `click`.
uvicorn finishes the requests in flight on SIGTERM before it stops, which a server behind a
process manager or a container needs; Starlette gives routing and responses, nothing more. The
event loop only moves bytes: translations run on the batcher's threads
(`seq2seq.inference.service`), where TensorFlow releases the GIL.

Every refused request gets a 4xx and a one-line JSON body `{"error": "..."}`, as TensorFlow
Serving answers; a failure of the server itself a 500, and the server goes on.
"""

import asyncio
import contextlib
import json
import logging
import signal
import threading
from importlib import resources

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import HTMLResponse, JSONResponse
from starlette.routing import Route

from seq2seq.inference import tf_serving
from seq2seq.inference.exported import UnsupportedExport
from seq2seq.inference.settings import DecodeOptions
from seq2seq.inference.tf_serving import BadRequest

log = logging.getLogger(__name__)

TRANSLATE_FIELDS = {
    "text": list,
    "beam_size": int,
    "alpha": float,
    "n_best": int,
    "min_length": int,
    "no_repeat_ngram_size": int,
    "prefix": str,
    "alignments": bool,
    "attention": bool,
}


def create_app(service, *, name, export_dir, max_sentences, max_body_bytes):
    """The ASGI application serving `service` (a `TranslationService`) as model `name`.

    Args:
        export_dir: the SavedModel folder (its signature defs are the metadata).
        max_sentences: sentences (rows) a request may hold, or 413.
        max_body_bytes: bytes a request body may hold, or 413.
    """
    endpoints = Endpoints(service, name, export_dir, max_sentences, max_body_bytes)
    routes = [
        Route("/", endpoints.home, methods=["GET"]),
        Route("/v1/translate", endpoints.translate, methods=["POST"]),
    ]
    for prefix in ("/v1/models/{name}", "/v1/models/{name}/versions/{version}"):
        routes += [
            Route(prefix + ":predict", endpoints.predict, methods=["POST"]),
            Route(prefix + "/metadata", endpoints.metadata, methods=["GET"]),
            Route(prefix, endpoints.status, methods=["GET"]),
        ]
    handlers = {BadRequest: refused, UnsupportedExport: refused, HTTPException: http_error}
    handlers[Exception] = failed

    @contextlib.asynccontextmanager
    async def lifespan(app):
        yield
        await asyncio.to_thread(service.close)  # after uvicorn has answered every request

    return Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)


class Endpoints:
    """The request handlers (see `create_app`)."""

    def __init__(self, service, name, export_dir, max_sentences, max_body_bytes):
        self.service = service
        self.name = name
        self.max_sentences = max_sentences
        self.max_body_bytes = max_body_bytes
        self.model_metadata = tf_serving.model_metadata(export_dir, name)
        page = resources.files("seq2seq.inference").joinpath("page.html").read_text("utf-8")
        self.page = page.replace("{{MODEL_NAME}}", json.dumps(name))

    async def home(self, request):
        return HTMLResponse(self.page)

    async def status(self, request):
        self._check_model(request)
        return JSONResponse(tf_serving.model_status())

    async def metadata(self, request):
        self._check_model(request)
        return JSONResponse(self.model_metadata)

    async def predict(self, request):
        self._check_model(request)
        body = await read_json(request, self.max_body_bytes)
        parsed = tf_serving.parse_predict(body, self.service.signatures)
        check_count(parsed.size, "the request's rows", self.max_sentences)
        outputs = await self.service.predict(parsed)
        return JSONAnswer(tf_serving.format_predict(parsed, outputs))

    async def translate(self, request):
        body = await read_json(request, self.max_body_bytes)
        texts, options, flags = translate_request(body, self.service.default_alpha)
        check_count(len(texts), "text", self.max_sentences)
        results = await self.service.translate(texts, options, **flags)
        return JSONAnswer({"translations": results})

    def _check_model(self, request):
        asked, version = request.path_params["name"], request.path_params.get("version")
        if asked != self.name:
            raise BadRequest(f"model {asked!r} not found (this server serves {self.name!r})", 404)
        if version not in (None, tf_serving.MODEL_VERSION):
            raise BadRequest(f"model {self.name!r} has no version {version} (only 1)", 404)


async def read_json(request, limit):
    """The request's body as JSON, read up to `limit` bytes.

    Raises:
        BadRequest: too long (413), not UTF-8, or not JSON (400).
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise _too_long(limit)
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise _too_long(limit)
        chunks.append(chunk)
    body = b"".join(chunks)
    try:
        return json.loads(body.decode("utf-8"))
    except UnicodeDecodeError as error:
        at = error.start
        raise BadRequest(
            f"the request body is not valid UTF-8 (byte {body[at]:#04x} at offset {at})"
        ) from None
    except json.JSONDecodeError as error:
        raise BadRequest(
            f"malformed JSON: {error.msg} (line {error.lineno}, column {error.colno})"
        ) from None


def _too_long(limit):
    return BadRequest(f"the request body is over {limit} bytes (--max-body-bytes)", 413)


def check_count(count, what, limit):
    if count > limit:
        raise BadRequest(
            f"{what}: {count} sentences, over the {limit} a request allowed (--max-sentences)", 413
        )


def translate_request(body, default_alpha):
    """(sentences, `DecodeOptions`, {"alignments": ..., "attention": ...}) of `/v1/translate`."""
    if not isinstance(body, dict):
        raise BadRequest('the request must be a JSON object like {"text": ["a sentence"]}')
    unknown = sorted(set(body) - set(TRANSLATE_FIELDS))
    if unknown:
        raise BadRequest(f"unknown field {unknown[0]!r} (fields: {', '.join(TRANSLATE_FIELDS)})")
    if "text" not in body:
        raise BadRequest('missing field "text" (a list of sentences)')
    fields = {key: _field(key, value) for key, value in body.items()}
    texts = [_sentence(text, f"text[{i}]") for i, text in enumerate(fields["text"])]
    if "prefix" in fields:
        fields["prefix"] = tf_serving.check_string(fields["prefix"], "prefix")
    settings = ("beam_size", "alpha", "n_best", "min_length", "no_repeat_ngram_size", "prefix")
    options = DecodeOptions(
        default_alpha=default_alpha, **{key: fields.get(key) for key in settings}
    )
    flags = {key: fields.get(key, False) for key in ("alignments", "attention")}
    return texts, options, flags


def _sentence(value, where):
    if not isinstance(value, str):
        raise BadRequest(f"{where}: expected a string, got {tf_serving.describe(value)}")
    return tf_serving.check_string(value, where)


def _field(key, value):
    kind = TRANSLATE_FIELDS[key]
    if value is None and key != "text":
        return None
    if kind is float and isinstance(value, int) and not isinstance(value, bool):
        return float(value)
    if (kind is not bool and isinstance(value, bool)) or not isinstance(value, kind):
        names = {
            list: "a list of strings",
            int: "an integer",
            float: "a number",
            bool: "a boolean",
            str: "a string",
        }
        raise BadRequest(f"{key}: expected {names[kind]}, got {tf_serving.describe(value)}")
    return value


class JSONAnswer(JSONResponse):
    """JSON with NaN and infinite floats written as TensorFlow Serving writes them (NaN,
    Infinity); Starlette's own refuses them."""

    def render(self, content):
        return json.dumps(content, ensure_ascii=False, separators=(",", ":")).encode("utf-8")


async def refused(request, error):
    status = getattr(error, "status", 400)
    return JSONResponse({"error": str(error)}, status)


async def http_error(request, error):
    message = f"{request.method} {request.url.path}: {error.detail}"
    return JSONResponse({"error": message}, error.status_code)


async def failed(request, error):
    log.exception("%s %s failed", request.method, request.url.path)
    first_line = (str(error).strip().splitlines() or [type(error).__name__])[0]
    return JSONResponse({"error": f"internal error: {first_line}"}, 500)


def http_server(app, *, host, port, log_level="info"):
    """A uvicorn server for `app`; it finishes the requests in flight when it stops, however
    long they take. `.run()` serves until `.should_exit` is set (or a signal, on the main
    thread)."""
    import uvicorn

    config = uvicorn.Config(
        app, host=host, port=port, log_level=log_level, timeout_graceful_shutdown=None
    )
    return uvicorn.Server(config)


def run(app, *, host, port):
    """Serves `app` until SIGTERM or SIGINT, then finishes the requests in flight and returns.

    uvicorn re-raises the signal it stopped for once it has restored the handler it found; a
    handler that does nothing is put there first, so the process ends normally (exit 0).
    """
    server = http_server(app, host=host, port=port)
    if threading.current_thread() is threading.main_thread():
        for stop in (signal.SIGTERM, signal.SIGINT):
            signal.signal(stop, lambda *_: None)
    server.run()
