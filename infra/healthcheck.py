"""Container health check: exit 0 when this worker's /api/health answers 200 (ready).

The API listens only on SLUICE_API_HOST (Faust's web_bind), so ask that address, not
127.0.0.1: with SLUICE_API_HOST set to the container's name, loopback is not served.
"""

import os
import sys
import urllib.error
import urllib.request

host = os.environ.get("SLUICE_API_HOST", "").strip() or "127.0.0.1"
if host in ("0.0.0.0", "::"):
    host = "127.0.0.1"
port = os.environ.get("SLUICE_API_PORT", "").strip() or "8000"
url = f"http://{host}:{port}/api/health"

try:
    with urllib.request.urlopen(url, timeout=4) as answer:
        sys.exit(0 if answer.status == 200 else 1)
except (urllib.error.URLError, OSError) as exc:  # 503 while starting or rebalancing
    print(f"{url}: {exc}", file=sys.stderr)
    sys.exit(1)
