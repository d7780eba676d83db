// A real OpenID Connect provider on loopback for the login tests (npm `oidc-provider`), with the
// claims of the Italian profile (SPID/CIE): the fiscal code in
// https://attributes.eid.gov.it/fiscal_number with the "TINIT-" prefix, and the level in `acr`.
// Its login page asks only for a user name, one of PEOPLE.
import Provider from 'oidc-provider';
import { freePort } from './helpers.mjs';

export const PEOPLE = {
  mario: {
    given_name: 'Mario', family_name: 'Rossi', email: 'mario.rossi@example.it', email_verified: true,
    'https://attributes.eid.gov.it/fiscal_number': 'TINIT-RSSMRA80A01H501U',
  },
  // The demo's first administrator, by the email of her account.
  anna: {
    given_name: 'Anna', family_name: 'Admin', email: 'admin@comune.esempio.it', email_verified: true,
    'https://attributes.eid.gov.it/fiscal_number': 'TINIT-DMNNNA75A41H501P',
  },
};
const FISCAL = 'https://attributes.eid.gov.it/fiscal_number';
export const LEVEL = 'https://www.spid.gov.it/SpidL2';

// Starts the provider for a client whose redirect address is `redirect`; `issuer` is what
// Sportello's --oidc-issuer names.
export async function startProvider(redirect) {
  const port = await freePort();
  const issuer = `http://127.0.0.1:${port}`;
  const provider = new Provider(issuer, {
    clients: [{
      client_id: 'sportello', client_secret: 'segreto-di-prova', redirect_uris: [redirect],
      grant_types: ['authorization_code'], response_types: ['code'],
    }],
    pkce: { required: () => true },
    claims: { openid: ['sub'], profile: ['given_name', 'family_name', FISCAL], email: ['email', 'email_verified'] },
    // The claims in the ID token itself, as SPID/CIE OIDC providers give them.
    conformIdTokenClaims: false,
    acrValues: [LEVEL],
    features: { devInteractions: { enabled: false } },
    cookies: { keys: ['chiave-dei-cookie-di-prova'] },
    async findAccount(ctx, id) {
      return { accountId: id, async claims() { return { sub: id, ...PEOPLE[id] }; } };
    },
  });
  provider.on('server_error', (ctx, err) => console.error('oidc-provider:', err));
  const callback = provider.callback();
  const server = (await import('node:http')).createServer(async (req, res) => {
    const m = req.url.match(/^\/interaction\/([^/?]+)(\/login)?/);
    if (!m) return callback(req, res);
    try {
      const details = await provider.interactionDetails(req, res);
      if (req.method === 'GET') {
        res.setHeader('content-type', 'text/html; charset=utf-8');
        return res.end(`<!doctype html><html lang="it"><title>Accesso di prova</title><main><h1>Entra con la tua identità digitale</h1><form method="post" action="/interaction/${details.uid}/login"><label for="utente">Utente</label><input id="utente" name="utente"><button type="submit">Entra</button></form></main>`);
      }
      let body = '';
      for await (const chunk of req) body += chunk;
      const user = new URLSearchParams(body).get('utente');
      if (!PEOPLE[user]) { res.statusCode = 403; return res.end('utente sconosciuto'); }
      const grant = new provider.Grant({ accountId: user, clientId: details.params.client_id });
      grant.addOIDCScope('openid profile email');
      const grantId = await grant.save();
      await provider.interactionFinished(req, res, { login: { accountId: user, acr: LEVEL }, consent: { grantId } }, { mergeWithLastSubmission: false });
    } catch (e) {
      res.statusCode = 500;
      res.end(String(e));
    }
  });
  await new Promise((r) => server.listen(port, '127.0.0.1', r));
  return {
    issuer,
    stop: () => new Promise((r) => { server.closeAllConnections?.(); server.close(r); }),
  };
}
