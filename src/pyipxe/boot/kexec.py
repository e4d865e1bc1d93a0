"""Booting a Linux plan on this machine with ``kexec_file_load(2)`` (ctypes, no kexec-tools).

Why the file-based syscall: the kernel reads the kernel and initrd from file descriptors
itself (our spool files, so nothing is copied again), parses the bzImage and verifies
signatures where the host requires them — the same checks a distribution's ``kexec -s``
makes. Loading is separate from executing: without ``--kexec-exec`` the kernel is staged
and the host's own ``systemctl kexec`` (or ``kexec -e``) boots it; with it, pyipxe reboots
into it at once (``reboot(LINUX_REBOOT_CMD_KEXEC)``), which never returns.

Refusals come before the syscall where they can be known (not root, kexec disabled by
sysctl, not a 64-bit bzImage) and after it from its errno; each is an iPXE-style error on
the console plus one line on stderr naming what would work. The syscall, reboot, euid and
sysctl reads are injectable so tests can exercise all of it without privileges.
"""

from __future__ import annotations

import ctypes
import errno
import os
import platform
import sys
import tempfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from pyipxe.boot.plan import BootPlan
from pyipxe.errors import ErrorClass, ErrorSite, IpxeError
from pyipxe.image.linux import ERR_NOT_BZIMAGE
from pyipxe.image.spool import spool_directory

# pyipxe's own sites (iPXE has no kexec); 0x7F80.. is unused by iPXE's errfile table
ERR_NOT_ROOT = ErrorSite(ErrorClass.EPERM, 0x7F80)
ERR_KEXEC_DISABLED = ErrorSite(ErrorClass.EPERM, 0x7F81)
ERR_NO_SYSCALL = ErrorSite(ErrorClass.ENOTSUP, 0x7F82)
ERR_REJECTED = ErrorSite(ErrorClass.EACCES, 0x7F83)
ERR_LOAD_FAILED = ErrorSite(ErrorClass.EIO, 0x7F84)
ERR_NO_MEMORY = ErrorSite(ErrorClass.ENOMEM, 0x7F85)
ERR_BUSY = ErrorSite(ErrorClass.EBUSY, 0x7F86)

#: syscall numbers of kexec_file_load (the architectures that have it)
SYS_KEXEC_FILE_LOAD = {"x86_64": 320, "aarch64": 294, "riscv64": 294, "loongarch64": 294, "s390x": 381,
                       "ppc64le": 382}
SYS_REBOOT = {"x86_64": 169, "aarch64": 142, "riscv64": 142, "loongarch64": 142, "s390x": 88, "ppc64le": 88}
KEXEC_FILE_NO_INITRAMFS = 0x4
LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2 = 0xFEE1DEAD, 672274793
LINUX_REBOOT_CMD_KEXEC = 0x45584543
DISABLED_SYSCTL = Path("/proc/sys/kernel/kexec_load_disabled")

#: (kernel_fd, initrd_fd, cmdline_len, cmdline, flags) → 0, or raises OSError
Syscall = Callable[[int, int, int, bytes, int], None]


class KexecRefused(IpxeError):
    """An IpxeError that also says, in words, why and what to use instead."""

    def __init__(self, site: ErrorSite, advice: str) -> None:
        super().__init__(site)
        self.advice = advice


def _libc() -> ctypes.CDLL:
    return ctypes.CDLL(None, use_errno=True)


def real_kexec_file_load(kernel_fd: int, initrd_fd: int, cmdline_len: int, cmdline: bytes, flags: int) -> None:
    number = SYS_KEXEC_FILE_LOAD.get(platform.machine())
    if number is None:
        raise OSError(errno.ENOSYS, "kexec_file_load is not known on this architecture")
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    result = libc.syscall(ctypes.c_long(number), ctypes.c_int(kernel_fd), ctypes.c_int(initrd_fd),
                          ctypes.c_ulong(cmdline_len), ctypes.c_char_p(cmdline), ctypes.c_ulong(flags))
    if result != 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))


def real_reboot_kexec() -> None:
    os.sync()
    libc = _libc()
    libc.syscall.restype = ctypes.c_long
    result = libc.syscall(ctypes.c_long(SYS_REBOOT.get(platform.machine(), 169)), ctypes.c_uint(LINUX_REBOOT_MAGIC1),
                          ctypes.c_uint(LINUX_REBOOT_MAGIC2), ctypes.c_uint(LINUX_REBOOT_CMD_KEXEC), None)
    code = ctypes.get_errno()
    raise OSError(code, os.strerror(code) if result else "reboot returned")


def readonly_copy(chunks: Iterable[bytes]) -> int:
    """A read-only descriptor of an unnamed file holding ``chunks``, with no writer left open.

    Why a copy: kexec_file_load refuses a file that anyone has open for writing (ETXTBSY,
    the kernel's deny_write_access), and spool files are open read-write while images live.
    The copy is reopened read-only through /proc and its writable descriptor closed.
    """
    with tempfile.TemporaryFile(dir=spool_directory()) as copy:
        position = 0
        for chunk in chunks:
            view = memoryview(chunk)
            while view:
                written = os.pwrite(copy.fileno(), view, position)
                view, position = view[written:], position + written
        return os.open(f"/proc/self/fd/{copy.fileno()}", os.O_RDONLY | os.O_CLOEXEC)


