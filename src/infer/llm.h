/*
 * llm: asks an OpenAI-compatible chat-completions endpoint about registers
 * the rules leave at low confidence, with libcurl.
 *
 * The request demands a JSON object (response_format json_object plus the
 * schema in the prompt); the reply is parsed and validated field by field
 * (ms__llm_validate) before anything uses it, and the caller checks the
 * proposed value by replaying the loop. Answers are cached on disk under
 * cache_dir, keyed by the SHA-256 of firmware hash and access context, so
 * a later run needs no network. Each call has a timeout; a session has a
 * budget of calls, after which asking fails with -EDQUOT.
 *
 * Threads: one ms__llm per ms_infer, used on the engine's owner thread.
 */
#ifndef MS_INFER_LLM_H
#define MS_INFER_LLM_H

#include <stdint.h>

#include <jansson.h>

struct ms__llm;

struct ms__llm_cfg {
	const char *base_url; /* ".../v1" */
	const char *model;
	const char *key; /* may be NULL */
	const char *cache_dir; /* may be NULL */
	const char *firmware_hash;
	int timeout_ms;
	int budget;
};

/* NULL with a message in err when base_url or model is missing. */
struct ms__llm *ms__llm_new(const struct ms__llm_cfg *cfg, char *err, size_t cap);
void ms__llm_free(struct ms__llm *l);

/*
 * The answer for one register access. context is an object describing it
 * (address, pc, the loop's disassembly, current value, what the rules
 * found); *answer receives a validated object
 * {"category", "model", "value", "mask", "confidence", "reason"} (new
 * reference). Returns 0, or a negative code with a message in err:
 * -EDQUOT budget spent, -ETIMEDOUT, -ECONNREFUSED/-EIO transport,
 * -EPROTO malformed or invalid reply. *from_cache tells where it came from.
 */
int ms__llm_ask(struct ms__llm *l, json_t *context, json_t **answer, int *from_cache, char *err,
                size_t cap);

/*
 * Validate a model reply (the object the model produced). 0 when every
 * field is present with the right type and range; -EPROTO otherwise.
 */
int ms__llm_validate(json_t *reply, char *err, size_t cap);

/* {"calls", "cache_hits", "failures", "budget"} (new reference). */
json_t *ms__llm_stats(struct ms__llm *l);

#endif
