/* zonejet-ctl: send one request to zonejetd's control socket and print the reply.
 *
 *     zonejet-ctl --control PATH status | stats | health
 *     zonejet-ctl --control PATH reload [IMAGE...]
 *     zonejet-ctl --control PATH add IMAGE...
 *     zonejet-ctl --control PATH remove IMAGE|ZONE...
 *
 * Paths are made absolute here (against this process's working directory) because the server
 * names its sources by absolute path; a `remove` argument that contains no '/' and names no
 * existing file is sent as is, as a zone name. The request is the command line, then one line
 * per argument, then an empty line (src/server/control.h).
 *
 * Exit status: 0 on a reply, 1 when the reply is an error ("error: ...", printed with the rest
 * of the reply on stderr), 2 on usage errors, 3 when the server cannot be reached. */
#include <errno.h>
#include <limits.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include "zone/imgset.h"

static const char usage_text[] =
    "usage: zonejet-ctl --control SOCKET_PATH COMMAND [ARG...]\n"
    "commands:\n"
    "  status                 version, uptime, reload counters, the geoip database, every\n"
    "                         served image with its checksum, every zone with its SOA serial,\n"
    "                         per-worker counters\n"
    "  stats                  counters summed over workers\n"
    "  health                 every health check: zone, name, kind, target, state, the streak\n"
    "                         of equal results, the last result and how long ago\n"
    "  reload                 re-read every configured source whose files changed, and the\n"
    "                         geoip database if its file changed (as SIGHUP)\n"
    "  reload IMAGE...        re-read these images (or --zones paths); an IMAGE not served yet\n"
    "                         is added\n"
    "  add IMAGE...           serve more images (a directory or *.zone/*.db file is compiled\n"
    "                         as text zones)\n"
    "  remove IMAGE|ZONE...   stop serving an image, named by path or by the one zone it holds\n"
    "A change is validated first and published atomically; if it fails, nothing changes, the\n"
    "reasons are printed on stderr and the exit status is 1.\n";

static int usage(FILE *f)
{
    fputs(usage_text, f);
    return 2;
}

static int send_all(int fd, const char *p, size_t len)
{
    while (len > 0) {
        ssize_t n = send(fd, p, len, MSG_NOSIGNAL);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n <= 0) {
            return -1;
        }
        p += n;
        len -= (size_t)n;
    }
    return 0;
}

static bool is_command(const char *cmd, size_t n_args)
{
    if (strcmp(cmd, "status") == 0 || strcmp(cmd, "stats") == 0 || strcmp(cmd, "health") == 0) {
        return n_args == 0;
    }
    if (strcmp(cmd, "reload") == 0) {
        return true;
    }
    return (strcmp(cmd, "add") == 0 || strcmp(cmd, "remove") == 0) && n_args > 0;
}

/* Append one argument line to the request (absolute path, or a zone name for remove). */
static int append_arg(char *req, size_t cap, const char *cmd, const char *arg)
{
    char abs[PATH_MAX];
    struct stat st;
    const char *line = arg;
    bool is_zone = strcmp(cmd, "remove") == 0 && strchr(arg, '/') == NULL && stat(arg, &st) != 0;
    if (strchr(arg, '\n') != NULL || arg[0] == '\0') {
        fprintf(stderr, "zonejet-ctl: bad argument '%s'\n", arg);
        return -1;
    }
    if (!is_zone) {
        if (zj_imgset_abspath(arg, abs, sizeof(abs)) != 0) {
            fprintf(stderr, "zonejet-ctl: %s: path too long\n", arg);
            return -1;
        }
        line = abs;
    }
    size_t len = strlen(req);
    if (len + strlen(line) + 2 >= cap) {
        fprintf(stderr, "zonejet-ctl: too many arguments for one request\n");
        return -1;
    }
    snprintf(req + len, cap - len, "%s\n", line);
    return 0;
}

int main(int argc, char **argv)
{
    const char *path = NULL;
    const char *cmd = NULL;
    static char req[64 * 1024]; /* the server's request limit (CONTROL_CMD_CAP) */
    char buf[65536];
    bool is_error = false;
    bool is_first = true;
    int rc = 3;
    int fd = -1;
    int first_arg = argc;

    for (int i = 1; i < argc && cmd == NULL; i++) {
        if (strcmp(argv[i], "--control") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strncmp(argv[i], "--control=", 10) == 0) {
            path = argv[i] + 10;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage(stdout);
            return 0;
        } else if (argv[i][0] != '-') {
            cmd = argv[i];
            first_arg = i + 1;
        } else {
            return usage(stderr);
        }
    }
    if (path == NULL || cmd == NULL || !is_command(cmd, (size_t)(argc - first_arg))) {
        return usage(stderr);
    }
    snprintf(req, sizeof(req), "%s\n", cmd);
    for (int i = first_arg; i < argc; i++) {
        if (append_arg(req, sizeof(req), cmd, argv[i]) != 0) {
            return 2;
        }
    }
    strcat(req, "\n");

    struct sockaddr_un sun;
    memset(&sun, 0, sizeof(sun));
    sun.sun_family = AF_UNIX;
    if (strlen(path) >= sizeof(sun.sun_path)) {
        fprintf(stderr, "zonejet-ctl: %s: path too long\n", path);
        return 2;
    }
    memcpy(sun.sun_path, path, strlen(path));

    fd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || connect(fd, (const struct sockaddr *)&sun, sizeof(sun)) != 0) {
        fprintf(stderr, "zonejet-ctl: %s: %s\n", path, strerror(errno));
        goto out;
    }
    if (send_all(fd, req, strlen(req)) != 0) {
        fprintf(stderr, "zonejet-ctl: %s: send: %s\n", path, strerror(errno));
        goto out;
    }
    (void)shutdown(fd, SHUT_WR);
    for (;;) {
        ssize_t n = recv(fd, buf, sizeof(buf), 0);
        if (n < 0 && errno == EINTR) {
            continue;
        }
        if (n < 0) {
            fprintf(stderr, "zonejet-ctl: %s: recv: %s\n", path, strerror(errno));
            goto out;
        }
        if (n == 0) {
            break;
        }
        if (is_first && n >= 6 && memcmp(buf, "error:", 6) == 0) {
            is_error = true;
        }
        is_first = false;
        fwrite(buf, 1, (size_t)n, is_error ? stderr : stdout);
    }
    if (is_first) {
        fprintf(stderr, "zonejet-ctl: %s: the server closed without a reply\n", path);
        goto out;
    }
    rc = is_error ? 1 : 0;
out:
    if (fd >= 0) {
        close(fd);
    }
    return rc;
}
