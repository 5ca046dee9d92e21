import { randomBytes } from 'node:crypto';
import {
  closeSync,
  cpSync,
  existsSync,
  constants as FS,
  lstatSync,
  mkdirSync,
  openSync,
  readdirSync,
  readFileSync,
  realpathSync,
  rmSync,
  statSync,
} from 'node:fs';
import { basename, dirname, isAbsolute, join, posix, relative, resolve, sep } from 'node:path';
import { defaultSandboxDir, defaultStateDir } from '../config/index.ts';
import {
  ALLOWLIST_FILE,
  type Allowlist,
  CertificateAuthority,
  fileNetworkLog,
  openTaskNetwork,
  ProxyServer,
  parseAllowlist,
  type TaskNetwork,
} from '../proxy/index.ts';
import {
  CA_CERT,
  containerFolders,
  contextHash,
  ENTRYPOINT,
  ENTRYPOINT_FILE,
  ensurePodmanEnv,
  IMAGE_REPO,
  ImageCache,
  openSandboxNetns,
  parseSandboxFile,
  removeLeftContainerFiles,
  removeOrphans,
  runContainer,
  runPodman,
  type SandboxFile,
  type SandboxMount,
  sandboxFileSchema,
} from '../sandbox/index.ts';
import { ErrandError } from '../util/errors.ts';
import { ownedName, removeLeftBehind } from '../util/owned-names.ts';
import {
  type Checkout,
  checkoutDefaultCommit,
  checkoutHasCommit,
  FULL_OBJECT_ID,
  findCheckout,
  MAX_TRUSTED_FILE_BYTES,
  TrustedTree,
} from '../workspace/index.ts';

/** `errand sandbox run` exits with the command's status, or one of these. */
export const SANDBOX_EXIT = { timeout: 124, setup: 125 } as const;

/** The option that names the commit `.errand/` is read from (`errand sandbox run|image`). */
export const TRUSTED_COMMIT_OPTION = '--trusted-commit';

export interface SandboxRunOptions {
  /** A full commit id to read `.errand/` from; undefined: the checkout's default branch. */
  trustedCommit?: string;
  image?: string;
  containerfile?: string;
  config?: string;
  allowlist?: string;
  mount: string[];
  env: string[];
  timeout?: number;
  networkLog?: string;
  resolve: string[];
  upstreamCa?: string;
  command: string[];
  cwd: string;
  processEnv: NodeJS.ProcessEnv;
}

/** Label of containers started by the CLI; exited ones left by a killed CLI are removed. */
const CLI_INSTANCE = 'cli';
const DEFAULT_TIMEOUT_SECONDS = 3600;

function setup(message: string): ErrandError {
  return new ErrandError('sandbox_setup', message);
}

/**
 * A new folder for an image build context under the state folder (never the system temp
 * folder); those a killed CLI left are deleted first.
 */
function buildContext(state: string): string {
  const root = join(state, 'build');
  mkdirSync(root, { recursive: true, mode: 0o700 });
  removeLeftBehind(root);
  const dir = join(root, ownedName());
  mkdirSync(dir, { mode: 0o700 });
  return dir;
}

/** Whether `p` is `dir` or lies below it (both absolute, normalized). */
function within(dir: string, p: string): boolean {
  const rel = relative(dir, p);
  return rel === '' || (rel !== '..' && !rel.startsWith(`..${sep}`) && !isAbsolute(rel));
}

/**
 * `p` resolved against the working folder, after making sure that a path inside that
 * folder does not lead out of it through a link: the folder is /workspace, writable, so an
 * earlier sandboxed step may have replaced any part of it with a link to a host path for
 * this run to follow. Checks the nearest part of the path that exists; `what` names the
 * option in the error.
 */
export function confinedPath(cwd: string, p: string, what: string): string {
  const path = resolve(cwd, p);
  if (!within(resolve(cwd), path)) return path;
  let existing = path;
  while (!existsSync(existing) && existing !== dirname(existing)) existing = dirname(existing);
  if (!within(realpathSync(cwd), realpathSync(existing)))
    throw setup(
      `${what}: ${relative(resolve(cwd), existing) || '.'} leads out of the working folder through a symbolic link, which a command in the sandbox could have made; remove the link or name a path outside the working folder`,
    );
  return path;
}

