// cli: the m1node command (commander). Composition level: may import any module.
// Public API: main(argv).
import { readFile, writeFile, access } from 'node:fs/promises'
import { join } from 'node:path'
import { Command, Option } from 'commander'
import { loadConfig, expandPath, exampleToml, envName, type M1Config } from '../config/index.js'
import { ConfigError, InvalidInputError } from '../core/index.js'
import { M1Node } from '../node.js'
import { VERSION } from '../version.js'
import { FILES, defaultNodeName, ensureDataDir, loadIdentity, loadToken, readDaemonInfo, readTokenIfAny } from '../datadir.js'
import { normalizeLogin, checkE164, parseTrunkUser, type TrunkKind } from '../users/index.js'
import { openAdmin, type Admin } from './control-client.js'
import { CliError, EXIT, fail } from './exit.js'
import { readPassword } from './prompt.js'
import { banner } from './banner.js'

interface Common { data?: string, config?: string }

/** Resolves the data dir and loads the config: defaults < file < M1NODE_* env < flags. */
async function resolve (opts: Common, overrides: Record<string, unknown> = {}): Promise<{ config: M1Config, dataDir: string }> {
  const env = process.env
  const dataFlag = opts.data ?? env[envName('node.data_dir')]
  let dataDir = expandPath(dataFlag ?? '~/.m1node')
  const configFile = opts.config != null ? expandPath(opts.config) : undefined
  let config = await loadConfig({ ...(configFile != null ? { file: configFile } : { defaultFile: join(dataDir, FILES.config) }), env, overrides: { ...overrides, ...(dataFlag != null ? { 'node.data_dir': dataFlag } : {}) } })
  if (dataFlag == null && configFile != null) {
    // the config file may name the data dir
    dataDir = expandPath(config.node.dataDir)
  }
  if (configFile == null && dataFlag == null && config.node.dataDir !== '~/.m1node') dataDir = expandPath(config.node.dataDir)
  config = config satisfies M1Config
  return { config, dataDir }
}

function common (cmd: Command): Command {
  return cmd
    .option('-d, --data <dir>', 'data directory (default ~/.m1node, or M1NODE_NODE_DATA_DIR)')
    .option('-c, --config <file>', 'config file (default <data>/config.toml when present)')
}

async function withAdmin<T> (opts: Common, fn: (admin: Admin) => Promise<T>): Promise<T> {
  const { config, dataDir } = await resolve(opts)
  const admin = await openAdmin(dataDir, config)
  try { return await fn(admin) } finally { await admin.close() }
}

