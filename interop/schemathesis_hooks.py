"""Latchkey's own schemathesis check, loaded with SCHEMATHESIS_HOOKS=schemathesis_hooks
(run by crates/latchkey/tests/api/api_fuzz.rs; see the README's "Tests")."""

import schemathesis

CREDENTIAL_HEADERS = ("authorization", "cookie", "x-latchkey-csrf")


@schemathesis.check
def no_success_without_credentials(ctx, response, case):
    """An operation whose every security alternative needs something never answers 2xx
    to a request that carries no credentials at all."""
    security = case.operation.definition.raw.get("security") or []
    protected = bool(security) and all(requirement for requirement in security)
    if not protected or not 200 <= response.status_code < 300:
        return None
    sent = {name.lower() for name in response.request.headers}
    if not sent.intersection(CREDENTIAL_HEADERS):
        raise AssertionError(
            f"{case.operation.label} answered {response.status_code} to a request without credentials"
        )
    return None
