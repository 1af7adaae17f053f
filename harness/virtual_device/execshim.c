/* LD_PRELOAD shim of the SwapLab virtual Android device: device programs are started the
 * way a phone's kernel starts them. It is preloaded into the host-side tools that stand in
 * for the device's shell (sh, timeout, taskset, ...); it hooks execve, execv, execvp and
 * execvpe (glibc's execvp does not go through execve's PLT).
 *
 * A "device program" is an ELF file inside the device's root ($SWAPLAB_VIRTUAL_ROOT, i.e.
 * pushed with adb). For those:
 *   - another machine than the device's ($SWAPLAB_DEVICE_MACHINE, ELF e_machine) fails with
 *     ENOEXEC "Exec format error", as on an arm64 phone given an x86_64 file;
 *   - a program interpreter (PT_INTERP: /lib/ld-linux-aarch64.so.1, /lib64/ld-linux-x86-64.so.2,
 *     ...) fails with ENOENT "No such file or directory": a phone has no glibc, and this
 *     device has no bionic either, so no shared library of the host is ever loaded;
 *   - a static program runs: natively on x86_64, under `qemu-aarch64-static -cpu $SWAPLAB_QEMU_CPU`
 *     on arm64, with LD_PRELOAD removed.
 * Other files (the host tools, scripts) are executed unchanged.
 *
 * Device CPU numbers: the virtual phone has $SWAPLAB_DEVICE_CPUS CPUs, the host fewer. A
 * static program cannot be preloaded, so its sched_setaffinity calls are trapped with a
 * seccomp user notification and served by a supervisor process (a child forked before the
 * exec): device CPU i runs on allowed host CPU i % count, like the device's `taskset`; a mask
 * naming no device CPU fails with EINVAL as on the phone. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <elf.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/uio.h>
#include <unistd.h>

extern char **environ;

typedef int (*execve_t)(const char *, char *const[], char *const[]);

static int real_execve(const char *path, char *const argv[], char *const envp[]) {
    execve_t real = (execve_t)dlsym(RTLD_NEXT, "execve");
    return real(path, argv, envp);
}

/* --- which files are device programs, and may they run -------------------------------- */

static int inside_device_root(const char *path) {
    const char *root = getenv("SWAPLAB_VIRTUAL_ROOT");
    char real[PATH_MAX];
    if (!root || !*root || !realpath(path, real)) return 0;
    size_t n = strlen(root);
    return strncmp(real, root, n) == 0 && (real[n] == '/' || real[n] == 0);
}

enum verdict { HOST_FILE, RUN_STATIC, NO_INTERPRETER, WRONG_MACHINE };

static enum verdict judge(const char *path) {
    if (!inside_device_root(path)) return HOST_FILE;
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return HOST_FILE; /* let the real execve report why */
    Elf64_Ehdr eh;
    enum verdict v = HOST_FILE;
    if (pread(fd, &eh, sizeof eh, 0) == (ssize_t)sizeof eh && memcmp(eh.e_ident, ELFMAG, SELFMAG) == 0) {
        const char *want = getenv("SWAPLAB_DEVICE_MACHINE");
        if (eh.e_ident[EI_CLASS] != ELFCLASS64 || (want && atoi(want) != eh.e_machine)) {
            v = WRONG_MACHINE;
        } else {
            v = RUN_STATIC;
            for (int i = 0; i < eh.e_phnum; i++) {
                Elf64_Phdr ph;
                off_t at = (off_t)eh.e_phoff + (off_t)i * eh.e_phentsize;
                if (pread(fd, &ph, sizeof ph, at) != (ssize_t)sizeof ph) break;
                if (ph.p_type == PT_INTERP) { v = NO_INTERPRETER; break; }
            }
        }
    }
    close(fd);
    return v;
}

/* envp without LD_PRELOAD (the host's x86_64 shims must not reach a device program) */
static char **device_env(char *const envp[]) {
    int n = 0;
    while (envp && envp[n]) n++;
    char **out = calloc((size_t)n + 1, sizeof(char *));
    if (!out) return NULL;
    int k = 0;
    for (int i = 0; i < n; i++)
        if (strncmp(envp[i], "LD_PRELOAD=", 11) != 0) out[k++] = envp[i];
    out[k] = NULL;
    return out;
}

