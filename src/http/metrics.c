/*
 * metrics: Prometheus text exposition, format 0.0.4 (see metrics.h).
 *
 * Requests are tallied in two small tables: counters by (method, route,
 * status) and latency histograms by route. Routes are the router's patterns,
 * so both tables stay small; methods outside the standard set are counted as
 * "other" so a client cannot invent label values. If a table still fills
 * up, further new series are counted in
 * machineserver_http_requests_unlabelled_total instead of growing memory.
 * Sessions by backend and state come from ms_sessions_count at render time,
 * process figures from /proc/self.
 *
 * Threads: any thread. lock guards counters, n_counters, histos, n_histos,
 * unlabelled and jobs_queued; rendering copies nothing out but holds lock only
 * while printing the tables, never while calling into the session registry.
 */
#include "http/metrics.h"

#include <dirent.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <unistd.h>

#include "core/session.h"

#define MAX_COUNTERS 1024
#define MAX_HISTOS 256
#define N_BUCKETS 14

/* Upper bounds in seconds, and their label text as Prometheus users expect to read it. */
static const double bucket_le[N_BUCKETS] = {
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
};
static const char *const bucket_text[N_BUCKETS] = {
    "0.0005", "0.001", "0.0025", "0.005", "0.01", "0.025", "0.05",
    "0.1",    "0.25",  "0.5",    "1",     "2.5",  "5",     "10",
};

struct counter {
	char method[8];
	char *route;
	int status;
	unsigned long long n;
};

struct histo {
	char *route;
	unsigned long long buckets[N_BUCKETS]; /* not cumulative; summed when rendered */
	unsigned long long count;
	double sum;
};

static pthread_mutex_t lock = PTHREAD_MUTEX_INITIALIZER;
static struct counter *counters;
static size_t n_counters;
static struct histo *histos;
static size_t n_histos;
static unsigned long long unlabelled;
static long jobs_queued;

static void clear_tables(void)
{
	for (size_t i = 0; i < n_counters; i++)
		free(counters[i].route);
	for (size_t i = 0; i < n_histos; i++)
		free(histos[i].route);
	free(counters);
	free(histos);
	counters = NULL;
	histos = NULL;
	n_counters = 0;
	n_histos = 0;
	unlabelled = 0;
	jobs_queued = 0;
}

void ms_metrics_init(void)
{
	pthread_mutex_lock(&lock);
	clear_tables();
	pthread_mutex_unlock(&lock);
}

void ms_metrics_fini(void)
{
	pthread_mutex_lock(&lock);
	clear_tables();
	pthread_mutex_unlock(&lock);
}

static const char *known_method(const char *m)
{
	static const char *const methods[] = {
	    "GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS",
	};

	if (m != NULL) {
		for (size_t i = 0; i < sizeof(methods) / sizeof(methods[0]); i++) {
			if (strcmp(m, methods[i]) == 0)
				return methods[i];
		}
	}
	return "other";
}

/* lock held. NULL when the table is full or memory is short. */
static struct counter *find_counter(const char *method, const char *route, int status)
{
	struct counter *c;

	for (size_t i = 0; i < n_counters; i++) {
		c = &counters[i];
		if (c->status == status && strcmp(c->method, method) == 0 &&
		    strcmp(c->route, route) == 0)
			return c;
	}
	if (n_counters == MAX_COUNTERS)
		return NULL;
	if (counters == NULL) {
		counters = calloc(MAX_COUNTERS, sizeof(*counters));
		if (counters == NULL)
			return NULL;
	}
	c = &counters[n_counters];
	c->route = strdup(route);
	if (c->route == NULL)
		return NULL;
	snprintf(c->method, sizeof(c->method), "%s", method);
	c->status = status;
	c->n = 0;
	n_counters++;
	return c;
}

/* lock held. */
static struct histo *find_histo(const char *route)
{
	struct histo *h;

	for (size_t i = 0; i < n_histos; i++) {
		if (strcmp(histos[i].route, route) == 0)
			return &histos[i];
	}
	if (n_histos == MAX_HISTOS)
		return NULL;
	if (histos == NULL) {
		histos = calloc(MAX_HISTOS, sizeof(*histos));
		if (histos == NULL)
			return NULL;
	}
	h = &histos[n_histos];
	memset(h, 0, sizeof(*h));
	h->route = strdup(route);
	if (h->route == NULL)
		return NULL;
	n_histos++;
	return h;
}

