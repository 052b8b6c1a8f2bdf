"""The last step into a container: a tiny static program in a sealed memfd.

Why it exists: a process that enters a container and is still the host's Python has
/proc/<pid>/exe pointing at the host's interpreter. A container process that can see
it (and /proc/self/exe, for the process itself) gets a handle on a host binary that
only ETXTBSY keeps from being opened for writing (the preconditions of runc's
CVE-2019-5736). So kade's Python never execs the user's command itself and never
becomes visible in a container's pid namespace as Python:

    init   Python sets the container up as pid 1 of its new pid namespace (nothing
           else can see it yet), then execs this program ("f" mode), which blocks on
           the exec fifo until start() and execs the user's command
    exec   Python sets the process up outside the container's pid namespace, then
           execs this program ("e", or "t" with a console), which clone()s the final
           process straight into the container (CLONE_PARENT: the caller stays its
           parent), reports its pid and exits; the clone makes a new session (and
           takes the console) and execs the user's command

While it runs, /proc/<pid>/exe is this memfd: sealed against writes, resizing and
(where the kernel knows F_SEAL_EXEC) mode changes, and flagged immutable where tmpfs
supports that, so no container process can change what the next container runs.

Why hand-written machine code: no library makes such a binary, and a compiled
helper would need a compiler at install time. The program is 525 bytes; its assembly
is below, next to the bytes (GNU as, Intel syntax; `as` and `objdump -d` reproduce
them).

Its argv is [<mode><fd>, <fifo path or "">, <path>, <argv[0]>, <argv[1]>, ...]: fd is
where it reports failures (made close-on-exec before the final execve), each report
one little-endian 32-bit record: a tag in the low byte, a value above it.
"""

from __future__ import annotations

import errno
import fcntl
import os
import struct

from kade import errors

FIFO, EXEC, EXEC_TTY = "f", "e", "t"
TAG_EXEC, TAG_PID, TAG_CLONE, TAG_TTY = 0, 1, 2, 3
RECORD = 4

#   _start:  mov r12, rsp                  ; r12 -> argc, argv..., NULL, envp...
#            mov edi, 4 ; xor esi, esi     ; prctl(PR_SET_DUMPABLE, 0): execve made
#            mov eax, 157 ; syscall        ;   us dumpable again
#            mov rsi, [r12+8]              ; argv[0]: <mode><fd>
#            movzx ebx, byte ptr [rsi]     ; bl = mode
#            xor r13d, r13d                ; r13d = fd, parsed from decimal
#   .digit:  inc rsi ; movzx eax, byte ptr [rsi] ; sub eax, 48 ; cmp eax, 9 ; ja .parsed
#            imul r13d, r13d, 10 ; add r13d, eax ; jmp .digit
#   .parsed: cmp qword ptr [r12], 3 ; jb .usage
#            cmp bl, 'f' ; je .fifo ; cmp bl, 'e' ; je .clone ; cmp bl, 't' ; je .clone
#   .usage:  mov edi, 127 ; jmp .exit      ; run by hand: nothing to do
#   .fifo:   mov edi, -100 ; mov rsi, [r12+16] ; mov edx, 0x80001   ; O_WRONLY|O_CLOEXEC
#            mov eax, 257 ; syscall        ; openat(AT_FDCWD, argv[1]): blocks until start
#            test eax, eax ; js .exit1
#            xchg eax, r13d ; mov edi, eax ; mov eax, 3 ; syscall   ; close the O_PATH fd
#            jmp .exec                     ; failures now go into the fifo
#   .clone:  mov edi, 0x8011 ; xor esi, esi ; xor edx, edx   ; CLONE_PARENT|SIGCHLD,
#            xor r10d, r10d ; xor r8d, r8d ; mov eax, 56 ; syscall   ; same stack
#            test eax, eax ; jz .child ; js .clonefail
#            shl eax, 8 ; or al, 1 ; call .report ; xor edi, edi ; jmp .exit  ; pid, exit 0
#   .clonefail: neg eax ; shl eax, 8 ; or al, 2 ; call .report
#   .exit1:  mov edi, 1 ; jmp .exit
#   .child:  mov eax, 112 ; syscall        ; setsid
#            cmp bl, 't' ; jne .cloexec
#            xor edi, edi ; mov esi, 0x540e ; xor edx, edx ; mov eax, 16 ; syscall
#            test eax, eax ; jns .cloexec  ; ioctl(0, TIOCSCTTY, 0)
#            neg eax ; shl eax, 8 ; or al, 3 ; call .report ; jmp .exit1
#   .cloexec: mov edi, r13d ; mov esi, 2 ; mov edx, 1 ; mov eax, 72 ; syscall
#                                          ; fcntl(fd, F_SETFD, FD_CLOEXEC)
#   .exec:   mov rdi, [r12+24] ; lea rsi, [r12+32]      ; execve(argv[2], &argv[3],
#            mov rax, [r12] ; lea rdx, [r12+rax*8+16]   ;        envp)
#            mov eax, 59 ; syscall
#            neg eax ; mov ebp, eax ; shl eax, 8 ; call .report  ; errno, tag 0
#            mov edi, 127 ; cmp ebp, 2 ; je .exit ; cmp ebp, 20 ; je .exit
#            cmp ebp, 40 ; je .exit ; mov edi, 126   ; ENOENT, ENOTDIR, ELOOP: 127
#   .exit:   mov eax, 231 ; syscall        ; exit_group(edi)
#   .report: push rax ; mov edi, r13d ; mov rsi, rsp ; mov edx, 4 ; mov eax, 1 ; syscall
#            pop rax ; ret                 ; write(fd, &eax, 4)
_X86_64 = bytes.fromhex(
    "4989e4bf0400000031f6b89d0000000f05498b7424080fb61e4531ed48ffc60fb60683e8"
    "3083f8097709456bed0a4101c5ebe949833c2403720f80fb66741480fb65743980fb7474"
    "34bf7f000000e9ee000000bf9cffffff498b742410ba01000800b8010100000f0585c078"
    "49419589c7b8030000000f05e985000000bf1180000031f631d24531d24531c0b8380000"
    "000f0585c074297811c1e0080c01e8a500000031ffe997000000f7d8c1e0080c02e89200"
    "0000bf01000000e981000000b8700000000f0580fb74752231ffbe0e54000031d2b81000"
    "00000f0585c0790ef7d8c1e0080c03e85c000000ebc84489efbe02000000ba01000000b8"
    "480000000f05498b7c2418498d742420498b0424498d54c410b83b0000000f05f7d889c5"
    "c1e008e820000000bf7f00000083fd02740f83fd14740a83fd287405bf7e000000b8e700"
    "00000f05504489ef4889e6ba04000000b8010000000f0558c3")

