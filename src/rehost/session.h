/*
 * rehost session accessors for other layers (the HTTP handlers of the
 * inference API): reach the engine objects behind a rehost session.
 *
 * Threads: any thread, with a reference on the session held. The returned
 * object lives as long as the session's backend state (until the session
 * is destroyed); only functions documented as callable from any thread
 * (e.g. ms_infer_peripherals, ms_infer_patch) may be used on it.
 */
#ifndef MS_RH_SESSION_H
#define MS_RH_SESSION_H

struct ms_session;
struct ms_infer;

/* The inference module of a rehost session, or NULL (other backend, or inference off). */
struct ms_infer *ms_rehost_session_infer(struct ms_session *s);

#endif
