"""HTTP serving of the exported model with MLflow's own scoring server (``mlflow models serve``).

The server runs in this environment (``--env-manager local``): no conda or virtualenv is
built. POST /invocations with ``{"dataframe_split": {"columns": [...], "data": [[...]]}}``
returns ``{"predictions": [{application_id, pd, score, grade, ...}, ...]}``; a request with a
missing required field, an impossible value or a wrong type gets HTTP 400 with
``{"error_code": "INVALID_PARAMETER_VALUE", "message": ...}``, the message naming each row,
field, value and expectation. GET /ping answers 200 once the model is loaded.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO, Any

import pandas as pd

from scoring.serving.integrity import expected_digest, strip_caches, verify_model_dir


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


def serve_command(model: str | Path, host: str, port: int, workers: int = 1) -> list[str]:
    mlflow = Path(sys.executable).parent / "mlflow"
    return [
        str(mlflow),
        "models",
        "serve",
        "--model-uri",
        str(model),
        "--env-manager",
        "local",
        "--host",
        host,
        "--port",
        str(port),
        "--workers",
        str(workers),
    ]


def server_env() -> dict[str, str]:
    """The environment's bin/ first on PATH (the server starts uvicorn from there); pickle off."""
    env = dict(os.environ)
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    env["MLFLOW_ALLOW_PICKLE_DESERIALIZATION"] = "false"
    env.setdefault("OMP_WAIT_POLICY", "PASSIVE")
    return env


_SERVER_LOGS: dict[int, IO[bytes]] = {}


def start_server(
    model: str | Path,
    host: str = "127.0.0.1",
    port: int | None = None,
    workers: int = 1,
    expect_digest: str | None = None,
) -> tuple[subprocess.Popen[bytes], str]:
    """Start the scoring server in its own process group; return it and its base URL once ready.

    A model directory is verified here, before the server runs any of its code: every file
    against its manifest, and the manifest against ``expect_digest`` (or ``SCORING_MODEL_DIGEST``).
    """
    if not str(model).startswith("models:/"):
        strip_caches(model)
        verify_model_dir(model, expect_digest=expected_digest(expect_digest))
    port = port or free_port(host)
    # The server's log goes to a file, not a pipe: nobody reads a pipe while it serves, and MLflow
    # logs a line per request, which would fill it and block the server.
    log = tempfile.TemporaryFile()  # noqa: SIM115 - closed by stop_server, after the server
    process = subprocess.Popen(
        serve_command(model, host, port, workers),
        env=server_env(),
        stdout=subprocess.DEVNULL,
        stderr=log,
        start_new_session=True,
    )
    _SERVER_LOGS[process.pid] = log
    url = f"http://{host}:{port}"
    try:
        wait_until_ready(url, process)
    except BaseException:
        stop_server(process)
        raise
    return process, url


def wait_until_ready(url: str, process: subprocess.Popen[bytes], timeout: float = 120.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise RuntimeError(
                f"scoring server exited with {process.returncode}: {server_log(process)[-3000:]}"
            )
        try:
            with urllib.request.urlopen(f"{url}/ping", timeout=2) as response:
                if response.status == 200:
                    return
        except (urllib.error.URLError, ConnectionError, TimeoutError):
            pass
        time.sleep(0.25)
    raise TimeoutError(f"scoring server at {url} not ready after {timeout:.0f} s")


def stop_server(process: subprocess.Popen[bytes], timeout: float = 20.0) -> None:
    """Terminate the server's process group (uvicorn and its workers), killing it if it lingers."""
    import signal

    if process.poll() is None:
        try:
            os.killpg(process.pid, signal.SIGTERM)
            process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=timeout)
        except ProcessLookupError:
            pass
    log = _SERVER_LOGS.pop(process.pid, None)
    if log is not None:
        log.close()


def server_log(process: subprocess.Popen[bytes]) -> str:
    """What the server started by :func:`start_server` wrote to stderr so far."""
    log = _SERVER_LOGS.get(process.pid)
    if log is None:
        return process.stderr.read().decode(errors="replace") if process.stderr else ""
    log.flush()
    log.seek(0)
    return log.read().decode(errors="replace")


def dataframe_split(frame: pd.DataFrame) -> dict[str, Any]:
    """The request body for a frame; NaN becomes null."""
    data = json.loads(frame.to_json(orient="split", index=False, date_format="iso"))
    return {"dataframe_split": {"columns": data["columns"], "data": data["data"]}}


def post_json(url: str, body: dict[str, Any] | str, timeout: float = 30.0) -> tuple[int, Any]:
    """POST to /invocations; the status and the decoded JSON answer (also for 4xx and 5xx)."""
    payload = body if isinstance(body, str) else json.dumps(body)
    request = urllib.request.Request(
        f"{url}/invocations",
        data=payload.encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        text = exc.read().decode(errors="replace")
        try:
            return int(exc.code), json.loads(text)
        except json.JSONDecodeError:
            return int(exc.code), {"message": text}


def predictions_frame(answer: Any) -> pd.DataFrame:
    return pd.DataFrame(answer["predictions"])
