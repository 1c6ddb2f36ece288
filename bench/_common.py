"""Shared helpers for the bench/ scripts (not a benchmark itself: `make bench` skips files starting with _).

Every benchmark is bounded: a hard wall-clock limit (`hard_timeout`, SIGALRM) plus per-subprocess
timeouts; each prints ONE line (median of the runs, min, max) and writes out/bench/<name>.json."""

from __future__ import annotations

import argparse

import json
import os
import resource
import signal
import socket
import statistics
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "out" / "bench"
PY = [sys.executable, "-m", "sipsim"]
SEED = ROOT / "scenarios" / "seed-000-self-signed.toml"
SERVER_ADDR = "127.0.0.21"
#: subprocesses import this checkout's sipsim, whatever their working directory
ENV = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""), "COLUMNS": "200"}
CLIENT_ADDR = "127.0.0.11"


def hard_timeout(seconds: int) -> None:
    """Kill this benchmark (and its children, via the process group) after ``seconds``."""

    def _expired(*_):
        print(f"{Path(sys.argv[0]).name}: hard timeout {seconds} s reached", file=sys.stderr, flush=True)
        for p in list(_children):
            try:
                p.kill()
            except Exception:
                pass
        os._exit(3)

    signal.signal(signal.SIGALRM, _expired)
    signal.alarm(seconds)


_children: list[subprocess.Popen] = []


def raise_nofile(n: int = 65536) -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = min(n, hard) if hard != resource.RLIM_INFINITY else n
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))
    return resource.getrlimit(resource.RLIMIT_NOFILE)[0]


def seed_certs() -> Path:
    """The seed-000 lab's certificates, made once under out/bench/ (never touches certs/)."""
    work = OUT / "work"
    d = work / "certs" / "seed-000"
    if not (d / "CUCM8-Publisher.bbbburns.lab.pem").exists():
        work.mkdir(parents=True, exist_ok=True)
        subprocess.run(PY + ["certs", "init", str(SEED)], cwd=work, check=True, capture_output=True, timeout=120,
                       env=ENV)
    return d


def files(certs: Path, cn: str) -> list[str]:
    return ["--cert", str(certs / f"{cn}.bbbburns.lab.pem"), "--key", str(certs / f"{cn}.bbbburns.lab.key")]


def free_port(host: str = SERVER_ADDR) -> int:
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def start_server(certs: Path, port: int, duration: float = 300, extra: list[str] | None = None,
                 env: dict | None = None) -> subprocess.Popen:
    """`sipsim serve` (CUCM8-Publisher's identity) on SERVER_ADDR:port; returns once it listens."""
    cmd = PY + ["serve", "--listen", f"{SERVER_ADDR}:{port}", *files(certs, "CUCM8-Publisher"),
                "--trust", str(certs / "CUCM7-PUB.bbbburns.lab.pem"), "--subjects", "CUCM7-PUB.bbbburns.lab",
                "--duration", str(duration), *(extra or [])]
    proc = subprocess.Popen(cmd, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                            env={**ENV, **(env or {})})
    _children.append(proc)
    line = proc.stdout.readline().decode(errors="replace")
    if "listening on" not in line:
        proc.kill()
        raise RuntimeError(f"serve did not start: {line}{proc.stdout.read().decode(errors='replace')}")
    # Drain the console (one line per call / connection) so a full pipe never blocks the server.
    import threading

    threading.Thread(target=lambda: [None for _ in proc.stdout], daemon=True).start()
    return proc


def stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
    if proc in _children:
        _children.remove(proc)


def client_args(certs: Path, cn: str = "CUCM7-PUB", local: str = CLIENT_ADDR) -> list[str]:
    return ["--local", local, *files(certs, cn), "--trust", str(certs / "CUCM8-Publisher.bbbburns.lab.pem")]


