/* fuzz_config.c — the config file's text (config.c): `key = value` lines read by
 * config_load_file (from a memfd, so nothing touches the disk), then config_finish; and the
 * whole input through the value parsers config.c exports (durations, Redis URLs, listen
 * addresses, urgencies).
 *
 * Contracts: a failure leaves a message; a duration that parses is not negative; a listen
 * address that parses has a port in 0-65535. */
#include "fuzz.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

#include "impactd/config.h"

static void load_text(const uint8_t *data, size_t size)
{
    int fd = memfd_create("fuzz-config", 0);
    FUZZ_ASSERT(fd >= 0);
    FUZZ_ASSERT(size == 0 || write(fd, data, size) == (ssize_t)size);
    char path[64];
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    static struct config cfg;       /* large: kept off the stack */
    char err[CONFIG_ERR_LEN] = "";
    config_defaults(&cfg);
    int rc = config_load_file(&cfg, path, err, sizeof err);
    if (rc == 0) {
        err[0] = '\0';
        rc = config_finish(&cfg, err, sizeof err);
    }
    FUZZ_ASSERT(rc == 0 || err[0] != '\0');
    close(fd);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    load_text(data, size);
    char *s = fuzz_cstring(data, size);
    int64_t ms;
    if (config_parse_duration_ms(s, &ms) == 0)
        FUZZ_ASSERT(ms >= 0);
    struct redis_addr addr;
    char err[CONFIG_ERR_LEN];
    (void)config_parse_redis_url(s, &addr, err, sizeof err);
    char host[256];
    int port;
    if (config_parse_listen(s, host, sizeof host, &port) == 0)
        FUZZ_ASSERT(port >= 0 && port <= 65535);
    int u = urgency_parse(s);
    FUZZ_ASSERT(u >= -1 && u < URGENCY_COUNT);
    free(s);
    return 0;
}
