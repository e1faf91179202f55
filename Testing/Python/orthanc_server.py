"""A throw-away Orthanc (Debian package ``orthanc`` + ``orthanc-dicomweb``) for tests.

:class:`OrthancServer` writes a JSON configuration into a temporary folder, starts the
``Orthanc`` binary with the DICOMweb plugin on free ports, waits for ``/system`` and stops
it again. Authentication is on (``RegisteredUsers``), remote access is off and the server
is made to listen on 127.0.0.1 only (see :func:`loopback_shim`), storage lives in the
temporary folder, so several servers can run side by side and nothing outside the test
can reach them.

Used by ``Testing/Python/test_remote.py`` (via :func:`orthanc_or_skip`) and by
``interop/run_interop.py``.

Orthanc 1.10 (Debian 12) has no option for the listening address: its HTTP (CivetWeb)
and DICOM servers bind to all interfaces. :func:`loopback_shim` compiles a tiny
``LD_PRELOAD`` library that rewrites ``bind(0.0.0.0)`` / ``bind(::)`` to the loopback
address. Without a C compiler the server is still started with ``RemoteAccessAllowed:
false`` (Orthanc then refuses HTTP clients that are not on loopback) and
:attr:`OrthancServer.loopback_only` is False.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from pathlib import Path
from typing import Any

#: Where Debian's ``orthanc`` package puts the server.
ORTHANC_BINARY_CANDIDATES = ("/usr/sbin/Orthanc", "/usr/bin/Orthanc")
#: Debian ``orthanc-dicomweb`` (``dpkg -L orthanc-dicomweb``).
DICOMWEB_PLUGIN_CANDIDATES = (
    "/usr/share/orthanc/plugins/libOrthancDicomWeb.so",
    "/usr/lib/orthanc/libOrthancDicomWeb.so.1.7",
)

DEFAULT_USER = "abdicom"
DEFAULT_PASSWORD = "s3cret-for-tests"

_SHIM_SOURCE = r"""
#define _GNU_SOURCE
#include <dlfcn.h>
#include <string.h>
#include <netinet/in.h>
#include <arpa/inet.h>
#include <sys/socket.h>

