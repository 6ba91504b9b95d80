/*
 * server: the HTTP daemon on libmicrohttpd (epoll, thread pool): body
 * accumulation with limits, upload spooling, authentication, dispatch
 * through the route table, WebSocket upgrades, audit records and request
 * metrics.
 */
#ifndef MS_SERVER_H
#define MS_SERVER_H

#include "core/config.h"
#include "core/err.h"

int ms_http_start(const struct ms_config *cfg, struct ms_err *e);
void ms_http_stop(void);

#endif
