"""The conformance checker on the repo's templates and on broken servers; `tvmc micro rpc/conformance`."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest
from microtvm_api.conformance import FAIL, PASS, CheckResult, _minimal_mlf, format_table, run_checks

TEMPLATES = ("crt_host", "cortex_m", "zephyr")
# Options a template requires for generate_project that have no default or choices.
TEMPLATE_OPTIONS = {"zephyr": {"board": "qemu_cortex_m3"}}


def _tvmc(*args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "tvmc_micro.cli.main", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
    )


def _by_name(results: list[CheckResult]) -> dict[str, CheckResult]:
    return {r.name: r for r in results}


@pytest.fixture(scope="module")
def mlf_with_runtime(repo_root: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The synthetic MLF plus the repository's C runtime under runtime/, as `tvmc compile` ships it."""
    path = _minimal_mlf(tmp_path_factory.mktemp("mlf") / "model.tar")
    runtime = repo_root / "runtime"
    if runtime.is_dir():
        with tarfile.open(path, "a") as tar:
            for file in sorted(runtime.rglob("*")):
                if file.is_file() and "test" not in file.relative_to(runtime).parts[0]:
                    tar.add(file, arcname=f"runtime/{file.relative_to(runtime).as_posix()}")
    return path


@pytest.mark.slow
@pytest.mark.parametrize("template", TEMPLATES)
def test_repository_templates_pass(repo_root: Path, template: str, mlf_with_runtime: Path) -> None:
    server = repo_root / "template_projects" / template / "microtvm_api_server.py"
    if not server.is_file():
        pytest.skip(f"{template} has no server yet")
    results = run_checks(server, mlf=mlf_with_runtime, options=TEMPLATE_OPTIONS.get(template))
    failed = [r for r in results if r.status == FAIL]
    assert not failed, format_table(results)
    assert _by_name(results)["template: generate_project makes a generated project"].status == PASS


def test_checker_passes_a_good_server_and_a_generated_project(servers: Path, tmp_path: Path) -> None:
    results = run_checks(servers / "echo_server.py")
    assert all(r.status == PASS for r in results), format_table(results)


def test_junk_on_stdout_fails_naming_the_reason(servers: Path) -> None:
    results = _by_name(run_checks(servers / "junk_stdout_server.py", timeout_sec=10))
    first = results["starts and answers server_info_query"]
    assert first.status == FAIL
    assert "not a JSON-RPC reply on its protocol channel" in first.detail
    assert "Vendor board server v1.0 ready" in first.detail


def test_wrong_codes_and_dying_on_bad_json_fail_naming_the_reason(servers: Path) -> None:
    results = _by_name(run_checks(servers / "stops_on_bad_json_server.py", timeout_sec=10))
    assert results["starts and answers server_info_query"].status == PASS
    parse = results["malformed JSON → -32700, then keeps serving"]
    assert (
        parse.status == FAIL and "exited (exit code 1)" in parse.detail and "JSONDecodeError" in parse.detail
    )
    unknown = results["unknown method → -32601"]
    assert unknown.status == FAIL and "expected error code -32601, got -32603" in unknown.detail
    assert "expected error code -32602, got -32000" in results["missing param → -32602"].detail
    assert results["stdout hygiene: fd 1 is not the protocol channel"].status == PASS


def test_bad_server_info_fails_naming_each_problem(servers: Path) -> None:
    results = _by_name(run_checks(servers / "bad_info_server.py", timeout_sec=10))
    assert "is_template is str, should be bool" in results["server_info_query reply shape"].detail
    assert "protocol version 2; tvmc speaks 1" in results["protocol version"].detail
    declarations = results["project option declarations"]
    assert declarations.status == FAIL and "type 'enum'" in declarations.detail
    assert "'deploy' is not a method" in declarations.detail


def test_server_whose_fd1_is_the_channel_fails_hygiene(tmp_path: Path, servers: Path) -> None:
    # The junk server minus its junk: replies are fine, but fd 1 still is the protocol channel.
    source = (servers / "junk_stdout_server.py").read_text()
    quiet = source.replace('print("Vendor board server v1.0 ready")', "pass").replace(
        'print("answering server_info_query")', "pass"
    )
    (tmp_path / "quiet_server.py").write_text(quiet)
    results = _by_name(run_checks(tmp_path / "quiet_server.py", timeout_sec=10))
    fd1 = results["stdout hygiene: fd 1 is not the protocol channel"]
    assert fd1.status == FAIL and "fd 1 is the protocol channel" in fd1.detail


def test_exits_at_start_fails_with_its_stderr(servers: Path) -> None:
    results = run_checks(servers / "exits_at_start.py", timeout_sec=10)
    assert len(results) == 1 and results[0].status == FAIL
    assert "exit code 4" in results[0].detail and "vendor_sdk" in results[0].detail