void ms_metrics_request(const char *method, const char *route, int status, double seconds)
{
	const char *m = known_method(method);
	struct counter *c;
	struct histo *h;

	if (route == NULL || route[0] == '\0')
		route = "unmatched";
	if (!(seconds >= 0))
		seconds = 0; /* also catches NaN */
	pthread_mutex_lock(&lock);
	/* The histogram table is the smaller one: no counter is made for a route without one. */
	h = find_histo(route);
	c = h != NULL ? find_counter(m, route, status) : NULL;
	if (c != NULL && h != NULL) {
		c->n++;
		for (int i = 0; i < N_BUCKETS; i++) {
			if (seconds <= bucket_le[i]) {
				h->buckets[i]++;
				break;
			}
		}
		h->count++;
		h->sum += seconds;
	} else {
		unlabelled++;
	}
	pthread_mutex_unlock(&lock);
}

void ms_metrics_set_jobs_queued(long n)
{
	pthread_mutex_lock(&lock);
	jobs_queued = n;
	pthread_mutex_unlock(&lock);
}

/* A label value with \, " and newline escaped as the format requires. */
static void put_label(FILE *f, const char *s)
{
	for (; *s != '\0'; s++) {
		if (*s == '\\')
			fputs("\\\\", f);
		else if (*s == '"')
			fputs("\\\"", f);
		else if (*s == '\n')
			fputs("\\n", f);
		else
			fputc(*s, f);
	}
}

