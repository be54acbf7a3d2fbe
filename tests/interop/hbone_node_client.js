'use strict';
// HBONE interop from an independent HTTP/2 + TLS stack (Node.js http2 on its bundled OpenSSL).
//
// Given a running sluice-ztunnel serving pod demo/server on POD_IP, this script acts as a remote
// ztunnel would: mTLS with a SPIFFE client certificate, ALPN h2, no SNI, and HTTP/2 CONNECT
// streams whose :authority is the destination pod IP:port. The destination app is an echo server
// in this process, bound on POD_IP.
//
// Environment: POD_IP, OTHER_IP, HBONE_PORT, ROOT_CERT, CLIENT_CERT, CLIENT_KEY, FOREIGN_CERT,
// FOREIGN_KEY, SERVER_SAN. Prints one PASS/FAIL line per check; exits 1 if any check failed.

const crypto = require('node:crypto');
const fs = require('node:fs');
const http2 = require('node:http2');
const net = require('node:net');

const env = (name) => {
  const value = process.env[name];
  if (!value) throw new Error(`environment variable ${name} is required`);
  return value;
};

const POD_IP = env('POD_IP');
const OTHER_IP = env('OTHER_IP');
const HBONE_PORT = Number(env('HBONE_PORT'));
const ROOT = fs.readFileSync(env('ROOT_CERT'));
const CLIENT = {
  cert: fs.readFileSync(env('CLIENT_CERT')),
  key: fs.readFileSync(env('CLIENT_KEY'))
};
const FOREIGN = {
  cert: fs.readFileSync(env('FOREIGN_CERT')),
  key: fs.readFileSync(env('FOREIGN_KEY'))
};
const SERVER_SAN = env('SERVER_SAN');

const PAYLOAD_BYTES = 1024 * 1024;
const TRAILER = Buffer.from('sent-after-client-half-close');
const STEP_TIMEOUT_MS = 10000;

let checks = 0;
let failures = 0;
function check(ok, what, detail) {
  checks++;
  if (!ok) failures++;
  console.log(`${ok ? 'PASS' : 'FAIL'}: ${what}${detail === undefined ? '' : ` (${detail})`}`);
  return ok;
}

const sha256 = (buf) => crypto.createHash('sha256').update(buf).digest('hex');

// Rejects after STEP_TIMEOUT_MS so a hung tunnel is a failed check, not a hung test.
function withDeadline(promise, what) {
  let timer;
  const deadline = new Promise((_, reject) => {
    timer = setTimeout(
        () => reject(new Error(`timed out after ${STEP_TIMEOUT_MS} ms: ${what}`)), STEP_TIMEOUT_MS);
  });
  return Promise.race([promise, deadline]).finally(() => clearTimeout(timer));
}

// The app behind the tunnel: echoes every byte, and when it sees EOF (the client's half-close
// arriving as a TCP FIN) it writes TRAILER and only then closes its side. A tunnel that turns
// half-close into a full close loses TRAILER; one that drops FIN never lets the stream end.
function startEchoApp() {
  const app = {eofSeen: 0, connections: 0};
  app.server = net.createServer({allowHalfOpen: true}, (socket) => {
    app.connections++;
    app.lastPeer = `${socket.remoteAddress}:${socket.remotePort}`;
    socket.on('data', (chunk) => socket.write(chunk));
    socket.on('end', () => {
      app.eofSeen++;
      socket.end(TRAILER);
    });
    socket.on('error', () => {});
  });
  return new Promise((resolve, reject) => {
    app.server.once('error', reject);
    app.server.listen(0, POD_IP, () => {
      app.port = app.server.address().port;
      resolve(app);
    });
  });
}

// A port on POD_IP with nothing listening: bind port 0, note it, close it. The address is unique
// to this run, so nothing else can grab the port in between.
function closedPort() {
  return new Promise((resolve, reject) => {
    const s = net.createServer();
    s.once('error', reject);
    s.listen(0, POD_IP, () => {
      const {port} = s.address();
      s.close(() => resolve(port));
    });
  });
}