_CODE = {"x86_64": (62, _X86_64)}      # machine -> (e_machine, code)
_BASE = 0x400000
_HEADERS = 64 + 2 * 56                 # the ELF header and two program headers

_MFD_EXEC = 0x10                 # Linux 6.3: executable, whatever vm.memfd_noexec says
_F_SEAL_EXEC = 0x20              # Linux 6.3: the mode's exec bits cannot change
_FS_IOC_SETFLAGS = 0x40086602
_FS_IMMUTABLE_FL = 0x10

_cached: list[tuple[int, int, int]] = []      # (fd, st_dev, st_ino)


def image(machine: str | None = None) -> bytes:
    """The trampoline as a static ELF executable for machine (default: this one)."""
    machine = machine or os.uname().machine
    if machine not in _CODE:
        raise errors.NotImplementedYet(
            f"kade cannot start containers on {machine} yet: its exec trampoline "
            "exists only for x86_64")
    e_machine, code = _CODE[machine]
    size = _HEADERS + len(code)
    header = struct.pack("<4s5B7xHHIQQQIHHHHHH", b"\x7fELF", 2, 1, 1, 0, 0,
                         2, e_machine, 1, _BASE + _HEADERS, 64, 0, 0, 64, 56, 2, 0, 0, 0)
    load = struct.pack("<IIQQQQQQ", 1, 5, 0, _BASE, _BASE, size, size, 0x1000)  # R+X
    stack = struct.pack("<IIQQQQQQ", 0x6474E551, 6, 0, 0, 0, 0, 0, 16)  # GNU_STACK RW
    return header + load + stack + code


def fd() -> int:
    """A sealed, executable memfd holding the trampoline, close-on-exec; one per process
    (checked on each call to still be that memfd, in case fds were closed behind us)."""
    if _cached:
        number, dev, ino = _cached[0]
        try:
            st = os.fstat(number)
            if (st.st_dev, st.st_ino) == (dev, ino):
                return number
        except OSError:
            pass
        _cached.clear()
    number = make()
    st = os.fstat(number)
    _cached.append((number, st.st_dev, st.st_ino))
    return number


def make() -> int:
    data = image()
    flags = os.MFD_CLOEXEC | os.MFD_ALLOW_SEALING
    try:
        memfd = os.memfd_create("kade-init", flags | _MFD_EXEC)
    except OSError as e:
        if e.errno != errno.EINVAL:              # EINVAL: a kernel before MFD_EXEC
            raise _unavailable(e) from None
        memfd = os.memfd_create("kade-init", flags)
    try:
        os.write(memfd, data)
        seals = (fcntl.F_SEAL_SEAL | fcntl.F_SEAL_SHRINK | fcntl.F_SEAL_GROW
                 | fcntl.F_SEAL_WRITE)
        try:
            fcntl.fcntl(memfd, fcntl.F_ADD_SEALS, seals | _F_SEAL_EXEC)
        except OSError:
            fcntl.fcntl(memfd, fcntl.F_ADD_SEALS, seals)
        try:       # chmod, chown and xattrs (file capabilities!) need CAP_LINUX_IMMUTABLE
            fcntl.ioctl(memfd, _FS_IOC_SETFLAGS, struct.pack("i", _FS_IMMUTABLE_FL))
        except OSError:
            pass                                  # tmpfs before Linux 6.0
    except OSError as e:
        os.close(memfd)
        raise _unavailable(e) from None
    return memfd


def _unavailable(e: OSError) -> errors.KadeError:
    return errors.FailedPrecondition(
        f"cannot make kade's exec trampoline (an executable memfd): {os.strerror(e.errno or 0)}"
        " (is vm.memfd_noexec 2?)")


def argv(mode: str, report: int, fifo: str, path: str, args: tuple[str, ...]) -> list[str]:
    return [f"{mode}{report}", fifo, path, *args]


def records(report: bytes) -> list[tuple[int, int]]:
    """(tag, value) records the trampoline wrote; a Python report never starts with one
    (it starts with an error class's name)."""
    usable = len(report) - len(report) % RECORD
    return [(word & 0xFF, word >> 8) for (word,) in struct.iter_unpack("<I", report[:usable])]


def is_records(report: bytes) -> bool:
    return bool(report) and report[0] < 0x20
