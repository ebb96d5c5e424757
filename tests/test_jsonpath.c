// jsonpath: typed getters, their exact messages (file, JSON path, what was expected, what was
// found), required/optional/nullable, nested paths, enums, integer ranges, unknown keys and the
// first-error-kept rule.
#include "testutil.h"
#include "base/jsonpath.h"

static const char *const DOC =
    "{\"s\": \"x\", \"i\": 3, \"r\": 2.5, \"b\": true, \"n\": null, \"a\": [1], \"o\": {\"k\": 1},"
    " \"es\": \"\", \"ea\": [], \"eo\": {}}";

static json_t *parse(const char *text) {
  json_error_t e;
  json_t *j = json_loads(text, 0, &e);
  cr_assert_not_null(j, "bad test JSON: %s", e.text);
  return j;
}

// The doc's first error is exactly want (and the doc counts at least one).
static void error_is(const jp_doc *d, const char *want) {
  cr_assert_gt(d->errors, 0, "no error, wanted: %s", want);
  cr_assert_str_eq(igpt_errmsg(), want);
}

Test(jsonpath, each_type_accepts_its_values_only) {
  json_t *j = parse(DOC);
  struct { int type; const char *ok[3]; } cases[] = {
    {JP_STRING, {"s", "es"}}, {JP_NUMBER, {"i", "r"}}, {JP_INTEGER, {"i"}}, {JP_BOOL, {"b"}},
    {JP_ARRAY, {"a", "ea"}}, {JP_OBJECT, {"o", "eo"}},
  };
  const char *keys[] = {"s", "i", "r", "b", "n", "a", "o", "es", "ea", "eo"};
  for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++)
    for (size_t k = 0; k < sizeof keys / sizeof keys[0]; k++) {
      bool ok = false;
      for (int m = 0; m < 3 && cases[t].ok[m]; m++) ok |= !strcmp(cases[t].ok[m], keys[k]);
      jp_doc d = {.file = "f.json"};
      jp c = jp_root(&d, j);
      json_t *v = jp_get(&c, keys[k], cases[t].type, JP_REQUIRED);
      cr_assert_eq(v != NULL, ok, "type %d, key %s", cases[t].type, keys[k]);
      cr_assert_eq(d.errors, ok ? 0 : 1, "type %d, key %s: %d errors", cases[t].type, keys[k], d.errors);
      if (ok) cr_assert_eq(v, json_object_get(j, keys[k]));
    }
  json_decref(j);
}

Test(jsonpath, mismatch_messages_name_file_path_expected_and_found) {
  json_t *j = parse(DOC);
  struct { const char *key; int type, flags; const char *msg; } cases[] = {
    {"i", JP_STRING, 0, "f.json: $.i: expected a string, found an integer (3)"},
    {"s", JP_NUMBER, 0, "f.json: $.s: expected a number, found a string (\"x\")"},
    {"r", JP_INTEGER, 0, "f.json: $.r: expected an integer, found a number (2.5)"},
    {"s", JP_BOOL, 0, "f.json: $.s: expected a boolean, found a string (\"x\")"},
    {"o", JP_ARRAY, 0, "f.json: $.o: expected an array, found an object"},
    {"a", JP_OBJECT, 0, "f.json: $.a: expected an object, found an array"},
    {"b", JP_NUMBER, JP_NULLABLE, "f.json: $.b: expected a number or null, found a boolean (true)"},
    {"n", JP_STRING, 0, "f.json: $.n: expected a string, found null"},
    {"eo", JP_STRING | JP_ARRAY, 0, "f.json: $.eo: expected a string or an array, found an empty object"},
    {"es", JP_STRING, JP_NONEMPTY, "f.json: $.es: expected a non-empty string, found a string (\"\")"},
    {"ea", JP_ARRAY, JP_NONEMPTY, "f.json: $.ea: expected a non-empty array, found an empty array"},
    {"zz", JP_STRING, JP_REQUIRED, "f.json: $.zz: missing; expected a string"},
    {"zz", JP_NUMBER, JP_REQUIRED | JP_NULLABLE, "f.json: $.zz: missing; expected a number or null"},
  };
  for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
    jp_doc d = {.file = "f.json"};
    jp c = jp_root(&d, j);
    cr_assert_null(jp_get(&c, cases[t].key, cases[t].type, cases[t].flags), "%s", cases[t].msg);
    error_is(&d, cases[t].msg);
  }
  json_decref(j);
}

