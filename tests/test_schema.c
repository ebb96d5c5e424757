// schemas: reports/*.schema.json are valid draft 2020-12 schemas, the results fixtures validate,
// and a results file with a wrong field is rejected (python3-jsonschema, TEST_PKGS).
#include "testutil.h"

static bool have_jsonschema(void) {
  return run_cmd("/usr/bin/python3 -c 'import jsonschema' >/dev/null 2>&1") == 0;
}

static int validate(const char *schema, const char *file) {
  char *s = repo_path(schema), *py = repo_path("ci/validate-json.py");
  char *cmd = xasprintf("/usr/bin/python3 '%s' '%s' '%s' >/dev/null", py, s, file);
  int rc = run_cmd(cmd);
  free(cmd); free(py); free(s);
  return rc;
}

Test(schema, fixtures_validate) {
  if (!have_jsonschema()) cr_skip_test("python3-jsonschema not installed (make test-deps)");
  char *f = repo_path("tests/fixtures/reports/linear-probe-smoke/results.json");
  cr_assert_eq(validate("reports/results.schema.json", f), 0, "%s does not validate", f);
  free(f);
}

Test(schema, wrong_field_rejected) {
  if (!have_jsonschema()) cr_skip_test("python3-jsonschema not installed (make test-deps)");
  char *dir = test_tmpdir("schema");
  char *src = repo_path("tests/fixtures/reports/linear-probe-smoke/results.json");
  char *dst = xasprintf("%s/results.json", dir);
  // a scale the suite does not have
  char *cmd = xasprintf("sed 's/\"scale\": \"smoke\"/\"scale\": \"huge\"/' '%s' > '%s'", src, dst);
  cr_assert_eq(run_cmd(cmd), 0);
  cr_assert_neq(validate("reports/results.schema.json", dst), 0, "a scale 'huge' validated");
  rm_rf(dir);
  free(cmd); free(dst); free(src); free(dir);
}