/* bind() to the wildcard address becomes bind() to loopback (IPv4 and IPv6). */
int bind(int fd, const struct sockaddr *addr, socklen_t len) {
    static int (*real_bind)(int, const struct sockaddr *, socklen_t) = 0;
    if (!real_bind) real_bind = dlsym(RTLD_NEXT, "bind");
    if (addr && addr->sa_family == AF_INET && len >= sizeof(struct sockaddr_in)) {
        struct sockaddr_in a;
        memcpy(&a, addr, sizeof a);
        if (a.sin_addr.s_addr == htonl(INADDR_ANY)) {
            a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
            return real_bind(fd, (const struct sockaddr *)&a, sizeof a);
        }
    } else if (addr && addr->sa_family == AF_INET6 && len >= sizeof(struct sockaddr_in6)) {
        struct sockaddr_in6 a;
        memcpy(&a, addr, sizeof a);
        if (memcmp(&a.sin6_addr, &in6addr_any, sizeof(struct in6_addr)) == 0) {
            a.sin6_addr = in6addr_loopback;
            return real_bind(fd, (const struct sockaddr *)&a, sizeof a);
        }
    }
    return real_bind(fd, addr, len);
}
"""


def find_orthanc() -> str | None:
    """Path of the ``Orthanc`` binary, or None."""
    for c in ORTHANC_BINARY_CANDIDATES:
        if os.access(c, os.X_OK):
            return c
    return shutil.which("Orthanc")


def find_dicomweb_plugin() -> str | None:
    """Path of the DICOMweb plugin shared library, or None."""
    for c in DICOMWEB_PLUGIN_CANDIDATES:
        if os.path.exists(c):
            return c
    try:
        out = subprocess.run(["dpkg", "-L", "orthanc-dicomweb"], capture_output=True, text=True, timeout=20)
        for line in out.stdout.splitlines():
            if "libOrthancDicomWeb.so" in line and os.path.isfile(line):
                return line
    except (OSError, subprocess.SubprocessError):
        pass
    return None


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def loopback_shim(cache_dir: str | Path | None = None) -> str | None:
    """Compile (once) the ``LD_PRELOAD`` library forcing loopback binds; None if no compiler."""
    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        return None
    cache = Path(cache_dir or Path(tempfile.gettempdir()) / "abdicom-orthanc-shim")
    cache.mkdir(parents=True, exist_ok=True)
    lib = cache / "bind_loopback.so"
    if lib.exists():
        return str(lib)
    src = cache / "bind_loopback.c"
    src.write_text(_SHIM_SOURCE)
    tmp = cache / f".bind_loopback.{os.getpid()}.so"
    res = subprocess.run([cc, "-shared", "-fPIC", "-O2", "-o", str(tmp), str(src), "-ldl"],
                         capture_output=True, text=True)
    if res.returncode != 0:
        return None
    os.replace(tmp, lib)
    return str(lib)


class OrthancServer:
    """An Orthanc process with DICOMweb, authentication and storage in ``workdir``.

    Parameters
    ----------
    workdir : folder for the configuration, the storage and the log (created).
    user, password : the one registered HTTP user.
    http_port, dicom_port : default: free ports.
    extra_config : merged into the generated configuration.

    Attributes
    ----------
    url : str
        Base URL of the REST API, e.g. ``http://127.0.0.1:40123``.
    dicomweb_url : str
        ``url + "/dicom-web"``.
    """

    def __init__(
        self,
        workdir: str | Path,
        *,
        user: str = DEFAULT_USER,
        password: str = DEFAULT_PASSWORD,
        http_port: int | None = None,
        dicom_port: int | None = None,
        extra_config: dict[str, Any] | None = None,
    ) -> None:
        self.binary = find_orthanc()
        self.plugin = find_dicomweb_plugin()
        if self.binary is None:
            raise FileNotFoundError("Orthanc binary not found (apt-get install orthanc orthanc-dicomweb)")
        if self.plugin is None:
            raise FileNotFoundError("Orthanc DICOMweb plugin not found (apt-get install orthanc-dicomweb)")
        self.workdir = Path(workdir)
        self.workdir.mkdir(parents=True, exist_ok=True)
        self.storage = self.workdir / "storage"
        self.user, self.password = user, password
        self.http_port = http_port or free_port()
        self.dicom_port = dicom_port or free_port()
        self.extra_config = extra_config or {}
        self.config_path = self.workdir / "orthanc.json"
        self.log_path = self.workdir / "orthanc.log"
        self.proc: subprocess.Popen | None = None
        self.shim = loopback_shim()
        self.loopback_only = self.shim is not None

    # ------------------------------------------------------------------ config
    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.http_port}"

    @property
    def dicomweb_url(self) -> str:
        return f"{self.url}/dicom-web"

    @property
    def auth(self) -> tuple[str, str]:
        return (self.user, self.password)

    def config(self) -> dict[str, Any]:
        """The generated Orthanc configuration."""
        cfg: dict[str, Any] = {
            "Name": "abdicom-test",
            "StorageDirectory": str(self.storage),
            "IndexDirectory": str(self.storage),
            "StorageCompression": False,
            "Plugins": [self.plugin],
            "ConcurrentJobs": 1,
            "HttpServerEnabled": True,
            "HttpPort": self.http_port,
            "HttpThreadsCount": 8,
            "OrthancExplorerEnabled": False,
            "WebDavEnabled": False,
            "HttpDescribeErrors": True,
            "DicomServerEnabled": True,
            "DicomAet": "ABDICOM",
            "DicomPort": self.dicom_port,
            # Label Map Segmentation Storage (66.7) is unknown to Orthanc 1.10's DCMTK:
            # without this, C-STORE of our SEGs is refused (HTTP / STOW-RS work anyway).
            "UnknownSopClassAccepted": True,
            "RemoteAccessAllowed": False,
            "AuthenticationEnabled": True,
            "RegisteredUsers": {self.user: self.password},
            "SaveJobs": False,
            "StableAge": 1,
            "DicomWeb": {
                "Enable": True,
                "Root": "/dicom-web/",
                "EnableWado": True,
                "WadoRoot": "/wado",
                "Host": f"127.0.0.1:{self.http_port}",
                "Ssl": False,
                "StudiesMetadata": "Full",
                "SeriesMetadata": "Full",
            },
        }
        for key, value in self.extra_config.items():
            if isinstance(value, dict) and isinstance(cfg.get(key), dict):
                cfg[key] = {**cfg[key], **value}
            else:
                cfg[key] = value
        return cfg

    # ------------------------------------------------------------------ life cycle
    def start(self, timeout: float = 30.0) -> "OrthancServer":
        """Start Orthanc (same storage as before if restarted) and wait for ``/system``."""
        if self.proc is not None and self.proc.poll() is None:
            return self
        self.config_path.write_text(json.dumps(self.config(), indent=2))
        env = dict(os.environ)
        if self.shim:
            env["LD_PRELOAD"] = self.shim + (":" + env["LD_PRELOAD"] if env.get("LD_PRELOAD") else "")
        log = open(self.log_path, "ab")
        self.proc = subprocess.Popen(
            [self.binary, "--logdir=" + str(self.workdir), str(self.config_path)],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, env=env,
            cwd=str(self.workdir),
        )
        log.close()
        self.wait_ready(timeout)
        return self

    def wait_ready(self, timeout: float = 30.0) -> None:
        """Poll ``GET /system`` until it answers 200."""
        import requests

        deadline = time.monotonic() + timeout
        last = ""
        while time.monotonic() < deadline:
            if self.proc is not None and self.proc.poll() is not None:
                raise RuntimeError(f"Orthanc exited with code {self.proc.returncode}; log: {self.log_tail()}")
            try:
                r = requests.get(self.url + "/system", auth=self.auth, timeout=2)
                if r.status_code == 200:
                    return
                last = f"HTTP {r.status_code}"
            except requests.RequestException as exc:
                last = type(exc).__name__
            time.sleep(0.1)
        raise RuntimeError(f"Orthanc did not answer /system within {timeout} s ({last}); log: {self.log_tail()}")

    def stop(self, timeout: float = 20.0) -> None:
        """Stop gracefully (SIGTERM), then SIGKILL if needed."""
        if self.proc is None:
            return
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self.proc = None

    def kill(self) -> None:
        """SIGKILL the server (simulates a crash); storage stays for a restart."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)
        self.proc = None

    def restart(self, timeout: float = 30.0) -> "OrthancServer":
        self.stop()
        return self.start(timeout)

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def log_tail(self, n: int = 15) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return "(no log)"
        return " | ".join(lines[-n:])

    # ------------------------------------------------------------------ REST helpers
    def get(self, path: str, **kwargs: Any) -> Any:
        """GET a REST path (JSON decoded)."""
        import requests

        r = requests.get(self.url + path, auth=self.auth, timeout=30, **kwargs)
        r.raise_for_status()
        return r.json()

    def statistics(self) -> dict[str, Any]:
        """``/statistics``: CountInstances, CountSeries, ..."""
        return self.get("/statistics")

    def write_password_file(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(self.password + "\n")
        path.chmod(0o600)
        return path

    def __enter__(self) -> "OrthancServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def orthanc_or_skip(workdir: str | Path, **kwargs: Any) -> OrthancServer:
    """Start an :class:`OrthancServer`, or ``pytest.skip`` with the reason when Orthanc
    (or its DICOMweb plugin) is not installed."""
    import pytest

    if find_orthanc() is None:
        pytest.skip("Orthanc binary not installed (Debian: apt-get install orthanc orthanc-dicomweb)")
    if find_dicomweb_plugin() is None:
        pytest.skip("Orthanc DICOMweb plugin not installed (Debian: apt-get install orthanc-dicomweb)")
    return OrthancServer(workdir, **kwargs).start()