Test(jsonpath, long_values_are_cut_in_messages) {
  json_t *j = json_pack("{s:s}", "s", "0123456789012345678901234567890123456789012345678901234567890123456789");
  jp_doc d = {.file = "f.json"};
  jp c = jp_root(&d, j);
  jp_get(&c, "s", JP_NUMBER, 0);
  // 40 characters shown: the quote, 36 digits, "..."
  error_is(&d, "f.json: $.s: expected a number, found a string (\"012345678901234567890123456789012345...)");
  json_decref(j);
}

Test(jsonpath, missing_optional_is_no_error_missing_required_is) {
  json_t *j = parse(DOC);
  jp_doc d = {.file = "f.json"};
  jp c = jp_root(&d, j);
  cr_assert_null(jp_get(&c, "absent", JP_STRING, JP_OPTIONAL));
  cr_assert_null(jp_string(&c, "absent", JP_OPTIONAL));
  cr_assert_null(jp_int(&c, "absent", JP_OPTIONAL, 0, 9));
  cr_assert_eq(jp_enum(&c, "absent", JP_OPTIONAL, (const char *const[]){"a", NULL}), -1);
  cr_assert_eq(d.errors, 0);
  cr_assert(!jp_failed(&c));
  cr_assert_null(jp_string(&c, "absent", JP_REQUIRED));
  cr_assert(jp_failed(&c));
  error_is(&d, "f.json: $.absent: missing; expected a string");
  // An optional key that is present is still checked.
  jp_doc d2 = {.file = "f.json"};
  c = jp_root(&d2, j);
  cr_assert_null(jp_string(&c, "i", JP_OPTIONAL));
  error_is(&d2, "f.json: $.i: expected a string, found an integer (3)");
  json_decref(j);
}

Test(jsonpath, nullable_takes_null_and_tells_it_from_absent) {
  json_t *j = parse(DOC);
  jp_doc d = {.file = "f.json"};
  jp c = jp_root(&d, j), n = jp_key(&c, "n"), absent = jp_key(&c, "absent");
  cr_assert_null(jp_get(&c, "n", JP_NUMBER, JP_REQUIRED | JP_NULLABLE));
  cr_assert_null(jp_int(&c, "n", JP_REQUIRED | JP_NULLABLE, 0, 9));
  cr_assert_null(jp_string(&c, "n", JP_NULLABLE));
  cr_assert_eq(d.errors, 0);
  cr_assert(json_is_null(n.v));
  cr_assert_null(absent.v);
  cr_assert_eq(json_integer_value(jp_int(&c, "i", JP_REQUIRED | JP_NULLABLE, 0, 9)), 3);
  cr_assert_str_eq(jp_string(&c, "s", JP_REQUIRED | JP_NULLABLE), "x");
  cr_assert_eq(d.errors, 0);
  json_decref(j);
}

