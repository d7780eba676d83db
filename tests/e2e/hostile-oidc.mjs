// An OpenID Connect provider that answers as told, for the refusals: it signs its ID tokens
// with `jose` and, per `mode`, with the wrong nonce, already expired, with a key it does not
// publish, or at a level lower than asked. The authorization step sends the browser straight
// back with a code (no login page). `mode = 'good'` answers correctly, which shows the refusals
// come from what each mode changes.
import http from 'node:http';
import { generateKeyPair, exportJWK, SignJWT } from 'jose';
import { freePort } from './helpers.mjs';

const FISCAL = 'https://attributes.eid.gov.it/fiscal_number';

export async function startHostileProvider() {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const published = await generateKeyPair('RS256', { extractable: true });
  const foreign = await generateKeyPair('RS256', { extractable: true });
  const jwk = { ...(await exportJWK(published.publicKey)), kid: 'chiave-1', alg: 'RS256', use: 'sig' };
  const codes = new Map();
  const state = { mode: 'good' };
  const server = http.createServer(async (req, res) => {
    const url = new URL(req.url, issuer);
    const json = (v) => { res.setHeader('content-type', 'application/json'); res.end(JSON.stringify(v)); };
    if (url.pathname === '/.well-known/openid-configuration') {
      return json({
        issuer, authorization_endpoint: `${issuer}/auth`, token_endpoint: `${issuer}/token`, jwks_uri: `${issuer}/jwks`,
        response_types_supported: ['code'], subject_types_supported: ['public'], id_token_signing_alg_values_supported: ['RS256'],
      });
    }
    if (url.pathname === '/jwks') return json({ keys: [jwk] });
    if (url.pathname === '/auth') {
      const code = `code-${codes.size + 1}`;
      codes.set(code, { nonce: url.searchParams.get('nonce'), client: url.searchParams.get('client_id'), mode: state.mode });
      const back = new URL(url.searchParams.get('redirect_uri'));
      back.searchParams.set('code', code);
      back.searchParams.set('state', url.searchParams.get('state'));
      res.statusCode = 302;
      res.setHeader('location', back.toString());
      return res.end();
    }
    if (url.pathname === '/token' && req.method === 'POST') {
      let body = '';
      for await (const chunk of req) body += chunk;
      const c = codes.get(new URLSearchParams(body).get('code'));
      if (!c) { res.statusCode = 400; return json({ error: 'invalid_grant' }); }
      const now = Math.floor(Date.now() / 1000);
      const claims = {
        iss: issuer, sub: 'mario', aud: c.client, nonce: c.mode === 'wrong-nonce' ? 'un-altro-nonce' : c.nonce,
        iat: c.mode === 'expired' ? now - 1200 : now, exp: c.mode === 'expired' ? now - 600 : now + 300,
        acr: c.mode === 'low-level' ? 'https://www.spid.gov.it/SpidL1' : 'https://www.spid.gov.it/SpidL2',
        given_name: 'Mario', family_name: 'Rossi', email: 'mario.rossi@example.it', email_verified: true,
        [FISCAL]: 'TINIT-RSSMRA80A01H501U',
      };
      const key = c.mode === 'other-key' ? foreign.privateKey : published.privateKey;
      const idToken = await new SignJWT(claims).setProtectedHeader({ alg: 'RS256', kid: 'chiave-1' }).sign(key);
      return json({ access_token: 'accesso', token_type: 'Bearer', expires_in: 300, id_token: idToken });
    }
    res.statusCode = 404;
    res.end();
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return {
    issuer,
    set mode(m) { state.mode = m; },
    stop: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  };
}
