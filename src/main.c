/*
 * main: the machineserver executable.
 *
 *   machineserver [--config FILE]      run the daemon
 *   machineserver run [options] FW     one-shot run without a daemon (src/rehost/run.c)
 *
 * Threads: the main thread starts everything, then waits in sigwait() for
 * SIGTERM/SIGINT/SIGHUP with those signals blocked in every thread (they are
 * blocked before any thread starts, and threads inherit the mask), so no
 * signal handler ever runs concurrently with the daemon's own code.
 */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "backend/backend.h"
#include "core/config.h"
#include "core/log.h"
#include "core/ports.h"
#include "core/program.h"
#include "core/session.h"
#include "core/store.h"
#include "http/auth.h"
#include "http/metrics.h"
#include "http/server.h"
/* Provided by src/rehost/run.c: the one-shot runner behind "machineserver run". */
int ms_run_main(int argc, char **argv);

static void usage(FILE *to)
{
	fprintf(to,
	        "usage: machineserver [--config FILE] [--log-level debug|info|warn|error]\n"
	        "       machineserver run [options] FIRMWARE   (see: machineserver run --help)\n"
	        "       machineserver --help | --version\n"
	        "\n"
	        "Runs the MachineServer daemon: a REST and WebSocket API over firmware emulators\n"
	        "(QEMU children and the in-process rehost engine). Without --config the\n"
	        "embedded defaults apply: 127.0.0.1:8080, data in ./data, auth disabled.\n");
}

static int run_daemon(const char *config_path)
{
	struct ms_config cfg;
	struct ms_err e;
	char db[700];
	sigset_t set;
	int sig;

	ms_err_clear(&e);
	if (config_path != NULL) {
		if (ms_config_load(config_path, &cfg, &e) != 0) {
			fprintf(stderr, "machineserver: %s\n", e.message);
			return 2;
		}
	} else {
		ms_config_defaults(&cfg);
	}
	if (ms_config_validate(&cfg, &e) != 0) {
		fprintf(stderr, "machineserver: %s\n", e.message);
		ms_config_free(&cfg);
		return 2;
	}
	if (strcmp(cfg.server.mode, "debug") == 0)
		ms_log_set_level(MS_LOG_DEBUG);
	if (mkdir(cfg.server.data_dir, 0700) != 0 && errno != EEXIST) {
		fprintf(stderr, "machineserver: cannot create %s: %s\n", cfg.server.data_dir,
		        strerror(errno));
		ms_config_free(&cfg);
		return 2;
	}

	/* Block the stop signals before any thread exists; sigwait takes them below. */
	sigemptyset(&set);
	sigaddset(&set, SIGTERM);
	sigaddset(&set, SIGINT);
	sigaddset(&set, SIGHUP);
	pthread_sigmask(SIG_BLOCK, &set, NULL);
	signal(SIGPIPE, SIG_IGN);

	snprintf(db, sizeof(db), "%s/machineserver.db", cfg.server.data_dir);
	if (ms_store_open(db, &e) != 0 ||
	    ms_programs_init(cfg.server.data_dir, cfg.resources.max_upload_bytes) != 0 ||
	    ms_ports_init(cfg.resources.gdb_port_min, cfg.resources.gdb_port_max) != 0) {
		fprintf(stderr, "machineserver: cannot open the data directory %s: %s\n",
		        cfg.server.data_dir, e.message[0] ? e.message : "initialisation failed");
		ms_config_free(&cfg);
		return 2;
	}
	ms_metrics_init();
	ms_auth_init(&cfg);
	ms_backends_init(&cfg);
	if (ms_sessions_init(&cfg, &e) != 0 || ms_http_start(&cfg, &e) != 0) {
		fprintf(stderr, "machineserver: %s\n", e.message);
		ms_sessions_shutdown();
		ms_backends_fini();
		ms_store_close();
		ms_config_free(&cfg);
		return 2;
	}
	ms_info("machineserver %s listening on %s:%d (auth %s, data %s)", MS_VERSION,
	        cfg.server.bind, cfg.server.port, cfg.auth.enabled ? "enabled" : "disabled",
	        cfg.server.data_dir);

	for (;;) {
		if (sigwait(&set, &sig) != 0)
			continue;
		if (sig == SIGHUP) {
			ms_info("SIGHUP ignored: restart the daemon to change its configuration");
			continue;
		}
		break;
	}
	ms_info("signal %d: stopping sessions and the server", sig);
	ms_http_stop();
	ms_sessions_shutdown();
	ms_backends_fini();
	ms_auth_fini();
	ms_metrics_fini();
	ms_store_close();
	ms_config_free(&cfg);
	ms_info("stopped");
	return 0;
}

int main(int argc, char **argv)
{
	const char *config_path = NULL;

	if (argc > 1 && strcmp(argv[1], "run") == 0)
		return ms_run_main(argc - 1, argv + 1);
	for (int i = 1; i < argc; i++) {
		if (strcmp(argv[i], "--help") == 0 || strcmp(argv[i], "-h") == 0) {
			usage(stdout);
			return 0;
		} else if (strcmp(argv[i], "--version") == 0) {
			printf("machineserver %s\n", MS_VERSION);
			return 0;
		} else if ((strcmp(argv[i], "--config") == 0 || strcmp(argv[i], "-c") == 0) &&
		           i + 1 < argc) {
			config_path = argv[++i];
		} else if (strcmp(argv[i], "--log-level") == 0 && i + 1 < argc) {
			const char *l = argv[++i];

			if (strcmp(l, "debug") == 0)
				ms_log_set_level(MS_LOG_DEBUG);
			else if (strcmp(l, "info") == 0)
				ms_log_set_level(MS_LOG_INFO);
			else if (strcmp(l, "warn") == 0)
				ms_log_set_level(MS_LOG_WARN);
			else if (strcmp(l, "error") == 0)
				ms_log_set_level(MS_LOG_ERROR);
			else {
				fprintf(stderr, "machineserver: unknown log level %s\n", l);
				return 2;
			}
		} else {
			fprintf(stderr, "machineserver: unknown argument %s\n", argv[i]);
			usage(stderr);
			return 2;
		}
	}
	return run_daemon(config_path);
}
