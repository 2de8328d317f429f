#!/usr/bin/env python3
"""Put a model version on the canary server: the example's `deploy-command`.

    python serving/deploy.py --server http://127.0.0.1:18002      (MODEL_URI from the environment)

deploy.yml runs its `deploy-command` with MODEL_URI, MODEL_NAME and MODEL_VERSION set, before
canary-shift moves any traffic. Replace this with what your platform needs (`kubectl set image`,
`helm upgrade`, a call to your serving API); it must return once the canary serves the new model.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--server", required=True, help="base URL of the canary model server")
    parser.add_argument("--model-uri", default=os.environ.get("MODEL_URI", ""), help="default: $MODEL_URI")
    args = parser.parse_args()
    if not args.model_uri:
        print("::error title=deploy::no model: pass --model-uri or set MODEL_URI", flush=True)
        return 2
    request = urllib.request.Request(
        args.server.rstrip("/") + "/admin/load",
        data=json.dumps({"model_uri": args.model_uri}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            print(f"{args.server} now serves {json.load(response)['model_uri']}", flush=True)
    except urllib.error.HTTPError as exc:
        print(f"::error title=deploy::{args.server} refused {args.model_uri}: {exc.read().decode(errors='replace')[:300]}", flush=True)
        return 1
    except OSError as exc:
        print(f"::error title=deploy::{args.server} unreachable: {exc}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