/* --- device CPU numbers: seccomp user notification supervisor --------------------------- */

static int send_fd(int sock, int fd) {
    char dummy = 0;
    struct iovec io = {.iov_base = &dummy, .iov_len = 1};
    char buf[CMSG_SPACE(sizeof(int))];
    memset(buf, 0, sizeof buf);
    struct msghdr msg = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof buf};
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    c->cmsg_level = SOL_SOCKET;
    c->cmsg_type = SCM_RIGHTS;
    c->cmsg_len = CMSG_LEN(sizeof(int));
    memcpy(CMSG_DATA(c), &fd, sizeof(int));
    return sendmsg(sock, &msg, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock) {
    char dummy;
    struct iovec io = {.iov_base = &dummy, .iov_len = 1};
    char buf[CMSG_SPACE(sizeof(int))];
    struct msghdr msg = {.msg_iov = &io, .msg_iovlen = 1, .msg_control = buf, .msg_controllen = sizeof buf};
    if (recvmsg(sock, &msg, 0) != 1) return -1;
    struct cmsghdr *c = CMSG_FIRSTHDR(&msg);
    if (!c || c->cmsg_type != SCM_RIGHTS) return -1;
    int fd;
    memcpy(&fd, CMSG_DATA(c), sizeof(int));
    return fd;
}

static void supervise(int listener, int device_cpus) {
    cpu_set_t allowed;
    int host[CPU_SETSIZE], n_host = 0;
    if (sched_getaffinity(0, sizeof allowed, &allowed) == 0)
        for (int c = 0; c < CPU_SETSIZE; c++)
            if (CPU_ISSET(c, &allowed)) host[n_host++] = c;
    if (n_host == 0) host[n_host++] = 0;
    struct seccomp_notif req;
    struct seccomp_notif_resp resp;
    for (;;) {
        memset(&req, 0, sizeof req);
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_RECV, &req) != 0) {
            if (errno == EINTR) continue;
            return; /* every device thread has exited */
        }
        memset(&resp, 0, sizeof resp);
        resp.id = req.id;
        pid_t tid = req.data.args[0] ? (pid_t)req.data.args[0] : (pid_t)req.pid;
        size_t len = (size_t)req.data.args[1];
        cpu_set_t dev;
        CPU_ZERO(&dev);
        if (len > sizeof dev) len = sizeof dev;
        struct iovec local = {.iov_base = &dev, .iov_len = len};
        struct iovec remote = {.iov_base = (void *)(uintptr_t)req.data.args[2], .iov_len = len};
        if (process_vm_readv((pid_t)req.pid, &local, 1, &remote, 1, 0) != (ssize_t)len) {
            resp.error = -EFAULT;
        } else {
            cpu_set_t mapped;
            CPU_ZERO(&mapped);
            int any = 0;
            for (int c = 0; c < device_cpus && c < CPU_SETSIZE; c++)
                if (CPU_ISSET(c, &dev)) { CPU_SET(host[c % n_host], &mapped); any = 1; }
            if (!any) resp.error = -EINVAL;
            else if (sched_setaffinity(tid, sizeof mapped, &mapped) != 0) resp.error = -errno;
        }
        if (ioctl(listener, SECCOMP_IOCTL_NOTIF_ID_VALID, &req.id) != 0) continue;
        ioctl(listener, SECCOMP_IOCTL_NOTIF_SEND, &resp);
    }
}

/* Trap sched_setaffinity of this process (and, after exec, of the device program) and serve
 * it from a supervisor child. Best effort: without seccomp the program runs unmapped. */
