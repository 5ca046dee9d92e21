import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import type { Socket } from 'node:net';
import { describe, it } from 'node:test';
import { promisify } from 'node:util';
import { SANDBOX_ADDRESS, startSandboxNetns, WarmNetns } from '../../src/sandbox/index.ts';
import { isAlive } from '../harness/process-alive.ts';

const run = promisify(execFile);

// A client inside the namespace: connects to the relay, sends a line, prints what comes back.
const CLIENT = `
const s = require('node:net').connect(Number(process.argv[1]), process.argv[2]);
s.on('connect', () => s.write('ping\\n'));
let got = '';
s.on('data', (d) => { got += d; });
s.on('close', () => { console.log(JSON.stringify(got)); });
s.on('error', () => undefined);
`;

async function fromInside(path: string, port: number): Promise<string> {
  const { stdout } = await run('nsenter', [
    `--net=${path}`,
    process.execPath,
    '-e',
    CLIENT,
    String(port),
    SANDBOX_ADDRESS,
  ]);
  return JSON.parse(stdout) as string;
}

const pidOf = (path: string) => Number(/\/proc\/(\d+)\//.exec(path)![1]);

/** Answers each handed-over socket with its port and first line. */
function echo(seen: number[]) {
  return (socket: Socket, port: 80 | 443) => {
    seen.push(port);
    socket.once('data', (d) => socket.end(`${port}:${d}`));
  };
}

describe('sandbox networks', { skip: process.getuid?.() !== 0 && 'needs root (nsenter)' }, () => {
  it('hands the container side of each connection, unread, to the session that took the network', async () => {
    const warm = new WarmNetns(process.env);
    const seen: number[] = [];
    const ns = await warm.take(echo(seen));
    try {
      assert.equal(await fromInside(ns.path, 443), '443:ping\n');
      assert.equal(await fromInside(ns.path, 80), '80:ping\n');
      assert.deepEqual(seen, [443, 80]);
    } finally {
      await ns.close();
      await warm.close();
    }
  });

  it('gives each task a network of its own and ends the relay of a closed one', async () => {
    const warm = new WarmNetns(process.env);
    const first: number[] = [];
    const second: number[] = [];
    const a = await warm.take(echo(first));
    await a.close();
    assert.equal(isAlive(pidOf(a.path)), false, 'the closed network is gone');
    const b = await warm.take(echo(second));
    try {
      assert.notEqual(b.path, a.path);
      assert.equal(await fromInside(b.path, 443), '443:ping\n');
      assert.deepEqual(first, []);
      assert.deepEqual(second, [443]);
    } finally {
      await b.close();
      await warm.close();
    }
  });

  it('closes connections that arrive before a session took the network', async () => {
    const ns = await startSandboxNetns(process.env);
    try {
      assert.equal(await fromInside(ns.path, 443), '');
    } finally {
      await ns.close();
    }
  });
});
