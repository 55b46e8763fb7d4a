"""Separate hosts on one machine: Linux network namespaces joined by a bridge (tests only).

Every host is a namespace with one veth interface on a private /24; the bridge lives in a switch
namespace of its own, so nothing is added to the machine's own network namespace and no packet
leaves the namespaces made here. Each host gets its own directory (its "disk"); processes run with
`ip netns exec`, each in its own process group so a host can be killed whole.
"""

from __future__ import annotations

import contextlib
import os
import re
import shlex
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

SUBNET = "10.231.0"


def why_not_available() -> str | None:
    """None when namespaces can be made here, else the reason (for a skip)."""
    if os.geteuid() != 0:
        return "building network namespaces needs root (ip netns add)"
    if shutil.which("ip") is None:
        return "`ip` (iproute2) is not installed: deploy/bootstrap.sh installs it"
    probe = f"csprobe{os.getpid()}"
    made = subprocess.run(["ip", "netns", "add", probe], capture_output=True, text=True)
    if made.returncode != 0:
        return f"cannot make a network namespace here: {made.stderr.strip()}"
    subprocess.run(["ip", "netns", "del", probe], capture_output=True)
    return None


def _remove_stale() -> None:
    """Namespaces left by an earlier run that was killed before its teardown (its pid is gone)."""
    names = subprocess.run(["ip", "netns", "list"], capture_output=True, text=True).stdout
    for name in (line.split()[0] for line in names.splitlines() if line.strip()):
        match = re.fullmatch(r"cs(\d+)-[a-z0-9]+", name)
        if match is None or Path(f"/proc/{match.group(1)}").exists():
            continue
        pids = subprocess.run(["ip", "netns", "pids", name], capture_output=True, text=True)
        for pid in pids.stdout.split():
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        subprocess.run(["ip", "netns", "del", name], capture_output=True)


class Network:
    """Hosts on `10.231.0.0/24` behind one bridge; :meth:`close` removes every trace."""

    def __init__(self) -> None:
        _remove_stale()
        self.tag = f"cs{os.getpid()}"
        self.root = Path(tempfile.mkdtemp(prefix=f"calserv-{self.tag}-"))
        self.root.chmod(0o755)  # the postgres user must reach its host's data directory
        self.hosts: dict[str, str] = {}  # name -> address
        self.procs: dict[str, list[subprocess.Popen]] = {}
        self.switch = self._ns("switch")
        self._ip("netns", "add", self.switch)
        self._ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        self._ip("-n", self.switch, "link", "set", "br0", "up")

    def _ns(self, host: str) -> str:
        return f"{self.tag}-{host}"

    @staticmethod
    def _ip(*args: str) -> None:
        subprocess.run(["ip", *args], check=True, capture_output=True, text=True)

    def add_host(self, name: str, last_octet: int) -> Path:
        """A host at 10.231.0.<last_octet>; returns its own directory."""
        ns, address = self._ns(name), f"{SUBNET}.{last_octet}"
        self._ip("netns", "add", ns)
        # The veth pair is made inside the switch namespace; one end moves to the host.
        veth = ("type", "veth", "peer", "eth0", "netns", ns)
        self._ip("-n", self.switch, "link", "add", name, *veth)
        self._ip("-n", self.switch, "link", "set", name, "master", "br0", "up")
        self._ip("-n", ns, "addr", "add", f"{address}/24", "dev", "eth0")
        self._ip("-n", ns, "link", "set", "eth0", "up")
        self._ip("-n", ns, "link", "set", "lo", "up")
        self.hosts[name] = address
        self.procs[name] = []
        disk = self.root / name
        (disk / "tmp").mkdir(parents=True)
        return disk

    def disk(self, host: str) -> Path:
        return self.root / host

    def env(self, host: str, extra: dict[str, str]) -> dict[str, str]:
        """A clean environment: nothing of this test process's settings leaks into a host."""
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.disk(host)),
            "TMPDIR": str(self.disk(host) / "tmp"),
            "LANG": "C.UTF-8",
            **extra,
        }

    def start(
        self, host: str, name: str, argv: str | list[str], env: dict[str, str] | None = None
    ) -> subprocess.Popen:
        """`argv` (a list, or a string split like a shell would) on `host`, in its own process
        group, cwd its own empty directory, logged to `<host>-<name>.log`."""
        argv = shlex.split(argv) if isinstance(argv, str) else argv
        cwd = self.disk(host) / name
        cwd.mkdir(exist_ok=True)
        log = (self.root / f"{host}-{name}.log").open("wb")
        proc = subprocess.Popen(
            ["ip", "netns", "exec", self._ns(host), *argv],
            cwd=cwd,
            env=self.env(host, env or {}),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.procs[host].append(proc)
        return proc

    def run(
        self,
        host: str,
        argv: str | list[str],
        env: dict[str, str] | None = None,
        timeout: float = 60,
    ) -> str:
        """`argv` on `host` to completion; its stdout (an error shows its output)."""
        argv = shlex.split(argv) if isinstance(argv, str) else argv
        cwd = self.disk(host)
        out = subprocess.run(
            ["ip", "netns", "exec", self._ns(host), *argv],
            cwd=cwd,
            env=self.env(host, env or {}),
            capture_output=True,
            text=True,
            timeout=timeout,
        )
        if out.returncode != 0:
            raise RuntimeError(f"{host}: {argv} failed:\n{out.stdout}\n{out.stderr}")
        return out.stdout

    def log(self, host: str, name: str) -> str:
        path = self.root / f"{host}-{name}.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def wait_log(self, host: str, name: str, text: str, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.log(host, name):
            dead = [p for p in self.procs[host] if p.poll() is not None]
            if dead or time.monotonic() > deadline:
                raise RuntimeError(f"{host}/{name} not ready:\n{self.log(host, name)[-3000:]}")
            time.sleep(0.1)

    def kill_host(self, host: str) -> None:
        """SIGKILL every process on `host` (each process group, then anything left in the
        namespace), as a power cut would."""
        for proc in self.procs.get(host, []):
            with contextlib.suppress(ProcessLookupError):
                os.killpg(proc.pid, signal.SIGKILL)
        pids = subprocess.run(
            ["ip", "netns", "pids", self._ns(host)], capture_output=True, text=True
        ).stdout.split()
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(int(pid), signal.SIGKILL)
        for proc in self.procs.get(host, []):
            proc.wait(timeout=10)

    def close(self, keep_logs: Path) -> None:
        """Kill every host's processes, delete every namespace and the hosts' directories (the
        processes' logs are copied to `keep_logs` first)."""
        for host in list(self.hosts):
            self.kill_host(host)
            subprocess.run(["ip", "netns", "del", self._ns(host)], capture_output=True)
        subprocess.run(["ip", "netns", "del", self.switch], capture_output=True)
        keep_logs.mkdir(parents=True, exist_ok=True)
        for log in self.root.glob("*.log"):
            shutil.copy(log, keep_logs / log.name)
        shutil.rmtree(self.root, ignore_errors=True)