// Opens an HBONE session. Resolves {session, socket, peer} once the TLS handshake completed and
// the HTTP/2 session is up; rejects with the TLS error otherwise.
function openSession(identity, observed) {
  return new Promise((resolve, reject) => {
    const session = http2.connect(`https://${POD_IP}:${HBONE_PORT}`, {
      ca: ROOT,
      cert: identity.cert,
      key: identity.key,
      // HBONE sends no SNI: the empty servername keeps Node from sending one.
      servername: '',
      ALPNProtocols: ['h2'],
      minVersion: 'TLSv1.2',  // offer 1.2 too: the server must be the one that picks 1.3
      // The chain is verified against ROOT by Node (rejectUnauthorized defaults to true); the
      // identity is the URI SAN, not a host name.
      checkServerIdentity: (_host, cert) => {
        observed.serverSan = cert.subjectaltname;
        observed.serverCurve = cert.nistCurve || cert.asn1Curve;
        if (cert.subjectaltname !== `URI:${SERVER_SAN}`) {
          return new Error(`server SAN is '${cert.subjectaltname}', want 'URI:${SERVER_SAN}'`);
        }
        return undefined;
      },
    });
    session.once('error', reject);
    session.once('connect', (s, socket) => resolve({session, socket}));
  });
}

// Sends one CONNECT; resolves with {status, stream} once response headers arrived.
function connectStream(session, authority) {
  return new Promise((resolve, reject) => {
    const stream = session.request({':method': 'CONNECT', ':authority': authority});
    stream.once('response', (headers) => resolve({status: headers[':status'], stream}));
    stream.once('error', reject);
    stream.once(
        'close',
        () => reject(new Error(`stream closed without a response (code ${stream.rstCode})`)));
  });
}

async function echoThroughTunnel(session, app) {
  const authority = `${POD_IP}:${app.port}`;
  const {status, stream} =
      await withDeadline(connectStream(session, authority), `CONNECT ${authority}`);
  if (!check(status === 200, `CONNECT ${authority} is answered 200`, `got ${status}`)) {
    stream.close();
    return;
  }
  const payload = crypto.randomBytes(PAYLOAD_BYTES);
  const received = [];
  const ended = new Promise((resolve, reject) => {
    stream.on('data', (chunk) => received.push(chunk));
    stream.once('end', resolve);
    stream.once('error', reject);
  });
  const eofBefore = app.eofSeen;
  stream.write(payload);
  stream.end();  // half-close: our side is done, the app's reply must still arrive
  let streamEnded = true;
  try {
    await withDeadline(ended, 'echo of 1 MiB and the end of the stream');
  } catch (err) {
    streamEnded = false;
    console.log(`  (${err.message})`);
    stream.close();
  }
  check(streamEnded, 'the stream ends after the app closes its side');
  const all = Buffer.concat(received);
  const echoed = all.subarray(0, Math.min(all.length, PAYLOAD_BYTES));
  const tail = all.subarray(Math.min(all.length, PAYLOAD_BYTES));
  check(
      all.length >= PAYLOAD_BYTES, `received ${PAYLOAD_BYTES} echoed bytes`,
      `got ${all.length} bytes in total`);
  check(
      sha256(echoed) === sha256(payload), 'echoed bytes are unchanged (sha256)',
      `sent ${sha256(payload).slice(0, 16)}…, received ${sha256(echoed).slice(0, 16)}…`);
  check(
      app.eofSeen === eofBefore + 1, 'client end() reached the app as EOF (half-close)',
      `app saw ${app.eofSeen - eofBefore} EOF(s)`);
  check(
      tail.equals(TRAILER), 'app data written after the client half-close still arrives',
      `got ${JSON.stringify(tail.toString('latin1').slice(0, 64))}`);
  console.log(`  (the app saw the tunnel connect from ${app.lastPeer})`);
}

async function expectStatus(session, authority, want, why) {
  try {
    const {status, stream} =
        await withDeadline(connectStream(session, authority), `CONNECT ${authority}`);
    stream.close();
    check(status === want, `CONNECT ${authority} is answered ${want} (${why})`, `got ${status}`);
  } catch (err) {
    check(false, `CONNECT ${authority} is answered ${want} (${why})`, err.message);
  }
}

