"""Writes crd-schemas.json.gz: the openAPIV3Schema of every version of the KServe CRDs named
on the command line, by "<group>/<version>/<kind>", for validate.py. The CRD files are the
release's own (see README.md); only their schemas are kept, as gzip-compressed JSON with no
timestamp, so the same CRDs always give the same bytes.

    python3 extract-schemas.py OUT.json.gz TAG CRD.yaml...
"""
import gzip
import json
import sys

import yaml

out, tag, *paths = sys.argv[1:]
schemas = {}
for path in paths:
    with open(path) as f:
        crd = yaml.safe_load(f)
    group, kind = crd["spec"]["group"], crd["spec"]["names"]["kind"]
    for version in crd["spec"]["versions"]:
        schemas[f"{group}/{version['name']}/{kind}"] = version["schema"]["openAPIV3Schema"]
document = {"kserve": tag, "schemas": schemas}
text = json.dumps(document, sort_keys=True, separators=(",", ":")).encode()
with open(out, "wb") as f:
    with gzip.GzipFile(fileobj=f, mode="wb", filename="", mtime=0, compresslevel=9) as gz:
        gz.write(text)
print(f"{out}: {', '.join(sorted(schemas))}")
