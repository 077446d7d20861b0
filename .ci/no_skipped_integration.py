"""Fail CI when any integration or experiment test was skipped (they must run in CI)."""

import sys
import xml.etree.ElementTree as ET

tree = ET.parse(sys.argv[1])
skipped = [
    f"{case.get('classname')}::{case.get('name')}"
    for case in tree.iter("testcase")
    if case.find("skipped") is not None
    and any(word in (case.get("classname") or "") for word in ("integration", "experiment", "examples"))
]
ran = sum(1 for case in tree.iter("testcase") if "integration" in (case.get("classname") or ""))
if skipped:
    print(f"CI: {len(skipped)} integration tests were skipped; they must run:", *skipped, sep="\n  ")
    sys.exit(1)
if ran == 0:
    print("CI: no integration test ran")
    sys.exit(1)
print(f"CI: {ran} integration tests ran, none skipped")
