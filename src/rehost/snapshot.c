/*
 * snapshot: whole-machine snapshots for the rehost engine — CPU registers,
 * the system control space, every memory region, every device's state,
 * the pending console input, the inference module's run-time state and
 * the virtual clock. Restoring one and running on gives the same trace as
 * the original run from that point.
 *
 * Memory is copied from the host buffers behind uc_mem_map_ptr, so saving
 * and restoring is a handful of memcpy calls. On disk a snapshot is
 * "MSRHSNP1", a little-endian u32 with the length of a JSON header, the
 * header (registers, layout, sizes), then the binary blobs it lists.
 *
 * Threads: the machine's owner thread. Snapshot objects are plain data
 * owned by the caller.
 */
#include <errno.h>
#include <inttypes.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <sys/mman.h>

#include "infer/infer.h"
#include "rehost/machine.h"

static const int snap_regs[] = {
    UC_ARM_REG_R0,      UC_ARM_REG_R1,        UC_ARM_REG_R2,      UC_ARM_REG_R3,
    UC_ARM_REG_R4,      UC_ARM_REG_R5,        UC_ARM_REG_R6,      UC_ARM_REG_R7,
    UC_ARM_REG_R8,      UC_ARM_REG_R9,        UC_ARM_REG_R10,     UC_ARM_REG_R11,
    UC_ARM_REG_R12,     UC_ARM_REG_LR,        UC_ARM_REG_PC,      UC_ARM_REG_XPSR,
    UC_ARM_REG_MSP,     UC_ARM_REG_PSP,       UC_ARM_REG_CONTROL, UC_ARM_REG_PRIMASK,
    UC_ARM_REG_BASEPRI, UC_ARM_REG_FAULTMASK, UC_ARM_REG_FPSCR,
};
#define N_SNAP_REGS (sizeof(snap_regs) / sizeof(snap_regs[0]))
enum {
	R_LR = 13,
	R_PC,
	R_XPSR,
	R_MSP,
	R_PSP,
	R_CONTROL,
	R_PRIMASK,
	R_BASEPRI,
	R_FAULTMASK,
	R_FPSCR,
};

struct snap_region {
	char name[32];
	uint32_t base, size;
	int alias_of;
	bool readonly, lazy;
	uint8_t *data; /* NULL for aliases */
};

struct ms_rh_snapshot {
	uint64_t icount;
	uint32_t regs[N_SNAP_REGS];
	uint32_t sregs[32];
	struct ms_rh_scs scs;
	bool sleeping;
	int n_regions;
	struct snap_region regions[MS_RH_MAX_REGIONS];
	int n_devs;
	size_t dev_size[MS_RH_MAX_DEVS];
	uint8_t *dev_state[MS_RH_MAX_DEVS];
	uint8_t *input;
	size_t input_len;
	json_t *infer; /* NULL when the machine has no inference module */
	char cpu[32];
	size_t bytes;
};

void ms_rh_snapshot_free(struct ms_rh_snapshot *s)
{
	int i;

	if (s == NULL)
		return;
	for (i = 0; i < s->n_regions; i++)
		free(s->regions[i].data);
	for (i = 0; i < s->n_devs; i++)
		free(s->dev_state[i]);
	free(s->input);
	json_decref(s->infer);
	free(s);
}

size_t ms_rh_snapshot_size(const struct ms_rh_snapshot *s)
{
	return s->bytes;
}

struct ms_rh_snapshot *ms_rh_snapshot_take(struct ms_rh_machine *m)
{
	struct ms_rh_snapshot *s = calloc(1, sizeof(*s));
	size_t i;
	int k;

