// Starts Debian's Janus (VideoRoom and HTTP only, tools/janus/*.jcfg) and a small web server for
// its page: /room.html, janus.js and adapter.js from their Debian packages, and /janus passed on to
// Janus (same origin, so no CORS). For joinbench's comparison, in tools/netns.sh's namespace.
import { spawn } from 'node:child_process';
import { createReadStream, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import http from 'node:http';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const FILES = {
  '/room.html': [join(here, 'room.html'), 'text/html'],
  '/room.js': [join(here, 'room.js'), 'text/javascript'],
  '/js/janus.min.js': ['/usr/share/javascript/janus-gateway/janus.min.js', 'text/javascript'],
  '/js/adapter.min.js': ['/usr/share/javascript/webrtc-adapter/adapter.min.js', 'text/javascript'],
};

export async function startJanus(janusPort, pagePort) {
  const dir = mkdtempSync(join(tmpdir(), 'janus-bench-'));
  for (const f of ['janus.jcfg', 'janus.plugin.videoroom.jcfg', 'janus.transport.http.jcfg']) {
    writeFileSync(join(dir, f), readFileSync(join(here, f), 'utf8').replace('@CONFIGS@', dir).replace('@PORT@', String(janusPort)));
  }
  const log = join(dir, 'janus.log');
  const child = spawn('janus', ['-F', dir, '-C', join(dir, 'janus.jcfg'), '-L', log, '-N'], { stdio: 'ignore' });
  const exited = new Promise((resolve) => child.on('exit', resolve));

  const server = http.createServer((req, res) => {
    const path = req.url.split('?')[0];
    if (path.startsWith('/janus')) {
      const up = http.request({ host: '127.0.0.1', port: janusPort, path: req.url, method: req.method, headers: req.headers }, (r) => {
        res.writeHead(r.statusCode, r.headers);
        r.pipe(res);
      });
      up.on('error', () => { res.writeHead(502); res.end(); });
      req.pipe(up);
      return;
    }
    const f = FILES[path];
    if (!f) { res.writeHead(404); res.end(); return; }
    res.writeHead(200, { 'content-type': f[1], 'cache-control': 'no-store' });
    createReadStream(f[0]).pipe(res);
  });
  await new Promise((resolve) => server.listen(pagePort, '127.0.0.1', resolve));

  for (let i = 0; ; i++) {
    const up = await fetch(`http://127.0.0.1:${janusPort}/janus/info`).then((r) => r.ok).catch(() => false);
    if (up) break;
    if (i > 100 || child.exitCode !== null) throw new Error(`Janus did not start (log: ${log}); is this tools/netns.sh's namespace, with janus installed?`);
    await new Promise((r) => setTimeout(r, 100));
  }
  return {
    url: `http://127.0.0.1:${pagePort}/room.html`,
    pid: child.pid,
    async stop() {
      child.kill('SIGTERM');
      await Promise.race([exited, new Promise((r) => setTimeout(r, 3000))]);
      child.kill('SIGKILL');
      server.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
