// jcheck: typed access to members of parsed JSON with errors that name the file and the JSON
// path ("results.json: rows[2].runs[0].value: expected a number or null, found a string").
// The schemas in reports/ document the files; these checks guard what the C code reads.
#pragma once
#include <jansson.h>
#include <stdbool.h>

enum { JC_STRING = 1, JC_NUMBER = 2, JC_INTEGER = 4, JC_BOOL = 8, JC_NULL = 16, JC_ARRAY = 32,
       JC_OBJECT = 64 };

// The member key of obj if its type is in mask, else NULL. Absent: NULL, and an error only when
// required. Present but of the wrong type: NULL and an error. *err is set to 1 on an error;
// the first error is kept, so a run of calls reports the first problem in the file.
json_t *jc_get(const json_t *obj, const char *key, int mask, bool required, const char *file,
               const char *path, int *err);
// Checks an element of an array in the same way (path is the array's path).
bool jc_item_ok(const json_t *arr, size_t i, int mask, const char *file, const char *path);
// "a string", "a number", ...: what a value is, for messages.
const char *jc_type_name(const json_t *v);