	if (s == NULL)
		return NULL;
	s->icount = m->icount;
	for (i = 0; i < N_SNAP_REGS; i++) {
		int r = snap_regs[i];

		if (r == UC_ARM_REG_MSP || r == UC_ARM_REG_PSP || r == UC_ARM_REG_PRIMASK ||
		    r == UC_ARM_REG_BASEPRI || r == UC_ARM_REG_FAULTMASK)
			s->regs[i] = ms__rh_sysreg(m, r);
		else
			uc_reg_read(m->uc, r, &s->regs[i]);
	}
	if (m->has_fpu)
		for (i = 0; i < 32; i++)
			uc_reg_read(m->uc, UC_ARM_REG_S0 + (int)i, &s->sregs[i]);
	s->scs = m->scs;
	s->sleeping = m->sleeping;
	snprintf(s->cpu, sizeof(s->cpu), "%s", m->board.cpu);
	s->bytes = sizeof(*s);
	s->n_regions = m->n_regions;
	for (k = 0; k < m->n_regions; k++) {
		struct ms_rh_region *r = &m->regions[k];
		struct snap_region *d = &s->regions[k];

		memcpy(d->name, r->name, sizeof(d->name));
		d->base = r->base;
		d->size = r->size;
		d->alias_of = r->alias_of;
		d->readonly = r->readonly;
		d->lazy = r->lazy;
		if (r->alias_of >= 0)
			continue;
		d->data = malloc(r->size);
		if (d->data == NULL)
			goto fail;
		memcpy(d->data, r->host, r->size);
		s->bytes += r->size;
	}
	s->n_devs = m->n_devs;
	for (k = 0; k < m->n_devs; k++) {
		s->dev_size[k] = m->devs[k].state_size;
		s->dev_state[k] = malloc(s->dev_size[k] ? s->dev_size[k] : 1);
		if (s->dev_state[k] == NULL)
			goto fail;
		memcpy(s->dev_state[k], m->devs[k].state, s->dev_size[k]);
		s->bytes += s->dev_size[k];
	}
	pthread_mutex_lock(&m->in_lock);
	s->input_len = m->in_len;
	s->input = malloc(m->in_len ? m->in_len : 1);
	if (s->input != NULL)
		for (i = 0; i < m->in_len; i++)
			s->input[i] = m->in_buf[(m->in_head + i) % m->in_cap];
	pthread_mutex_unlock(&m->in_lock);
	if (s->input == NULL)
		goto fail;
	if (m->inf != NULL)
		s->infer = ms_infer_state_save(m->inf);
	return s;
fail:
	ms_rh_snapshot_free(s);
	return NULL;
}

static void wreg(struct ms_rh_machine *m, int reg, uint32_t v)
{
	uc_reg_write(m->uc, reg, &v);
}

/*
 * Put registers back from any starting state. QEMU's MSR path ignores
 * privileged registers when unprivileged and SPSEL in handler mode, so:
 * enter handler mode (privileged), set masks and both stack pointers,
 * then switch to the saved mode and finally the saved CONTROL.
 */
static void restore_regs(struct ms_rh_machine *m, const uint32_t *r, const uint32_t *sregs)
{
	int i;

	wreg(m, UC_ARM_REG_XPSR, 0x01000003u);
	wreg(m, UC_ARM_REG_CONTROL, r[R_CONTROL] & ~1u);
	wreg(m, UC_ARM_REG_PRIMASK, r[R_PRIMASK]);
	if (!m->v6m) {
		wreg(m, UC_ARM_REG_BASEPRI, r[R_BASEPRI]);
		wreg(m, UC_ARM_REG_FAULTMASK, r[R_FAULTMASK]);
	}
	wreg(m, UC_ARM_REG_MSP, r[R_MSP]);
	wreg(m, UC_ARM_REG_PSP, r[R_PSP]);
	wreg(m, UC_ARM_REG_XPSR, r[R_XPSR]);
	if ((r[R_XPSR] & 0x1ff) == 0)
		wreg(m, UC_ARM_REG_CONTROL, r[R_CONTROL]);
	/* The current SP now follows the restored mode and SPSEL. */
	wreg(m, UC_ARM_REG_SP,
	     ((r[R_XPSR] & 0x1ff) == 0 && (r[R_CONTROL] & 2)) ? r[R_PSP] : r[R_MSP]);
	for (i = 0; i <= 12; i++)
		wreg(m, snap_regs[i], r[i]);
	wreg(m, UC_ARM_REG_LR, r[R_LR]);
	if (m->has_fpu) {
		for (i = 0; i < 32; i++)
			wreg(m, UC_ARM_REG_S0 + i, sregs[i]);
		wreg(m, UC_ARM_REG_FPSCR, r[R_FPSCR]);
	}
	wreg(m, UC_ARM_REG_PC, r[R_PC] | 1u);
}

