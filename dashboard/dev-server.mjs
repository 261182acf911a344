#!/usr/bin/env node
// Development server for the dashboard until the engine serves it at `/` itself.
//
//   node dev-server.mjs --api http://127.0.0.1:8090 [--port 8091] [--host 127.0.0.1]
//
// Serves this folder's page files at `/` and proxies the engine's routes the page uses
// (/v1/*, /status*, /openapi.json, /healthcheck, /devnet/*) to --api. Node built-ins only.
// An unreachable engine answers 502 {"errorCode": "BAD_GATEWAY", ...}, which the page explains.

import { createServer, request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { readFile, stat } from 'node:fs/promises';
import { dirname, extname, join, normalize, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

const ROOT = dirname(fileURLToPath(import.meta.url));

const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.mjs': 'text/javascript; charset=utf-8',
  '.css': 'text/css; charset=utf-8',
  '.svg': 'image/svg+xml',
  '.png': 'image/png',
  '.ico': 'image/x-icon',
  '.json': 'application/json',
};
/** The page's own files: nothing else of the folder (node_modules, tests, this server) is served. */
const PAGE_EXT = new Set(['.html', '.js', '.css', '.svg', '.png', '.ico']);
const PRIVATE = ['node_modules', 'tests', 'screenshots', 'dev-server.mjs', 'package.json', 'package-lock.json'];

const PROXIED = (path) =>
  path.startsWith('/v1/') ||
  path === '/status' ||
  path.startsWith('/status/') ||
  path === '/openapi.json' ||
  path === '/healthcheck' ||
  path.startsWith('/devnet/');

function json(res, status, body) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

async function serveStatic(req, res, path) {
  if (req.method !== 'GET' && req.method !== 'HEAD') return json(res, 405, { errorCode: 'METHOD_NOT_ALLOWED', message: 'GET only' });
  // The engine serves the page at / and its files under /dashboard/; so does this server.
  const rel = path === '/' ? 'index.html' : decodeURIComponent(path.replace(/^\/dashboard\//, '/').slice(1));
  const file = normalize(join(ROOT, rel));
  const top = rel.split('/')[0];
  if (!file.startsWith(ROOT + sep) || PRIVATE.includes(top) || !PAGE_EXT.has(extname(file))) {
    return json(res, 404, { errorCode: 'NOT_FOUND', message: `no such file: ${path}` });
  }
  try {
    const st = await stat(file);
    if (!st.isFile()) throw new Error('not a file');
    const body = await readFile(file);
    res.writeHead(200, {
      'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
      'content-length': body.length,
      'cache-control': 'no-cache',
    });
    res.end(req.method === 'HEAD' ? undefined : body);
  } catch {
    json(res, 404, { errorCode: 'NOT_FOUND', message: `no such file: ${path}` });
  }
}

function proxy(req, res, api) {
  const target = new URL(req.url, api);
  const send = target.protocol === 'https:' ? httpsRequest : httpRequest;
  const headers = { ...req.headers, host: target.host };
  delete headers.connection;
  const upstream = send(target, { method: req.method, headers, timeout: 15000 }, (up) => {
    res.writeHead(up.statusCode ?? 502, up.headers);
    up.pipe(res);
  });
  upstream.on('timeout', () => upstream.destroy(new Error('engine did not answer within 15 s')));
  upstream.on('error', (e) => {
    if (res.headersSent) return res.destroy();
    json(res, 502, { errorCode: 'BAD_GATEWAY', message: `engine unreachable at ${api.origin}: ${e.code ?? e.message}` });
  });
  req.pipe(upstream);
}

export function startServer({ api, port = 8091, host = '127.0.0.1' }) {
  const apiUrl = new URL(api);
  const server = createServer((req, res) => {
    const path = new URL(req.url, 'http://x').pathname;
    if (PROXIED(path)) return proxy(req, res, apiUrl);
    serveStatic(req, res, path).catch((e) => json(res, 500, { errorCode: 'INTERNAL', message: String(e) }));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => resolve(server));
  });
}

const isMain = process.argv[1] && fileURLToPath(import.meta.url) === normalize(process.argv[1]);
if (isMain) {
  const { values } = parseArgs({
    options: {
      api: { type: 'string', default: 'http://127.0.0.1:8090' },
      port: { type: 'string', default: '8091' },
      host: { type: 'string', default: '127.0.0.1' },
      help: { type: 'boolean', short: 'h', default: false },
    },
  });
  if (values.help) {
    console.log('usage: node dev-server.mjs --api http://127.0.0.1:8090 [--port 8091] [--host 127.0.0.1]');
    process.exit(0);
  }
  const server = await startServer({ api: values.api, port: Number(values.port), host: values.host });
  const { address, port } = server.address();
  console.log(`dashboard: http://${address}:${port}/  (API proxied to ${values.api})`);
  const stop = () => {
    server.close(() => process.exit(0));
    server.closeAllConnections();
  };
  process.on('SIGINT', stop);
  process.on('SIGTERM', stop);
}
