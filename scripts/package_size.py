#!/usr/bin/env python3
"""`make bench`: the size of the Lambda package for each architecture built, zipped as `sam
deploy` and `cargo lambda deploy` upload it (one `bootstrap` file, deflate)."""

import io
import os
import sys
import zipfile

target = os.environ.get("CARGO_TARGET_DIR", "target")
builds = [
    ("x86_64", os.path.join(target, "release", "momento-webhook"), "host release build"),
    ("arm64", os.path.join(target, "lambda", "momento-webhook", "bootstrap"), "cargo lambda build --release --arm64"),
]
print("\nLambda package (bootstrap, zipped with deflate)")
for arch, path, how in builds:
    if not os.path.exists(path):
        print(f"  {arch:7} not built ({how})")
        continue
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as z:
        info = zipfile.ZipInfo("bootstrap")
        info.external_attr = 0o755 << 16
        info.compress_type = zipfile.ZIP_DEFLATED
        with open(path, "rb") as f:
            z.writestr(info, f.read())
    print(f"  {arch:7} binary {os.path.getsize(path) / 1e6:6.2f} MB, zip {len(buffer.getvalue()) / 1e6:5.2f} MB  ({how})")
sys.exit(0)