export function parseMount(spec: string, cwd: string): SandboxMount {
  const parts = spec.split(':');
  if (
    parts.length < 2 ||
    parts.length > 3 ||
    (parts[2] !== undefined && parts[2] !== 'ro' && parts[2] !== 'rw')
  ) {
    throw setup(`--mount ${spec}: expected SRC:DST or SRC:DST:ro`);
  }
  const source = resolve(cwd, parts[0]!);
  const target = parts[1]!;
  if (!existsSync(source)) throw setup(`--mount ${spec}: ${source} does not exist`);
  if (!isAbsolute(target)) throw setup(`--mount ${spec}: the destination must be an absolute path`);
  confinedPath(cwd, source, `--mount ${spec}`);
  // podman gets the path with its links resolved: the one just checked.
  return { source: realpathSync(source), target, readOnly: parts[2] === 'ro' };
}

export function parseEnv(specs: string[], processEnv: NodeJS.ProcessEnv): Record<string, string> {
  const out: Record<string, string> = {};
  for (const spec of specs) {
    const eq = spec.indexOf('=');
    const name = eq < 0 ? spec : spec.slice(0, eq);
    if (!/^[A-Za-z_][A-Za-z0-9_]*$/.test(name)) throw setup(`--env ${name}: not a variable name`);
    const value = eq < 0 ? processEnv[name] : spec.slice(eq + 1);
    if (value === undefined)
      throw setup(`--env ${name}: not set in this environment; use --env ${name}=VALUE`);
    out[name] = value;
  }
  return out;
}

const WORKSPACE = '/workspace';

/** Where `.errand/` comes from, and what keeps it so while the command runs. */
interface TrustedSource {
  read(path: string): Promise<Buffer | undefined>;
  extract(dir: string, dest: string): Promise<boolean>;
  /** Names the source in messages: `main at 1a2b3c4d5e6f`, `the working folder`. */
  from(): Promise<string>;
  /** Read-only mounts over the checkout's git folder where it lies inside /workspace. */
  mounts: SandboxMount[];
  /** The checkout's `.git` and git folders (real paths), which no mount may make writable. */
  gitPaths: string[];
}

/**
 * `.errand/` of one commit of the checkout around `cwd`: `--trusted-commit`, else the
 * default branch (resolved at the first read, so a run that reads nothing from it needs
 * none). Outside any checkout, the files on disk, said on stderr.
 */
async function trustedSource(cwd: string, trustedCommit?: string): Promise<TrustedSource> {
  const pinned = trustedCommit?.toLowerCase();
  if (pinned !== undefined && !FULL_OBJECT_ID.test(pinned))
    throw setup(
      `${TRUSTED_COMMIT_OPTION} ${trustedCommit}: expected a full commit id (40 or 64 hex digits), not a ref name or an abbreviation`,
    );
  const checkout = await findCheckout(cwd);
  if (!checkout) {
    if (pinned) throw setup(`${TRUSTED_COMMIT_OPTION} needs a git checkout; ${cwd} is not in one`);
    return workTreeSource(cwd);
  }
  let tree: Promise<{ tree: TrustedTree; from: string }> | undefined;
  const trusted = () => {
    tree ??= trustedCommitOf(checkout, pinned).then(({ commit, from }) => ({
      tree: new TrustedTree(checkout.top, commit, basename(checkout.top)),
      from,
    }));
    return tree;
  };
  return {
    read: async (p) => (await trusted()).tree.readFile(p),
    extract: async (d, dest) => (await trusted()).tree.extractDir(d, dest),
    from: async () => (await trusted()).from,
    mounts: gitMounts(checkout, cwd),
    gitPaths: [...new Set([checkout.dotGit, ...checkout.gitDirs])].map((p) => realpathSync(p)),
  };
}

