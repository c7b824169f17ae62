/* zonejet-ctl: send one command to zonejetd's control socket and print the reply.
 *
 *     zonejet-ctl --control PATH status|stats|reload
 *
 * Exit status: 0 on a reply, 1 when the reply is an error ("error: ..."), 2 on usage errors,
 * 3 when the server cannot be reached. */
#include <errno.h>
#include <stdbool.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

static int usage(void)
{
    fputs("usage: zonejet-ctl --control SOCKET_PATH status|stats|reload\n", stderr);
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

int main(int argc, char **argv)
{
    const char *path = NULL;
    const char *cmd = NULL;
    char line[300];
    char buf[65536];
    bool is_error = false;
    bool is_first = true;
    int rc = 3;
    int fd = -1;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--control") == 0 && i + 1 < argc) {
            path = argv[++i];
        } else if (strncmp(argv[i], "--control=", 10) == 0) {
            path = argv[i] + 10;
        } else if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
            usage();
            return 0;
        } else if (cmd == NULL && argv[i][0] != '-') {
            cmd = argv[i];
        } else {
            return usage();
        }
    }
    if (path == NULL || cmd == NULL || strlen(cmd) > 255) {
        return usage();
    }
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
    snprintf(line, sizeof(line), "%s\n", cmd);
    if (send_all(fd, line, strlen(line)) != 0) {
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
    rc = is_error ? 1 : 0;
out:
    if (fd >= 0) {
        close(fd);
    }
    return rc;
}
