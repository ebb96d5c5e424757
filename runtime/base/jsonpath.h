// jsonpath: typed access to the members of a parsed Jansson document, with errors that name the
// file and the JSON path of the wrong value ("suite/tables.json: $.tables.linear-probe.rows[2].model:
// expected a string, found a number (3)"). Owns the path of a value, the type checks, the wording
// of every validation message and the first-error-kept rule; every checker of the suite's JSON
// files (runtime/jobs/suite.c, datasets/registry.c, reports/) goes through it, so they all read alike.
//
// Use: one jp_doc per file, jp_root() at "$", jp_key()/jp_index() to descend; a getter checks one
// member and returns it (borrowed) or NULL. Every failed check counts in the doc but only the doc's
// first sets igpt_err, so a run of checks followed by one jp_failed() reports the first problem.
//
// Reading: every JSON the suite reads is parsed with JSON_REJECT_DUPLICATES (a key given twice
// would otherwise resolve silently to its last value); jp_load_file is the way to read a file.
#pragma once
#include <jansson.h>
#include <stdbool.h>

// Types, or-ed into a mask. JP_NUMBER takes integers too; null is a flag.
enum { JP_STRING = 1, JP_NUMBER = 2, JP_INTEGER = 4, JP_BOOL = 8, JP_ARRAY = 16, JP_OBJECT = 32 };
// Flags: absent is an error (else it is allowed and the getter returns NULL); null is allowed
// (the getter returns NULL; c.v tells it from absent); a string or array must not be empty.
enum { JP_OPTIONAL = 0, JP_REQUIRED = 1, JP_NULLABLE = 2, JP_NONEMPTY = 4 };
#define JP_NO_MAX ((json_int_t)0x7fffffffffffffffLL)  // jp_int without an upper bound

typedef struct {
  const char *file;  // named first in every message (borrowed)
  int errors;        // failed checks so far; igpt_errmsg() holds the first one's message
} jp_doc;

typedef struct {
  jp_doc *doc;
  const json_t *v;  // the value at path (borrowed); NULL when absent
  char path[512];   // "$.tables.x.rows[2]"; a deeper path ends in "..."
} jp;

// Parses the JSON file at path, refusing duplicate keys; NULL with an error that says what is wrong
// in words: a missing or unreadable file ("cannot read: No such file or directory"), a directory,
// or the line and column of a syntax error or of the repeated key. Caller owns the result.
json_t *jp_load_file(const char *path);

jp jp_root(jp_doc *d, const json_t *root);               // "$"
jp jp_at(jp_doc *d, const char *path, const json_t *v);  // a path built elsewhere
jp jp_key(const jp *c, const char *key);                 // c.key (absent unless c is an object with key)
jp jp_index(const jp *c, size_t i);                      // c[i]

// c's own value if its type is in types (and flags allow it), else NULL with an error.
json_t *jp_value(const jp *c, int types, int flags);
// Member key of c's value, checked as jp_value does.
json_t *jp_get(const jp *c, const char *key, int types, int flags);
const char *jp_string(const jp *c, const char *key, int flags);
// An integer in [lo, hi] (hi JP_NO_MAX: no upper bound).
json_t *jp_int(const jp *c, const char *key, int flags, json_int_t lo, json_int_t hi);
// A string among names (NULL-terminated): its index; -1 when absent, null or wrong.
int jp_enum(const jp *c, const char *key, int flags, const char *const *names);
// Every key of c's object is in allowed (NULL-terminated): 0, else -1 naming the first other one.
int jp_keys(const jp *c, const char *const *allowed);

// Errors at c, each returning -1. "expected WANT, found a string ("x")" (or "missing; expected WANT").
int jp_expected(const jp *c, const char *want);
// "FILE: PATH: message".
int jp_fail(const jp *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
bool jp_failed(const jp *c);  // any check of c's document failed

// What a value is, for messages: "a string", "an integer", "a number", ...; "nothing" for NULL.
const char *jp_type_name(const json_t *v);