async function trustedCommitOf(
  checkout: Checkout,
  pinned: string | undefined,
): Promise<{ commit: string; from: string }> {
  if (pinned) {
    if (!(await checkoutHasCommit(checkout, pinned)))
      throw setup(
        `${TRUSTED_COMMIT_OPTION} ${pinned}: no such commit in ${checkout.top} (fetch it, e.g. git fetch origin ${pinned}, or check out with the full history)`,
      );
    return { commit: pinned, from: `commit ${pinned.slice(0, 12)}` };
  }
  // A step could have made this repository in a subfolder (or this is a submodule): its
  // branches say nothing; only a commit id named from outside does.
  if (checkout.nestedIn)
    throw setup(
      `${checkout.top} is a git checkout inside another folder with a .git (${checkout.nestedIn}), so its branches cannot be trusted; pass ${TRUSTED_COMMIT_OPTION} SHA (in CI the base commit)`,
    );
  const def = await checkoutDefaultCommit(checkout);
  if (!def)
    throw setup(
      `${checkout.top} has no default branch to read .errand/ from (no origin/HEAD, main or master); pass ${TRUSTED_COMMIT_OPTION} SHA (in CI the base commit), or run: git remote set-head origin BRANCH`,
    );
  return { commit: def.commit, from: `${def.branch} at ${def.commit.slice(0, 12)}` };
}

function workTreeSource(cwd: string): TrustedSource {
  let said = false;
  const say = () => {
    if (!said)
      process.stderr.write(
        `errand: ${cwd} is not in a git checkout: .errand/ is read from the working folder, which commands in the sandbox can change\n`,
      );
    said = true;
  };
  return {
    read: async (p) => {
      say();
      if (!existsSync(join(cwd, p))) return undefined;
      // A command of an earlier run may have left a file of any size here.
      const size = statSync(join(cwd, p)).size;
      if (size > MAX_TRUSTED_FILE_BYTES)
        throw setup(
          `${p} is ${size} bytes, more than the 1 MiB errand reads of it; make it smaller`,
        );
      return readFileSync(join(cwd, p));
    },
    extract: async (d, dest) => {
      say();
      if (!existsSync(join(cwd, d)) || !statSync(join(cwd, d)).isDirectory()) return false;
      cpSync(join(cwd, d), dest, { recursive: true });
      return true;
    },
    from: async () => 'the working folder',
    mounts: [],
    gitPaths: [],
  };
}

/**
 * The checkout's `.git` (a folder, or the file naming it) and its git folders, wherever
 * they lie inside the folder mounted at /workspace, mounted again read-only over
 * themselves: a step cannot move a ref, add a replacement object or change the config
 * that the next step's trusted read would see. From a subfolder the checkout's `.git`
 * is outside /workspace and not mounted at all.
 */
function gitMounts(checkout: Checkout, cwd: string): SandboxMount[] {
  const real = realpathSync(cwd);
  const inside = (p: string) => {
    const rel = relative(real, p);
    const outside = rel === '' || rel === '..' || rel.startsWith(`..${sep}`) || isAbsolute(rel);
    return outside ? undefined : rel;
  };
  const paths = [...new Set([checkout.dotGit, ...checkout.gitDirs])].filter(
    (p) => inside(p) !== undefined,
  );
  for (const dir of checkout.gitDirs) refuseRefLinks(dir);
  const outermost = paths.filter((p) => !paths.some((q) => q !== p && p.startsWith(q + sep)));
  return outermost.map((p) => {
    // A link in a read-write folder could be pointed elsewhere; the mount would not follow.
    if (lstatSync(p).isSymbolicLink())
      throw setup(
        `${p} is a symbolic link, which a command in the sandbox could repoint; replace it with the folder it names`,
      );
    return {
      source: p,
      target: posix.join(WORKSPACE, ...inside(p)!.split(sep)),
      readOnly: true,
    };
  });
}

/** What in a git folder decides which commit a branch names (objects are checked by id). */
const REF_PATHS = ['HEAD', 'config', 'commondir', 'packed-refs', 'refs', 'reftable'];

/**
 * Refuses a git folder whose refs or config are links: the read-only mount over the folder
 * covers the link, not what it leads to, which may be a folder of the work tree that a
 * command in the sandbox can write (and so move the default branch for the next run).
 */
function refuseRefLinks(gitDir: string): void {
  const check = (p: string) => {
    const st = lstatSync(p, { throwIfNoEntry: false });
    if (!st) return;
    if (st.isSymbolicLink())
      throw setup(
        `${p} is a symbolic link, which may lead where a command in the sandbox can write; replace it with what it names`,
      );
    if (st.isDirectory()) for (const e of readdirSync(p)) check(join(p, e));
  };
  for (const name of REF_PATHS) check(join(gitDir, name));
}

