/* The confinement probe the per-entry tests run inside a container (and, for the naive variant,
 * next to it via nsenter). Prints the kernel's view of its confinement, then tries what a
 * container must not do: the keyring syscalls, a new user namespace, and in a new user + cgroup
 * namespace a mount of an existing cgroup v1 hierarchy (CVE-2022-0492's release_agent route).
 * One "name=result" line each; result is "ok" or the errno name. Built static at test time. */
#define _GNU_SOURCE
#include <errno.h>
#include <sched.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

static void report(const char *what, long rc) {
    printf("%s=%s\n", what, rc < 0 ? strerrorname_np(errno) : "ok");
    fflush(stdout);
}

/* Run fn in a child so namespace changes don't touch the probe itself. */
static void in_child(const char *what, int (*fn)(void)) {
    pid_t pid = fork();
    if (pid == 0) {
        _exit(fn() == 0 ? 0 : errno);
    }
    int status = 0;
    waitpid(pid, &status, 0);
    int code = WIFEXITED(status) ? WEXITSTATUS(status) : 255;
    errno = code;
    report(what, code == 0 ? 0 : -1);
}

static int new_userns(void) { return unshare(CLONE_NEWUSER); }

static int cgroup_mount(void) {
    if (unshare(CLONE_NEWUSER | CLONE_NEWNS | CLONE_NEWCGROUP) != 0) return -1;
    char dir[] = "/tmp/lamina-probe-XXXXXX";
    if (!mkdtemp(dir)) return -1;
    int rc = mount("cgroup", dir, "cgroup", 0, "memory");
    int saved = errno;
    if (rc == 0) umount(dir);
    rmdir(dir);
    errno = saved;
    return rc;
}

int main(void) {
    FILE *f = fopen("/proc/self/status", "r");
    char line[512];
    while (f && fgets(line, sizeof line, f)) {
        if (!strncmp(line, "Seccomp:", 8) || !strncmp(line, "NoNewPrivs:", 11) ||
            !strncmp(line, "Cap", 3))
            fputs(line, stdout);
    }
    if (f) fclose(f);
    /* KEY_SPEC_PROCESS_KEYRING = -2, KEYCTL_GET_KEYRING_ID = 0, KEY_SPEC_SESSION_KEYRING = -3 */
    report("add_key", syscall(SYS_add_key, "user", "lamina-probe", "x", 1, -2));
    report("keyctl", syscall(SYS_keyctl, 0, -3, 1));
    in_child("unshare_user", new_userns);
    in_child("cgroup_mount", cgroup_mount);
    return 0;
}