// TLS 1.3 lets the client finish its handshake before the server has judged the client
// certificate, so a refusal shows up as an alert right after 'connect' (Node reports it on the
// socket and on open streams). The connection must end with that alert and a CONNECT sent on it
// must never be answered.
async function expectRefused(identity, what, wantAlert) {
  const observed = {};
  let session;
  let outcome;
  try {
    const opened = await withDeadline(openSession(identity, observed), `handshake (${what})`);
    session = opened.session;
    const ended = new Promise((resolve) => {
      opened.socket.once('error', (err) => resolve({error: err}));
      session.once('error', (err) => resolve({error: err}));
      session.once('close', () => resolve({error: new Error('session closed without an error')}));
      connectStream(session, `${POD_IP}:1`)
          .then((r) => resolve({status: r.status}), (err) => resolve({error: err}));
    });
    outcome = await withDeadline(ended, `refusal (${what})`);
  } catch (err) {
    outcome = {error: err};
  } finally {
    if (session) session.destroy();
  }
  if (outcome.status !== undefined) {
    check(false, `${what} is refused`, `a CONNECT was answered ${outcome.status}`);
    return;
  }
  const message = `${outcome.error.code || ''} ${outcome.error.message}`.trim();
  check(
      wantAlert.test(message), `${what} is refused with a TLS alert from the server`,
      message.split('\n')[0]);
}

async function main() {
  const app = await startEchoApp();
  console.log(`echo app on ${POD_IP}:${app.port}; HBONE at ${POD_IP}:${HBONE_PORT}`);
  let session;
  try {
    const observed = {};
    const opened = await withDeadline(openSession(CLIENT, observed), 'mTLS handshake');
    session = opened.session;
    const {socket} = opened;
    check(true, 'mTLS handshake with a certificate from the ztunnel CA succeeds');
    check(socket.getProtocol() === 'TLSv1.3', 'TLS version is 1.3', socket.getProtocol());
    check(socket.alpnProtocol === 'h2', 'ALPN protocol is h2', socket.alpnProtocol);
    const cipher = socket.getCipher().standardName;
    check(
        ['TLS_AES_128_GCM_SHA256', 'TLS_AES_256_GCM_SHA384'].includes(cipher),
        'cipher suite is AES-GCM', cipher);
    check(
        socket.authorized === true, 'server chain verifies against the ztunnel root',
        socket.authorizationError || 'authorized');
    check(
        observed.serverSan === `URI:${SERVER_SAN}`, `server identity is ${SERVER_SAN}`,
        observed.serverSan);
    check(
        observed.serverCurve === 'P-256' || observed.serverCurve === 'prime256v1',
        'server key is ECDSA P-256', observed.serverCurve);

    await echoThroughTunnel(session, app);
    await expectStatus(session, 'not-an-ip:80', 400, 'malformed authority');
    await expectStatus(
        session, `${OTHER_IP}:${app.port}`, 400, 'address that is not this workload');
    const port = await closedPort();
    await expectStatus(session, `${POD_IP}:${port}`, 503, 'nothing listening on the app port');
    // The same session still carries a good tunnel after the refusals above.
    const {status, stream} = await withDeadline(
        connectStream(session, `${POD_IP}:${app.port}`), 'CONNECT after refusals');
    stream.close();
    check(status === 200, 'the session still opens tunnels after 400/503 answers', `got ${status}`);
  } catch (err) {
    check(false, 'HBONE session with the ztunnel CA certificate', err.message);
  } finally {
    if (session) session.destroy();
  }

  // Only an alert sent by the server counts: a local verification failure would also be an
  // error, but it would say nothing about the ztunnel.
  await expectRefused(
      FOREIGN, 'client certificate from a foreign CA',
      /ALERT_(UNKNOWN_CA|BAD_CERTIFICATE|CERTIFICATE_UNKNOWN|DECRYPT_ERROR)/);
  await expectRefused(
      {}, 'client without a certificate', /ALERT_(CERTIFICATE_REQUIRED|HANDSHAKE_FAILURE)/);

  console.log(`checks: ${checks}, failed: ${failures}`);
  // Exit explicitly: a misbehaving peer can leave sockets open that would keep Node alive.
  process.exit(failures === 0 && checks > 0 ? 0 : 1);
}

main().catch((err) => {
  console.log(`FAIL: unexpected error: ${err.stack || err}`);
  process.exit(1);
});