def _sysctl_disabled() -> bool:
    try:
        return DISABLED_SYSCTL.read_text().strip() == "1"
    except OSError:
        return False


ALTERNATIVES = "try --boot qemu to boot it in a VM, or --boot print to see the plan"


@dataclass
class KexecCall:
    """The exact arguments passed to kexec_file_load (what tests check)."""

    kernel_fd: int
    initrd_fd: int
    cmdline_len: int
    cmdline: bytes
    flags: int


@dataclass
class KexecBackend:
    execute: bool = False
    syscall: Syscall = real_kexec_file_load
    reboot: Callable[[], None] = real_reboot_kexec
    geteuid: Callable[[], int] = os.geteuid
    disabled: Callable[[], bool] = _sysctl_disabled
    log: Callable[[str], None] = field(default=lambda text: print(f"pyipxe: {text}", file=sys.stderr))

    def check(self, plan: BootPlan) -> None:
        """Refuse before touching the kernel when the outcome is already known."""
        if plan.kind not in ("linux", "linux-efi"):
            raise KexecRefused(ERR_NOT_BZIMAGE, f"kexec boots Linux kernels only; {plan.kernel.name} is "
                                                f"{plan.type_name} ({plan.kind}): {ALTERNATIVES}")
        if plan.header is None:
            raise KexecRefused(ERR_NOT_BZIMAGE, f"{plan.kernel.name} has no bzImage header: {ALTERNATIVES}")
        problem = plan.header.kexec_problem()
        if problem is not None:
            raise KexecRefused(ERR_NOT_BZIMAGE, f"kexec_file_load cannot load {plan.kernel.name}: {problem}; "
                                                f"{ALTERNATIVES}")
        if self.geteuid() != 0:
            raise KexecRefused(ERR_NOT_ROOT, f"kexec needs root (CAP_SYS_BOOT); run pyipxe as root, or {ALTERNATIVES}")
        if self.disabled():
            raise KexecRefused(ERR_KEXEC_DISABLED, f"kexec is disabled on this host ({DISABLED_SYSCTL} is 1, "
                                                   f"until reboot); {ALTERNATIVES}")

    def arguments(self, plan: BootPlan, kernel_fd: int, initrd_fd: int | None) -> KexecCall:
        cmdline = (plan.cmdline or "").encode("utf-8", "surrogateescape") + b"\0"
        flags = 0 if initrd_fd is not None else KEXEC_FILE_NO_INITRAMFS
        return KexecCall(kernel_fd, initrd_fd if initrd_fd is not None else -1, len(cmdline), cmdline, flags)

    def load(self, plan: BootPlan) -> KexecCall:
        """Check, then stage the plan's kernel and initrd in the running kernel."""
        self.check(plan)
        kernel_fd = readonly_copy(plan.kernel.data.chunks())
        initrd_fd = readonly_copy(plan.initrd.segments()) if plan.initrd is not None else None
        try:
            call = self.arguments(plan, kernel_fd, initrd_fd)
            try:
                self.syscall(call.kernel_fd, call.initrd_fd, call.cmdline_len, call.cmdline, call.flags)
            except OSError as error:
                raise self._refusal(error, plan) from None
        finally:
            os.close(kernel_fd)
            if initrd_fd is not None:
                os.close(initrd_fd)
        return call

    def _refusal(self, error: OSError, plan: BootPlan) -> KexecRefused:
        code = error.errno
        name = plan.kernel.name
        if code == errno.ENOSYS:
            return KexecRefused(ERR_NO_SYSCALL, f"this kernel has no kexec_file_load (CONFIG_KEXEC_FILE); "
                                                f"{ALTERNATIVES}")
        if code == errno.EPERM:
            return KexecRefused(ERR_NOT_ROOT, "kexec_file_load was not permitted (CAP_SYS_BOOT missing, a container, "
                                              f"or kernel lockdown); {ALTERNATIVES}")
        if code in (errno.EKEYREJECTED, errno.EBADMSG, errno.EACCES):
            return KexecRefused(ERR_REJECTED, f"the running kernel rejected {name}'s signature (secure boot "
                                              f"lockdown needs a signed kernel); {ALTERNATIVES}")
        if code in (errno.ENOEXEC, errno.EINVAL):
            return KexecRefused(ERR_NOT_BZIMAGE, f"the running kernel cannot kexec {name} "
                                                 f"({os.strerror(code)}); {ALTERNATIVES}")
        if code == errno.ENOMEM:
            return KexecRefused(ERR_NO_MEMORY, "not enough memory to stage the kernel and initrd")
        if code in (errno.EBUSY, errno.ETXTBSY):
            return KexecRefused(ERR_BUSY, f"kexec_file_load: {os.strerror(code)}")
        return KexecRefused(ERR_LOAD_FAILED, f"kexec_file_load failed: {os.strerror(code or errno.EIO)}")

    def boot(self, plan: BootPlan) -> None:
        """Load; with ``execute``, reboot into it (never returns on success)."""
        call = self.load(plan)
        if not self.execute:
            self.log(f"kexec: loaded {plan.kernel.name} (cmdline {call.cmdline_len - 1} bytes"
                     f"{', initrd' if call.flags == 0 else ', no initrd'}); boot it with `systemctl kexec` "
                     "or `kexec -e`, or run pyipxe with --kexec-exec")
            return
        try:
            self.reboot()
        except OSError as error:
            raise self._refusal(error, plan) from None