static void map_device_cpus(void) {
    const char *cpus = getenv("SWAPLAB_DEVICE_CPUS");
    int device_cpus = cpus ? atoi(cpus) : 0;
    if (device_cpus <= 0) return;
    int sv[2];
    if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sv) != 0) return;
    pid_t pid = fork();
    if (pid < 0) { close(sv[0]); close(sv[1]); return; }
    if (pid == 0) {
        /* the supervisor holds no pipe of the device program open (adb waits for EOF) */
        int keep = sv[1];
        int devnull = open("/dev/null", O_RDWR);
        for (int fd = 0; fd < 1024; fd++)
            if (fd != keep && fd != devnull) close(fd);
        if (devnull >= 0) { dup2(devnull, 0); dup2(devnull, 1); dup2(devnull, 2); }
        int listener = recv_fd(keep);
        close(keep);
        if (listener >= 0) supervise(listener, device_cpus);
        _exit(0);
    }
    close(sv[1]);
    struct sock_filter code[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_sched_setaffinity, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof code / sizeof code[0], .filter = code};
    int listener = -1;
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) == 0)
        listener = (int)syscall(__NR_seccomp, SECCOMP_SET_MODE_FILTER,
                                SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    if (listener < 0 || send_fd(sv[0], listener) != 0) kill(pid, SIGKILL);
    if (listener >= 0) close(listener);
    close(sv[0]);
}

/* --- exec ------------------------------------------------------------------------------ */

static int exec_device_program(const char *path, char *const argv[], char *const envp[]) {
    char **env = device_env(envp);
    if (!env) { errno = ENOMEM; return -1; }
    const char *machine = getenv("SWAPLAB_DEVICE_MACHINE");
    int aarch64 = machine && atoi(machine) == EM_AARCH64;
#if defined(__x86_64__)
    if (aarch64) {
        const char *qemu = getenv("SWAPLAB_QEMU");
        const char *cpu = getenv("SWAPLAB_QEMU_CPU");
        if (!qemu || !*qemu) qemu = "/usr/bin/qemu-aarch64-static";
        if (!cpu || !*cpu) cpu = "cortex-a76";
        int n = 0;
        while (argv && argv[n]) n++;
        char **nargv = calloc((size_t)n + 6, sizeof(char *));
        if (!nargv) { free(env); errno = ENOMEM; return -1; }
        int k = 0;
        nargv[k++] = (char *)qemu;
        nargv[k++] = "-cpu"; nargv[k++] = (char *)cpu;
        nargv[k++] = (char *)path;
        for (int i = 1; i < n; i++) nargv[k++] = argv[i];
        nargv[k] = NULL;
        map_device_cpus();
        int r = real_execve(qemu, nargv, env);
        int e = errno; free(nargv); free(env); errno = e;
        return r;
    }
#endif
    map_device_cpus();
    int r = real_execve(path, argv, env);
    int e = errno; free(env); errno = e;
    return r;
}

int execve(const char *path, char *const argv[], char *const envp[]) {
    switch (judge(path)) {
    case WRONG_MACHINE: errno = ENOEXEC; return -1;
    case NO_INTERPRETER: errno = ENOENT; return -1;
    case RUN_STATIC: return exec_device_program(path, argv, envp);
    case HOST_FILE: break;
    }
    return real_execve(path, argv, envp);
}

int execv(const char *path, char *const argv[]) { return execve(path, argv, environ); }

int execvpe(const char *file, char *const argv[], char *const envp[]) {
    if (strchr(file, '/')) return execve(file, argv, envp);
    const char *p = getenv("PATH");
    if (!p) p = "/usr/bin:/bin";
    char buf[4096];
    int saw_eacces = 0;
    while (*p) {
        const char *c = strchr(p, ':');
        size_t len = c ? (size_t)(c - p) : strlen(p);
        if (len + strlen(file) + 2 < sizeof buf) {
            memcpy(buf, p, len); buf[len] = 0;
            if (len == 0) strcpy(buf, ".");
            strcat(buf, "/"); strcat(buf, file);
            if (access(buf, X_OK) == 0) {
                execve(buf, argv, envp);
                if (errno == EACCES) saw_eacces = 1;
            }
        }
        if (!c) break;
        p = c + 1;
    }
    errno = saw_eacces ? EACCES : ENOENT;
    return -1;
}

int execvp(const char *file, char *const argv[]) { return execvpe(file, argv, environ); }