function readSandboxFile(text: string, where: string, env: NodeJS.ProcessEnv): SandboxFile {
  const parsed = parseSandboxFile(text, { env });
  if (!parsed.ok) throw setup(`${where}: ${parsed.problem}`);
  return parsed.file;
}

/**
 * Runs a command in the sandbox with the current folder at /workspace. Returns the exit
 * status to use: the command's own, 124 on timeout, 125 when the sandbox could not be set up.
 */
export async function sandboxRun(o: SandboxRunOptions): Promise<number> {
  if (o.command.length === 0)
    throw setup('no command given; put it after --, e.g. errand sandbox run -- npm test');
  if (o.image && o.containerfile) throw setup('use --image or --containerfile, not both');
  const source = await trustedSource(o.cwd, o.trustedCommit);
  let settings: SandboxFile = sandboxFileSchema.parse({});
  if (o.config) {
    const path = resolvePath(o.cwd, o.config);
    if (!existsSync(path)) throw setup(`--config ${o.config}: no such file`);
    settings = readSandboxFile(readFileSync(path, 'utf8'), path, o.processEnv);
  } else {
    const text = await source.read('.errand/sandbox.yaml');
    if (text)
      settings = readSandboxFile(
        text.toString('utf8'),
        `.errand/sandbox.yaml (${await source.from()})`,
        o.processEnv,
      );
  }
  const env: Record<string, string> = { ...settings.env, ...parseEnv(o.env, o.processEnv) };
  const mounts: SandboxMount[] = [
    { source: o.cwd, target: WORKSPACE },
    ...source.mounts,
    ...o.mount.map((spec) => {
      const m = parseMount(spec, o.cwd);
      // A second, writable view of .git would undo its read-only mount.
      const git = m.readOnly ? undefined : source.gitPaths.find((g) => within(m.source, g));
      if (git)
        throw setup(
          `--mount ${spec}: ${m.source} holds the checkout's git folder (${git}), which would be writable in the sandbox; mount it read-only (${spec}:ro) or a folder that does not hold it`,
        );
      return m;
    }),
  ];
  const timeoutSeconds = o.timeout ?? settings.limits.timeout_seconds ?? DEFAULT_TIMEOUT_SECONDS;
  const allowlist = await loadAllowlist(o, source);
  const mappings = parseResolve(o.resolve);
  const upstreamCa = o.upstreamCa ? readUpstreamCa(resolvePath(o.cwd, o.upstreamCa)) : undefined;
  // Opened now, before any command runs: a link the command makes later changes nothing.
  const networkLog = o.networkLog ? openNetworkLog(o.cwd, o.networkLog) : undefined;

  const state = defaultStateDir(o.processEnv);
  const podmanEnv = await ensurePodmanEnv(state, o.processEnv);
  // Containers a killed `errand sandbox run` left behind; running ones belong to others.
  await removeOrphans(CLI_INSTANCE, podmanEnv, { exitedOnly: true });
  // The container mounts copies of errand's files from the sandbox folder, not the state
  // folder: its mount table shows where each mount comes from.
  const folders = containerFolders(state, defaultSandboxDir(o.processEnv));
  removeLeftContainerFiles(folders);
  const image = await resolveImage(o, source, podmanEnv, state);

  // The network: errand's proxy on the host, reached only through a private namespace.
  const ca = await CertificateAuthority.loadOrCreate(join(state, 'proxy', 'ca'));
  const proxy = new ProxyServer({ ca });
  const taskId = `run-${randomBytes(5).toString('hex')}`;
  let net: TaskNetwork;
  try {
    net = await openTaskNetwork(
      proxy,
      {
        taskId,
        allowlist,
        secrets: Object.entries(settings.masked_secrets).map(([name, m]) => ({
          name,
          real: m.value,
          hosts: m.hosts,
          headers: m.headers,
        })),
        aws: Object.entries(settings.aws_credentials).map(([name, a]) => ({
          name,
          accessKeyId: a.access_key_id,
          secretAccessKey: a.secret_access_key,
          sessionToken: a.session_token,
          hosts: a.hosts,
        })),
        resolve: mappings,
        upstreamCa,
        log: networkLog === undefined ? () => undefined : fileNetworkLog(networkLog),
      },
      (accept) => openSandboxNetns(podmanEnv, accept),
    );
  } catch (e) {
    throw setup((e as Error).message);
  }
  Object.assign(env, net.env);

  const controller = new AbortController();
  const onSignal = () => controller.abort();
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    const r = await runContainer(
      {
        image,
        name: `errand-${taskId}`,
        command: [ENTRYPOINT, ...o.command],
        mounts,
        files: [ENTRYPOINT_FILE, { target: CA_CERT, content: ca.certPem }],
        env,
        limits: {
          memory: settings.limits.memory,
          cpus: settings.limits.cpus,
          pids: settings.limits.pids,
        },
        network: { kind: 'netns', ...net.netns },
        labels: { 'errand.instance': CLI_INSTANCE },
        timeoutMs: timeoutSeconds * 1000,
        stdin: process.stdin.isTTY ? undefined : process.stdin,
        signal: controller.signal,
        onStdout: (c) => process.stdout.write(c),
        onStderr: (c) => process.stderr.write(c),
      },
      podmanEnv,
      folders,
    );
    switch (r.outcome) {
      case 'timeout':
        process.stderr.write(
          `errand: the command ran longer than ${timeoutSeconds} s and was killed\n`,
        );
        return SANDBOX_EXIT.timeout;
      case 'failed_to_start':
        throw setup(
          `the container did not start: ${r.stderrTail.split('\n').pop() ?? 'no detail'}`,
        );
      case 'oom':
        process.stderr.write(
          `errand: the command was killed at its memory limit (${settings.limits.memory ?? 'default'})\n`,
        );
        return r.exitCode ?? 137;
      case 'stopped':
        return 130;
      default:
        return r.exitCode ?? 1;
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    await net.close();
    if (networkLog !== undefined) closeSync(networkLog);
  }
}