static void family(FILE *f, const char *name, const char *type, const char *help)
{
	fprintf(f, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

static void render_requests(FILE *f)
{
	family(f, "machineserver_http_requests_total", "counter",
	       "HTTP requests answered, by method, matched route and status.");
	for (size_t i = 0; i < n_counters; i++) {
		fprintf(f, "machineserver_http_requests_total{method=\"%s\",route=\"",
		        counters[i].method);
		put_label(f, counters[i].route);
		fprintf(f, "\",status=\"%d\"} %llu\n", counters[i].status, counters[i].n);
	}
	family(f, "machineserver_http_requests_unlabelled_total", "counter",
	       "HTTP requests counted without labels because the label tables were full.");
	fprintf(f, "machineserver_http_requests_unlabelled_total %llu\n", unlabelled);

	family(f, "machineserver_http_request_duration_seconds", "histogram",
	       "Time from request to response, by matched route.");
	for (size_t i = 0; i < n_histos; i++) {
		unsigned long long cum = 0;

		for (int b = 0; b < N_BUCKETS; b++) {
			cum += histos[i].buckets[b];
			fputs("machineserver_http_request_duration_seconds_bucket{route=\"", f);
			put_label(f, histos[i].route);
			fprintf(f, "\",le=\"%s\"} %llu\n", bucket_text[b], cum);
		}
		fputs("machineserver_http_request_duration_seconds_bucket{route=\"", f);
		put_label(f, histos[i].route);
		fprintf(f, "\",le=\"+Inf\"} %llu\n", histos[i].count);
		fputs("machineserver_http_request_duration_seconds_sum{route=\"", f);
		put_label(f, histos[i].route);
		fprintf(f, "\"} %.9g\n", histos[i].sum);
		fputs("machineserver_http_request_duration_seconds_count{route=\"", f);
		put_label(f, histos[i].route);
		fprintf(f, "\"} %llu\n", histos[i].count);
	}
}

static void session_line(const char *backend, enum ms_state st, unsigned n, void *ud)
{
	FILE *f = ud;

	fputs("machineserver_sessions{backend=\"", f);
	put_label(f, backend);
	fprintf(f, "\",state=\"%s\"} %u\n", ms_state_name(st), n);
}

/* Fields of /proc/self/stat after the command name, which may itself hold spaces and ')'. */
struct proc_stat {
	unsigned long long utime, stime, starttime, vsize;
	long long rss, threads;
};

static int read_proc_stat(struct proc_stat *ps)
{
	char buf[1024];
	FILE *f = fopen("/proc/self/stat", "r");
	size_t n;
	char *p;
	int got;

	if (f == NULL)
		return -1;
	n = fread(buf, 1, sizeof(buf) - 1, f);
	fclose(f);
	buf[n] = '\0';
	p = strrchr(buf, ')');
	if (p == NULL)
		return -1;
	/* Fields 3.. : state ppid pgrp session tty tpgid flags minflt cminflt majflt cmajflt
	 * utime stime cutime cstime priority nice num_threads itrealvalue starttime vsize rss */
	got = sscanf(p + 1,
	             " %*c %*d %*d %*d %*d %*d %*u %*u %*u %*u %*u %llu %llu %*d %*d %*d %*d %lld "
	             "%*d %llu %llu %lld",
	             &ps->utime, &ps->stime, &ps->threads, &ps->starttime, &ps->vsize, &ps->rss);
	return got == 6 ? 0 : -1;
}

static long long boot_time(void)
{
	char line[256];
	long long bt = -1;
	FILE *f = fopen("/proc/stat", "r");

	if (f == NULL)
		return -1;
	while (fgets(line, sizeof(line), f) != NULL) {
		if (sscanf(line, "btime %lld", &bt) == 1)
			break;
	}
	fclose(f);
	return bt;
}

static long open_fds(void)
{
	DIR *d = opendir("/proc/self/fd");
	struct dirent *de;
	long n = 0;

	if (d == NULL)
		return -1;
	while ((de = readdir(d)) != NULL) {
		if (de->d_name[0] != '.')
			n++;
	}
	closedir(d);
	return n - 1; /* the directory stream's own descriptor */
}

static void render_process(FILE *f)
{
	struct proc_stat ps;
	long tck = sysconf(_SC_CLK_TCK);
	long page = sysconf(_SC_PAGESIZE);
	long long bt = boot_time();
	long fds = open_fds();
	struct rlimit rl;

	if (read_proc_stat(&ps) == 0 && tck > 0) {
		family(f, "process_cpu_seconds_total", "counter",
		       "Total user and system CPU time spent in seconds.");
		fprintf(f, "process_cpu_seconds_total %.2f\n",
		        (double)(ps.utime + ps.stime) / (double)tck);
		family(f, "process_resident_memory_bytes", "gauge",
		       "Resident memory size in bytes.");
		fprintf(f, "process_resident_memory_bytes %lld\n", ps.rss * page);
		family(f, "process_virtual_memory_bytes", "gauge", "Virtual memory size in bytes.");
		fprintf(f, "process_virtual_memory_bytes %llu\n", ps.vsize);
		family(f, "process_threads", "gauge", "Number of OS threads in the process.");
		fprintf(f, "process_threads %lld\n", ps.threads);
		if (bt >= 0) {
			family(f, "process_start_time_seconds", "gauge",
			       "Start time of the process since unix epoch in seconds.");
			fprintf(f, "process_start_time_seconds %.2f\n",
			        (double)bt + (double)ps.starttime / (double)tck);
		}
	}
	if (fds >= 0) {
		family(f, "process_open_fds", "gauge", "Number of open file descriptors.");
		fprintf(f, "process_open_fds %ld\n", fds);
	}
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur != RLIM_INFINITY) {
		family(f, "process_max_fds", "gauge", "Maximum number of open file descriptors.");
		fprintf(f, "process_max_fds %llu\n", (unsigned long long)rl.rlim_cur);
	}
}

char *ms_metrics_render(size_t *len)
{
	char *text = NULL;
	size_t n = 0;
	FILE *f = open_memstream(&text, &n);
	long queued;

	if (f == NULL)
		return NULL;
	pthread_mutex_lock(&lock);
	render_requests(f);
	queued = jobs_queued;
	pthread_mutex_unlock(&lock);

	/* The registry takes its own locks: call it with ours released. */
	family(f, "machineserver_sessions", "gauge", "Live sessions by backend and state.");
	ms_sessions_count(session_line, f);

	family(f, "simulation_jobs_queued", "gauge", "Simulation jobs waiting in the queue.");
	fprintf(f, "simulation_jobs_queued %ld\n", queued);

	render_process(f);
	if (fclose(f) != 0) {
		free(text);
		return NULL;
	}
	if (len != NULL)
		*len = n;
	return text;
}