Test(jsonpath, nested_paths_with_keys_and_indices) {
  json_t *j = parse("{\"tables\": {\"linear-probe\": {\"rows\": [{\"model\": \"s\"}, {\"model\": \"m\"}, {\"model\": 3}]}}}");
  jp_doc d = {.file = "suite/tables.json"};
  jp root = jp_root(&d, j);
  cr_assert_str_eq(root.path, "$");
  jp t = jp_key(&root, "tables"), lp = jp_key(&t, "linear-probe"), rows = jp_key(&lp, "rows");
  cr_assert_str_eq(rows.path, "$.tables.linear-probe.rows");
  cr_assert_eq(rows.v, json_object_get(json_object_get(json_object_get(j, "tables"), "linear-probe"), "rows"));
  for (size_t i = 0; i < 2; i++) {
    jp row = jp_index(&rows, i);
    cr_assert_not_null(jp_string(&row, "model", JP_REQUIRED));
  }
  cr_assert_eq(d.errors, 0);
  jp row2 = jp_index(&rows, 2);
  cr_assert_str_eq(row2.path, "$.tables.linear-probe.rows[2]");
  cr_assert_null(jp_string(&row2, "model", JP_REQUIRED));
  error_is(&d, "suite/tables.json: $.tables.linear-probe.rows[2].model: expected a string, found an integer (3)");
  // Past the end of an array, or below a value that is no object: absent.
  jp_doc d2 = {.file = "t.json"};
  rows.doc = &d2;
  jp past = jp_index(&rows, 7), below = jp_key(&past, "x"), model = jp_key(&row2, "model");
  jp under_int = jp_key(&model, "x"), index_obj = jp_index(&lp, 0);
  cr_assert_null(past.v);
  cr_assert_null(below.v);
  cr_assert_null(under_int.v);
  cr_assert_null(index_obj.v);
  cr_assert_null(jp_value(&below, JP_OBJECT, JP_REQUIRED));
  error_is(&d2, "t.json: $.tables.linear-probe.rows[7].x: missing; expected an object");
  json_decref(j);
}

Test(jsonpath, jp_at_resumes_a_path_and_deep_paths_end_in_dots) {
  json_t *j = parse("{\"kind\": 5}");
  jp_doc d = {.file = "results.json"};
  jp c = jp_at(&d, "$.rows[4].rule", j);
  cr_assert_null(jp_string(&c, "kind", JP_REQUIRED));
  error_is(&d, "results.json: $.rows[4].rule.kind: expected a string, found an integer (5)");
  jp deep = jp_root(&d, j);
  for (int i = 0; i < 100; i++) deep = jp_key(&deep, "a_rather_long_key");
  cr_assert_lt(strlen(deep.path), sizeof deep.path);
  cr_assert_str_eq(deep.path + strlen(deep.path) - 3, "...");
  json_decref(j);
}

Test(jsonpath, enum_gives_the_index_or_names_the_choices) {
  static const char *const objectives[] = {"ar", "bert", NULL};
  json_t *j = parse("{\"o\": \"bert\", \"bad\": \"gpt\", \"num\": 1}");
  jp_doc d = {.file = "f.json"};
  jp c = jp_root(&d, j);
  cr_assert_eq(jp_enum(&c, "o", JP_REQUIRED, objectives), 1);
  cr_assert_eq(d.errors, 0);
  cr_assert_eq(jp_enum(&c, "bad", JP_REQUIRED, objectives), -1);
  error_is(&d, "f.json: $.bad: expected one of \"ar\", \"bert\", found \"gpt\"");
  jp_doc d2 = {.file = "f.json"};
  c = jp_root(&d2, j);
  cr_assert_eq(jp_enum(&c, "num", JP_OPTIONAL, objectives), -1);
  error_is(&d2, "f.json: $.num: expected one of \"ar\", \"bert\", found an integer (1)");
  jp_doc d3 = {.file = "f.json"};
  c = jp_root(&d3, j);
  cr_assert_eq(jp_enum(&c, "none", JP_REQUIRED, objectives), -1);
  error_is(&d3, "f.json: $.none: missing; expected one of \"ar\", \"bert\"");
  json_decref(j);
}