/** The --network-log file, open for appending; never through a link (see confinedPath). */
function openNetworkLog(cwd: string, p: string): number {
  const what = `--network-log ${p}`;
  const path = confinedPath(cwd, p, what);
  mkdirSync(dirname(path), { recursive: true });
  try {
    return openSync(path, FS.O_WRONLY | FS.O_APPEND | FS.O_CREAT | FS.O_NOFOLLOW, 0o600);
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === 'ELOOP')
      throw setup(
        `${what}: ${path} is a symbolic link, which a command in the sandbox could have made; remove it`,
      );
    throw setup(`${what}: ${(e as Error).message}`);
  }
}

async function resolveImage(
  o: SandboxRunOptions,
  source: TrustedSource,
  podmanEnv: NodeJS.ProcessEnv,
  state: string,
): Promise<string> {
  if (o.image) {
    const exists = await runPodman(['image', 'exists', o.image], {
      env: podmanEnv,
      timeoutMs: 30_000,
    });
    if (exists.code !== 0)
      throw setup(
        `image ${o.image} is not available locally (load it with errand sandbox image load DIR, or build it)`,
      );
    return o.image;
  }
  const cache = new ImageCache({ podmanEnv, maxAgeMs: 7 * 86_400_000 });
  let context: string;
  let temp: string | undefined;
  if (o.containerfile) {
    const file = resolve(o.cwd, o.containerfile);
    if (!existsSync(file)) throw setup(`--containerfile ${o.containerfile}: no such file`);
    context = dirname(file);
  } else {
    temp = buildContext(state);
    if (!(await source.extract('.errand/container', temp))) {
      rmSync(temp, { recursive: true, force: true });
      throw setup(
        `no image: pass --image or --containerfile, or add .errand/container/Containerfile (looked in ${await source.from()})`,
      );
    }
    context = temp;
  }
  try {
    const built = await cache.ensure(context);
    if (!built.ok) {
      process.stderr.write(built.log);
      throw setup(`building the sandbox image failed: ${built.reason}`);
    }
    return built.image;
  } finally {
    if (temp) rmSync(temp, { recursive: true, force: true });
  }
}

