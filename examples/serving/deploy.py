#!/usr/bin/env python3
"""Put a model version on a model server: the example's `deploy-command`.

    python serving/deploy.py --canary http://127.0.0.1:18002 --stable http://127.0.0.1:18001
                                   (MODEL_URI and DEPLOY_TARGET from the environment)

canary-shift runs its `deploy-command` with MODEL_URI, MODEL_NAME, MODEL_VERSION, MODEL_GIT_SHA (the
training commit, to deploy the serving code that matches the model), MODEL_TAGS and DEPLOY_TARGET
set: `canary` before any traffic moves, `stable` at the handoff after the last judged step (and
both for a rollback). Replace this with what your platform needs (`kubectl set image`, `helm
upgrade`, a call to your serving API); it must return once that server serves the new model.
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
    parser.add_argument("--canary", required=True, help="base URL of the canary model server")
    parser.add_argument("--stable", required=True, help="base URL of the stable model server")
    parser.add_argument("--model-uri", default=os.environ.get("MODEL_URI", ""), help="default: $MODEL_URI")
    parser.add_argument(
        "--target",
        default=os.environ.get("DEPLOY_TARGET", "canary"),
        help="canary or stable; default: $DEPLOY_TARGET",
    )
    args = parser.parse_args()
    if not args.model_uri:
        print("::error title=deploy::no model: pass --model-uri or set MODEL_URI", flush=True)
        return 2
    if args.target not in ("canary", "stable"):
        print(
            f"::error title=deploy::unknown target {args.target!r}: pass --target canary or stable (or set DEPLOY_TARGET)",
            flush=True,
        )
        return 2
    server = args.canary if args.target == "canary" else args.stable
    request = urllib.request.Request(
        server.rstrip("/") + "/admin/load",
        data=json.dumps({"model_uri": args.model_uri}).encode(),
        headers={"Content-Type": "application/json"},
        method="POST",
    )
    try:
        with urllib.request.urlopen(request, timeout=300) as response:
            print(f"{args.target} server {server} now serves {json.load(response)['model_uri']}", flush=True)
    except urllib.error.HTTPError as exc:
        print(
            f"::error title=deploy::{server} refused {args.model_uri}: {exc.read().decode(errors='replace')[:300]}",
            flush=True,
        )
        return 1
    except OSError as exc:
        print(f"::error title=deploy::{server} unreachable: {exc}", flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
