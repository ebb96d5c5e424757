// environment: collecting the machine and library versions. See environment.h.
#include "reports/environment.h"
#include "base/util.h"
#include <archive.h>
#include <cblas.h>
#include <curl/curl.h>
#include <openssl/crypto.h>
#include <png.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

// First line of a file starting with key, value after the separator, trimmed; caller frees.
static char *file_field(const char *path, const char *key, char sep) {
  FILE *f = fopen(path, "r");
  if (!f) return NULL;
  char line[512], *out = NULL;
  size_t kl = strlen(key);
  while (fgets(line, sizeof line, f))
    if (!strncmp(line, key, kl)) {
      char *v = strchr(line, sep);
      if (!v) continue;
      v++;
      while (*v == ' ' || *v == '\t' || *v == '"') v++;
      size_t n = strlen(v);
      while (n && (v[n - 1] == '\n' || v[n - 1] == '"' || v[n - 1] == ' ')) v[--n] = 0;
      out = xstrdup(v);
      break;
    }
  fclose(f);
  return out;
}

// First line of a command's stdout, or NULL when it fails or prints nothing; caller frees.
static char *command_line(const char *cmd) {
  FILE *p = popen(cmd, "r");
  if (!p) return NULL;
  char line[512];
  char *out = fgets(line, sizeof line, p) ? xstrdup(line) : NULL;
  int st = pclose(p);
  if (out) out[strcspn(out, "\n")] = 0;
  if (st != 0 || (out && !*out)) { free(out); return NULL; }
  return out;
}

static void set_str_or_null(json_t *o, const char *key, char *v) {  // takes v
  json_object_set_new(o, key, v ? json_string(v) : json_null());
  free(v);
}

json_t *environment_collect(const char *collected_by) {
  json_t *env = json_object();
  char host[256] = "";
  if (gethostname(host, sizeof host - 1) == 0) json_object_set_new(env, "hostname", json_string(host));
  char *os = file_field("/etc/os-release", "PRETTY_NAME", '=');
  if (os) json_object_set_new(env, "os", json_string(os));
  free(os);
  char *cpu = file_field("/proc/cpuinfo", "model name", ':');
  if (cpu) json_object_set_new(env, "cpu", json_string(cpu));
  free(cpu);
  long cores = sysconf(_SC_NPROCESSORS_ONLN);
  if (cores > 0) json_object_set_new(env, "cores", json_integer(cores));
  long pages = sysconf(_SC_PHYS_PAGES), psize = sysconf(_SC_PAGESIZE);
  if (pages > 0 && psize > 0)
    json_object_set_new(env, "memory_gib", json_real((double)pages * psize / (1 << 30)));
  set_str_or_null(env, "gpu", command_line("nvidia-smi --query-gpu=name,driver_version "
                                           "--format=csv,noheader 2>/dev/null | head -n 1"));
  set_str_or_null(env, "cuda", command_line("nvidia-smi 2>/dev/null | sed -n "
                                            "'s/.*CUDA Version: *\\([0-9.]*\\).*/\\1/p' | head -n 1"));
  json_t *libs = json_object();
  json_object_set_new(libs, "jansson", json_string(JANSSON_VERSION));
  json_object_set_new(libs, "libpng", json_string(png_get_libpng_ver(NULL)));
  json_object_set_new(libs, "zlib", json_string(zlibVersion()));
  json_object_set_new(libs, "libcurl", json_string(curl_version_info(CURLVERSION_NOW)->version));
  json_object_set_new(libs, "libarchive", json_string(archive_version_string()));
  json_object_set_new(libs, "openssl", json_string(OpenSSL_version(OPENSSL_VERSION)));
  json_object_set_new(libs, "openblas", json_string(openblas_get_config()));
  json_object_set_new(libs, "compiler", json_string(__VERSION__));
  json_object_set_new(env, "libraries", libs);
  json_object_set_new(env, "collected_by", json_string(collected_by));
  return env;
}
