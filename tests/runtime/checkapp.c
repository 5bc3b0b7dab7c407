/* checkapp: the "program" secret-exec starts in the container and systemd checks
 * (scripts/runtime-check). Built static with musl-gcc so it runs in a scratch image and under
 * DynamicUser alike. It proves what arrived without ever printing a value; its argv is ignored
 * (the shipped unit passes myapp's own flags), everything it checks is set by environment:
 *
 *   CHECKAPP_EXPECT=FILE  lines NAME=VALUE: each NAME must hold exactly VALUE
 *                         (exit 3 when one differs, 4 when one is unset, 2 when FILE is unreadable)
 *   CHECKAPP_UID=N        getuid() must be N (exit 5)
 *   CHECKAPP_ROFS=PATH    creating PATH must fail with EROFS: a read-only root (exit 6)
 *   CHECKAPP_FOREGROUND=1 stdin must be a terminal whose foreground process group is
 *                         checkapp's own (exit 8)
 *   CHECKAPP_ORPHANS=N    make N orphans and see who reaps them: a child forks N grandchildren and
 *                         exits, so they are re-parented (to PID 1 or the nearest subreaper); then
 *                         they exit and stay zombies until their new parent reaps them. Prints
 *                         "checkapp: orphans N adopted by WHO, zombies Z" (WHO: parent = the
 *                         process that started checkapp, self = checkapp as PID 1, pid1, or a pid)
 *                         once none is left, or after CHECKAPP_REAP_MS (default 10000) with the
 *                         zombies that remain, then exit 7. checkapp itself never reaps them.
 *   CHECKAPP_SERVE=1      after the checks, report readiness (sd_notify READY=1 when NOTIFY_SOCKET
 *                         is set, and the line "checkapp: ready" on stdout), then wait for SIGTERM
 *                         and exit 42, so a caller can tell "the handler ran" from a SIGKILL (137).
 *
 * Without CHECKAPP_SERVE it exits 0 once every check passed. As PID 1 in a container the kernel
 * drops signals that have no handler, which is why the SIGTERM handler is installed first. */
#include <errno.h>
#include <fcntl.h>
#include <signal.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static volatile sig_atomic_t terminated;

static void on_term(int sig) {
    (void)sig;
    terminated = 1;
}

static int check_expectations(const char *path) {
    FILE *f = fopen(path, "r");
    if (f == NULL) return 2;
    char line[8192];
    int status = 0;
    while (status == 0 && fgets(line, sizeof line, f) != NULL) {
        line[strcspn(line, "\n")] = '\0';
        char *eq = strchr(line, '=');
        if (eq == NULL) continue;
        *eq = '\0';
        const char *got = getenv(line);
        if (got == NULL) status = 4;
        else if (strcmp(got, eq + 1) != 0) status = 3;
    }
    fclose(f);
    return status;
}

/* READY=1 to $NOTIFY_SOCKET (a path, or "@name" for the abstract namespace): what Type=notify waits for. */
static void notify_ready(void) {
    const char *path = getenv("NOTIFY_SOCKET");
    if (path == NULL || path[0] == '\0') return;
    struct sockaddr_un addr = {.sun_family = AF_UNIX};
    size_t len = strlen(path);
    if (len >= sizeof addr.sun_path) return;
    memcpy(addr.sun_path, path, len);
    if (addr.sun_path[0] == '@') addr.sun_path[0] = '\0';
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) return;
    const char msg[] = "READY=1";
    sendto(fd, msg, sizeof msg - 1, 0, (struct sockaddr *)&addr,
           (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len));
    close(fd);
}

/* State letter of /proc/PID/stat ('Z' zombie), 0 once the pid is gone (reaped); *ppid set. */
static char proc_state(pid_t pid, long *ppid) {
    char path[64], buf[512];
    snprintf(path, sizeof path, "/proc/%ld/stat", (long)pid);
    int fd = open(path, O_RDONLY | O_CLOEXEC);
    if (fd < 0) return 0;
    ssize_t n = read(fd, buf, sizeof buf - 1);
    close(fd);
    if (n <= 0) return 0;
    buf[n] = '\0';
    char *end = strrchr(buf, ')'); /* comm may hold spaces and parentheses */
    char state;
    if (end == NULL || sscanf(end + 1, " %c %ld", &state, ppid) != 2) return 0;
    return state;
}

#define MAX_ORPHANS 32

