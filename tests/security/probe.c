/* Tries the syscalls where docker's seccomp profiles differ and prints one line each:
 * "<what> ok" or "<what> <errno name>". Built static (busybox has no such tools) by
 * test_confinement_defaults.py and run inside a container. */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

static void report(const char *what, long rc)
{
	printf("%s %s\n", what, rc >= 0 ? "ok" : strerrorname_np(errno));
}

int main(void)
{
	char src[8] = "abcdefg", dst[8];
	struct iovec local = {dst, sizeof dst}, remote = {src, sizeof src};
	struct {
		struct file_handle fh;
		unsigned char bytes[MAX_HANDLE_SZ];
	} handle = {.fh.handle_bytes = MAX_HANDLE_SZ};
	char uring_params[120] = {0}; /* struct io_uring_params, zeroed */
	int mount_id;

	report("af_vsock", socket(40, SOCK_STREAM, 0));
	report("af_alg", socket(38, SOCK_SEQPACKET, 0));
	report("af_unix", socket(AF_UNIX, SOCK_STREAM, 0));
	report("io_uring_setup", syscall(__NR_io_uring_setup, 1, uring_params));
	report("process_vm_readv", process_vm_readv(getpid(), &local, 1, &remote, 1, 0));
	/* a tmpfs: it gives out file handles, where an overlay root may not */
	report("name_to_handle_at", name_to_handle_at(AT_FDCWD, "/dev/shm", &handle.fh,
						      &mount_id, 0));
	return 0;
}
