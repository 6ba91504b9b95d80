/*
 * mctl: the command-line client of machineserver — main, help, and the
 * commands that are one REST call each (sessions, power, programs,
 * snapshots, devices). The console and run commands live in console.c.
 *
 * Server URL, API key and token come from --server / --api-key / --token
 * (before or after the command word) or from MACHINESERVER_URL,
 * MACHINESERVER_API_KEY and MACHINESERVER_TOKEN.
 *
 * Threads: single-threaded.
 */
#include "cli/mctl.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DEFAULT_SERVER "http://127.0.0.1:8080"

struct mctl_args mctl_globals;

static const char usage_text[] =
    "usage: mctl [--server URL] [--api-key KEY | --token JWT] [--compact] COMMAND [ARGS]\n"
    "\n"
    "Sessions:\n"
    "  sessions create -b BACKEND --board BOARD [--cpu CPU] [--memory MEM]\n"
    "  sessions list | show ID | delete ID\n"
    "  poweron ID | poweroff ID | reset ID | pause ID\n"
    "  devices ID                 memory-mapped regions and devices of the running machine\n"
    "Programs:\n"
    "  upload FILE                upload an ELF, Intel HEX or raw binary (multipart field file)\n"
    "  programs                   list uploaded programs\n"
    "  load ID PROGRAM_ID [--addr ADDRESS]   load a program (raw binaries need --addr)\n"
    "Console:\n"
    "  console ID [--wait S] [--from-end]\n"
    "      interactive UART console; on a terminal, keys go to the guest raw and Ctrl-] quits;\n"
    "      without one, standard input is sent and, after it ends, output is shown until the\n"
    "      guest has been quiet for --wait seconds (default 1); --from-end skips the backlog\n"
    "Snapshots:\n"
    "  snapshots ID | snapshot ID NAME | restore ID NAME | snapshot-delete ID NAME\n"
    "Run firmware to a verdict (for CI):\n"
    "  run -b BOARD FIRMWARE [--backend qemu|rehost] [--expect TEXT] [--fail-text TEXT]\n"
    "      [--timeout S] [--input-text TEXT [--input-after TEXT]] [--cpu CPU] [--memory MEM]\n"
    "      [--addr ADDRESS] [--keep] [--quiet]\n"
    "      uploads, creates a session, loads, opens the console, powers on and streams the\n"
    "      console to stdout; the session is deleted at the end unless --keep. Without\n"
    "      --expect, success is the machine stopping by itself. --input-text is typed at once,\n"
    "      or when --input-after text appears. Default timeout 60 s, backend qemu.\n"
    "      TEXT may hold the escapes \\r \\n \\t \\\\ \\xNN.\n"
    "\n"
    "Options:\n"
    "  -s, --server URL    default $MACHINESERVER_URL or " DEFAULT_SERVER "\n"
    "  -k, --api-key KEY   default $MACHINESERVER_API_KEY (sent as Authorization: ApiKey KEY)\n"
    "  -t, --token JWT     default $MACHINESERVER_TOKEN (sent as Authorization: Bearer JWT)\n"
    "      --compact       print JSON on one line (default: indented)\n"
    "  -h, --help          this text;  --version  the version\n"
    "\n"
    "Exit codes:\n"
    "  0  success; run: the expected text appeared (or, without --expect, the machine stopped)\n"
    "  1  the server refused the request (its message is printed), run included;\n"
    "     run: the failure text appeared, or the machine stopped or failed (a lockup, an\n"
    "     emulator error after power-on) before the expected text\n"
    "  2  bad command line or unreadable local file\n"
    "  3  run: timeout\n"
    "  4  infrastructure: server unreachable, malformed reply, server failure (5xx)\n"
    "  130 interrupted\n";

void mctl_err(const char *fmt, ...)
{
	va_list ap;
	char buf[1024];

	va_start(ap, fmt);
	vsnprintf(buf, sizeof(buf), fmt, ap);
	va_end(ap);
	fprintf(stderr, "mctl: %s\n", buf);
}

/* The option from after the command word, else before it, else the environment. */
static const char *pick(const struct mctl_args *a, int id, const char *env)
{
	const char *v = a->set[id] ? a->val[id] : mctl_globals.val[id];

	if (v == NULL && env != NULL) {
		v = getenv(env);
		if (v != NULL && v[0] == '\0')
			v = NULL;
	}
	return v;
}

