/* checkapp: the "program" secret-exec starts in the container and systemd checks
 * (scripts/runtime-check). Built static with musl-gcc so it runs in a scratch image and under
 * DynamicUser alike. It proves what arrived without ever printing a value; its argv is ignored
 * (the shipped unit passes myapp's own flags), everything it checks is set by environment:
 *
 *   CHECKAPP_EXPECT=FILE  lines NAME=VALUE: each NAME must hold exactly VALUE
 *                         (exit 3 when one differs, 4 when one is unset, 2 when FILE is unreadable)
 *   CHECKAPP_UID=N        getuid() must be N (exit 5)
 *   CHECKAPP_ROFS=PATH    creating PATH must fail with EROFS: a read-only root (exit 6)
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
