"""System metrics with psutil: CPU, memory, swap, disks, network, load, open files.

Shares are ratios from 0 to 1 named ``_ratio`` (Prometheus's convention). The
``_percent`` series (0–100) they replace are still exported for one release, for
rules that use them (README, "Renamed metrics").

Disks are reported per mount point: usage (``atlas_system_disk_*{mount}``) and the
I/O counters of the mount's block device (``…{mount,device}``); "/" and the data
folder's mount are always included, even when they are not on a block device
(overlay in a container). File descriptors are counted for this process and for
the main process of every Atlas unit (their PIDs come from systemd); a process
this agent may not inspect is skipped, not an error.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

import psutil

from atlas.monitoring.samples import Sample, sample

log = logging.getLogger(__name__)
SELF = ("monitoring", "atlas-monitoring.service")


def parse_max_open_files(limits_text: str) -> int | None:
    """The soft "Max open files" limit from /proc/<pid>/limits (None if unlimited)."""
    for line in limits_text.splitlines():
        if line.startswith("Max open files"):
            fields = line[len("Max open files") :].split()
            if fields and fields[0].isdigit():
                return int(fields[0])
            return None
    return None


def _share(part: float, whole: float) -> float:
    """``part`` of ``whole`` as a ratio from 0 to 1 (0 when there is no whole)."""
    return part / whole if whole > 0 else 0.0


def _mount_of(path: Path) -> str:
    p = path.resolve() if path.exists() else path
    while not os.path.ismount(p) and p != p.parent:
        p = p.parent
    return str(p)


class SystemCollector:
    def __init__(self, data_dir: Path | None = None, proc: Path = Path("/proc")) -> None:
        self.proc = proc
        self.always = {"/"}
        if data_dir is not None:
            self.always.add(_mount_of(data_dir))
        psutil.cpu_percent(interval=None)  # the first call only starts the measurement
        self._self = psutil.Process()

    def collect(self, pids: Mapping[tuple[str, str], int] | None = None) -> list[Sample]:
        out: list[Sample] = []
        out += self._cpu()
        out += self._memory()
        out += self._disks()
        out += self._network()
        out += self._processes(pids or {})
        return out

    def _cpu(self) -> list[Sample]:
        load1, load5, load15 = os.getloadavg()
        cpu = psutil.cpu_percent(interval=None)  # one measurement: a second starts anew
        return [
            sample("atlas_system_cpu_ratio", cpu / 100.0),
            sample("atlas_system_cpu_percent", cpu),  # deprecated: removed in the next release
            sample("atlas_system_cpus", psutil.cpu_count() or 0),
            sample("atlas_system_load_average", load1, window="1m"),
            sample("atlas_system_load_average", load5, window="5m"),
            sample("atlas_system_load_average", load15, window="15m"),
        ]

    def _memory(self) -> list[Sample]:
        vm = psutil.virtual_memory()
        sw = psutil.swap_memory()
        return [
            sample("atlas_system_memory_total_bytes", vm.total),
            sample("atlas_system_memory_available_bytes", vm.available),
            sample("atlas_system_memory_used_ratio", _share(vm.total - vm.available, vm.total)),
            sample("atlas_system_memory_used_percent", vm.percent),  # deprecated
            sample("atlas_system_swap_total_bytes", sw.total),
            sample("atlas_system_swap_used_bytes", sw.used),
            sample("atlas_system_swap_used_ratio", _share(sw.used, sw.total)),
            sample("atlas_system_swap_used_percent", sw.percent),  # deprecated
        ]

    def _mounts(self) -> dict[str, str]:
        """mount point -> device name (as in /proc/diskstats, "" if none)."""
        mounts: dict[str, str] = {}
        try:
            partitions = psutil.disk_partitions(all=False)
        except OSError as exc:
            log.debug("disk partitions: %s", exc)
            partitions = []
        for part in partitions:
            if part.mountpoint not in mounts:
                mounts[part.mountpoint] = os.path.basename(part.device)
        for mount in self.always:
            mounts.setdefault(mount, "")
        return mounts

    def _disks(self) -> list[Sample]:
        out: list[Sample] = []
        try:
            io = psutil.disk_io_counters(perdisk=True) or {}
        except (OSError, RuntimeError):
            io = {}
        for mount, device in sorted(self._mounts().items()):
            try:
                usage = psutil.disk_usage(mount)
            except OSError:
                continue
            out += [
                sample("atlas_system_disk_total_bytes", usage.total, mount=mount),
                sample("atlas_system_disk_free_bytes", usage.free, mount=mount),
                sample(
                    "atlas_system_disk_used_ratio",
                    _share(usage.used, usage.used + usage.free),
                    mount=mount,
                ),
                sample("atlas_system_disk_used_percent", usage.percent, mount=mount),  # deprecated
            ]
            counters = io.get(device) if device else None
            if counters is not None:
                labels = {"mount": mount, "device": device}
                out += [
                    sample("atlas_system_disk_read_bytes_total", counters.read_bytes, **labels),
                    sample("atlas_system_disk_written_bytes_total", counters.write_bytes, **labels),
                    sample("atlas_system_disk_reads_total", counters.read_count, **labels),
                    sample("atlas_system_disk_writes_total", counters.write_count, **labels),
                ]
        return out

    def _network(self) -> list[Sample]:
        out: list[Sample] = []
        try:
            nics = psutil.net_io_counters(pernic=True)
        except OSError:
            return out
        for nic, c in sorted(nics.items()):
            out += [
                sample("atlas_system_network_receive_bytes_total", c.bytes_recv, interface=nic),
                sample("atlas_system_network_transmit_bytes_total", c.bytes_sent, interface=nic),
                sample("atlas_system_network_receive_errors_total", c.errin, interface=nic),
                sample("atlas_system_network_transmit_errors_total", c.errout, interface=nic),
            ]
        return out

    def _processes(self, pids: Mapping[tuple[str, str], int]) -> list[Sample]:
        targets: dict[tuple[str, str], int] = {SELF: os.getpid()}
        targets.update({k: v for k, v in pids.items() if v > 0})
        out: list[Sample] = []
        for (component, unit), pid in sorted(targets.items()):
            labels = {"component": component, "unit": unit}
            try:
                proc = self._self if pid == os.getpid() else psutil.Process(pid)
                with proc.oneshot():
                    fds = proc.num_fds()
                    rss = proc.memory_info().rss
                    cpu = proc.cpu_times()
            except (psutil.Error, OSError) as exc:
                log.debug("process %s of %s: %s", pid, unit, exc)
                continue
            out += [
                sample("atlas_process_open_fds", fds, **labels),
                sample("atlas_process_resident_memory_bytes", rss, **labels),
                sample("atlas_process_cpu_seconds_total", cpu.user + cpu.system, **labels),
            ]
            limit = self._max_fds(pid)
            if limit is not None:
                out.append(sample("atlas_process_max_fds", limit, **labels))
        return out

    def _max_fds(self, pid: int) -> int | None:
        try:
            return parse_max_open_files((self.proc / str(pid) / "limits").read_text())
        except OSError:
            return None
