"""A real single-node SLURM cluster for tests: munged, slurmctld and slurmd started by hand.

Debian's ``slurmctld``, ``slurmd``, ``slurm-client`` and ``munge`` packages provide the daemons; no
systemd is needed. Everything the cluster writes (munge key and socket, slurm.conf, state, spool, logs)
lives in one folder, the daemons listen on free ports picked at start, and client commands find the
cluster through ``SLURM_CONF`` (:attr:`SlurmCluster.env`), so the machine's own configuration
(/etc/slurm) is never touched and two clusters can run side by side. Daemons are stopped by PID.

Inside a job, snakemake's jobstep executor calls ``srun`` with every ``SLURM_*`` variable removed,
``SLURM_CONF`` included, and would look for /etc/slurm/slurm.conf. So :attr:`SlurmCluster.env` also puts
``<folder>/bin`` first on PATH, holding one-line wrappers of the client commands that set ``SLURM_CONF``
(on a real cluster the configuration is in /etc/slurm or served by slurmctld, "configless").

Used by ``tests/test_slurm.py``; by hand::

    python tests/slurm_cluster.py /tmp/slurm     # starts a cluster, prints its env; Ctrl-C or kill stops it
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

PACKAGES = ("slurmctld", "slurmd", "slurm-client", "munge")
DAEMONS = ("munged", "mungekey", "slurmctld", "slurmd")
CLIENTS = ("sbatch", "squeue", "sinfo", "scontrol", "scancel", "srun", "sacct")
PARTITION = "debug"


def missing_tools() -> list[str]:
    return [
        tool for tool in (*DAEMONS, *CLIENTS) if shutil.which(tool) is None and not Path("/usr/sbin", tool).exists()
    ]


def install_packages(timeout: float = 600) -> str | None:
    """``apt-get install`` the SLURM and munge packages; None on success, else why it was impossible."""
    if os.geteuid() != 0:
        return "installing SLURM needs root"
    if shutil.which("apt-get") is None:
        return "no apt-get on this machine (SLURM is installed from Debian's packages)"
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    for command in (["apt-get", "update"], ["apt-get", "install", "-y", "--no-install-recommends", *PACKAGES]):
        try:
            done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            return f"'{' '.join(command)}' timed out after {timeout:.0f} s"
        if done.returncode != 0:
            return f"'{' '.join(command)}' failed: {(done.stderr or done.stdout).strip()[-500:]}"
    return None


def _sbin(tool: str) -> str:
    return shutil.which(tool) or str(Path("/usr/sbin", tool))


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _total_memory_mb() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) // 1024
    raise RuntimeError("no MemTotal in /proc/meminfo")


@dataclass
class SlurmCluster:
    """One node (this machine) in partition :data:`PARTITION`, root as SlurmUser."""

    root: Path
    cpus: int = field(default_factory=lambda: os.cpu_count() or 1)
    hostname: str = field(
        default_factory=lambda: subprocess.run(
            ["hostname", "-s"], capture_output=True, text=True, check=True
        ).stdout.strip()
    )
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    @property
    def conf(self) -> Path:
        return self.root / "slurm.conf"

    @property
    def bin(self) -> Path:
        return self.root / "bin"

    @property
    def env(self) -> dict[str, str]:
        """Environment for client commands (sbatch, squeue, snakemake's SLURM executor)."""
        return {
            **os.environ,
            "SLURM_CONF": str(self.conf),
            "PATH": f"{self.bin}{os.pathsep}{os.environ.get('PATH', '')}",
        }

    def write_wrappers(self) -> None:
        self.bin.mkdir(parents=True, exist_ok=True)
        for tool in CLIENTS:
            search = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d and Path(d) != self.bin]
            real = shutil.which(tool, path=os.pathsep.join([*search, "/usr/bin"]))
            if real is None:
                continue
            wrapper = self.bin / tool
            wrapper.write_text(f'#!/bin/sh\nSLURM_CONF="{self.conf}" exec "{real}" "$@"\n')
            wrapper.chmod(0o755)

    def write_config(self) -> None:
        for sub in ("munge", "state", "spool", "log"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)
        os.chmod(self.root / "munge", 0o700)
        real_memory = max(_total_memory_mb() - 2048, 1024)  # leave room for the OS and the test itself
        self.conf.write_text(
            "\n".join(
                [
                    "ClusterName=tcrtrack-test",
                    f"SlurmctldHost={self.hostname}(127.0.0.1)",
                    "SlurmUser=root",
                    "SlurmdUser=root",
                    f"SlurmctldPort={_free_port()}",
                    f"SlurmdPort={_free_port()}",
                    "AuthType=auth/munge",
                    "CredType=cred/munge",
                    f"AuthInfo=socket={self.root / 'munge' / 'munge.socket'}",
                    f"StateSaveLocation={self.root / 'state'}",
                    f"SlurmdSpoolDir={self.root / 'spool'}",
                    f"SlurmctldPidFile={self.root / 'slurmctld.pid'}",
                    f"SlurmdPidFile={self.root / 'slurmd.pid'}",
                    f"SlurmctldLogFile={self.root / 'log' / 'slurmctld.log'}",
                    f"SlurmdLogFile={self.root / 'log' / 'slurmd.log'}",
                    "ProctrackType=proctrack/linuxproc",
                    "TaskPlugin=task/none",
                    "MpiDefault=none",
                    "SwitchType=switch/none",
                    "SchedulerType=sched/backfill",
                    "SelectType=select/cons_tres",
                    "SelectTypeParameters=CR_Core_Memory",
                    "AccountingStorageType=accounting_storage/none",
                    "JobAcctGatherType=jobacct_gather/none",
                    "JobCompType=jobcomp/none",
                    "ReturnToService=2",
                    "MinJobAge=600",  # finished jobs stay visible to squeue, the status command without accounting
                    "SchedulerParameters=sched_interval=2",
                    "SlurmctldTimeout=30",
                    "SlurmdTimeout=60",
                    "InactiveLimit=0",
                    "KillWait=5",
                    f"NodeName={self.hostname} NodeAddr=127.0.0.1 CPUs={self.cpus} RealMemory={real_memory} "
                    "State=UNKNOWN",
                    f"PartitionName={PARTITION} Nodes={self.hostname} Default=YES MaxTime=INFINITE State=UP",
                    "",
                ]
            )
        )

    def _spawn(self, name: str, command: list[str]) -> None:
        log = open(self.root / "log" / f"{name}.out", "wb")  # noqa: SIM115 (closed with the process)
        self.processes[name] = subprocess.Popen(
            command, stdout=log, stderr=subprocess.STDOUT, env=self.env, start_new_session=True
        )

    def start(self, timeout: float = 60) -> None:
        self.write_config()
        self.write_wrappers()
        munge = self.root / "munge"
        key = munge / "munge.key"
        if not key.exists():
            subprocess.run([_sbin("mungekey"), "--create", "--keyfile", str(key)], check=True, capture_output=True)
        os.chmod(key, 0o400)
        self._spawn(
            "munged",
            [
                _sbin("munged"),
                "--foreground",
                "--force",
                f"--socket={munge / 'munge.socket'}",
                f"--key-file={key}",
                f"--pid-file={munge / 'munged.pid'}",
                f"--log-file={self.root / 'log' / 'munged.log'}",
                f"--seed-file={munge / 'munged.seed'}",
            ],
        )
        self._wait(lambda: (munge / "munge.socket").exists(), timeout, "munged did not create its socket")
        self._spawn("slurmctld", [_sbin("slurmctld"), "-D", "-i", "-f", str(self.conf)])
        self._wait(lambda: self._ok(["scontrol", "ping"], "UP"), timeout, "slurmctld did not come up")
        self._spawn("slurmd", [_sbin("slurmd"), "-D", "-f", str(self.conf)])
        self._wait(self.node_idle, timeout, "the node did not become idle")

    def _ok(self, command: list[str], needle: str) -> bool:
        try:
            done = subprocess.run(command, capture_output=True, text=True, env=self.env, timeout=10)
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0 and needle in done.stdout

    def node_idle(self) -> bool:
        try:
            done = subprocess.run(
                ["sinfo", "--noheader", "--format=%t"], capture_output=True, text=True, env=self.env, timeout=10
            )
        except subprocess.TimeoutExpired:
            return False
        return done.returncode == 0 and done.stdout.strip() in ("idle", "mix", "alloc")

    def _wait(self, ready, timeout: float, problem: str) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            dead = [name for name, proc in self.processes.items() if proc.poll() is not None]
            if dead:
                raise RuntimeError(f"{problem}: {', '.join(dead)} exited\n{self.logs()}")
            if ready():
                return
            time.sleep(0.5)
        raise RuntimeError(f"{problem} within {timeout:.0f} s\n{self.logs()}")

    def logs(self, tail: int = 2000) -> str:
        parts = []
        for path in sorted((self.root / "log").glob("*")):
            text = path.read_text(errors="replace")
            if text.strip():
                parts.append(f"--- {path.name}\n{text[-tail:]}")
        return "\n".join(parts)

    def stop(self) -> None:
        """Cancel remaining jobs, then stop the daemons (slurmd, slurmctld, munged) by PID."""
        if "slurmctld" in self.processes and self.processes["slurmctld"].poll() is None:
            subprocess.run(
                ["scancel", "--full", f"--partition={PARTITION}"],
                env=self.env,
                capture_output=True,
                timeout=30,
                check=False,
            )
        for name in ("slurmd", "slurmctld", "munged"):
            proc = self.processes.pop(name, None)
            if proc is None or proc.poll() is not None:
                continue
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(timeout=10)

    def __enter__(self) -> SlurmCluster:
        try:
            self.start()
        except BaseException:
            self.stop()
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()


def _interrupt(signum: int, frame: object) -> None:
    raise KeyboardInterrupt


if __name__ == "__main__":
    folder = Path(sys.argv[1] if len(sys.argv) > 1 else "/tmp/tcrtrack-slurm")
    signal.signal(signal.SIGTERM, _interrupt)  # `kill PID` stops the daemons too
    with SlurmCluster(folder) as cluster:
        print(f"export SLURM_CONF={cluster.conf}")
        try:
            while True:
                time.sleep(3600)
        except KeyboardInterrupt:
            pass