int mctl_connect(const struct mctl_args *a, struct mctl_client *c)
{
	const char *server = pick(a, MCTL_OPT_SERVER, "MACHINESERVER_URL");
	const char *key = pick(a, MCTL_OPT_API_KEY, "MACHINESERVER_API_KEY");
	const char *token = pick(a, MCTL_OPT_TOKEN, "MACHINESERVER_TOKEN");
	const char *bad;

	if (server == NULL)
		server = DEFAULT_SERVER;
	if (strncmp(server, "http://", 7) != 0 && strncmp(server, "https://", 8) != 0) {
		mctl_err("server URL must start with http:// or https:// (got \"%s\")", server);
		return MCTL_USAGE;
	}
	/* A credential with a line break would inject headers. */
	bad = key != NULL && strpbrk(key, "\r\n") ? "API key" : NULL;
	if (token != NULL && strpbrk(token, "\r\n"))
		bad = "token";
	if (bad != NULL) {
		mctl_err("the %s contains a line break", bad);
		return MCTL_USAGE;
	}
	if (key != NULL && token != NULL) {
		/* Both may come from the environment; an explicit flag says which one is meant. */
		if (a->set[MCTL_OPT_TOKEN] || mctl_globals.set[MCTL_OPT_TOKEN])
			key = NULL;
		else
			token = NULL;
	}
	if (mctl_client_init(c, server, key, token) != 0) {
		mctl_err("cannot set up the HTTP client");
		mctl_client_free(c);
		return MCTL_INFRA;
	}
	c->compact = a->set[MCTL_OPT_COMPACT] || mctl_globals.set[MCTL_OPT_COMPACT];
	return 0;
}

/* Parse a command's arguments and check the count of positional ones. */
static int parse_cmd(const char *cmd, const char *usage, int argc, char **argv,
                     const struct mctl_optdef *defs, int npos, struct mctl_args *a)
{
	char err[256];

	if (mctl_parse_args(argc, argv, defs, a, err, sizeof(err)) != 0) {
		mctl_err("%s: %s", cmd, err);
		return MCTL_USAGE;
	}
	if (a->npos != npos) {
		mctl_err("usage: mctl %s", usage);
		return MCTL_USAGE;
	}
	for (int i = 0; i < a->npos; i++) {
		/* Session ids, program ids and snapshot names all go into URL paths. */
		if (strcmp(cmd, "upload") != 0 && !mctl_valid_id(a->pos[i])) {
			mctl_err("%s: \"%s\" is not a valid id or name (letters, digits, _ . -)",
			         cmd, a->pos[i]);
			return MCTL_USAGE;
		}
	}
	return 0;
}

static const struct mctl_optdef plain_opts[] = {
    MCTL_GLOBAL_OPTS,
    {NULL, 0, false, 0},
};

/* One request; print the JSON reply (if any). */
static int simple(const struct mctl_args *a, const char *method, const char *path, json_t *body,
                  const char *upload)
{
	struct mctl_client c;
	struct mctl_reply r;
	int rc = mctl_connect(a, &c);

	if (rc != 0)
		return rc;
	rc = mctl_call(&c, method, path, body, upload, false, &r);
	if (rc == 0) {
		if (r.json != NULL)
			mctl_print_json(&c, r.json);
		else if (r.len > 0)
			printf("%s%s", r.body, r.body[r.len - 1] == '\n' ? "" : "\n");
		mctl_reply_free(&r);
	}
	mctl_client_free(&c);
	return rc;
}

/* A session path, or exit code 4 when memory is short. */
static int session_simple(const struct mctl_args *a, const char *method, const char *id,
                          const char *rest, json_t *body)
{
	char *path = mctl_session_path(id, rest);
	int rc;

	if (path == NULL)
		return MCTL_INFRA;
	rc = simple(a, method, path, body, NULL);
	free(path);
	return rc;
}

enum { CREATE_BACKEND = MCTL_OPT_FIRST, CREATE_BOARD, CREATE_CPU, CREATE_MEMORY };

static const struct mctl_optdef create_opts[] = {
    MCTL_GLOBAL_OPTS,
    {"backend", 'b', true, CREATE_BACKEND},
    {"board", 0, true, CREATE_BOARD},
    {"cpu", 0, true, CREATE_CPU},
    {"memory", 0, true, CREATE_MEMORY},
    {NULL, 0, false, 0},
};

