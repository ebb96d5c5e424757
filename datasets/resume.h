// resume: what makes a .part resumable. The first response of a download names the version it
// sends (an ETag, a Last-Modified date); both are kept beside the .part in "<file>.part.validator"
// (JSON: url, etag, last_modified), so that a resume asks for the rest of that version only
// (If-Range: a server holding another version answers with the whole file, from byte 0) and a
// mirror that changed between a kill and the resume cannot splice two versions into one file.
// Nothing is resumed without a validator. A strong ETag names one entity, so it may resume from
// another mirror (which answers 206 only when it holds the same one); a Last-Modified date is
// only the clock of one server, so it resumes from the same URL only.
#pragma once
#include <stdbool.h>
#include <stddef.h>

typedef struct {
  char url[2048];          // the URL that sent the bytes of the .part
  char etag[512];          // as sent, quotes included ("" when none)
  char last_modified[128]; // an HTTP date ("" when none)
} part_validator;

// 1 when read, 0 when absent, -1 (with a message naming the file) when malformed.
int validator_read(const char *path, part_validator *v);
// Writes v atomically; a v without an ETag or a date removes path instead (nothing to resume by).
int validator_write(const char *path, const part_validator *v);
// The If-Range value for resuming v's bytes from url, or NULL when they cannot be resumed there.
const char *validator_if_range(const part_validator *v, const char *url);
// Takes the ETag and Last-Modified of a response header line (other lines are ignored).
void validator_from_header(part_validator *v, const char *line, size_t len);
