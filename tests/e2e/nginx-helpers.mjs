// Debian's nginx in front of Sportello, configured with deploy/nginx/sportello.conf itself: for
// proxy.test.mjs (one Sportello) and nodes.test.mjs (several nodes, round robin).
import assert from 'node:assert/strict';
import { execFileSync, spawn, spawnSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { until } from './call-helpers.mjs';

const DOC = new URL('../../deploy/nginx/sportello.conf', import.meta.url);

// The documented file with loopback addresses (`app`: Sportello's port, or the nodes' ports),
// each replacement found exactly once (a changed document fails here, loudly, rather than
// testing something else), inside the main context a foreground nginx needs.
function nginxConfig(dir, { https, http, app }) {
  const apps = Array.isArray(app) ? app : [app];
  let site = readFileSync(DOC, 'utf8');
  const replace = (from, to) => {
    const n = site.split(from).length - 1;
    assert.equal(n, 1, `deploy/nginx/sportello.conf has ${JSON.stringify(from)} once (found ${n})`);
    site = site.replace(from, to);
  };
  replace('listen 80;', `listen 127.0.0.1:${http};`);
  replace('listen [::]:80;', '');
  replace('listen 443 ssl http2;', `listen 127.0.0.1:${https} ssl http2;`);
  replace('listen [::]:443 ssl http2;', '');
  replace('server 127.0.0.1:8080;', apps.map((p) => `server 127.0.0.1:${p};`).join('\n    '));
  replace('/etc/letsencrypt/live/prenotazioni.comune.example.it/fullchain.pem', join(dir, 'cert.pem'));
  replace('/etc/letsencrypt/live/prenotazioni.comune.example.it/privkey.pem', join(dir, 'key.pem'));
  writeFileSync(join(dir, 'sportello.conf'), site);
  return `daemon off;
user root;
pid ${dir}/nginx.pid;
error_log ${dir}/error.log;
events {}
http {
  access_log ${dir}/access.log;
  client_body_temp_path ${dir}/body;
  proxy_temp_path ${dir}/proxy;
  fastcgi_temp_path ${dir}/fastcgi;
  uwsgi_temp_path ${dir}/uwsgi;
  scgi_temp_path ${dir}/scgi;
  include ${dir}/sportello.conf;
}
`;
}

export async function startNginx(ports) {
  const version = spawnSync('nginx', ['-v'], { encoding: 'utf8' });
  if (version.error) throw new Error(`nginx is missing (${version.error.message}): scripts/test installs Debian's nginx`);
  const dir = mkdtempSync(join(tmpdir(), 'sportello-nginx-'));
  execFileSync('openssl', ['req', '-x509', '-newkey', 'ec', '-pkeyopt', 'ec_paramgen_curve:prime256v1', '-nodes',
    '-keyout', join(dir, 'key.pem'), '-out', join(dir, 'cert.pem'), '-days', '2', '-subj', '/CN=127.0.0.1',
    '-addext', 'subjectAltName=IP:127.0.0.1'], { stdio: 'ignore' });
  const conf = join(dir, 'nginx.conf');
  writeFileSync(conf, nginxConfig(dir, ports));
  const check = spawnSync('nginx', ['-t', '-c', conf, '-p', dir], { encoding: 'utf8' });
  assert.equal(check.status, 0, `nginx -t: ${check.stderr}`);
  const child = spawn('nginx', ['-c', conf, '-p', dir], { stdio: ['ignore', 'ignore', 'pipe'] });
  let err = '';
  child.stderr.on('data', (d) => { err += d; });
  await until('nginx to listen', async () => {
    if (child.exitCode !== null) throw new Error(`nginx exited: ${err}`);
    try { await fetch(`https://127.0.0.1:${ports.https}/`, { redirect: 'manual' }); return true; } catch { return false; }
  }, 10000);
  return {
    dir,
    log: () => readFileSync(join(dir, 'access.log'), 'utf8'),
    async stop() {
      if (child.exitCode === null) {
        child.kill('SIGTERM');
        await new Promise((r) => child.once('exit', r));
      }
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