def cpu_seconds(pid: int) -> float:
    """utime + stime of a process, from /proc/PID/stat."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    ticks = os.sysconf("SC_CLK_TCK")
    return (int(fields[11]) + int(fields[12])) / ticks


def rss_kb(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


def summarise(values: list[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def git_rev() -> str:
    try:
        rev = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                             text=True, timeout=10).stdout.strip()
        dirty = subprocess.run(["git", "status", "--porcelain", "--", "sipsim"], cwd=ROOT, capture_output=True,
                               text=True, timeout=10).stdout.strip()
        return rev + ("+dirty" if dirty else "")
    except Exception:
        return "?"


def interpreter() -> dict:
    """The Python that runs sipsim here (figures depend on its build: docs/performance.md, round 8).
    ``libpython`` is "shared" when the interpreter loads libpython*.so (pyenv's default build, a
    version manager's, some distributions') and "linked in" for a static binary (Debian's python3)."""
    try:
        with open("/proc/self/maps") as f:
            shared = "libpython" in f.read()
        libpython = "shared" if shared else "linked in"
    except OSError:
        libpython = "?"
    optimized = "--enable-optimizations" in (sysconfig.get_config_var("CONFIG_ARGS") or "")
    return {"executable": os.path.realpath(sys.executable), "version": sys.version.split()[0],
            "libpython": libpython, "configured_with_optimizations": optimized}


def interpreter_line() -> str:
    i = interpreter()
    line = f"python: {i['version']} {i['executable']} (libpython {i['libpython']})"
    if i["libpython"] == "shared" and not i["configured_with_optimizations"]:
        # pyenv's default build; a distribution's static python3 does not list its PGO in CONFIG_ARGS
        line += (" — configured without --enable-optimizations: expect ~20 % lower call rates than on an "
                 "optimised build (docs/performance.md, round 8)")
    return line


def write(name: str, data: dict) -> Path:
    OUT.mkdir(parents=True, exist_ok=True)
    data = {"benchmark": name, "git": git_rev(), "time": time.strftime("%Y-%m-%dT%H:%M:%S"),
            "cpus": os.cpu_count(), "python": interpreter(), **data}
    path = OUT / f"{name}.json"
    path.write_text(json.dumps(data, indent=2) + "\n")
    return path


def fmt(s: dict, unit: str, digits: int = 0) -> str:
    f = f"{{:.{digits}f}}"
    return f"{f.format(s['median'])} {unit} (median of {len(s['runs'])}, min {f.format(s['min'])}, max {f.format(s['max'])})"


def call_run(certs: Path, count: int, concurrency: int, extra: list[str], timeout: float) -> dict:
    """One `sipsim call --count N --concurrency C` run into a fresh `sipsim serve`; the report's summary."""
    port = free_port()
    server = start_server(certs, port)
    try:
        report = OUT / "work" / "call_rate_report.json"
        cmd = PY + ["call", f"sip:8511001@{SERVER_ADDR}:{port}", "--from", "7131001",
                    *client_args(certs), "--count", str(count), "--concurrency", str(concurrency),
                    "--report", str(report), *extra]
        cpu0 = cpu_seconds(server.pid)
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, timeout=timeout, env=ENV)
        server_cpu = cpu_seconds(server.pid) - cpu0  # the server's share only: the calls, not its start-up
        data = json.loads(report.read_text())
        summary = data["summary"]
        return {"calls_per_s": summary["calls_per_s"], "answered": summary["answered"],
                "server_cpu_s": round(server_cpu, 3),
                "calls_per_server_cpu_s": round(summary["answered"] / server_cpu, 1) if server_cpu else None,
                "failed": summary["failed"], "duration_s": summary["duration_s"],
                "setup_ms": summary["setup_ms"], "rc": proc.returncode,
                "tls_connections": len(data.get("connections", []))}
    finally:
        stop(server)


def call_rate_runs(doc: str, count: int, concurrency: int, extra: list[str]) -> tuple[argparse.Namespace, dict]:
    """The call-rate benchmarks' shared part: flags (--count, --concurrency, --runs), `--runs` runs of
    `sipsim call … extra` into a fresh `sipsim serve`, and their figures: calls/s, the server's answered
    calls per CPU-second (whoever the caller is), and whether every run had 0 failures."""
    ap = argparse.ArgumentParser(description=doc)
    ap.add_argument("--count", type=int, default=count)
    ap.add_argument("--concurrency", type=int, default=concurrency)
    ap.add_argument("--runs", type=int, default=3)
    a = ap.parse_args()
    hard_timeout(240)
    certs = seed_certs()
    runs = [call_run(certs, a.count, a.concurrency, extra, timeout=70) for _ in range(a.runs)]
    ok = [r for r in runs if r["failed"] == 0 and r["answered"] == a.count]
    capacity = summarise([r["calls_per_server_cpu_s"] for r in runs if r.get("calls_per_server_cpu_s")] or [0])
    failures = "0 failures" if len(ok) == len(runs) else "FAILURES: " + str([r["failed"] for r in runs])
    return a, {"count": a.count, "concurrency": a.concurrency, "summary": summarise([r["calls_per_s"] for r in runs]),
               "runs": runs, "all_runs_zero_failures": len(ok) == len(runs), "server_calls_per_cpu_s": capacity,
               "failures": failures}


if __name__ == "__main__":  # `make bench` prints this first
    print(interpreter_line())
