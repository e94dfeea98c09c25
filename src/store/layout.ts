/**
 * Every sublevel of the node's LevelDB in one table: name, owner, key -> value.
 * Names follow `key_value`; compound keys are joined with `!`.
 */
export const SUBLEVELS = {
  /** users/: normalised login -> UserRecord */
  login_user: { owner: 'users', key: 'login', value: 'UserRecord (json)' },
  /** registrar/: AOR (normalised login) -> Binding[] (json); one key per AOR so a REGISTER is one atomic write */
  aor_contacts: { owner: 'registrar', key: 'aor', value: 'Binding[] (json)' },
  /** node.ts: setting name -> value (json): nonce secret, node name */
  setting_value: { owner: 'node', key: 'setting', value: 'json' }
} as const

export type SublevelName = keyof typeof SUBLEVELS
