# Schemathesis hooks for StegoCluster (loaded through SCHEMATHESIS_HOOKS=stego_checks with this directory on
# PYTHONPATH). The project's contract for hostile input: no 5xx except 503 with Retry-After, and every error
# answer is the JSON shape {"error": {"code", "message"}}.
import json

import schemathesis


@schemathesis.check
def no_5xx_but_503_with_retry_after(ctx, response, case):
    status = response.status_code
    if status >= 500 and not (status == 503 and any(k.lower() == "retry-after" for k in response.headers)):
        raise AssertionError(f"{status} from {case.method} {case.formatted_path}: only 503 with Retry-After is allowed")


@schemathesis.check
def errors_are_json(ctx, response, case):
    if response.status_code < 400 or case.method.upper() == "HEAD":
        return
    try:
        body = json.loads(response.content)
        err = body["error"]
        assert isinstance(err["code"], str) and isinstance(err["message"], str)
    except Exception:
        raise AssertionError(f"{response.status_code} without the JSON error shape: {response.content[:120]!r}")