/** `errand sandbox image hash|save|load`: lets CI cache the image of `.errand/container/`. */
export async function sandboxImage(
  action: 'hash' | 'save' | 'load',
  dir: string | undefined,
  cwd: string,
  processEnv: NodeJS.ProcessEnv,
  opts: { trustedCommit?: string } = {},
): Promise<string> {
  const state = defaultStateDir(processEnv);
  const podmanEnv = await ensurePodmanEnv(state, processEnv);
  if (action === 'load') {
    if (!dir) throw setup('usage: errand sandbox image load DIR');
    const tars = existsSync(dir) ? readdirSync(dir).filter((f) => f.endsWith('.tar')) : [];
    if (tars.length === 0) throw setup(`no saved images (*.tar) in ${dir}`);
    for (const t of tars) {
      const r = await runPodman(['load', '--quiet', '--input', join(dir, t)], {
        env: podmanEnv,
        timeoutMs: 600_000,
      });
      if (r.code !== 0) throw setup(`podman load ${t} failed: ${r.stderr.trim()}`);
    }
    return `loaded ${tars.length} image${tars.length === 1 ? '' : 's'} from ${dir}`;
  }
  const source = await trustedSource(cwd, opts.trustedCommit);
  const temp = buildContext(state);
  try {
    if (!(await source.extract('.errand/container', temp)))
      throw setup(`no .errand/container/ in ${await source.from()}`);
    const hash = contextHash(temp);
    if (action === 'hash') return hash;
    if (!dir) throw setup('usage: errand sandbox image save DIR');
    const built = await new ImageCache({ podmanEnv, maxAgeMs: 7 * 86_400_000 }).ensure(temp);
    if (!built.ok) throw setup(`building the sandbox image failed: ${built.reason}`);
    mkdirSync(dir, { recursive: true });
    const out = join(dir, `${hash.slice(0, 16)}.tar`);
    rmSync(out, { force: true });
    const r = await runPodman(
      ['save', '--quiet', '--output', out, `${IMAGE_REPO}:${hash.slice(0, 16)}`],
      { env: podmanEnv, timeoutMs: 600_000 },
    );
    if (r.code !== 0) throw setup(`podman save failed: ${r.stderr.trim()}`);
    return out;
  } finally {
    rmSync(temp, { recursive: true, force: true });
  }
}

function resolvePath(cwd: string, p: string): string {
  return resolve(cwd, p);
}

/** --allowlist FILE, else the default branch's allowlist; none means nothing may leave. */
async function loadAllowlist(o: SandboxRunOptions, source: TrustedSource): Promise<Allowlist> {
  let text: string | undefined;
  let where: string;
  if (o.allowlist) {
    where = resolvePath(o.cwd, o.allowlist);
    if (!existsSync(where)) throw setup(`--allowlist ${o.allowlist}: no such file`);
    text = readFileSync(where, 'utf8');
  } else {
    text = (await source.read(ALLOWLIST_FILE))?.toString('utf8');
    where = `${ALLOWLIST_FILE} (${await source.from()})`;
  }
  if (text === undefined) return { allow: [] };
  const parsed = parseAllowlist(text);
  if (!parsed.ok) throw setup(`${where}: ${parsed.problem}`);
  return parsed.allowlist;
}

/** --resolve HOST=ADDR[:PORT], the operator's explicit upstream mappings. */
export function parseResolve(specs: string[]): Record<string, string> {
  const out: Record<string, string> = {};
  for (const spec of specs) {
    const m = /^([A-Za-z0-9.-]+)=(\[[0-9A-Fa-f:.]+\]|[0-9A-Za-z.-]+)(:\d{1,5})?$/.exec(spec);
    if (!m)
      throw setup(
        `--resolve ${spec}: expected HOST=ADDRESS[:PORT], e.g. git.internal=10.1.2.3:8443`,
      );
    out[m[1]!.toLowerCase()] = `${m[2]}${m[3] ?? ''}`;
  }
  return out;
}

function readUpstreamCa(path: string): string {
  if (!existsSync(path)) throw setup(`--upstream-ca ${path}: no such file`);
  const pem = readFileSync(path, 'utf8');
  if (!pem.includes('-----BEGIN CERTIFICATE-----'))
    throw setup(`--upstream-ca ${path}: not a PEM certificate`);
  return pem;
}