/* Create or match the snapshot's regions: restore needs the same layout. */
static int match_regions(struct ms_rh_machine *m, const struct ms_rh_snapshot *s, struct ms_err *e)
{
	int i;

	for (i = 0; i < s->n_regions; i++) {
		const struct snap_region *d = &s->regions[i];
		struct ms_rh_region *r = i < m->n_regions ? &m->regions[i] : NULL;

		if (r != NULL) {
			if (r->base != d->base || r->size != d->size || r->alias_of != d->alias_of)
				return ms_fail(e, 409, "snapshot_mismatch",
				               "snapshot memory layout differs at region %s",
				               d->name);
			continue;
		}
		if (!d->lazy || d->alias_of >= 0)
			return ms_fail(e, 409, "snapshot_mismatch",
			               "snapshot has region %s that this machine lacks", d->name);
		r = &m->regions[m->n_regions];
		memset(r, 0, sizeof(*r));
		memcpy(r->name, d->name, sizeof(r->name));
		r->base = d->base;
		r->size = d->size;
		r->lazy = true;
		r->alias_of = -1;
		r->host = mmap(NULL, d->size, PROT_READ | PROT_WRITE,
		               MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
		if (r->host == MAP_FAILED)
			return ms_fail(e, 500, "internal", "out of memory");
		if (uc_mem_map_ptr(m->uc, d->base, d->size, UC_PROT_ALL, r->host) != UC_ERR_OK) {
			munmap(r->host, d->size);
			return ms_fail(e, 409, "snapshot_mismatch", "cannot map region %s",
			               d->name);
		}
		m->n_regions++;
	}
	return 0;
}

int ms_rh_snapshot_restore(struct ms_rh_machine *m, const struct ms_rh_snapshot *s,
                           struct ms_err *e)
{
	int i, rc;

	if (strcmp(s->cpu, m->board.cpu) != 0)
		return ms_fail(e, 409, "snapshot_mismatch",
		               "snapshot is for a %s, this machine is a %s", s->cpu, m->board.cpu);
	if (s->n_devs != m->n_devs)
		return ms_fail(e, 409, "snapshot_mismatch", "snapshot has %d devices, machine %d",
		               s->n_devs, m->n_devs);
	for (i = 0; i < s->n_devs; i++)
		if (s->dev_size[i] != m->devs[i].state_size)
			return ms_fail(e, 409, "snapshot_mismatch", "device %s state differs",
			               m->devs[i].name);
	if ((rc = match_regions(m, s, e)) != 0)
		return rc;
	/* Regions created lazily after the snapshot were unmapped then: they read as zero. */
	for (i = 0; i < m->n_regions; i++) {
		struct ms_rh_region *r = &m->regions[i];

		if (r->alias_of >= 0)
			continue;
		if (i < s->n_regions)
			memcpy(r->host, s->regions[i].data, r->size);
		else
			ms__rh_zero(r->host, r->size);
	}
	for (i = 0; i < m->n_devs; i++)
		memcpy(m->devs[i].state, s->dev_state[i], s->dev_size[i]);
	if (m->inf != NULL && s->infer != NULL &&
	    (rc = ms_infer_state_load(m->inf, s->infer, e)) != 0)
		return rc;
	m->scs = s->scs;
	m->icount = s->icount;
	m->sleeping = s->sleeping;
	m->locked_up = false;
	m->halted_for_debug = false;
	m->reset_request = false;
	m->crash[0] = 0;
	pthread_mutex_lock(&m->in_lock);
	m->in_len = 0;
	m->in_head = 0;
	pthread_mutex_unlock(&m->in_lock);
	ms_rh_machine_input_push(m, s->input, s->input_len);
	restore_regs(m, s->regs, s->sregs);
	/* Code in RAM may differ from what was translated. */
	ms__rh_flush_code(m);
	return 0;
}

/* ---- on disk ---- */

static bool wr(FILE *f, const void *p, size_t n)
{
	return n == 0 || fwrite(p, 1, n, f) == n;
}

int ms_rh_snapshot_write(const struct ms_rh_snapshot *s, const char *path, struct ms_err *e)
{
	json_t *hdr = json_object(), *regs = json_array(), *sregs = json_array(),
	       *rg = json_array(), *dv = json_array();
	char tmp[4200];
	char *js = NULL;
	uint32_t jl;
	FILE *f = NULL;
	size_t i;
	int k, rc = 0;

	for (i = 0; i < N_SNAP_REGS; i++)
		json_array_append_new(regs, json_integer(s->regs[i]));
	for (i = 0; i < 32; i++)
		json_array_append_new(sregs, json_integer(s->sregs[i]));
	for (k = 0; k < s->n_regions; k++) {
		const struct snap_region *d = &s->regions[k];

		json_array_append_new(rg,
		                      json_pack("{s:s, s:I, s:I, s:i, s:b, s:b}", "name", d->name,
		                                "base", (json_int_t)d->base, "size",
		                                (json_int_t)d->size, "alias_of", d->alias_of,
		                                "readonly", d->readonly, "lazy", d->lazy));
	}
	for (k = 0; k < s->n_devs; k++)
		json_array_append_new(dv, json_integer((json_int_t)s->dev_size[k]));
	json_object_set_new(hdr, "icount", json_integer((json_int_t)s->icount));
	json_object_set_new(hdr, "cpu", json_string(s->cpu));
	json_object_set_new(hdr, "sleeping", json_boolean(s->sleeping));
	json_object_set_new(hdr, "regs", regs);
	json_object_set_new(hdr, "sregs", sregs);
	json_object_set_new(hdr, "regions", rg);
	json_object_set_new(hdr, "devices", dv);
	json_object_set_new(hdr, "scs_size", json_integer((json_int_t)sizeof(s->scs)));
	json_object_set_new(hdr, "input_len", json_integer((json_int_t)s->input_len));
	if (s->infer != NULL)
		json_object_set(hdr, "infer", s->infer);
	js = json_dumps(hdr, JSON_COMPACT);
	json_decref(hdr);
	if (js == NULL)
		return ms_fail(e, 500, "internal", "out of memory");
	snprintf(tmp, sizeof(tmp), "%s.tmp", path);
	f = fopen(tmp, "wb");
	if (f == NULL) {
		free(js);
		return ms_fail(e, 500, "io_error", "cannot write %s: %s", tmp, strerror(errno));
	}
	jl = (uint32_t)strlen(js);
	if (!wr(f, "MSRHSNP1", 8) || !wr(f, &jl, 4) || !wr(f, js, jl) ||
	    !wr(f, &s->scs, sizeof(s->scs)))
		rc = -EIO;
	for (k = 0; rc == 0 && k < s->n_devs; k++)
		if (!wr(f, s->dev_state[k], s->dev_size[k]))
			rc = -EIO;
	for (k = 0; rc == 0 && k < s->n_regions; k++)
		if (s->regions[k].data != NULL && !wr(f, s->regions[k].data, s->regions[k].size))
			rc = -EIO;
	if (rc == 0 && !wr(f, s->input, s->input_len))
		rc = -EIO;
	if (fclose(f) != 0)
		rc = -EIO;
	free(js);
	if (rc != 0 || rename(tmp, path) != 0) {
		unlink(tmp);
		return ms_fail(e, 500, "io_error", "cannot write snapshot %s", path);
	}
	return 0;
}

static bool rd(FILE *f, void *p, size_t n)
{
	return n == 0 || fread(p, 1, n, f) == n;
}

int ms_rh_snapshot_read(struct ms_rh_machine *m, const char *path, struct ms_rh_snapshot **out,
                        struct ms_err *e)
{
	struct ms_rh_snapshot *s;
	json_t *hdr = NULL, *v, *it;
	json_error_t je;
	char magic[8];
	char *js = NULL;
	uint32_t jl;
	FILE *f;
	size_t i;
	int rc;

	(void)m;
	*out = NULL;
	f = fopen(path, "rb");
	if (f == NULL)
		return ms_fail(e, 404, "snapshot_not_found", "cannot open %s", path);
	s = calloc(1, sizeof(*s));
	if (s == NULL) {
		fclose(f);
		return ms_fail(e, 500, "internal", "out of memory");
	}
	rc = ms_fail(e, 400, "bad_snapshot", "%s: truncated or malformed snapshot", path);
	if (!rd(f, magic, 8) || memcmp(magic, "MSRHSNP1", 8) != 0 || !rd(f, &jl, 4) ||
	    jl > (64u << 20))
		goto out;
	js = malloc((size_t)jl + 1);
	if (js == NULL || !rd(f, js, jl))
		goto out;
	js[jl] = 0;
	hdr = json_loads(js, 0, &je);
	if (hdr == NULL)
		goto out;
	v = json_object_get(hdr, "regs");
	if (json_array_size(v) != N_SNAP_REGS ||
	    json_integer_value(json_object_get(hdr, "scs_size")) != (json_int_t)sizeof(s->scs))
		goto out;
	json_array_foreach(v, i, it) s->regs[i] = (uint32_t)json_integer_value(it);
	v = json_object_get(hdr, "sregs");
	if (json_array_size(v) != 32)
		goto out;
	json_array_foreach(v, i, it) s->sregs[i] = (uint32_t)json_integer_value(it);
	s->icount = (uint64_t)json_integer_value(json_object_get(hdr, "icount"));
	s->sleeping = json_is_true(json_object_get(hdr, "sleeping"));
	if (!json_is_string(json_object_get(hdr, "cpu")))
		goto out;
	snprintf(s->cpu, sizeof(s->cpu), "%s", json_string_value(json_object_get(hdr, "cpu")));
	if (!rd(f, &s->scs, sizeof(s->scs)))
		goto out;
	v = json_object_get(hdr, "devices");
	if (!json_is_array(v) || json_array_size(v) > MS_RH_MAX_DEVS)
		goto out;
	json_array_foreach(v, i, it)
	{
		json_int_t sz = json_integer_value(it);

		if (sz < 0 || sz > (1 << 20))
			goto out;
		s->dev_size[i] = (size_t)sz;
		s->dev_state[i] = malloc(sz ? (size_t)sz : 1);
		s->n_devs = (int)i + 1;
		if (s->dev_state[i] == NULL || !rd(f, s->dev_state[i], (size_t)sz))
			goto out;
	}
	v = json_object_get(hdr, "regions");
	if (!json_is_array(v) || json_array_size(v) > MS_RH_MAX_REGIONS)
		goto out;
	json_array_foreach(v, i, it)
	{
		struct snap_region *d = &s->regions[i];
		const char *name = json_string_value(json_object_get(it, "name"));
		json_int_t base = json_integer_value(json_object_get(it, "base"));
		json_int_t size = json_integer_value(json_object_get(it, "size"));
		json_int_t alias = json_integer_value(json_object_get(it, "alias_of"));

		if (name == NULL || base < 0 || size <= 0 || base + size > 0x100000000ll ||
		    alias < -1 || alias >= (json_int_t)i)
			goto out;
		snprintf(d->name, sizeof(d->name), "%s", name);
		d->base = (uint32_t)base;
		d->size = (uint32_t)size;
		d->alias_of = (int)alias;
		d->readonly = json_is_true(json_object_get(it, "readonly"));
		d->lazy = json_is_true(json_object_get(it, "lazy"));
		s->n_regions = (int)i + 1;
		if (alias >= 0)
			continue;
		d->data = malloc((size_t)size);
		if (d->data == NULL || !rd(f, d->data, (size_t)size))
			goto out;
	}
	{
		json_int_t il = json_integer_value(json_object_get(hdr, "input_len"));

		if (il < 0 || il > (64 << 20))
			goto out;
		s->input_len = (size_t)il;
		s->input = malloc(il ? (size_t)il : 1);
		if (s->input == NULL || !rd(f, s->input, (size_t)il))
			goto out;
	}
	if (json_object_get(hdr, "infer") != NULL)
		s->infer = json_incref(json_object_get(hdr, "infer"));
	if (fgetc(f) != EOF)
		goto out;
	if (e != NULL)
		ms_err_clear(e);
	rc = 0;
	*out = s;
	s = NULL;
out:
	fclose(f);
	free(js);
	json_decref(hdr);
	ms_rh_snapshot_free(s);
	return rc;
}
