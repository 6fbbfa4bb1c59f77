"""Verify Latchkey access tokens with PyJWT, as a service written in Python would.

Usage: pyjwt_verify.py JWKS_URL ISSUER AUDIENCE < tokens   (one token per line)

For each token: fetch the signing key named by its `kid` from the JWKS, take the
algorithm from that key (never from the token), and check signature, `iss`, `aud` and
`exp`. Prints `ok <alg> <sub>` per token; exits 1 at the first token PyJWT refuses.
A second pass flips one signature character and expects PyJWT to refuse it.
"""
import json
import sys
import urllib.request

import jwt


def main() -> int:
    jwks_url, issuer, audience = sys.argv[1:4]
    with urllib.request.urlopen(jwks_url, timeout=10) as response:
        jwks = json.load(response)
    keys_by_kid = {jwk["kid"]: jwk for jwk in jwks["keys"]}
    tokens = [line.strip() for line in sys.stdin if line.strip()]
    if not tokens:
        print("no tokens given", file=sys.stderr)
        return 2
    for token in tokens:
        header = jwt.get_unverified_header(token)
        jwk = keys_by_kid[header["kid"]]
        algorithm = jwk["alg"]
        key = jwt.PyJWK(jwk).key
        claims = jwt.decode(
            token,
            key,
            algorithms=[algorithm],
            audience=audience,
            issuer=issuer,
            options={"require": ["exp", "iat", "iss", "aud", "sub", "jti"]},
        )
        if header.get("typ") != "at+jwt":
            print(f"unexpected typ {header.get('typ')!r}", file=sys.stderr)
            return 1
        print(f"ok {algorithm} {claims['sub']}")
        head, payload, signature = token.split(".")
        flipped = signature[:-2] + ("A" if signature[-2] != "A" else "B") + signature[-1]
        try:
            jwt.decode(f"{head}.{payload}.{flipped}", key, algorithms=[algorithm],
                       audience=audience, issuer=issuer)
        except jwt.InvalidSignatureError:
            pass
        else:
            print("a tampered token was accepted", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
