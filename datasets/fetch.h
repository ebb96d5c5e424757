// fetch: downloads the files of a registry data set (libcurl) into the data directory and
// verifies them. Owns the download protocol: a ".part" file resumed with a Range request and
// If-Range holding the validator of its first response (resume.h; none: restarted from 0), and
// restarted from 0 when the server ignores Range or the file changed; a byte cap on a file of
// unknown size; a .part that ran out of retries kept (with its validator) for a rerun to resume;
// retries with exponential backoff on timeouts, 408, 429 and 5xx honouring Retry-After (capped);
// a low-speed timeout; failover to the next mirror; the size checked before the hash; HTML pages named as such; the final file renamed into
// place only after it verified (a download that fails is deleted, never used; a cached file that
// fails is moved aside to "<file>.unverified" until its replacement verifies); archives unpacked
// after (unpack.h). Proxies come from the environment (libcurl's http_proxy, https_proxy,
// no_proxy). Layout: $IGPT_DATA (default ./data)/downloads/<set>/<file>.
#pragma once
#include "datasets/registry.h"
#include <jansson.h>
#include <stdbool.h>

typedef struct {
  char *data_dir;            // owned; $IGPT_DATA or "data"
  bool offline;              // verify what is there, fetch nothing
  int progress;              // -1 auto (a bar on a terminal, plain lines otherwise), 0 lines, 1 bar
  long connect_timeout_s;    // IGPT_FETCH_CONNECT_TIMEOUT, default 30
  long low_speed_limit;      // bytes/s, IGPT_FETCH_LOW_SPEED_LIMIT, default 1024
  long low_speed_time_s;     // seconds below the limit before giving up, IGPT_FETCH_LOW_SPEED_TIME, default 60
  int retries;               // per mirror after the first try, IGPT_FETCH_RETRIES, default 4
  double backoff_s;          // first retry delay, doubled each retry, IGPT_FETCH_BACKOFF, default 2
  double backoff_max_s;      // IGPT_FETCH_BACKOFF_MAX, default 60
  double retry_after_max_s;  // cap on a server's Retry-After, IGPT_FETCH_RETRY_AFTER_MAX, default 300
  int64_t max_unknown_size;  // bytes a file of unknown size may have unless the registry's max_size says
                             // otherwise, IGPT_FETCH_MAX_UNKNOWN_SIZE, default FETCH_MAX_UNKNOWN_SIZE
} fetch_opts;
// The largest file the registry does not size (stl10_binary.tar.gz) is 2.6 GB; imagenet_trX.npy,
// whose dtype is unknown, raises its own cap.
#define FETCH_MAX_UNKNOWN_SIZE ((int64_t)4 << 30)

// Defaults, then the IGPT_DATA and IGPT_FETCH_* environment variables (a malformed value is an error).
int fetch_opts_init(fetch_opts *o);
void fetch_opts_free(fetch_opts *o);
// downloads/<set> under the data directory; caller frees.
char *fetch_set_dir(const fetch_opts *o, const char *set);

// Fetches (or, offline, checks) every file of a data set, verifies and unpacks. Appends one object
// per file to files_out (a JSON array; may be NULL). 0, or -1 with the message of the first failure.
int fetch_dataset(const reg_dataset *ds, const fetch_opts *o, json_t *files_out);
// One file of a set (the same steps).
int fetch_file(const reg_dataset *ds, const reg_file *f, const fetch_opts *o, json_t *files_out);
// Re-checks a set's cached files (and unpacked members) without touching the network.
int verify_dataset(const reg_dataset *ds, const fetch_opts *o, json_t *files_out);