/** A GET on the running daemon's control API (resolve, search and peers need the daemon's libp2p node). */
async function daemonCall (opts: Common, path: string): Promise<any> {
  const { dataDir } = await resolve(opts)
  const daemon = await readDaemonInfo(dataDir)
  const token = await readTokenIfAny(dataDir)
  if (daemon == null || token == null) throw new CliError('the daemon is not running (start it with m1node start)', EXIT.notRunning)
  let res: Response
  try {
    res = await fetch(`${daemon.url}/api${path}`, { headers: { authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(30_000) })
  } catch {
    throw new CliError('the daemon is not running (start it with m1node start)', EXIT.notRunning)
  }
  const text = await res.text()
  let data: any
  try { data = text !== '' ? JSON.parse(text) : {} } catch { data = { error: text } }
  if (res.ok) return data
  const message = String(data?.error ?? `HTTP ${res.status}`)
  throw new CliError(message, res.status === 400 ? EXIT.usage : EXIT.failure)
}

function checkLogin (login: string): string {
  return normalizeLogin(login)
}

export function buildProgram (): Command {
  const program = new Command('m1node')
    .description('m1node: a federated node for calls and messages between logins (SIP registrar today)')
    .version(VERSION)
    .exitOverride()
    .configureOutput({ writeErr: (s) => { if (!s.startsWith('error:')) process.stderr.write(s) } })
    .showHelpAfterError(false)

  common(program.command('init'))
    .description('create the data dir: node identity, control token and a config file')
    .option('--name <name>', 'node name (default: derived from the identity)')
    .option('--domain <domain>', 'SIP domain of the users (default: the node name)')
    .option('--force', 'overwrite an existing config file')
    .action(async (opts: Common & { name?: string, domain?: string, force?: boolean }) => {
      const overrides = { ...(opts.name != null ? { 'node.name': opts.name } : {}), ...(opts.domain != null ? { 'sip.domain': opts.domain } : {}) }
      const { config, dataDir } = await resolve(opts, overrides)
      await ensureDataDir(dataDir)
      const identity = await loadIdentity(dataDir)
      await loadToken(dataDir)
      const file = opts.config != null ? expandPath(opts.config) : join(dataDir, FILES.config)
      const exists = await access(file).then(() => true, () => false)
      if (exists && opts.force !== true) throw new CliError(`${file} exists (use --force to overwrite)`, EXIT.usage)
      const name = config.node.name !== '' ? config.node.name : defaultNodeName(identity)
      let text = exampleToml().replace(/^name = ""$/m, `name = ${JSON.stringify(name)}`)
      if (opts.domain != null) text = text.replace(/^domain = ""$/m, `domain = ${JSON.stringify(config.sip.domain)}`)
      await writeFile(file, text, { mode: 0o600 })
      process.stdout.write(`initialised ${dataDir}\n  node name  ${name}\n  peer id    ${identity.peerId}\n  config     ${file}\n`)
    })

  common(program.command('start'))
    .description('run the node in the foreground (SIGINT/SIGTERM stop it)')
    .option('-b, --bootstrap <multiaddr>', 'peer to join the network through, /ip4/.../tcp/.../p2p/<peer id> (repeatable; adds to p2p.bootstrap)', (v: string, prev: string[] = []) => [...prev, v])
    .option('--relay', 'volunteer as a relay for nodes behind NAT (sets relay.enabled)')
    .action(async (opts: Common & { bootstrap?: string[], relay?: boolean }) => {
      let { config, dataDir } = await resolve(opts)
      const flags: Record<string, unknown> = {}
      if (opts.bootstrap != null && opts.bootstrap.length > 0) flags['p2p.bootstrap'] = [...config.p2p.bootstrap, ...opts.bootstrap]
      if (opts.relay === true) flags['relay.enabled'] = true
      if (Object.keys(flags).length > 0) ({ config, dataDir } = await resolve(opts, flags))
      const node = new M1Node(config, dataDir)
      let stopping = false
      const stop = (signal: string): void => {
        if (stopping) return
        stopping = true
        node.logger.info({ signal }, 'stopping')
        node.stop().then(() => process.exit(0), (err: unknown) => { node.logger.error({ err }, 'stop failed'); process.exit(1) })
      }
      process.on('SIGINT', () => { stop('SIGINT') })
      process.on('SIGTERM', () => { stop('SIGTERM') })
      await node.start()
      process.stdout.write(banner(node.info()))
      await new Promise(() => {}) // runs until a signal
    })

  common(program.command('status'))
    .description('show whether the daemon runs, where it listens and what it holds')
    .option('--json', 'machine-readable output')
    .action(async (opts: Common & { json?: boolean }) => {
      await withAdmin(opts, async (admin) => {
        const status = await admin.status()
        if (status == null) {
          const users = (await admin.listUsers()).length
          if (opts.json === true) process.stdout.write(JSON.stringify({ running: false, users }) + '\n')
          else process.stdout.write(`not running (data dir holds ${users} users)\n`)
          throw new CliError('', EXIT.notRunning)
        }
        if (opts.json === true) { process.stdout.write(JSON.stringify({ running: true, ...status }) + '\n'); return }
        const s = status as any
        process.stdout.write([
          `running: ${String(s.name)} (m1node ${String(s.version)}), up ${String(s.uptimeSeconds)} s`,
          `  SIP domain     ${String(s.domain)}`,
          `  listening      ${(s.sip as any[]).filter(a => a.transport !== 'P2P').map(a => `${String(a.transport)} ${String(a.address)}:${String(a.port)}`).join(', ')}`,
          `  registrations  ${String(s.registrations)}`,
          `  peer id        ${String(s.peerId)}`,
          ...((s.upstream ?? []) as any[]).map(u => `  upstream       ${String(u.username)}@${String(u.server)}  ${String(u.state)}${u.expiresAt != null ? ` until ${new Date(u.expiresAt as number).toISOString()}` : ''}${u.lastError != null ? `  (${String(u.lastError)})` : ''}`),
          ''
        ].join('\n'))
      })
    })

  const user = program.command('user').description('manage users (logins)')
  common(user.command('add <login>'))
    .description('create a user; asks for the password when --password is left out')
    .option('-p, --password <password>', 'password (avoid on shared machines: it lands in shell history)')
    .option('-n, --name <display name>', 'display name')
    .option('--display <display name>', 'display name (same as --name)')
    .option('--listed', 'let directory search find this login (by its words and its display name)')
    .action(async (login: string, opts: Common & { password?: string, name?: string, display?: string, listed?: boolean }) => {
      const normalized = checkLogin(login)
      const password = opts.password ?? await readPassword(`password for ${normalized}: `, true)
      await withAdmin(opts, async (admin) => {
        const u = await admin.addUser(normalized, password, opts.display ?? opts.name, opts.listed === true)
        process.stdout.write(`added ${u.login}${admin.live ? '' : ' (daemon not running: written to the store)'}\n`)
      })
    })
  common(user.command('passwd <login>'))
    .description('change a user\'s password')
    .option('-p, --password <password>', 'new password')
    .action(async (login: string, opts: Common & { password?: string }) => {
      const normalized = checkLogin(login)
      const password = opts.password ?? await readPassword(`new password for ${normalized}: `, true)
      await withAdmin(opts, async (admin) => { await admin.setPassword(normalized, password) })
      process.stdout.write(`password of ${normalized} changed\n`)
    })
  common(user.command('set <login>'))
    .description('change a user\'s display name or directory listing')
    .option('-n, --name <display name>', 'display name')
    .option('--display <display name>', 'display name (same as --name)')
    .option('--listed', 'list the user in the network directory (found by m1node search)')
    .option('--unlisted', 'remove the user from directory search')
    .action(async (login: string, opts: Common & { name?: string, display?: string, listed?: boolean, unlisted?: boolean }) => {
      const normalized = checkLogin(login)
      if (opts.listed === true && opts.unlisted === true) throw new InvalidInputError('--listed', 'cannot be given with --unlisted')
      const displayName = opts.display ?? opts.name
      const change = { ...(displayName != null ? { displayName } : {}), ...(opts.listed === true ? { listed: true } : opts.unlisted === true ? { listed: false } : {}) }
      if (Object.keys(change).length === 0) throw new InvalidInputError('user set', 'give --name/--display, --listed or --unlisted')
      await withAdmin(opts, async (admin) => { await admin.updateUser(normalized, change) })
      process.stdout.write(`updated ${normalized}\n`)
    })
  common(user.command('rm <login>'))
    .description('remove a user')
    .action(async (login: string, opts: Common) => {
      const normalized = checkLogin(login)
      await withAdmin(opts, async (admin) => { await admin.removeUser(normalized) })
      process.stdout.write(`removed ${normalized}\n`)
    })
  common(user.command('list'))
    .description('list users')
    .option('--json', 'one JSON object per line')
    .action(async (opts: Common & { json?: boolean }) => {
      await withAdmin(opts, async (admin) => {
        const users = await admin.listUsers()
        const out: string[] = []
        for (const u of users) {
          out.push(opts.json === true ? JSON.stringify(u) : `${u.login}\t${u.displayName ?? ''}${u.registrations != null ? `\t${u.registrations} registered` : ''}`)
        }
        if (out.length > 0) process.stdout.write(out.join('\n') + '\n')
      })
    })
  common(user.command('import <file>'))
    .description('bulk-create users from CSV: login,password,display_name (or a header naming login, password, ha1_md5, ha1_sha256, realm, display_name)')
    .option('--update', 'overwrite users that exist')
    .action(async (file: string, opts: Common & { update?: boolean }) => {
      let text: string
      try { text = await readFile(file, 'utf8') } catch (err: any) { throw new InvalidInputError('file', `cannot read ${file}: ${err?.code ?? err?.message}`) }
      await withAdmin(opts, async (admin) => {
        const r = await admin.importCsv(text, opts.update === true)
        process.stdout.write(`imported ${r.added} new, ${r.updated} updated\n`)
      })
    })

  buildPbxCommands(program)

  const calls = program.command('calls').description('call records')
  common(calls.command('list'))
    .description('recent calls, oldest first')
    .option('--since <when>', 'only calls started since: an ISO date/time, epoch ms, or a duration like 15m, 2h, 7d')
    .option('--limit <n>', 'at most this many', '100')
    .option('--json', 'one JSON object per line')
    .action(async (opts: Common & { since?: string, limit: string, json?: boolean }) => {
      const since = opts.since != null ? parseSince(opts.since) : undefined
      const limit = Number(opts.limit)
      if (!Number.isInteger(limit) || limit < 1) throw new InvalidInputError('--limit', 'must be a positive integer')
      await withAdmin(opts, async (admin) => {
        const list = await admin.calls(since, limit)
        const lines = list.map(c => opts.json === true
          ? JSON.stringify(c)
          : [new Date(c.startedAt).toISOString(), c.caller, '->', c.callee, String(c.status), c.reason, `${Math.round(c.durationMs / 1000)}s`,
              c.media != null ? `${c.media.packets.a2b}/${c.media.packets.b2a} pkts` : '',
              c.mediaPath != null ? `media ${(c.mediaPaths != null && c.mediaPaths.length > 1 ? c.mediaPaths.map(p => p.path) : [c.mediaPath]).join('>')}` : '',
              ...c.legs.filter(l => l.node != null).map(l => `${l.side === 'a' ? 'from' : 'via'} node ${l.node!}`)].join('  ').trimEnd())
        if (lines.length > 0) process.stdout.write(lines.join('\n') + '\n')
      })
    })

  const msg = program.command('msg').description('text messages')
  common(msg.command('list'))
    .description('recent messages sent or received by a user, oldest first, with their states (accepted, stored, delivered, failed)')
    .option('--user <login>', 'only this login\'s messages')
    .option('--since <when>', 'only messages accepted since: an ISO date/time, epoch ms, or a duration like 15m, 2h, 7d')
    .option('--limit <n>', 'at most this many', '100')
    .option('--json', 'one JSON object per line')
    .action(async (opts: Common & { user?: string, since?: string, limit: string, json?: boolean }) => {
      const since = opts.since != null ? parseSince(opts.since) : undefined
      const limit = Number(opts.limit)
      if (!Number.isInteger(limit) || limit < 1) throw new InvalidInputError('--limit', 'must be a positive integer')
      await withAdmin(opts, async (admin) => {
        const list = await admin.messages({ ...(opts.user != null ? { user: opts.user.toLowerCase() } : {}), ...(since != null ? { since } : {}), limit })
        const lines = list.map(m => opts.json === true
          ? JSON.stringify(m)
          : [new Date(m.at).toISOString(), m.id, m.from, '->', m.toNode != null ? `${m.to}@${m.toNode}` : m.to, m.state, m.type, m.note ?? ''].join('  ').trimEnd())
        if (lines.length > 0) process.stdout.write(lines.join('\n') + '\n')
      })
    })

  common(program.command('resolve <name>'))
    .description('find where a login or node lives: alice@acme, coca-cola (a login) or acme (a node), through the directory')
    .option('--json', 'machine-readable output')
    .action(async (name: string, opts: Common & { json?: boolean }) => {
      const r = await daemonCall(opts, `/resolve?name=${encodeURIComponent(name)}`)
      if (opts.json === true) { process.stdout.write(JSON.stringify(r) + '\n'); return }
      const out: string[] = []
      if (r.did != null) out.push(`did      ${String(r.did.name)} routed by node ${String(r.did.node)}`)
      if (r.login != null) out.push(`login    ${String(r.login.name)}@${String(r.login.node)}${r.login.displayName !== '' ? ` (${String(r.login.displayName)})` : ''}${r.login.listed === true ? ', listed' : ''}`)
      if (r.node != null) {
        out.push(`node     ${String(r.node.name)}  domains ${(r.node.domains as string[]).join(', ')}  ${String(r.node.version)}`)
        out.push(`peer id  ${String(r.node.peerId)}`)
        for (const a of r.node.addrs as string[]) out.push(`  ${a}`)
      } else if (r.login != null) {
        out.push(`peer id  ${String(r.login.peerId)} (node record not found)`)
      }
      process.stdout.write(out.join('\n') + '\n')
    })
  common(program.command('search <words...>'))
    .description('search the directory for listed logins by words of their login and display name (3 letters at least)')
    .option('--json', 'machine-readable output')
    .action(async (words: string[], opts: Common & { json?: boolean }) => {
      const r = await daemonCall(opts, `/search?q=${encodeURIComponent(words.join(' '))}`)
      if (opts.json === true) { process.stdout.write(JSON.stringify(r) + '\n'); return }
      const results = r.results as Array<{ login: string, node: string, displayName: string }>
      if (results.length === 0) { process.stdout.write('no match\n'); return }
      process.stdout.write(results.map(x => `${x.login}@${x.node}${x.displayName !== '' ? `\t${x.displayName}` : ''}`).join('\n') + '\n')
    })
  common(program.command('peers'))
    .description('list the libp2p peers the daemon is connected to')
    .option('--json', 'machine-readable output')
    .action(async (opts: Common & { json?: boolean }) => {
      const r = await daemonCall(opts, '/peers')
      if (opts.json === true) { process.stdout.write(JSON.stringify(r) + '\n'); return }
      const peers = r.peers as Array<{ peerId: string, addrs: string[], direction: string }>
      if (peers.length === 0) { process.stdout.write('no peers\n'); return }
      process.stdout.write(peers.map(p => `${p.peerId}\t${p.direction}\t${p.addrs.join(' ')}`).join('\n') + '\n')
    })

  program.addOption(new Option('--no-color').hideHelp())
  return program
}

/** The `server` a PBX is given: the SIP domain, with the UDP port when it is not 5060. */
async function sipServer (opts: Common, admin: Admin): Promise<string> {
  const status = await admin.status() as any
  if (status != null) {
    const udp = (status.sip as Array<{ transport: string, port: number }>).find(a => a.transport === 'UDP')
    return `${String(status.domain)}${udp != null && udp.port !== 5060 ? `:${udp.port}` : ''}`
  }
  const { config, dataDir } = await resolve(opts)
  const name = config.node.name !== '' ? config.node.name : defaultNodeName(await loadIdentity(dataDir))
  const domain = config.sip.domain !== '' ? config.sip.domain : name
  return `${domain}${config.sip.udpPort !== 5060 ? `:${config.sip.udpPort}` : ''}`
}

/** `m1node trunk ...` and `m1node did ...` (docs/pbx.md). */
function buildPbxCommands (program: Command): void {
  const trunk = program.command('trunk').description('PBX trunks, gateways and lines under a login (docs/pbx.md)')
  common(trunk.command('add <login>'))
    .description('add a trunk (or a line) with its own SIP login and a generated password; prints what the PBX needs')
    .requiredOption('--name <name>', 'trunk name, e.g. office-pbx: the SIP login becomes <login>_<name>')
    .option('--static', 'IP-authenticated trunk for PBXs that cannot register (needs --allow and --target)')
    .option('--line', 'a phone of the login rather than a PBX: rings with its other phones, no extensions')
    .option('--allow <ips>', 'static trunk: source addresses whose calls are this trunk\'s (comma-separated IPs)')
    .option('--target <host:port>', 'static trunk: where calls to the login are sent (IP address and port)')
    .option('--max-calls <n>', 'calls at once through this trunk (0: no cap)', '0')
    .option('--extension-identity', 'calls from the PBX show <login>.<extension> instead of the bare login')
    .option('-p, --password <password>', 'use this password instead of a generated one')
    .action(async (login: string, opts: Common & { name: string, static?: boolean, line?: boolean, allow?: string, target?: string, maxCalls: string, extensionIdentity?: boolean, password?: string }) => {
      const normalized = checkLogin(login)
      const maxCalls = Number(opts.maxCalls)
      if (!Number.isInteger(maxCalls) || maxCalls < 0) throw new InvalidInputError('--max-calls', 'must be a non-negative integer')
      if (opts.static === true && opts.line === true) throw new InvalidInputError('--static', 'cannot be given with --line')
      const kind: TrunkKind = opts.static === true ? 'static' : opts.line === true ? 'line' : 'register'
      await withAdmin(opts, async (admin) => {
        const t = await admin.addTrunk({
          login: normalized,
          name: opts.name,
          kind,
          maxCalls,
          ...(opts.allow != null ? { allow: opts.allow.split(',').map(a => a.trim()).filter(a => a !== '') } : {}),
          ...(opts.target != null ? { target: opts.target } : {}),
          ...(opts.extensionIdentity === true ? { extensionIdentity: true } : {}),
          ...(opts.password != null ? { password: opts.password } : {})
        })
        const server = await sipServer(opts, admin)
        const domain = server.replace(/:\d+$/, '')
        const out = kind === 'static'
          ? [
              `static trunk ${t.username} added${admin.live ? '' : ' (daemon not running: written to the store)'}`,
              `  server    ${server}`,
              `  allowed   ${(t.allow ?? []).join(', ')} (no registration, no password)`,
              `  target    ${t.target ?? ''} (calls to ${t.login}@${domain} are sent there)`,
              '',
              `outbound: send INVITEs from an allowed address to sip:<login, number or login*node>@${server}`
            ]
          : [
              `${kind === 'line' ? 'line' : 'trunk'} ${t.username} added${admin.live ? '' : ' (daemon not running: written to the store)'}`,
              `  server    ${server}`,
              `  login     ${t.username}`,
              `  password  ${t.password}`,
              '',
              `registration: REGISTER sip:${domain} as sip:${t.username}@${domain} (auth username ${t.username}), expiry 60-7200 s; the Contact is used exactly as registered`,
              `outbound:     INVITE sip:<login, number or login*node>@${domain} through ${server}, answering 407 with the same login and password`,
              `inbound:      calls to ${t.login}@${domain} arrive at the registered Contact (m1node trunk mode ${t.login} extensions: ${t.login}.<ext> reaches extension <ext>)`,
              t.maxCalls > 0 ? `limit:        ${t.maxCalls} calls at once` : 'limit:        none'
            ]
        process.stdout.write(out.join('\n') + '\n')
      })
    })
  common(trunk.command('list [login]'))
    .description('list trunks and lines (of one login, or all)')
    .option('--json', 'one JSON object per line')
    .action(async (login: string | undefined, opts: Common & { json?: boolean }) => {
      await withAdmin(opts, async (admin) => {
        const list = await admin.listTrunks(login != null ? checkLogin(login) : undefined)
        const lines = list.map(t => opts.json === true
          ? JSON.stringify(t)
          : [t.username, t.kind, t.kind === 'static' ? `allow ${(t.allow ?? []).join(',')} -> ${t.target ?? ''}` : `${t.registrations ?? '-'} registered`, t.maxCalls > 0 ? `max ${t.maxCalls} calls` : ''].join('\t').trimEnd())
        if (lines.length > 0) process.stdout.write(lines.join('\n') + '\n')
      })
    })
  common(trunk.command('rm <login> [name]'))
    .description('remove a trunk: m1node trunk rm acme office-pbx (or acme_office-pbx)')
    .action(async (login: string, name: string | undefined, opts: Common) => {
      const parsed = name == null ? parseTrunkUser(login) : { login: checkLogin(login), name }
      if (parsed == null) throw new InvalidInputError('name', 'give <login> <name> or <login>_<name>')
      await withAdmin(opts, async (admin) => { await admin.removeTrunk(parsed.login, parsed.name) })
      process.stdout.write(`removed ${parsed.login}_${parsed.name}\n`)
    })
  common(trunk.command('mode <login> [mode]'))
    .description('inbound routing of a login with trunks: main (every call to the trunk as is) or extensions (<login>.<ext>)')
    .option('--distribution <how>', 'failover (by q-value), roundrobin or parallel')
    .action(async (login: string, mode: string | undefined, opts: Common & { distribution?: string }) => {
      const normalized = checkLogin(login)
      await withAdmin(opts, async (admin) => {
        const s = await admin.setPbx(normalized, { ...(mode != null ? { mode } : {}), ...(opts.distribution != null ? { distribution: opts.distribution } : {}) })
        process.stdout.write(`${s.login}: mode ${s.mode}, distribution ${s.distribution}${Object.keys(s.aliases).length > 0 ? `, aliases ${Object.entries(s.aliases).map(([a, e]) => `${a}.${s.login}->${e}`).join(' ')}` : ''}\n`)
      })
    })
  common(trunk.command('alias <login> <alias> [extension]'))
    .description('name an extension: m1node trunk alias acme sales 201 makes sales.acme reach extension 201')
    .option('--rm', 'remove the alias')
    .option('--listed', 'give the alias a directory entry of its own (found by search, called from other nodes)')
    .action(async (login: string, alias: string, ext: string | undefined, opts: Common & { rm?: boolean, listed?: boolean }) => {
      const normalized = checkLogin(login)
      if (ext == null && opts.rm !== true) throw new InvalidInputError('extension', 'missing (or --rm)')
      await withAdmin(opts, async (admin) => {
        await admin.setPbx(normalized, { alias: { name: alias, ext: opts.rm === true ? null : ext!, ...(opts.listed === true ? { listed: true } : { listed: false }) } })
      })
      process.stdout.write(opts.rm === true ? `removed ${alias}.${normalized}\n` : `${alias}.${normalized} -> extension ${ext!}\n`)
    })

  const did = program.command('did').description('DIDs (telephone numbers) routed to logins or extensions')
  common(did.command('add <number> <target>'))
    .description('route an E.164 number to a login or extension: m1node did add +15551234567 acme.201')
    .action(async (number: string, target: string, opts: Common) => {
      const e164 = checkE164(number)
      await withAdmin(opts, async (admin) => {
        const d = await admin.addDid(e164, target)
        process.stdout.write(`${d.did} -> ${d.login}${d.ext != null ? ` extension ${d.ext}` : ''}${admin.live ? '' : ' (daemon not running: written to the store)'}\n`)
      })
    })
  common(did.command('list [login]'))
    .description('list routed DIDs')
    .option('--json', 'one JSON object per line')
    .action(async (login: string | undefined, opts: Common & { json?: boolean }) => {
      await withAdmin(opts, async (admin) => {
        const list = await admin.listDids(login != null ? checkLogin(login) : undefined)
        const lines = list.map(d => opts.json === true ? JSON.stringify(d) : `${d.did}\t${d.login}${d.ext != null ? `.${d.ext}` : ''}`)
        if (lines.length > 0) process.stdout.write(lines.join('\n') + '\n')
      })
    })
  common(did.command('rm <number>'))
    .description('stop routing a DID')
    .action(async (number: string, opts: Common) => {
      const e164 = checkE164(number)
      await withAdmin(opts, async (admin) => { await admin.removeDid(e164) })
      process.stdout.write(`removed ${e164}\n`)
    })
}

/** Runs the CLI; every failure becomes one line on stderr and an exit code (see exit.ts). */
export async function main (argv: string[] = process.argv): Promise<void> {
  const program = buildProgram()
  try {
    if (argv.length <= 2) {
      program.outputHelp()
      process.exit(EXIT.usage)
    }
    await program.parseAsync(argv)
  } catch (err) {
    if (err instanceof CliError && err.message === '') process.exit(err.code)
    if (err instanceof ConfigError && err.path === '--config') fail(new CliError(err.message, EXIT.usage))
    fail(err)
  }
}

/** `--since`: ISO date, epoch ms, or a duration back from now (30s, 15m, 2h, 7d). */
export function parseSince (text: string, now = Date.now()): number {
  const d = /^(\d+)([smhd])$/.exec(text.trim())
  if (d != null) return now - Number(d[1]) * { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[d[2] as 's']
  if (/^\d{10,13}$/.test(text.trim())) return Number(text)
  const t = Date.parse(text)
  if (Number.isNaN(t)) throw new InvalidInputError('--since', `"${text}" is no date, epoch ms or duration like 2h`)
  return t
}
