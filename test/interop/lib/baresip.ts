import { writeFile } from 'node:fs/promises'
import { join } from 'node:path'

/** Where Debian's baresip package keeps its modules. */
export const BARESIP_MODULES = '/usr/lib/baresip/modules'

export interface BaresipConfig {
  /** baresip's own SIP port on 127.0.0.1 */
  sipPort: number
  /** lines of the `accounts` file */
  accounts: string[]
}

/**
 * Writes a headless baresip 1.0 configuration into `dir` (for `baresip -f dir`): SIP on 127.0.0.1 only, no audio
 * or video device, no STUN/TURN/ICE, DNS pointed at loopback so nothing leaves the host, and the `menu` module
 * only to print registration results on stdout.
 */
export async function writeBaresipConfig (dir: string, c: BaresipConfig): Promise<void> {
  const config = [
    // epoll cannot watch a closed or /dev/null stdin; poll can
    'poll_method poll',
    `sip_listen 127.0.0.1:${c.sipPort}`,
    // an interface name such as `lo` is not accepted here, an address is
    'net_interface 127.0.0.1',
    'dns_server 127.0.0.1:53',
    'call_max_calls 1',
    `module_path ${BARESIP_MODULES}`,
    'module_tmp uuid.so',
    'module_tmp account.so',
    'module_app menu.so',
    ''
  ].join('\n')
  await writeFile(join(dir, 'config'), config)
  await writeFile(join(dir, 'accounts'), c.accounts.join('\n') + '\n')
  // without a contacts file baresip writes a template; an empty one keeps the folder as we made it
  await writeFile(join(dir, 'contacts'), '')
}