static int cmd_sessions(int argc, char **argv)
{
	struct mctl_args a;
	const char *sub = argc > 0 ? argv[0] : "";
	int rc;

	if (strcmp(sub, "create") == 0) {
		json_t *bc, *body;

		rc =
		    parse_cmd("sessions create",
		              "sessions create -b BACKEND --board BOARD [--cpu CPU] [--memory MEM]",
		              argc - 1, argv + 1, create_opts, 0, &a);
		if (rc != 0)
			return rc;
		if (!a.set[CREATE_BACKEND] || !a.set[CREATE_BOARD]) {
			mctl_err("sessions create: -b BACKEND and --board BOARD are required");
			return MCTL_USAGE;
		}
		bc = json_pack("{s:s}", "board", a.val[CREATE_BOARD]);
		if (a.set[CREATE_CPU])
			json_object_set_new(bc, "cpu", json_string(a.val[CREATE_CPU]));
		if (a.set[CREATE_MEMORY])
			json_object_set_new(bc, "memory", json_string(a.val[CREATE_MEMORY]));
		body = json_pack("{s:s,s:o}", "backend", a.val[CREATE_BACKEND], "board_config", bc);
		rc = simple(&a, "POST", "/api/v1/sessions", body, NULL);
		json_decref(body);
		return rc;
	}
	if (strcmp(sub, "list") == 0) {
		rc = parse_cmd("sessions list", "sessions list", argc - 1, argv + 1, plain_opts, 0,
		               &a);
		return rc != 0 ? rc : simple(&a, "GET", "/api/v1/sessions", NULL, NULL);
	}
	if (strcmp(sub, "show") == 0 || strcmp(sub, "delete") == 0) {
		bool show = sub[0] == 's';

		rc = parse_cmd(show ? "sessions show" : "sessions delete",
		               show ? "sessions show ID" : "sessions delete ID", argc - 1, argv + 1,
		               plain_opts, 1, &a);
		if (rc != 0)
			return rc;
		return session_simple(&a, show ? "GET" : "DELETE", a.pos[0], NULL, NULL);
	}
	mctl_err("usage: mctl sessions create|list|show ID|delete ID");
	return MCTL_USAGE;
}

static int cmd_control(const char *what, int argc, char **argv)
{
	struct mctl_args a;
	char usage[64];
	int rc;

	snprintf(usage, sizeof(usage), "%s ID", what);
	rc = parse_cmd(what, usage, argc, argv, plain_opts, 1, &a);
	return rc != 0 ? rc : session_simple(&a, "POST", a.pos[0], what, NULL);
}

static int cmd_upload(int argc, char **argv)
{
	struct mctl_args a;
	struct stat sb;
	int rc = parse_cmd("upload", "upload FILE", argc, argv, plain_opts, 1, &a);

	if (rc != 0)
		return rc;
	if (stat(a.pos[0], &sb) != 0 || access(a.pos[0], R_OK) != 0) {
		mctl_err("upload: cannot read %s: %m", a.pos[0]);
		return MCTL_USAGE;
	}
	if (!S_ISREG(sb.st_mode)) {
		mctl_err("upload: %s is not a regular file", a.pos[0]);
		return MCTL_USAGE;
	}
	return simple(&a, "POST", "/api/v1/programs", NULL, a.pos[0]);
}

static const struct mctl_optdef load_opts[] = {
    MCTL_GLOBAL_OPTS,
    {"addr", 'a', true, MCTL_OPT_FIRST},
    {NULL, 0, false, 0},
};

static int cmd_load(int argc, char **argv)
{
	struct mctl_args a;
	json_t *body;
	int rc =
	    parse_cmd("load", "load ID PROGRAM_ID [--addr ADDRESS]", argc, argv, load_opts, 2, &a);

	if (rc != 0)
		return rc;
	body = json_pack("{s:s}", "program_id", a.pos[1]);
	if (a.set[MCTL_OPT_FIRST]) {
		uint64_t addr;

		if (!mctl_parse_u64(a.val[MCTL_OPT_FIRST], &addr)) {
			json_decref(body);
			mctl_err("load: --addr must be a number such as 0x08000000");
			return MCTL_USAGE;
		}
		json_object_set_new(body, "load_address", json_integer((json_int_t)addr));
	}
	rc = session_simple(&a, "POST", a.pos[0], "program", body);
	json_decref(body);
	return rc;
}

static int cmd_snapshot(const char *cmd, int argc, char **argv)
{
	struct mctl_args a;
	json_t *body;
	char *rest;
	int rc;

	if (strcmp(cmd, "snapshots") == 0) {
		rc = parse_cmd(cmd, "snapshots ID", argc, argv, plain_opts, 1, &a);
		return rc != 0 ? rc : session_simple(&a, "GET", a.pos[0], "snapshots", NULL);
	}
	if (strcmp(cmd, "snapshot") == 0) {
		rc = parse_cmd(cmd, "snapshot ID NAME", argc, argv, plain_opts, 2, &a);
		if (rc != 0)
			return rc;
		body = json_pack("{s:s}", "name", a.pos[1]);
		rc = session_simple(&a, "POST", a.pos[0], "snapshots", body);
		json_decref(body);
		return rc;
	}
	if (strcmp(cmd, "restore") == 0) {
		rc = parse_cmd(cmd, "restore ID NAME", argc, argv, plain_opts, 2, &a);
		if (rc != 0)
			return rc;
		body = json_pack("{s:s}", "snapshot_id", a.pos[1]);
		rc = session_simple(&a, "POST", a.pos[0], "restore", body);
		json_decref(body);
		return rc;
	}
	rc = parse_cmd(cmd, "snapshot-delete ID NAME", argc, argv, plain_opts, 2, &a);
	if (rc != 0)
		return rc;
	if (asprintf(&rest, "snapshots/%s", a.pos[1]) < 0)
		return MCTL_INFRA;
	rc = session_simple(&a, "DELETE", a.pos[0], rest, NULL);
	free(rest);
	return rc;
}