Test(jsonpath, int_range_is_inclusive_and_names_the_bounds) {
  json_t *j = parse("{\"lo\": 1, \"hi\": 10, \"zero\": 0, \"neg\": -6, \"real\": 1.0}");
  jp_doc d = {.file = "f.json"};
  jp c = jp_root(&d, j);
  cr_assert_eq(json_integer_value(jp_int(&c, "lo", JP_REQUIRED, 1, 10)), 1);
  cr_assert_eq(json_integer_value(jp_int(&c, "hi", JP_REQUIRED, 1, 10)), 10);
  cr_assert_eq(json_integer_value(jp_int(&c, "zero", JP_REQUIRED, 0, JP_NO_MAX)), 0);
  cr_assert_eq(d.errors, 0);
  cr_assert_null(jp_int(&c, "zero", JP_REQUIRED, 1, 10));
  error_is(&d, "f.json: $.zero: expected an integer in [1, 10], found 0");
  struct { const char *key; json_int_t lo, hi; const char *msg; } cases[] = {
    {"hi", 1, 9, "f.json: $.hi: expected an integer in [1, 9], found 10"},
    {"neg", 0, JP_NO_MAX, "f.json: $.neg: expected an integer >= 0, found -6"},
    {"real", 0, 9, "f.json: $.real: expected an integer, found a number (1.0)"},
  };
  for (size_t t = 0; t < sizeof cases / sizeof cases[0]; t++) {
    jp_doc dt = {.file = "f.json"};
    jp ct = jp_root(&dt, j);
    cr_assert_null(jp_int(&ct, cases[t].key, JP_REQUIRED, cases[t].lo, cases[t].hi));
    error_is(&dt, cases[t].msg);
  }
  json_decref(j);
}

Test(jsonpath, unknown_keys_are_named_with_the_allowed_ones) {
  static const char *const allowed[] = {"size", "sha256", "md5", NULL};
  json_t *j = parse("{\"ok\": {\"size\": 1, \"md5\": null}, \"typo\": {\"size\": 1, \"sha265\": null}}");
  jp_doc d = {.file = "registry.json"};
  jp root = jp_root(&d, j), ok = jp_key(&root, "ok"), typo = jp_key(&root, "typo"), absent = jp_key(&root, "no");
  cr_assert_eq(jp_keys(&ok, allowed), 0);
  cr_assert_eq(jp_keys(&absent, allowed), 0);  // nothing to check
  cr_assert_eq(d.errors, 0);
  cr_assert_eq(jp_keys(&typo, allowed), -1);
  error_is(&d, "registry.json: $.typo.sha265: unknown key (allowed: size, sha256, md5)");
  cr_assert_eq(jp_keys(&root, allowed), -1);  // "ok" is not allowed at the top
  cr_assert_eq(d.errors, 2);
  error_is(&d, "registry.json: $.typo.sha265: unknown key (allowed: size, sha256, md5)");
  json_decref(j);
}

Test(jsonpath, the_first_error_is_kept) {
  json_t *j = parse(DOC);
  jp_doc d = {.file = "f.json"};
  jp c = jp_root(&d, j);
  cr_assert(!jp_failed(&c));
  jp_get(&c, "s", JP_NUMBER, JP_REQUIRED);   // first
  jp_get(&c, "i", JP_STRING, JP_REQUIRED);   // later: counted, not reported
  jp_int(&c, "i", JP_REQUIRED, 5, 9);
  jp a = jp_key(&c, "a");
  cr_assert_eq(jp_fail(&a, "something else (%d)", 7), -1);
  cr_assert_eq(jp_expected(&a, "anything"), -1);
  cr_assert_eq(d.errors, 5);
  cr_assert(jp_failed(&a));  // a child sees its document's errors
  error_is(&d, "f.json: $.s: expected a number, found a string (\"x\")");
  // A new document reports its own first error.
  jp_doc d2 = {.file = "g.json"};
  jp c2 = jp_root(&d2, j), a2 = jp_key(&c2, "a");
  cr_assert(!jp_failed(&c2));
  jp_fail(&a2, "custom %s", "text");
  error_is(&d2, "g.json: $.a: custom text");
  json_decref(j);
}

