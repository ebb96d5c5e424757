#!/usr/bin/python3
# Validates JSON files against one of the suite's schemas (reports/*.schema.json, draft 2020-12)
# with python3-jsonschema; the schemas refer to each other by $id, so all are loaded into one store.
# usage: ci/validate-json.py SCHEMA FILE...   (exit 0 all valid, 1 some invalid, 2 usage/setup)
import json, os, sys
try:
    import jsonschema
except ImportError:
    print("validate-json: python3-jsonschema is not installed (apt-get install python3-jsonschema)", file=sys.stderr)
    sys.exit(2)

if len(sys.argv) < 3:
    print(__doc__ or "usage: validate-json.py SCHEMA FILE...", file=sys.stderr)
    sys.exit(2)
schema_path = sys.argv[1]
store = {}
for name in os.listdir(os.path.dirname(os.path.abspath(schema_path))):
    if name.endswith(".schema.json"):
        with open(os.path.join(os.path.dirname(os.path.abspath(schema_path)), name)) as f:
            s = json.load(f)
        store[s["$id"]] = s
with open(schema_path) as f:
    schema = json.load(f)
cls = jsonschema.Draft202012Validator
cls.check_schema(schema)
resolver = jsonschema.RefResolver.from_schema(schema, store=store)
validator = cls(schema, resolver=resolver, format_checker=cls.FORMAT_CHECKER)
bad = 0
for path in sys.argv[2:]:
    try:
        with open(path) as f:
            doc = json.load(f)
    except (OSError, ValueError) as e:
        print(f"{path}: cannot read JSON: {e}"); bad += 1; continue
    errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
    for e in errors[:20]:
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in e.absolute_path) or "(top)"
        print(f"{path}: {where}: {e.message}")
    if errors:
        bad += 1
    else:
        print(f"{path}: valid against {os.path.basename(schema_path)}")
sys.exit(1 if bad else 0)
