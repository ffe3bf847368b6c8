"""A v0.18 template server ported by changing its import line only (as a vendor would).

Written the way v0.18 servers were: options declared only in the ServerInfo, read with options[...] (so
the client must send every declared option), `standalone_crt_dir` used as a Path, TransportTimeouts of 0
("no limit"), handlers wrapped by a decorator without functools.wraps and parameters named differently
from the interface (v0.18 called them positionally). Dropped into a built crt_host project (as
microtvm_api_server.py) it drives that project's flashed firmware, so `tvmc run` can go through it.
"""

import fcntl
import json
import os
import pathlib
import shutil
import subprocess
import sys
import tarfile

from microtvm_api.compat.v018 import server

HERE = pathlib.Path(__file__).resolve().parent
MODEL = HERE / "model.tar"
IS_TEMPLATE = not MODEL.exists()
CALLS = []
GENERATE = ["generate_project"]


def logged(method):
    def wrapper(*args, **kwargs):  # no functools.wraps: the signature is (*args, **kwargs)
        CALLS.append(method.__name__)
        print(f"v018_ported: {method.__name__}", file=sys.stderr)
        return method(*args, **kwargs)

    return wrapper


class Handler(server.ProjectAPIHandler):
    def __init__(self):
        super().__init__()
        self._proc = None

    @logged
    def server_info_query(self, version):
        return server.ServerInfo(
            platform_name="crt_host",
            is_template=IS_TEMPLATE,
            model_library_format_path="" if IS_TEMPLATE else MODEL,
            project_options=[
                *server.default_project_options(
                    project_type={"required": None, "optional": GENERATE, "default": "host_driven"},
                    board={"required": None, "optional": GENERATE},
                ),
                server.ProjectOption(
                    "workspace_size_bytes",
                    optional=["generate_project"],
                    type="int",
                    default=2097152,
                    help="Sets the value of TVM_WORKSPACE_SIZE_BYTES.",
                ),
            ],
        )

    @logged
    def generate_project(self, mlf, crt, project, opts):
        # v0.18 servers indexed their options directly and used the CRT dir as a Path.
        verbose, size = opts["verbose"], opts["workspace_size_bytes"]
        if opts["board"] == "read_modules":  # as v0.18 servers read their MLF's metadata.json
            with tarfile.open(mlf) as tar:
                json.load(tar.extractfile("metadata.json"))["modules"]
        if opts["board"] == "copy_crt":  # as v0.18 servers copied the standalone CRT
            shutil.copytree(crt / "include", project / "crt" / "include")
        project.mkdir()
        shutil.copy2(__file__, project / "microtvm_api_server.py")
        shutil.copy2(mlf, project / "model.tar")
        (project / "crt_listing.txt").write_text("\n".join(sorted(p.name for p in crt.iterdir())))
        (project / "options.txt").write_text(f"verbose={verbose!r} workspace_size_bytes={size!r}\n")

    @logged
    def build(self, options):
        if options["board"] == "explode":
            raise server.ServerError(message="the board exploded")

    @logged
    def flash(self, options):
        pass

    @logged
    def open_transport(self, opts):
        firmware = HERE / "flashed" / "firmware"
        self._proc = subprocess.Popen(
            [str(firmware)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, bufsize=0
        )
        for stream in (self._proc.stdin, self._proc.stdout):
            flags = fcntl.fcntl(stream.fileno(), fcntl.F_GETFL)
            fcntl.fcntl(stream.fileno(), fcntl.F_SETFL, flags | os.O_NONBLOCK)
        return server.TransportTimeouts(
            session_start_retry_timeout_sec=0, session_start_timeout_sec=0, session_established_timeout_sec=0
        )

    @logged
    def close_transport(self):
        if self._proc is not None:
            proc, self._proc = self._proc, None
            proc.terminate()
            proc.wait()

    @logged
    def read_transport(self, count, timeout):
        if self._proc is None:
            raise server.TransportClosedError()
        return server.read_with_timeout(self._proc.stdout.fileno(), count, timeout)

    @logged
    def write_transport(self, payload, timeout):
        if self._proc is None:
            raise server.TransportClosedError()
        server.write_with_timeout(self._proc.stdin.fileno(), payload, timeout)


if __name__ == "__main__":
    server.main(Handler())
