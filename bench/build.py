"""Boot time and size of a ``pyipxe build`` ISO against Debian's ``ipxe.iso``, same QEMU, same run.

Why these two points: for a machine that boots pyipxe first, what matters is how long until
the embedded script runs, and how long until a script fetched over the network runs (what
``ipxe.iso`` with no embedded script does: DHCP, then the boot file). Both ISOs boot in the
same QEMU (TCG, 512 MiB, e1000 on a tap into a NetLab with dnsmasq and nginx); the serial
console is timed from QEMU's start. Both keep their 2-second Ctrl-B prompt.

    sudo python3 bench/build.py [--rounds 3]

Prints the median seconds for each point and the ratios (pyipxe / iPXE: below 1 is faster),
then the image sizes. Needs root, QEMU, dnsmasq, nginx and the ``ipxe`` package
(/usr/lib/ipxe/ipxe.iso).
"""

from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import time
from pathlib import Path

PROJECT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(PROJECT / "src"), str(PROJECT / "tests"), str(PROJECT / "tests" / "fixtures" / "build")]

IPXE_ISO = Path("/usr/lib/ipxe/ipxe.iso")
# the chained script's first line asks nginx for a file: how its arrival is seen for both ISOs
# (Debian's ipxe.iso writes to VGA only, so its serial console shows nothing)
CHAINED = "#!ipxe\nimgfetch http://10.77.0.1/bench/line1\necho BENCH-CHAINED-FIRST-LINE\n"
EMBEDDED = """#!ipxe
echo BENCH-EMBED-FIRST-LINE
dhcp
chain http://10.77.0.1/bench/first.ipxe
"""


def wait_request(access_log: Path, before: int, started: float, timeout: float) -> float:
    """Seconds from ``started`` until nginx logs one more ``GET /bench/line1`` than ``before``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if requests(access_log) > before:
            return time.monotonic() - started
        time.sleep(0.05)
    raise TimeoutError("the chained script's first line never ran")


def requests(access_log: Path) -> int:
    return access_log.read_text().count("GET /bench/line1 ") if access_log.exists() else 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=180, help="seconds one boot may take")
    args = parser.parse_args()

    import bootlab

    from netlab import NetLab

    if not IPXE_ISO.exists():
        print(f"{IPXE_ISO} is missing: apt-get install ipxe", file=sys.stderr)
        return 1
    with NetLab() as lab:
        boot = bootlab.BootLab(lab, pxe_boot="http://10.77.0.1/bench/first.ipxe")
        (boot.www / "bench").mkdir()
        (boot.www / "bench" / "first.ipxe").write_text(CHAINED)
        (boot.www / "bench" / "line1").write_text("line 1\n")
        access_log = boot.state / "access.log"
        script = lab.workdir / "embed.ipxe"
        script.write_text(EMBEDDED)
        iso = lab.workdir / "pyipxe.iso"
        result = subprocess.run([sys.executable, "-m", "pyipxe", "build", "--cache", str(bootlab.CACHE),
                                 "--embed", str(script), "--format", "iso", "-o", str(iso)],
                                capture_output=True, text=True, timeout=900, check=False,
                                env={"PYTHONPATH": str(PROJECT / "src"), "PATH": "/usr/sbin:/usr/bin:/sbin:/bin"})
        if result.returncode:
            print(result.stderr, file=sys.stderr)
            return 1
        initrd_size = int(result.stderr.split("initramfs ")[1].split()[0])
        size = iso.stat().st_size
        embed: list[float] = []
        chained: list[float] = []
        ipxe: list[float] = []
        for round_number in range(args.rounds):
            with bootlab.vm(boot, lab.workdir / f"pyipxe-{round_number}.log", iso=iso) as machine:
                before = requests(access_log)
                embed.append(machine.wait_for("BENCH-EMBED-FIRST-LINE", args.timeout))
                chained.append(wait_request(access_log, before, machine.started, args.timeout))
            with bootlab.vm(boot, lab.workdir / f"ipxe-{round_number}.log", iso=IPXE_ISO) as machine:
                before = requests(access_log)
                ipxe.append(wait_request(access_log, before, machine.started, args.timeout))
            print(f"round {round_number + 1}: pyipxe embedded {embed[-1]:.1f}s, chained {chained[-1]:.1f}s; "
                  f"ipxe.iso chained {ipxe[-1]:.1f}s", flush=True)
    first, second, reference = (statistics.median(values) for values in (embed, chained, ipxe))
    print(f"QEMU TCG start → first script line, median of {args.rounds}:")
    print(f"  pyipxe ISO, embedded script line 1:        {first:6.1f} s  (ratio to ipxe.iso {first / reference:.2f})")
    print(f"  pyipxe ISO, script chained after DHCP:     {second:6.1f} s  (ratio to ipxe.iso {second / reference:.2f})")
    print(f"  Debian ipxe.iso, script chained after DHCP: {reference:6.1f} s")
    reference_size = IPXE_ISO.stat().st_size
    print("Size:")
    print(f"  pyipxe ISO {size / 2**20:.1f} MiB (initramfs {initrd_size / 2**20:.1f} MiB), "
          f"ipxe.iso {reference_size / 2**20:.1f} MiB: ratio {size / reference_size:.1f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
