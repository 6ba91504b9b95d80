/*
 * backend: the table of backends and what is derived from it.
 *
 * Threads: ms_backends_init/fini run on the main thread before the HTTP
 * server starts and after it stops; the lookups afterwards are read-only.
 */
#include "backend/backend.h"

#include <string.h>

#include "core/log.h"

extern const struct ms_backend ms_backend_qemu;
extern const struct ms_backend ms_backend_rehost;

const struct ms_backend *const ms_backends[] = {
    &ms_backend_qemu,
    &ms_backend_rehost,
    NULL,
};

#define MAX_BACKENDS 8
static bool enabled[MAX_BACKENDS];

static const struct ms_config_backend *config_of(const struct ms_config *cfg, const char *name)
{
	if (strcmp(name, "qemu") == 0)
		return &cfg->backends.qemu;
	if (strcmp(name, "rehost") == 0)
		return &cfg->backends.rehost;
	if (strcmp(name, "renode") == 0)
		return &cfg->backends.renode;
	if (strcmp(name, "openocd") == 0)
		return &cfg->backends.openocd;
	return NULL;
}

void ms_backends_init(const struct ms_config *cfg)
{
	for (size_t i = 0; ms_backends[i] != NULL && i < MAX_BACKENDS; i++) {
		const struct ms_backend *b = ms_backends[i];
		const struct ms_config_backend *bc = config_of(cfg, b->name);
		struct ms_err e;

		enabled[i] = false;
		if (bc == NULL || !bc->enabled)
			continue;
		ms_err_clear(&e);
		if (b->init != NULL && b->init(cfg, &e) != 0) {
			ms_warn("backend %s disabled: %s", b->name, e.message);
			continue;
		}
		enabled[i] = true;
		ms_info("backend %s enabled", b->name);
	}
}

void ms_backends_fini(void)
{
	for (size_t i = 0; ms_backends[i] != NULL && i < MAX_BACKENDS; i++) {
		if (enabled[i] && ms_backends[i]->fini != NULL)
			ms_backends[i]->fini();
		enabled[i] = false;
	}
}

const struct ms_backend *ms_backend_find(const char *name)
{
	for (size_t i = 0; ms_backends[i] != NULL && i < MAX_BACKENDS; i++) {
		if (enabled[i] && strcmp(ms_backends[i]->name, name) == 0)
			return ms_backends[i];
	}
	return NULL;
}

json_t *ms_backends_capabilities(void)
{
	json_t *arr = json_array();

	for (size_t i = 0; ms_backends[i] != NULL && i < MAX_BACKENDS; i++) {
		if (enabled[i] && ms_backends[i]->capabilities != NULL)
			json_array_append_new(arr, ms_backends[i]->capabilities());
	}
	return arr;
}

json_t *ms_backend_operations(const struct ms_backend *b)
{
	json_t *ops = json_array();

#define OP(field, name)                                                                            \
	do {                                                                                       \
		if (b->field != NULL)                                                              \
			json_array_append_new(ops, json_string(name));                             \
	} while (0)
	OP(create, "create");
	OP(destroy, "destroy");
	OP(power_on, "poweron");
	OP(power_off, "poweroff");
	OP(pause, "pause");
	OP(reset, "reset");
	OP(load_program, "load_program");
	OP(snapshot_save, "snapshot_save");
	OP(snapshot_load, "snapshot_restore");
	OP(snapshot_delete, "snapshot_delete");
	OP(console_write, "console");
	OP(device_map, "devices");
	OP(coverage_start, "coverage");
	OP(peripherals, "peripherals");
	OP(peripheral_patch, "peripheral_patch");
	OP(mmio_recent, "mmio_log");
	OP(models_export, "device_map_export");
	OP(step, "step");
	OP(run_for, "run_for");
	OP(inject_event, "inject_event");
#undef OP
	return ops;
}
