// An Express app checking authd's access tokens with Auth0's
// express-oauth2-jwt-bearer in strict mode (RFC 9068: `typ: at+jwt`, and
// `iat`, `sub`, `jti` and `client_id` present). issuerBaseURL is authd's
// --public-url: discovery gives the issuer, the JWKS and the algorithm.
// GET / with `Authorization: Bearer <token>`: 200 and the subject, or 401
// and why. A token signed by a key the app does not hold yet (after `authd
// keys rotate`) makes it fetch the JWKS again: no restart.
import express from 'express';
import { auth } from 'express-oauth2-jwt-bearer';

const app = express();
app.use(auth({
  issuerBaseURL: process.env.AUTHD_URL,
  audience: process.env.AUTHD_AUDIENCE ?? 'authd',
  tokenSigningAlg: 'EdDSA', // optional: discovery already allows EdDSA only
  strict: true,
}));
app.get('/', (req, res) => res.type('text').send(req.auth.payload.sub));
// The library's 401 carries a WWW-Authenticate challenge; keep it, and say why
// in plain text rather than Express's HTML error page.
app.use((err, req, res, next) => {
  res.status(err.status ?? 500).set(err.headers ?? {}).type('text').send(`${err.code ?? err.name}: ${err.message}`);
});
app.listen(Number(process.env.PORT ?? 8000), '127.0.0.1');