static int cmd_simple_get(const char *cmd, int argc, char **argv)
{
	struct mctl_args a;
	int rc;

	if (strcmp(cmd, "devices") == 0) {
		rc = parse_cmd(cmd, "devices ID", argc, argv, plain_opts, 1, &a);
		return rc != 0 ? rc : session_simple(&a, "GET", a.pos[0], "devices", NULL);
	}
	rc = parse_cmd(cmd, "programs", argc, argv, plain_opts, 0, &a);
	return rc != 0 ? rc : simple(&a, "GET", "/api/v1/programs", NULL, NULL);
}

/* Global options before the command word; returns the index of the command word. */
static int parse_globals(int argc, char **argv, int *cmd_index)
{
	static const struct mctl_optdef defs[] = {
	    MCTL_GLOBAL_OPTS,
	    {NULL, 0, false, 0},
	};
	char err[256];
	int i = 1;

	/* Options end at the first word that is not an option or an option's value. */
	while (i < argc && argv[i][0] == '-' && strcmp(argv[i], "-h") != 0 &&
	       strcmp(argv[i], "--help") != 0 && strcmp(argv[i], "--version") != 0) {
		bool takes = false;

		for (const struct mctl_optdef *d = defs; d->name != NULL; d++) {
			bool is_long = argv[i][1] == '-' && strcmp(argv[i] + 2, d->name) == 0;
			bool is_short = argv[i][1] == d->short_name && argv[i][2] == '\0';

			if ((is_long || is_short) && d->value)
				takes = true;
		}
		i += takes ? 2 : 1;
	}
	if (i > argc)
		i = argc;
	if (mctl_parse_args(i - 1, argv + 1, defs, &mctl_globals, err, sizeof(err)) != 0) {
		mctl_err("%s", err);
		return MCTL_USAGE;
	}
	if (mctl_globals.npos > 0) {
		mctl_err("unexpected \"%s\" before the command", mctl_globals.pos[0]);
		return MCTL_USAGE;
	}
	*cmd_index = i;
	return 0;
}

int main(int argc, char **argv)
{
	int ci;
	const char *cmd;
	int n;
	char **rest;

	if (parse_globals(argc, argv, &ci) != 0)
		return MCTL_USAGE;
	if (ci >= argc) {
		fputs(usage_text, stderr);
		return MCTL_USAGE;
	}
	cmd = argv[ci];
	n = argc - ci - 1;
	rest = argv + ci + 1;
	if (strcmp(cmd, "-h") == 0 || strcmp(cmd, "--help") == 0 || strcmp(cmd, "help") == 0) {
		fputs(usage_text, stdout);
		return MCTL_OK;
	}
	if (strcmp(cmd, "--version") == 0 || strcmp(cmd, "version") == 0) {
		printf("mctl %s\n", MS_VERSION);
		return MCTL_OK;
	}
	for (int i = 0; i < n; i++) {
		if (strcmp(rest[i], "--") == 0)
			break;
		if (strcmp(rest[i], "-h") == 0 || strcmp(rest[i], "--help") == 0) {
			fputs(usage_text, stdout);
			return MCTL_OK;
		}
	}
	if (strcmp(cmd, "sessions") == 0)
		return cmd_sessions(n, rest);
	if (strcmp(cmd, "poweron") == 0 || strcmp(cmd, "poweroff") == 0 ||
	    strcmp(cmd, "reset") == 0 || strcmp(cmd, "pause") == 0)
		return cmd_control(cmd, n, rest);
	if (strcmp(cmd, "upload") == 0)
		return cmd_upload(n, rest);
	if (strcmp(cmd, "load") == 0)
		return cmd_load(n, rest);
	if (strcmp(cmd, "console") == 0)
		return mctl_cmd_console(n, rest);
	if (strcmp(cmd, "run") == 0)
		return mctl_cmd_run(n, rest);
	if (strcmp(cmd, "snapshots") == 0 || strcmp(cmd, "snapshot") == 0 ||
	    strcmp(cmd, "restore") == 0 || strcmp(cmd, "snapshot-delete") == 0)
		return cmd_snapshot(cmd, n, rest);
	if (strcmp(cmd, "devices") == 0 || strcmp(cmd, "programs") == 0)
		return cmd_simple_get(cmd, n, rest);
	mctl_err("unknown command \"%s\" (mctl --help lists them)", cmd);
	return MCTL_USAGE;
}
