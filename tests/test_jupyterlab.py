"""Smoke test for `make lab`: a real JupyterLab server starts, serves the chapter notebooks,
offers the `segen-jax` kernel, enforces its token and shuts down on request.

The server runs as a subprocess on a free loopback port with a random token. Its config,
data and runtime directories are temporary, so the test neither reads nor writes the user's
Jupyter files; the kernel specs installed in this environment (sys.prefix/share/jupyter,
where `make` puts `segen-jax`) stay visible. Only the standard library talks to the server.

The tests share one server (module-scoped fixture) and run in file order; the last one shuts
the server down through the API. The fixture stops the process in any case, so no server is
left running even when an assertion fails.
"""
import json
import os
import pathlib
import secrets
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass

import pytest

ROOT = pathlib.Path(__file__).resolve().parents[1]
NOTEBOOKS = ROOT / "notebooks"
KERNEL_NAME = "segen-jax"
HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 15.0
REQUEST_TIMEOUT_S = 5.0


@dataclass
class LabServer:
    proc: subprocess.Popen
    base_url: str
    token: str
    log_path: pathlib.Path

    def log(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")[-6000:]
        except OSError as err:
            return f"<could not read server log {self.log_path}: {err}>"


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _request(server: LabServer, path: str, *, method: str = "GET", token: str | None = None,
             data: bytes | None = None):
    """Sends one request; returns (status, parsed JSON body or None). HTTP errors are returned,
    not raised. `token=None` means the server's own token; pass "" to send no token at all."""
    token = server.token if token is None else token
    headers = {"Accept": "application/json"}
    if token:
        headers["Authorization"] = f"token {token}"
    req = urllib.request.Request(server.base_url + path, data=data, method=method,
                                 headers=headers)
    try:
        with urllib.request.urlopen(req, timeout=REQUEST_TIMEOUT_S) as resp:
            status, body = resp.status, resp.read()
    except urllib.error.HTTPError as err:
        status, body = err.code, err.read()
    try:
        return status, json.loads(body) if body else None
    except ValueError:
        return status, None


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=STOP_TIMEOUT_S)


def _start(tmp: pathlib.Path, attempt: int) -> LabServer:
    port, token = _free_port(), secrets.token_hex(24)
    env = os.environ.copy()
    for var in ("JUPYTER_TOKEN", "JUPYTER_TOKEN_FILE", "JUPYTER_PASSWORD"):
        env.pop(var, None)
    for var, sub in (("JUPYTER_CONFIG_DIR", "config"), ("JUPYTER_DATA_DIR", "data"),
                     ("JUPYTER_RUNTIME_DIR", "runtime"), ("IPYTHONDIR", "ipython")):
        (tmp / sub).mkdir(exist_ok=True)
        env[var] = str(tmp / sub)
    cmd = [
        sys.executable, "-m", "jupyterlab",
        "--no-browser",
        f"--ip={HOST}",
        f"--port={port}",
        "--ServerApp.port_retries=0",
        f"--IdentityProvider.token={token}",
        f"--ServerApp.root_dir={ROOT}",
    ]
    if hasattr(os, "geteuid") and os.geteuid() == 0:  # containers and CI often run as root
        cmd.append("--allow-root")
    log_path = tmp / f"server-{attempt}.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=log,
                                stderr=subprocess.STDOUT)
    return LabServer(proc, f"http://{HOST}:{port}", token, log_path)


def _wait_until_up(server: LabServer) -> str | None:
    """Polls /api/status; returns None once it answers 200, else why the server is not up."""
    deadline = time.monotonic() + START_TIMEOUT_S
    last = "no answer yet"
    while time.monotonic() < deadline:
        if server.proc.poll() is not None:
            return f"server exited early with code {server.proc.returncode}"
        try:
            status, _ = _request(server, "/api/status")
            if status == 200:
                return None
            last = f"HTTP {status}"
        except (urllib.error.URLError, ConnectionError, TimeoutError, OSError) as err:
            last = repr(err)
        time.sleep(0.2)
    return f"server did not answer 200 on /api/status within {START_TIMEOUT_S:.0f} s ({last})"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("jupyterlab")
    server = None
    try:
        # A free port can be taken between finding and binding it; try a new one then.
        for attempt in range(3):
            server = _start(tmp, attempt)
            problem = _wait_until_up(server)
            if problem is None:
                break
            _stop(server.proc)
            if "already in use" not in server.log():
                break
        if problem is not None:
            pytest.fail(f"JupyterLab did not start: {problem}\n--- server output ---\n"
                        f"{server.log()}", pytrace=False)
        yield server
    finally:
        if server is not None:
            _stop(server.proc)


def _chapter_notebooks() -> list[str]:
    return sorted(p.name for p in NOTEBOOKS.glob("[0-9][0-9]_*.ipynb"))


def test_contents_lists_every_chapter_notebook(lab):
    chapters = _chapter_notebooks()
    assert chapters, f"no chapter notebooks (NN_*.ipynb) found in {NOTEBOOKS}"
    status, body = _request(lab, "/api/contents/notebooks")
    assert status == 200, f"GET /api/contents/notebooks -> {status}: {body}"
    assert body["type"] == "directory"
    listed = {item["name"]: item["type"] for item in body["content"]}
    for name in chapters:
        assert name in listed, f"{name} is on disk but not listed by the server: {sorted(listed)}"
        assert listed[name] == "notebook", f"{name} is listed as {listed[name]!r}, not a notebook"


def test_segen_jax_kernelspec_is_available(lab):
    status, body = _request(lab, "/api/kernelspecs")
    assert status == 200, f"GET /api/kernelspecs -> {status}: {body}"
    specs = body["kernelspecs"]
    if KERNEL_NAME not in specs:
        pytest.fail(
            f"kernel spec {KERNEL_NAME!r} is not registered in this environment "
            f"({sys.prefix}); the server offers {sorted(specs)}. Run `make test` or `make lab`, "
            f"which register it (python -m ipykernel install --sys-prefix --name {KERNEL_NAME}).",
            pytrace=False)
    assert specs[KERNEL_NAME]["spec"]["language"] == "python"


@pytest.mark.parametrize("token", ["", "wrong-token"], ids=["no-token", "wrong-token"])
def test_requests_without_the_token_are_refused(lab, token):
    status, _ = _request(lab, "/api/contents/notebooks", token=token)
    assert status in (401, 403), f"request with token={token!r} got HTTP {status}, not refused"


def test_shutdown_via_api_stops_the_server(lab):
    # Runs last (file order): the other tests use the same server.
    status, body = _request(lab, "/api/shutdown", method="POST", data=b"")
    assert status == 200, f"POST /api/shutdown -> {status}: {body}"
    try:
        code = lab.proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        pytest.fail(f"server still running {STOP_TIMEOUT_S:.0f} s after POST /api/shutdown\n"
                    f"--- server output ---\n{lab.log()}", pytrace=False)
    assert code == 0, f"server exited with code {code}\n--- server output ---\n{lab.log()}"
