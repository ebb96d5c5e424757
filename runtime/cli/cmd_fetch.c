// The `igpt fetch` and `igpt verify` verbs: command-line front ends of fetch.h.
#include "cli/cli.h"
#include "datasets/fetch.h"
#include "base/util.h"
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void fetch_usage(const char *verb, FILE *out) {
  bool is_fetch = !strcmp(verb, "fetch");
  fprintf(out,
          "usage: igpt %s NAME... [--data DIR] [--registry FILE]%s [--json]\n\n"
          "%s\n\n"
          "  --data DIR          data directory (default $IGPT_DATA, else ./data); files go to DIR/downloads/NAME/\n"
          "  --registry FILE     registry (default $IGPT_REGISTRY, else datasets/registry.json)\n",
          verb, is_fetch ? " [--offline]" : "",
          is_fetch ? "Downloads the named data sets' files from their mirrors in order, verifies them (size, then\n"
                     "sha256/md5; gzip files by their decompressed content), renames each into place only once\n"
                     "verified and unpacks archives. A rerun resumes (.part files, HTTP Range) when the first\n"
                     "response named its version (If-Range with its ETag or Last-Modified), else it starts again\n"
                     "from byte 0. A file of unknown size stops at the registry's max_size, else 4 GiB\n"
                     "(IGPT_FETCH_MAX_UNKNOWN_SIZE). A cached file that fails is moved aside (FILE.unverified)\n"
                     "until its replacement verifies. Proxies come from the environment (http_proxy,\n"
                     "https_proxy, no_proxy)."
                   : "Re-checks the named data sets' cached files and unpacked members; touches no network.");
  if (is_fetch)
    fprintf(out,
            "  --offline           verify what is cached, fetch nothing\n"
            "  --retries N         retries of a mirror on transient failures (default 4; IGPT_FETCH_RETRIES)\n"
            "  --backoff S         first retry delay in seconds, doubled each retry (default 2; IGPT_FETCH_BACKOFF)\n"
            "  --retry-after-max S cap on a server's Retry-After (default 300; IGPT_FETCH_RETRY_AFTER_MAX)\n"
            "  --connect-timeout S (default 30; IGPT_FETCH_CONNECT_TIMEOUT)\n"
            "  --low-speed-limit B --low-speed-time S\n"
            "                      give up on a transfer slower than B bytes/s for S seconds, then retry\n"
            "                      (default 1024 and 60; IGPT_FETCH_LOW_SPEED_LIMIT, IGPT_FETCH_LOW_SPEED_TIME)\n"
            "  --progress, --no-progress  force the progress bar on or off (default: a bar on a terminal)\n");
  fprintf(out, "  --list              list the registry's data sets and exit\n"
               "  --json              results on stdout as one JSON object\n"
               "  -q, --quiet         no progress or info lines\n"
               "  -h, --help          this help\n\n"
               "Exit status: 0 ok, 1 failure, 2 usage error.\n");
}

static void list_sets(const registry *r, bool json) {
  json_t *arr = json_array();
  for (int i = 0; i < r->n_sets; i++) {
    const reg_dataset *d = &r->sets[i];
    const char *kind = d->kind == REG_DOWNLOAD ? "download" : d->kind == REG_MANUAL ? "manual" : "embedded";
    if (json)
      json_array_append_new(arr, json_pack("{s:s, s:s, s:i, s:s}", "name", d->name, "kind", kind, "files", d->n_files,
                                           "description", d->description));
    else
      printf("%-16s %-9s %3d file%s  %s\n", d->name, kind, d->n_files, d->n_files == 1 ? " " : "s", d->description);
  }
  if (json) print_json(json_pack("{s:o}", "datasets", arr));
  else json_decref(arr);
}

