/* LD_PRELOAD shim of the SwapLab virtual device: the virtual phone has more CPUs than the
 * host, so CPU numbers in sched_setaffinity / pthread_setaffinity_np masks are mapped onto
 * the CPUs the process may use (device CPU i -> allowed host CPU i % count), like the
 * device's `taskset`. Built for x86_64 (host programs) and, when a cross compiler exists,
 * for aarch64 (programs under qemu-aarch64, passed with qemu -E LD_PRELOAD=...). */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <pthread.h>
#include <sched.h>

static int allowed(int *out, int max) {
    typedef int (*get_t)(pid_t, size_t, cpu_set_t *);
    static int cache[CPU_SETSIZE];
    static int n = -1;
    if (n < 0) {
        cpu_set_t s;
        get_t get = (get_t)dlsym(RTLD_NEXT, "sched_getaffinity");
        n = 0;
        if (get && get(0, sizeof s, &s) == 0)
            for (int c = 0; c < CPU_SETSIZE; c++)
                if (CPU_ISSET(c, &s)) cache[n++] = c;
    }
    for (int i = 0; i < n && i < max; i++) out[i] = cache[i];
    return n;
}

static void map_mask(size_t size, const cpu_set_t *in, cpu_set_t *out) {
    int host[CPU_SETSIZE];
    int n = allowed(host, CPU_SETSIZE);
    CPU_ZERO(out);
    int bits = (int)(size * 8 < CPU_SETSIZE ? size * 8 : CPU_SETSIZE);
    for (int c = 0; c < bits; c++)
        if (CPU_ISSET_S(c, size, in)) {
            if (n > 0) CPU_SET(host[c % n], out);
            else CPU_SET(c, out);
        }
}

/* One wrapper per libc entry point: map the mask, then call the real function. */
#define MAPPED_SETAFFINITY(name, id_type)                                   \
    int name(id_type id, size_t size, const cpu_set_t *mask) {              \
        typedef int (*set_t)(id_type, size_t, const cpu_set_t *);           \
        set_t real = (set_t)dlsym(RTLD_NEXT, #name);                        \
        cpu_set_t m;                                                        \
        map_mask(size, mask, &m);                                           \
        return real(id, sizeof m, &m);                                      \
    }

MAPPED_SETAFFINITY(sched_setaffinity, pid_t)
MAPPED_SETAFFINITY(pthread_setaffinity_np, pthread_t)