/* 0 when every orphan was reaped by someone else, 7 when zombies remain after the bound. */
static int check_orphans(int count) {
    if (count < 1 || count > MAX_ORPHANS) return 2;
    int pids[2], gate[2];
    if (pipe(pids) != 0 || pipe(gate) != 0) return 2;
    pid_t middle = fork();
    if (middle < 0) return 2;
    if (middle == 0) {
        close(pids[0]);
        for (int i = 0; i < count; i++) {
            pid_t g = fork();
            if (g == 0) {
                /* Block until checkapp closes the gate: exit only after the re-parenting. */
                close(gate[1]);
                char c;
                while (read(gate[0], &c, 1) < 0 && errno == EINTR) {}
                _exit(0);
            }
            if (g < 0) _exit(1);
            if (write(pids[1], &g, sizeof g) != (ssize_t)sizeof g) _exit(1);
        }
        _exit(0);
    }
    close(pids[1]);
    close(gate[0]);
    pid_t orphans[MAX_ORPHANS];
    int n = 0;
    while (n < count && read(pids[0], &orphans[n], sizeof orphans[n]) == (ssize_t)sizeof orphans[n]) n++;
    close(pids[0]);
    int st;
    /* Once the middle child is reaped, its children have their new parent. */
    if (waitpid(middle, &st, 0) != middle || !WIFEXITED(st) || WEXITSTATUS(st) != 0 || n != count) return 2;
    long adopter = -1, ppid = -1;
    for (int i = 0; i < n; i++)
        if (proc_state(orphans[i], &ppid) != 0 && adopter == -1) adopter = ppid;
    close(gate[1]);

    const char *wait_ms = getenv("CHECKAPP_REAP_MS");
    long bound_ms = wait_ms != NULL ? strtol(wait_ms, NULL, 10) : 10000;
    int zombies = 0;
    for (long waited = 0;; waited += 10) {
        int left = 0;
        zombies = 0;
        for (int i = 0; i < n; i++) {
            char s = proc_state(orphans[i], &ppid);
            if (s == 'Z') zombies++;
            if (s != 0) left++;
        }
        if (left == 0 || (left == zombies && waited >= bound_ms)) break;
        if (waited >= bound_ms + 30000) break; /* an orphan that never exits: report, do not hang */
        struct timespec ten_ms = {0, 10 * 1000 * 1000};
        nanosleep(&ten_ms, NULL);
    }
    char who[32];
    if (adopter == (long)getppid()) snprintf(who, sizeof who, "parent");
    else if (adopter == (long)getpid()) snprintf(who, sizeof who, "self");
    else if (adopter == 1) snprintf(who, sizeof who, "pid1");
    else snprintf(who, sizeof who, "pid %ld", adopter);
    printf("checkapp: orphans %d adopted by %s, zombies %d\n", n, who, zombies);
    fflush(stdout);
    return zombies == 0 ? 0 : 7;
}

int main(void) {
    struct sigaction sa = {.sa_handler = on_term};
    sigemptyset(&sa.sa_mask);
    sigaction(SIGTERM, &sa, NULL);

    const char *expect = getenv("CHECKAPP_EXPECT");
    if (expect == NULL) return 2;
    int status = check_expectations(expect);
    if (status != 0) return status;

    const char *uid = getenv("CHECKAPP_UID");
    if (uid != NULL && (unsigned long)getuid() != strtoul(uid, NULL, 10)) return 5;

    const char *rofs = getenv("CHECKAPP_ROFS");
    if (rofs != NULL) {
        int fd = open(rofs, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
        if (fd >= 0) {
            close(fd);
            unlink(rofs);
            return 6;
        }
        if (errno != EROFS) return 6;
    }

    const char *foreground = getenv("CHECKAPP_FOREGROUND");
    if (foreground != NULL && strcmp(foreground, "1") == 0 && tcgetpgrp(0) != getpgrp()) return 8;

    const char *orphans = getenv("CHECKAPP_ORPHANS");
    if (orphans != NULL) {
        status = check_orphans(atoi(orphans));
        if (status != 0) return status;
    }

    const char *serve = getenv("CHECKAPP_SERVE");
    if (serve == NULL || strcmp(serve, "1") != 0) return 0;
    notify_ready();
    fputs("checkapp: ready\n", stdout);
    fflush(stdout);
    sigset_t none;
    sigemptyset(&none);
    while (!terminated) sigsuspend(&none);
    return 42;
}
