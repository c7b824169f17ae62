/* zonejetd: argv (and the --config file it names) -> zj_server_run(). Nothing else. */
#include <stdio.h>

#include "server/config.h"
#include "server/server.h"
#include "util/log.h"

int main(int argc, char **argv)
{
    char err[512];
    zj_config_t cfg;

    zj_log_init("zonejetd", ZJ_LOG_INFO);
    int rc = zj_config_parse(&cfg, argc, argv, err, sizeof(err));
    if (rc == ZJ_CONFIG_HELP) {
        fputs(zj_config_usage(), stdout);
        return 0;
    }
    if (rc == ZJ_CONFIG_VERSION) {
        printf("zonejetd %s\n", ZJ_VERSION_STRING);
        return 0;
    }
    if (rc != ZJ_CONFIG_RUN) {
        zj_log_err("%s", err);
        return 2;
    }
    int status = zj_server_run(&cfg);
    zj_config_fini(&cfg);
    return status;
}
