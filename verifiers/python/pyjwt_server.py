"""A service checking authd's access tokens with PyJWT.

PyJWKClient fetches authd's JWKS and fetches it again when a token names a
key it does not hold (after `authd keys rotate`), so no restart is needed;
jwt.decode_complete checks the signature, issuer, audience and times, and
the header's `typ`. GET / with `Authorization: Bearer <token>`: 200 and the
subject, or 401 and why.
"""

import os
from http import server

import jwt

ISSUER = os.environ["AUTHD_URL"]  # authd's --public-url: exactly its tokens' iss
AUDIENCE = os.environ.get("AUTHD_AUDIENCE", "authd")
jwks = jwt.PyJWKClient(f"{ISSUER}/.well-known/jwks.json")


def verify(token):
    """The token's subject, or a jwt.PyJWTError saying why not."""
    decoded = jwt.decode_complete(
        token,
        jwks.get_signing_key_from_jwt(token),
        algorithms=["EdDSA"],
        audience=AUDIENCE,
        issuer=ISSUER,
        leeway=10,  # recent PyJWT refuses an iat ahead of its own clock
        options={"require": ["exp", "iat", "iss", "aud", "sub"]},
    )
    if decoded["header"].get("typ") != "at+jwt":
        raise jwt.InvalidTokenError("not an access token (typ)")
    return decoded["payload"]["sub"]


class Handler(server.BaseHTTPRequestHandler):
    def do_GET(self):
        scheme, _, token = self.headers.get("Authorization", "").partition(" ")
        try:
            if scheme.lower() != "bearer":
                raise jwt.InvalidTokenError("no bearer token")
            status, body = 200, verify(token)
        except jwt.PyJWTError as error:
            status, body = 401, f"{type(error).__name__}: {error}"
        self.send_response(status)
        self.send_header("Content-Type", "text/plain")
        if status == 401:
            self.send_header("WWW-Authenticate", 'Bearer error="invalid_token"')
        self.end_headers()
        self.wfile.write(body.encode())


server.ThreadingHTTPServer(("127.0.0.1", int(os.environ.get("PORT", "8000"))), Handler).serve_forever()