Test(jsonpath, value_checks_on_array_elements) {
  json_t *j = parse("{\"notes\": [\"a\", 2, null]}");
  jp_doc d = {.file = "results.json"};
  jp c = jp_root(&d, j), notes = jp_key(&c, "notes");
  jp e0 = jp_index(&notes, 0), e1 = jp_index(&notes, 1), e2 = jp_index(&notes, 2);
  cr_assert_not_null(jp_value(&e0, JP_STRING, JP_REQUIRED));
  cr_assert_null(jp_value(&e2, JP_STRING, JP_REQUIRED | JP_NULLABLE));
  cr_assert_eq(d.errors, 0);
  cr_assert_null(jp_value(&e1, JP_STRING, JP_REQUIRED));
  error_is(&d, "results.json: $.notes[1]: expected a string, found an integer (2)");
  json_decref(j);
}

Test(jsonpath, type_names_for_messages) {
  json_t *j = parse(DOC);
  const char *want[][2] = {{"s", "a string"}, {"i", "an integer"}, {"r", "a number"}, {"b", "a boolean"},
                           {"n", "null"}, {"a", "an array"}, {"o", "an object"}};
  for (size_t i = 0; i < sizeof want / sizeof want[0]; i++)
    cr_assert_str_eq(jp_type_name(json_object_get(j, want[i][0])), want[i][1]);
  cr_assert_str_eq(jp_type_name(NULL), "nothing");
  json_decref(j);
}

// jp_load_file: what is wrong with a file, in words (issue 15: a missing file read "line -1 column
// -1"; a duplicate key resolved silently to its last value).
Test(jsonpath, load_file_refuses_duplicates_and_says_what_is_wrong) {
  char *dir = test_tmpdir("jp-load");
  char *ok = xasprintf("%s/ok.json", dir), *dup = xasprintf("%s/dup.json", dir), *bad = xasprintf("%s/bad.json", dir);
  char *absent = xasprintf("%s/absent.json", dir);
  const char *texts[3] = {"{\"a\": {\"b\": 1}}", "{\"a\": {\"b\": 1,\n \"b\": 2}}", "{\"a\": "};
  char *paths[3] = {ok, dup, bad};
  for (int i = 0; i < 3; i++) cr_assert_eq(file_write_atomic(paths[i], texts[i], strlen(texts[i])), 0);
  json_t *j = jp_load_file(ok);
  cr_assert_not_null(j, "%s", igpt_errmsg());
  json_decref(j);
  struct { const char *path, *want[3]; } cases[] = {
    {dup, {"dup.json: line 2", "duplicate", "\"b\""}}, {bad, {"bad.json: line 1", NULL}},
    {absent, {"absent.json: cannot read", "No such file", NULL}}, {dir, {"is a directory", NULL}}};
  for (size_t c = 0; c < sizeof cases / sizeof cases[0]; c++) {
    cr_assert_null(jp_load_file(cases[c].path), "%s loaded", cases[c].path);
    for (int w = 0; w < 3 && cases[c].want[w]; w++)
      cr_assert(strstr(igpt_errmsg(), cases[c].want[w]), "no '%s' in: %s", cases[c].want[w], igpt_errmsg());
    cr_assert_null(strstr(igpt_errmsg(), "line -1"), "%s", igpt_errmsg());
  }
  rm_rf(dir);
  free(dir); free(ok); free(dup); free(bad); free(absent);
}

// Every JSON the suite reads refuses duplicate keys: each Jansson load call in the sources passes
// JSON_REJECT_DUPLICATES (jp_load_file does), so a new reader cannot forget it unnoticed.
Test(jsonpath, every_json_load_in_the_sources_rejects_duplicates) {
  char *cmd = xasprintf("cd %s && grep -rn --include='*.c' --include='*.h' -E 'json_load(s|b|f|_file|_callback)?\\(' "
                        "runtime datasets reports kernels | grep -v JSON_REJECT_DUPLICATES", test_root());
  FILE *p = popen(cmd, "r");
  cr_assert_not_null(p);
  char found[4096] = "";
  size_t n = fread(found, 1, sizeof found - 1, p);
  found[n] = 0;
  pclose(p);
  cr_assert_eq(n, 0, "JSON loaded without JSON_REJECT_DUPLICATES (use jp_load_file or pass the flag):\n%s", found);
  free(cmd);
}
