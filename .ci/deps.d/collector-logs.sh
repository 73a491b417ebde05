#!/usr/bin/env bash
# Collector cloud-log tests (collector/tests/s3_*.rs) start moto's S3/SQS server on 127.0.0.1.
# Pinned so a new moto or boto release cannot change test behaviour unnoticed.
set -euo pipefail
pins=(
    "moto[server]==5.1.22"
    "boto3==1.43.11"
    "botocore==1.43.11"
)
py=${WARD_TEST_PYTHON:-python3}
if ! "$py" -m pip install --quiet --disable-pip-version-check "${pins[@]}" 2>/tmp/collector-logs-pip.err; then
    # Debian's own python3 refuses system-wide pip installs (PEP 668); CI machines are throwaway.
    if grep -q externally-managed /tmp/collector-logs-pip.err; then
        "$py" -m pip install --quiet --disable-pip-version-check --break-system-packages "${pins[@]}"
    else
        cat /tmp/collector-logs-pip.err >&2
        exit 1
    fi
fi
"$py" -c 'import moto.server, flask' # fail here, not in the tests, if the server cannot start
