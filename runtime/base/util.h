// util: the error convention, logging, checked allocation, files written atomically, digests.
// Every fallible function returns 0 (or a valid pointer) on success and -1 (or NULL) on failure
// after setting a message with igpt_err(); callers add context with igpt_err_prefix() and the
// command prints igpt_errmsg() once. Messages say what, where (file, field, URL, offset), what to do.
#pragma once
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdbool.h>

#define IGPT_PRINTF(a, b) __attribute__((format(printf, a, b)))

// errors (thread-local)
int igpt_err(const char *fmt, ...) IGPT_PRINTF(1, 2);         // sets the message, returns -1
int igpt_err_prefix(const char *fmt, ...) IGPT_PRINTF(1, 2);  // "prefix: old message", returns -1
const char *igpt_errmsg(void);
void igpt_err_clear(void);

// logging to stderr; quiet suppresses info, verbose enables debug
extern int igpt_log_level;  // 0 quiet, 1 info (default), 2 debug
void log_info(const char *fmt, ...) IGPT_PRINTF(1, 2);
void log_debug(const char *fmt, ...) IGPT_PRINTF(1, 2);
void log_warn(const char *fmt, ...) IGPT_PRINTF(1, 2);
_Noreturn void igpt_die(const char *fmt, ...) IGPT_PRINTF(1, 2);  // prints and exits 1

// memory: abort with a message on exhaustion (an engine without memory cannot recover)
void *xmalloc(size_t n);
void *xcalloc(size_t n, size_t size);
void *xrealloc(void *p, size_t n);
char *xstrdup(const char *s);
char *xstrndup(const char *s, size_t n);  // at most n bytes of s, terminated
char *xasprintf(const char *fmt, ...) IGPT_PRINTF(1, 2);

// files
int file_read_all(const char *path, uint8_t **data, size_t *len);  // caller frees *data
int file_write_atomic(const char *path, const void *data, size_t len);  // tmp + fsync + rename
// Is name (a file name, no folder) an atomic temporary "X.tmp.PID"? Then *pid (may be NULL) is its PID.
bool atomic_tmp_name(const char *name, long *pid);
// Removes every atomic temporary under dir (recursively) whose writing process no longer runs on
// this machine; returns how many. (A live PID keeps its file: a reused PID errs on the safe side.)
int atomic_sweep_dir(const char *dir);
// Atomic writer for large outputs: write to f, then atomic_commit or atomic_abort.
typedef struct { FILE *f; char *path; char *tmp; } atomic_file;
// The temporary is PATH.tmp.PID. A writer killed before its commit (kill -9, power loss) leaves it;
// atomic_open removes the ones of PATH whose process is gone, and atomic_sweep_dir those under a
// folder, so no full-size copy stays behind forever.
int atomic_open(atomic_file *a, const char *path);
int atomic_commit(atomic_file *a);  // flush, fsync, rename, fsync dir; closes
void atomic_abort(atomic_file *a);  // removes the temporary
int mkdir_p(const char *path);
bool path_exists(const char *path);
int rm_rf(const char *path);

// digests (OpenSSL libcrypto), lowercase hex into out (65 / 33 bytes)
void sha256_hex(const void *data, size_t len, char out[65]);
int sha256_file(const char *path, char out[65]);
int md5_file(const char *path, char out[33]);

// time
double now_seconds(void);  // monotonic