static int fetch_or_verify(int argc, char **argv, bool is_fetch) {
  const char *verb = is_fetch ? "fetch" : "verify";
  enum { O_RETRIES = 256, O_BACKOFF, O_RA_MAX, O_CONNECT, O_LS_LIMIT, O_LS_TIME, O_PROGRESS, O_NO_PROGRESS, O_REGISTRY, O_LIST };
  static const struct option longopts[] = {
      {"data", required_argument, 0, 'd'},          {"offline", no_argument, 0, 'o'},
      {"json", no_argument, 0, 'j'},                {"quiet", no_argument, 0, 'q'},
      {"help", no_argument, 0, 'h'},                {"retries", required_argument, 0, O_RETRIES},
      {"backoff", required_argument, 0, O_BACKOFF}, {"retry-after-max", required_argument, 0, O_RA_MAX},
      {"connect-timeout", required_argument, 0, O_CONNECT},
      {"low-speed-limit", required_argument, 0, O_LS_LIMIT},
      {"low-speed-time", required_argument, 0, O_LS_TIME},
      {"progress", no_argument, 0, O_PROGRESS},     {"no-progress", no_argument, 0, O_NO_PROGRESS},
      {"registry", required_argument, 0, O_REGISTRY}, {"list", no_argument, 0, O_LIST},
      {0, 0, 0, 0}};
  fetch_opts o;
  if (fetch_opts_init(&o)) return fail(verb);
  bool json = false, list = false;
  char *reg_path = registry_default_path();
  int c, rc = 0;
  long lv;
  double dv;
  optind = 1;
  while ((c = getopt_long(argc, argv, "d:ojqh", longopts, NULL)) != -1) {
    switch (c) {
    case 'd': free(o.data_dir); o.data_dir = xstrdup(optarg); break;
    case 'o': o.offline = true; break;
    case 'j': json = true; break;
    case 'q': igpt_log_level = 0; break;
    case 'h': fetch_usage(verb, stdout); goto done;
    case O_RETRIES: if ((rc = parse_long(verb, "--retries", optarg, 0, 100, &lv))) goto done; o.retries = (int)lv; break;
    case O_BACKOFF: if ((rc = parse_double(verb, "--backoff", optarg, 0, 3600, &o.backoff_s))) goto done; break;
    case O_RA_MAX: if ((rc = parse_double(verb, "--retry-after-max", optarg, 0, 86400, &o.retry_after_max_s))) goto done; break;
    case O_CONNECT: if ((rc = parse_long(verb, "--connect-timeout", optarg, 1, 3600, &o.connect_timeout_s))) goto done; break;
    case O_LS_LIMIT: if ((rc = parse_long(verb, "--low-speed-limit", optarg, 0, 1L << 40, &o.low_speed_limit))) goto done; break;
    case O_LS_TIME: if ((rc = parse_long(verb, "--low-speed-time", optarg, 0, 86400, &o.low_speed_time_s))) goto done; break;
    case O_PROGRESS: o.progress = 1; break;
    case O_NO_PROGRESS: o.progress = 0; break;
    case O_REGISTRY: free(reg_path); reg_path = xstrdup(optarg); break;
    case O_LIST: list = true; break;
    default: rc = usage_error(verb, "unknown option"); goto done;
    }
  }
  (void)dv;
  if (!is_fetch && o.offline) { rc = usage_error(verb, "--offline is a fetch option (verify never downloads)"); goto done; }
  if (!list && optind >= argc) { rc = usage_error(verb, "name at least one data set (igpt %s --list shows them)", verb); goto done; }
  registry r;
  if (registry_load(&r, reg_path)) { rc = fail(verb); goto done; }
  if (list) {
    list_sets(&r, json);
    registry_free(&r);
    goto done;
  }
  json_t *sets = json_object();
  for (int i = optind; i < argc && rc == 0; i++) {
    const reg_dataset *ds = registry_find(&r, argv[i]);
    if (!ds) { rc = usage_error(verb, "%s", igpt_errmsg()); break; }
    json_t *files = json_array();
    int st = is_fetch ? fetch_dataset(ds, &o, files) : verify_dataset(ds, &o, files);
    char *dir = fetch_set_dir(&o, ds->name);
    json_object_set_new(sets, ds->name, json_pack("{s:s, s:s, s:o}", "status", st ? "failed" : "ok", "dir", dir, "files", files));
    free(dir);
    if (st) {
      rc = fail(verb);
      json_object_set_new(json_object_get(sets, ds->name), "error", json_string(igpt_errmsg()));
    }
  }
  if (json) print_json(json_pack("{s:s, s:b, s:o}", "verb", verb, "ok", rc == 0, "datasets", sets));
  else json_decref(sets);
  registry_free(&r);
done:
  free(reg_path);
  fetch_opts_free(&o);
  return rc;
}

int cmd_fetch(int argc, char **argv) { return fetch_or_verify(argc, argv, true); }
int cmd_verify(int argc, char **argv) { return fetch_or_verify(argc, argv, false); }
