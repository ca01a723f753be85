// A service checking authd's access tokens with jose: discovery names the
// JWKS, jwtVerify checks the signature, `typ`, issuer, audience and times.
// GET / with `Authorization: Bearer <token>`: 200 and the subject, or 401
// and why. createRemoteJWKSet fetches the keys again when a token names one
// it does not hold (after `authd keys rotate`), so no restart is needed.
import http from 'node:http';
import { createRemoteJWKSet, jwtVerify } from 'jose';

const issuer = process.env.AUTHD_URL; // authd's --public-url: exactly its tokens' iss
const audience = process.env.AUTHD_AUDIENCE ?? 'authd';
const port = Number(process.env.PORT ?? 8000);

const metadata = await (await fetch(`${issuer}/.well-known/openid-configuration`)).json();
if (metadata.issuer !== issuer) throw new Error(`discovery names another issuer: ${metadata.issuer}`);
const jwks = createRemoteJWKSet(new URL(metadata.jwks_uri));

http.createServer(async (req, res) => {
  const token = /^Bearer (\S+)$/i.exec(req.headers.authorization ?? '')?.[1] ?? '';
  try {
    const { payload } = await jwtVerify(token, jwks, {
      issuer,
      audience,
      algorithms: ['EdDSA'],
      typ: 'at+jwt',
    });
    res.writeHead(200, { 'content-type': 'text/plain' }).end(payload.sub);
  } catch (err) {
    res.writeHead(401, { 'content-type': 'text/plain', 'www-authenticate': 'Bearer error="invalid_token"' })
      .end(`${err.code ?? err.name}: ${err.message}`);
  }
}).listen(port, '127.0.0.1');
