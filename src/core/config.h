/*
 * config: the daemon's configuration (config.yaml).
 *
 * Keys follow the seed (server.port, server.mode, auth.enabled,
 * auth.api_keys, auth.jwt_secret, backends.<name>.enabled,
 * backends.<name>.binary, resources.max_sessions, resources.session_timeout,
 * monitoring.enabled) plus what the daemon needs (server.bind,
 * server.data_dir, resources.gdb_port_min/max, resources.max_upload_bytes,
 * resources.max_snapshot_bytes ...). Unknown keys and bad values are
 * rejected with line and column.
 *
 * Ownership: ms_config_load fills a struct whose strings are heap allocated;
 * free them with ms_config_free. The loaded config is read-only afterwards
 * and may be read from any thread without locking.
 */
#ifndef MS_CONFIG_H
#define MS_CONFIG_H

#include <stdbool.h>
#include <stdint.h>
#include <stddef.h>

#include "core/err.h"

struct ms_config_backend {
	bool enabled;
	char *binary; /* may be NULL: backend picks its default */
};

struct ms_config {
	struct {
		int port; /* default 8080 */
		char *mode; /* "debug" or "release", default "release" */
		char *bind; /* default "127.0.0.1" */
		char *data_dir; /* default "./data" (made absolute at load) */
		unsigned
		    threads; /* HTTP worker threads, default 4: emulator operations block a worker for up to seconds (snapshots), so more workers than cores keep /health answering */
	} server;
	struct {
		bool enabled; /* default false */
		char **api_keys; /* n_api_keys entries */
		size_t n_api_keys;
		char *jwt_secret; /* may be NULL: JWT disabled */
	} auth;
	struct {
		struct ms_config_backend qemu; /* binary: default qemu-system-arm */
		struct ms_config_backend rehost; /* default enabled */
		struct ms_config_backend renode;
		struct ms_config_backend openocd;
	} backends;
	struct {
		unsigned max_sessions; /* default 10 */
		unsigned
		    session_timeout; /* seconds an idle session lives; 0 = forever; default 3600 */
		int gdb_port_min; /* default 3400 */
		int gdb_port_max; /* default 3999 */
		uint64_t max_upload_bytes; /* default 64 MiB */
		uint64_t max_snapshot_bytes; /* default 1 GiB per session */
	} resources;
	struct {
		bool enabled; /* /metrics; default true */
	} monitoring;
};

/*
 * Fill *c with the defaults above. Strings are heap copies; data_dir is
 * already made absolute against the working directory.
 */
void ms_config_defaults(struct ms_config *c);

/*
 * Load YAML from path into *c (defaults first, then the file's keys).
 * On error returns MS_EBADINPUT (or -errno for I/O) and e->message holds
 * "FILE:LINE:COL: what is wrong"; *c is then left empty (all NULL/0, so
 * ms_config_free on it is harmless). Typing is strict YAML 1.2 core:
 * booleans are plain true/false, integers plain numbers (a quoted "8080" is
 * refused), sizes are integers in bytes or strings such as "64MiB"
 * (K/M/G/T and KiB..TiB = 1024^n, kB/MB/GB/TB = 1000^n). A relative
 * data_dir is taken against the working directory. Files over 1 MiB are
 * refused.
 */
int ms_config_load(const char *path, struct ms_config *c, struct ms_err *e);

/* Same, from a memory buffer; name is used in messages. */
int ms_config_load_string(const char *yaml, size_t len, const char *name, struct ms_config *c,
                          struct ms_err *e);

/*
 * Cross-field checks done after loading: port range, gdb port range,
 * refuse a non-loopback bind with auth disabled, auth enabled with no key
 * and no secret, a jwt_secret shorter than 16 bytes, server.bind that is
 * not an IP literal or "localhost", server.port inside the GDB range,
 * a relative data_dir. Fills e (400 "bad_config") and returns MS_EBADINPUT.
 */
int ms_config_validate(const struct ms_config *c, struct ms_err *e);

void ms_config_free(struct ms_config *c);

#endif