@pytest.mark.slow
def test_conformance_cli_entry_points(servers: Path, repo_root: Path) -> None:
    good = _tvmc("micro", "conformance", str(repo_root / "template_projects" / "crt_host"))
    assert good.returncode == 0, good.stdout + good.stderr
    assert "0 failed" in good.stdout and "PASS" in good.stdout
    bad = subprocess.run(
        [sys.executable, "-m", "microtvm_api.conformance", str(servers / "bad_info_server.py")],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert bad.returncode == 1
    assert "FAIL    protocol version" in bad.stdout
    missing = _tvmc("micro", "conformance", str(servers / "nope.py"))
    assert missing.returncode == 2 and "does not exist" in missing.stderr


def test_rpc_prints_the_result_as_json(repo_root: Path) -> None:
    done = _tvmc("micro", "rpc", str(repo_root / "template_projects" / "crt_host"), "server_info_query")
    assert done.returncode == 0, done.stderr
    info = json.loads(done.stdout)
    assert info["platform_name"] == "crt_host" and info["is_template"] is True
    explicit = _tvmc(
        "micro",
        "rpc",
        str(repo_root / "template_projects" / "crt_host"),
        "server_info_query",
        '{"tvm_version": "0.18.0"}',
    )
    assert json.loads(explicit.stdout)["protocol_version"] == 1


def test_rpc_error_shows_type_message_hint_and_traceback_with_v(servers: Path) -> None:
    server = str(servers / "echo_server.py")
    done = _tvmc("micro", "rpc", server, "read_transport", '{"n": 4, "timeout_sec": 0.1}')
    assert done.returncode == 2 and done.stdout == ""
    assert "error: TransportClosedError: the transport is not open" in done.stderr
    assert "hint: call open_transport first" in done.stderr
    assert "Traceback" not in done.stderr
    verbose = _tvmc("-v", "micro", "rpc", server, "read_transport", '{"n": 4, "timeout_sec": 0.1}')
    assert "--- server-side traceback ---" in verbose.stderr and "echo_server.py" in verbose.stderr


def test_rpc_project_options_are_typed_by_the_server(servers: Path) -> None:
    server = str(servers / "echo_server.py")
    done = _tvmc(
        "micro", "rpc", server, "build", "--project-option", "board=beta", "--project-option", "verbose=false"
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["verbose"] is False
    bad = _tvmc("micro", "rpc", server, "build", "--project-option", "board=gamma")
    assert (
        bad.returncode == 2 and "InvalidOptionError" in bad.stderr and "not one of: alpha, beta" in bad.stderr
    )
    typo = _tvmc("micro", "rpc", server, "build", "--project-option", "bord=beta")
    assert "unknown project option 'bord'" in typo.stderr and "valid options: board (str)" in typo.stderr
    malformed = _tvmc("micro", "rpc", server, "build", "--project-option", "board")
    assert malformed.returncode == 2 and "not key=value" in malformed.stderr


@pytest.mark.parametrize(
    ("params", "words"),
    [("{not json", "JSON_PARAMS is not valid JSON"), ("[1, 2]", "must be a JSON object, got list")],
)
def test_rpc_refuses_bad_json_params(servers: Path, params: str, words: str) -> None:
    done = _tvmc("micro", "rpc", str(servers / "echo_server.py"), "build", params)
    assert done.returncode == 2 and words in done.stderr


def test_rpc_reports_a_dead_server(servers: Path) -> None:
    done = _tvmc("micro", "rpc", str(servers / "exits_at_start.py"), "server_info_query")
    assert done.returncode == 2
    assert "ServerExitedError" in done.stderr and "vendor_sdk" in done.stderr


def test_help_starts_no_server() -> None:
    for args in (
        ["--help"],
        ["micro", "--help"],
        ["micro", "rpc", "--help"],
        ["micro", "conformance", "--help"],
    ):
        done = _tvmc(*args, timeout=30)
        assert done.returncode == 0 and "usage: tvmc" in done.stdout
    imported = subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys, tvmc_micro.cli.main as m; m.build_parser(); "
            "print(sorted(k for k in sys.modules if k.split('.')[0] in ('tvm', 'jsonrpcserver')))",
        ],
        capture_output=True,
        text=True,
        timeout=30,
        check=True,
    )
    assert "'tvm'" not in imported.stdout and "jsonrpcserver" not in imported.stdout


def test_format_table_counts() -> None:
    table = format_table(
        [CheckResult("a", PASS), CheckResult("b", FAIL, "why"), CheckResult("c", "SKIP", "n/a")]
    )
    assert table.splitlines()[-1] == "1 passed, 1 failed, 1 skipped"
    assert any(line.startswith("FAIL    b") and line.endswith("why") for line in table.splitlines())
    assert io.StringIO(table).read()
