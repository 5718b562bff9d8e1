#!/usr/bin/env bash
# Fetches the documentation viewer that `/docs` serves: Redoc's standalone bundle and its
# licences, from the npm registry at the pinned version, into this directory. The files are
# committed and embedded in the binary, so the page needs no network and its Content-Security-
# Policy names no external origin. Run it again (with a new REDOC_VERSION) to upgrade.
set -euo pipefail
REDOC_VERSION=2.5.4
cd "$(dirname "$0")"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
tarball=$(cd "$work" && npm pack --silent "redoc@$REDOC_VERSION")
tar -xzf "$work/$tarball" -C "$work" package/LICENSE package/bundles/redoc.standalone.js \
  package/bundles/redoc.standalone.js.LICENSE.txt
cp "$work/package/bundles/redoc.standalone.js" redoc.standalone.js
# Redoc's own licence, and those of the libraries its bundle contains.
cp "$work/package/LICENSE" redoc.LICENSE
cp "$work/package/bundles/redoc.standalone.js.LICENSE.txt" redoc.standalone.js.LICENSE.txt
echo "$REDOC_VERSION" >redoc.VERSION
sha256sum redoc.standalone.js
