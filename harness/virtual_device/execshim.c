/* LD_PRELOAD shim for the virtual arm64-v8a device: an exec of an AArch64 ELF file is
 * turned into `qemu-aarch64-static -cpu cortex-a72 -U LD_PRELOAD FILE ARGS...` (or
 * `-E LD_PRELOAD=$SWAPLAB_GUEST_PRELOAD` for the aarch64 affinity shim), so the
 * device shell runs arm64 programs "natively" (no binfmt_misc needed on the host).
 * Hooks execve, execv, execvp, execvpe (glibc's execvp does not go through execve's PLT).
 * QEMU path: $SWAPLAB_QEMU (default /usr/bin/qemu-aarch64-static). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

extern char **environ;

static int is_aarch64_elf(const char *path) {
    unsigned char h[20];
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, h, sizeof h);
    close(fd);
    return n == 20 && h[0] == 0x7f && h[1] == 'E' && h[2] == 'L' && h[3] == 'F' &&
           h[18] == 183 && h[19] == 0; /* EM_AARCH64, little endian */
}

typedef int (*execve_t)(const char *, char *const[], char *const[]);

static int exec_qemu(const char *path, char *const argv[], char *const envp[]) {
    const char *qemu = getenv("SWAPLAB_QEMU");
    if (!qemu || !*qemu) qemu = "/usr/bin/qemu-aarch64-static";
    int n = 0;
    while (argv && argv[n]) n++;
    char **nargv = calloc((size_t)n + 8, sizeof(char *));
    if (!nargv) { errno = ENOMEM; return -1; }
    int k = 0;
    nargv[k++] = (char *)qemu;
    nargv[k++] = "-cpu"; nargv[k++] = "cortex-a72";
    /* the host's LD_PRELOAD (x86_64 shims) must not reach the guest; an aarch64 shim may */
    const char *guest = getenv("SWAPLAB_GUEST_PRELOAD");
    static char guest_env[4200];
    if (guest && *guest && strlen(guest) < 4000) {
        strcpy(guest_env, "LD_PRELOAD="); strcat(guest_env, guest);
        nargv[k++] = "-E"; nargv[k++] = guest_env;
    } else {
        nargv[k++] = "-U"; nargv[k++] = "LD_PRELOAD";
    }
    nargv[k++] = (char *)path;
    for (int i = 1; i < n; i++) nargv[k++] = argv[i];
    nargv[k] = NULL;
    execve_t real = (execve_t)dlsym(RTLD_NEXT, "execve");
    int r = real(qemu, nargv, envp);
    int e = errno; free(nargv); errno = e;
    return r;
}

int execve(const char *path, char *const argv[], char *const envp[]) {
    if (is_aarch64_elf(path)) return exec_qemu(path, argv, envp);
    execve_t real = (execve_t)dlsym(RTLD_NEXT, "execve");
    return real(path, argv, envp);
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
