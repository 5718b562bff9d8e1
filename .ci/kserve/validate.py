"""Validates KServe resources against the KServe CRDs' schemas, strictly.

    python3 validate.py SCHEMAS.json.gz CORE_OUT.yaml MANIFEST.yaml...

Every document of the manifests whose apiVersion and kind are in SCHEMAS (crd-schemas.json.gz,
written by extract-schemas.py) is checked against that openAPIV3Schema with jsonschema, and more
strictly than the API server's pruning would: an object schema that lists its properties and
does not say x-kubernetes-preserve-unknown-fields refuses any other field (a misspelt field is
an error, not silently dropped), and metadata is checked against ObjectMeta's fields. Any
other document (a core resource) is written to CORE_OUT for kubernetes-validate --strict.
Prints one line per resource and exits 1 if any is invalid.
"""
import gzip
import json
import sys

import jsonschema
import yaml

# ObjectMeta's fields (k8s.io/apimachinery meta/v1), which the CRDs leave unchecked.
METADATA = {
    "type": "object",
    "required": ["name"],
    "additionalProperties": False,
    "properties": {
        "name": {"type": "string", "minLength": 1},
        "namespace": {"type": "string"},
        "generateName": {"type": "string"},
        "labels": {"type": "object", "additionalProperties": {"type": "string"}},
        "annotations": {"type": "object", "additionalProperties": {"type": "string"}},
        "finalizers": {"type": "array", "items": {"type": "string"}},
        "ownerReferences": {"type": "array", "items": {"type": "object"}},
    },
}


def strict(schema):
    """`schema` with unknown fields refused wherever it lists the known ones."""
    if isinstance(schema, list):
        return [strict(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    schema = {key: strict(value) for key, value in schema.items()}
    if (
        "properties" in schema
        and not schema.get("x-kubernetes-preserve-unknown-fields")
        and "additionalProperties" not in schema
    ):
        schema["additionalProperties"] = False
    return schema


def where(error):
    return "/".join(str(p) for p in error.absolute_path) or "(top)"


def main():
    schemas_path, core_out, *manifests = sys.argv[1:]
    with gzip.open(schemas_path, "rt") as f:
        document = json.load(f)
    validators = {}
    for key, schema in document["schemas"].items():
        schema = strict(schema)
        schema["properties"]["metadata"] = METADATA
        schema.setdefault("required", [])
        for field in ("apiVersion", "kind", "metadata", "spec"):
            if field not in schema["required"]:
                schema["required"].append(field)
        validators[key] = jsonschema.Draft202012Validator(schema)
    passed, failed, core = 0, 0, []
    for path in manifests:
        with open(path) as f:
            docs = [d for d in yaml.safe_load_all(f) if d]
        for doc in docs:
            name = f"{path}: {doc.get('kind')} {doc.get('metadata', {}).get('name')}"
            key = f"{doc.get('apiVersion')}/{doc.get('kind')}"
            validator = validators.get(key)
            if validator is None:
                if str(doc.get("apiVersion", "")).startswith("serving.kserve.io/"):
                    print(f"INVALID {name}: no schema for {key} in {schemas_path}")
                    failed += 1
                else:
                    core.append(doc)
                continue
            errors = sorted(validator.iter_errors(doc), key=lambda e: list(e.absolute_path))
            if errors:
                failed += 1
                for error in errors:
                    print(f"INVALID {name}: at {where(error)}: {error.message}")
            else:
                passed += 1
                print(f"valid {name} ({key}, KServe {document['kserve']})")
    with open(core_out, "w") as f:
        yaml.safe_dump_all(core, f)
    print(f"kserve: {passed} resources valid against the CRDs, {failed} invalid; "
          f"{len(core)} core resources left for kubernetes-validate")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
